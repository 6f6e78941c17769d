"""Where artefacts go: the output tree as a resource, so tests and deployments can move it.

What assets hand each other is small: the typed references of :mod:`robosf_assets.refs`
(frozen dataclasses of paths and a few facts), pickled by Dagster's default filesystem IO
manager into the instance's storage directory. The artefacts themselves stay in the output
tree; a reference only points at them.
"""

from pathlib import Path

import dagster as dg

from robosf_assets.artifacts import output_root


class OutputTree(dg.ConfigurableResource):
    """The artefact tree (``output/`` in the project unless ``root`` or ``ROBOSF_OUTPUT_DIR`` says otherwise)."""

    root: str = ""

    def path(self) -> Path:
        return Path(self.root) if self.root else output_root()
