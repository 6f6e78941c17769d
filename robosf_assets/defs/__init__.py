"""The Dagster layer: a thin wrapper over the core library (sim, envs, training, datasets, benchmark)."""

import dagster as dg


def build_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[])
