"""Every config knob is documented in docs/configuration.md."""

from pathlib import Path

import pytest

from robosf_assets.defs.archival import ArchiveConfig
from robosf_assets.defs.assets.datasets import DatasetConfig
from robosf_assets.defs.assets.reports import ReportConfig
from robosf_assets.defs.config import (
    ArmConfig,
    BCPolicyConfig,
    ExpertConfig,
    FinetuneArmConfig,
    PPOSettings,
)

DOC = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize(
    "config", [ExpertConfig, PPOSettings, DatasetConfig, BCPolicyConfig, FinetuneArmConfig, ArmConfig, ReportConfig,
               ArchiveConfig],
)
def test_every_field_of_every_stage_config_is_documented(config):
    section = DOC.split(f"### `{config.__name__}`", 1)
    assert len(section) == 2, f"docs/configuration.md has no section for {config.__name__}"
    body = section[1].split("### ", 1)[0]
    missing = [name for name in config.model_fields if f"| `{name}` |" not in body]
    assert not missing, f"{config.__name__} fields missing from docs/configuration.md: {missing}"
