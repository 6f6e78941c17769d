"""Tests for robosf_assets.benchmark.episodes."""

import json
from pathlib import Path

import numpy as np
import pytest

from robosf_assets.benchmark.episodes import (
    EPISODE_SCHEMA_VERSION,
    episode_record,
    read_episodes_jsonl,
    write_episodes_jsonl,
)


def _record(index: int = 0, **metrics: object) -> dict:
    base = {"success": np.bool_(True), "steps": np.int64(120), "time_to_goal": np.float32(0.5)}
    base.update(metrics)
    return episode_record(
        scenario="crossing", seed=3, episode_index=index, policy="ppo/seed0", metrics=base
    )


def test_episode_record_is_json_safe() -> None:
    rec = _record(time_to_goal=np.float64("nan"), jerk=float("inf"), ped_d=np.array([1.0, 2.0]))
    assert rec["schema_version"] == EPISODE_SCHEMA_VERSION
    assert rec["success"] is True and type(rec["steps"]) is int
    assert rec["time_to_goal"] is None and rec["jerk"] is None
    assert rec["ped_d"] == [1.0, 2.0] and rec["extra"] == {}
    json.dumps(rec, allow_nan=False)


def test_episode_record_rejects_reserved_metric() -> None:
    with pytest.raises(ValueError, match="seed"):
        episode_record(scenario="s", seed=0, episode_index=0, policy="p", metrics={"seed": 1})


def test_jsonl_round_trip(tmp_path: Path) -> None:
    records = [_record(0), _record(1, time_to_goal=float("nan"), success=False)]
    path = write_episodes_jsonl(tmp_path / "sub" / "episodes.jsonl", records)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0] == json.dumps(json.loads(lines[0]), sort_keys=True)
    back = read_episodes_jsonl(path)
    assert back == records
    assert back[1]["time_to_goal"] is None and back[1]["success"] is False
    assert [p.name for p in path.parent.iterdir()] == ["episodes.jsonl"]  # no temp left


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "episodes.jsonl"
    path.write_text("keep me\n")
    with pytest.raises(FileExistsError, match="episodes.jsonl"):
        write_episodes_jsonl(path, [_record()])
    assert path.read_text() == "keep me\n"


def test_read_reports_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_record(), sort_keys=True)
    path.write_text(good + "\n" + good + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: invalid JSON"):
        read_episodes_jsonl(path)


def test_read_rejects_other_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    rec = dict(_record(), schema_version=99)
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(ValueError, match=r"old\.jsonl:1: schema_version 99"):
        read_episodes_jsonl(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"old\.jsonl:1: expected a JSON object"):
        read_episodes_jsonl(path)
