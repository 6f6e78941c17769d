"""What a stage refuses, and the pool its training runs share.

A backfill launches a child run only after its parents materialised, but it does not read
check results, and a quarantined dataset is a successful materialisation (status
``quarantined``). So each stage refuses bad input itself, with a message that says why; the
failed run then stops that scenario's downstream partitions and no other.
"""

import dagster as dg

from robosf_assets.defs.lookup import latest_metadata

# Runs holding a training step take a slot of this pool (dagster.yaml: pools at run granularity;
# the limit is set per instance, one per core by default: `python -m robosf_assets.cli pool`).
TRAINING_POOL = "training"


def quarantined_message(iter_dir: str, status: str, reasons: list[str]) -> str:
    return f"dataset {iter_dir} is {status}: {'; '.join(reasons) or 'no reason recorded'}; a quarantined dataset is never used"


def refuse_unless_validated(instance: dg.DagsterInstance, scenario: str) -> None:
    """Raise ``dg.Failure`` unless the scenario's latest ``validated_dataset`` says ``validated``."""
    latest = latest_metadata(instance, "validated_dataset", [scenario]).get(scenario)
    if latest is None:
        raise dg.Failure(f"{scenario}: no validated_dataset yet; its expert and dataset come first")
    if latest.get("status") != "validated":
        text = str(latest.get("reasons", ""))
        reasons = [] if text == "none" else [line.removeprefix("- ") for line in text.splitlines()]
        raise dg.Failure(quarantined_message(str(latest.get("iteration_dir", "?")), str(latest.get("status")), reasons))
