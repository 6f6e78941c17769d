"""Where artefacts go: the output tree as a resource, so tests and deployments can move it."""

from pathlib import Path

import dagster as dg

from robosf_assets.artifacts import output_root


class OutputTree(dg.ConfigurableResource):
    """The artefact tree (``output/`` in the project unless ``root`` or ``ROBOSF_OUTPUT_DIR`` says otherwise)."""

    root: str = ""

    def path(self) -> Path:
        return Path(self.root) if self.root else output_root()
