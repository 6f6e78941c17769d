"""The Dagster code location: gathers everything under ``robosf_assets/defs``."""

from robosf_assets.defs import build_definitions

defs = build_definitions()
