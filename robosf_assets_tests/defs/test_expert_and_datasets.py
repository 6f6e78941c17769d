"""Expert, dataset and validated-dataset assets materialised for real on a tiny budget."""

import json
from pathlib import Path

import dagster as dg

from robosf_assets.defs.assets.datasets import trajectory_dataset, validated_dataset
from robosf_assets.defs.assets.expert import expert_policy
from robosf_assets_tests.defs.conftest import expert_config

SCENARIO = "crossing"
TINY_DATASET = {"n_episodes": 6, "min_episodes": 5, "n_envs": 3, "render_sample": True}


def _checks(result) -> dict[str, bool]:
    """Check name -> passed, for every check evaluated in the run."""
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _stage_one(instance, output, expert_cfg, dataset_cfg, raise_on_error=True):
    """Materialise expert, dataset and validated dataset for SCENARIO with these configs."""
    return dg.materialize(
        [expert_policy, trajectory_dataset, validated_dataset],
        partition_key=SCENARIO,
        instance=instance,
        resources={"output": output},
        run_config={"ops": {"expert_policy": {"config": expert_cfg},
                            "trajectory_dataset": {"config": dataset_cfg},
                            "validated_dataset": {"config": dataset_cfg}}},
        raise_on_error=raise_on_error,
    )


def test_a_tiny_expert_fails_the_real_bar_and_no_dataset_is_built(instance, output):
    result = _stage_one(instance, output, expert_config(), TINY_DATASET, raise_on_error=False)
    checks = _checks(result)
    assert checks == {"expert_promotion_bar": False}
    # the blocking check stopped the run before any dataset was recorded
    assert not (Path(output.root) / "datasets").exists()
    assert not result.success
    (run_dir,) = (Path(output.root) / "experts" / SCENARIO).iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["promoted"] is False and "FAILED" in manifest["verdict"]
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    lines = (run_dir / "validation_episodes.jsonl").read_text().splitlines()
    assert len(lines) == 12  # 3 seeds x 4 episodes


def test_a_promoted_expert_gives_a_validated_dataset(instance, output):
    # a bar anyone passes: the check is real, its thresholds are config
    cfg = expert_config(min_success=0.0, max_collision=1.0)
    result = _stage_one(instance, output, cfg, TINY_DATASET)
    assert result.success
    assert _checks(result) == {"expert_promotion_bar": True, "dataset_size_within_cap": True,
                               "episode_count_minimum": True, "dataset_integrity": True}
    validated = result.output_for_node("validated_dataset")
    assert validated.status == "validated" and validated.reasons == ()
    iter_dir = validated.iter_dir
    assert iter_dir.name == "iter-0001" and iter_dir.parent.name == SCENARIO
    manifest = json.loads((iter_dir / "manifest.json").read_text())
    expert = result.output_for_node("expert_policy")
    assert manifest["source"]["model_sha256"] == expert.model_sha256
    assert manifest["n_episodes"] == 6


def test_dataset_checks_fail_honestly_on_a_too_small_dataset(instance, output):
    cfg = expert_config(min_success=0.0, max_collision=1.0)
    small = {**TINY_DATASET, "min_episodes": 50, "size_cap_gb": 1e-6}
    result = _stage_one(instance, output, cfg, small, raise_on_error=False)
    checks = _checks(result)
    assert checks["episode_count_minimum"] is False and checks["dataset_size_within_cap"] is False
    assert checks["dataset_integrity"] is False
    # blocked: validated_dataset never ran, the recorded data are still there
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert trajectory_dataset.key in materialized and validated_dataset.key not in materialized
    assert list((Path(output.root) / "datasets" / SCENARIO).glob("iter-0001/trajectories.npz"))


def test_materialising_again_after_a_kill_resumes_from_the_checkpoint(instance, output):
    """A run killed mid-training leaves checkpoints and no manifest; the next materialisation resumes."""
    from robosf_assets.artifacts import open_resumable_run_dir, release_run_dir
    from robosf_assets.defs.run_config import ExpertConfig
    from robosf_assets.training.ppo import train_ppo

    cfg = expert_config(min_success=0.0, max_collision=1.0)
    train_config = ExpertConfig(**cfg).train_config(SCENARIO)
    run_dir, resumed = open_resumable_run_dir("experts", SCENARIO, train_config.run_key(), root=output.path())
    assert not resumed
    # the "killed" run got half way: a checkpoint at 512 steps, no model validated, no manifest
    train_ppo(train_config.model_copy(update={"total_timesteps": 512}), run_dir)
    release_run_dir(run_dir)  # its process is gone, and its flock with it

    result = dg.materialize([expert_policy], partition_key=SCENARIO, instance=instance,
                            resources={"output": output}, run_config={"ops": {"expert_policy": {"config": cfg}}})
    assert result.success
    ref = result.output_for_node("expert_policy")
    assert ref.run_dir == run_dir
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["resumed"] is True and "step-0000000512" in manifest["resumed_from"]
    assert manifest["timesteps_used"] == 1024
