"""The stage shape: core ``run_<stage>`` functions release their run directory however they
end, and the report assets compute from their inputs (typed references), nothing else."""

import json
from pathlib import Path

import dagster as dg
import pytest

from robosf_assets.artifacts import holds_run_dir, open_resumable_run_dir, release_run_dir
from robosf_assets.comparison import ComparisonSettings, run_comparison
from robosf_assets.defs.assets.reports import benchmark_summary, comparison_report
from robosf_assets.defs.run_config import ArmConfig
from robosf_assets.defs.partitions import scenario_partitions, scenario_seed_partitions
from robosf_assets.refs import ExpertRef, PolicyRef, ReportRef, StageRefused, SummaryRef
from robosf_assets.training import expert as expert_stage
from robosf_assets.training import finetune
from robosf_assets.training.train_config import TrainConfig
from robosf_assets.training.ppo import TrainResult
from robosf_assets_tests.defs.conftest import TINY_TRAINING

SCENARIO = "crossing"
EVERY = 1024


def _config(seed: int = 0) -> TrainConfig:
    return ArmConfig(profile="quick", **TINY_TRAINING).train_config(SCENARIO, seed)


def _curve(reach_at: int | None, end: int = 10 * EVERY) -> list[dict]:
    """Evaluations every EVERY steps; on the bar (0.95 / 0.02) from ``reach_at`` on."""
    rows = []
    for t in range(0, end + 1, EVERY):
        on = reach_at is not None and t >= reach_at
        rows.append({"timesteps": t, "success": 0.95 if on else 0.2 + 0.3 * t / end,
                     "collision": 0.02 if on else 0.1, "mean_return": 0.0, "n_episodes": 20,
                     "wall_time_s": 1.0, "env_steps_per_s": 1000.0, "eval_s": 0.1})
    return rows


def _run(root: Path, arm: str, seed: int, rows: list[dict]) -> PolicyRef:
    """A finished arm run on disk (curve and manifest) and its reference."""
    run_dir = root / arm / f"{SCENARIO}-seed{seed}" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "manifest.json").write_text(json.dumps({"seeds": {"run_seed": seed}}))
    return PolicyRef(arm=arm, run_dir=run_dir, model_path=run_dir / "model.zip", scenario=SCENARIO, seed=seed,
                     timesteps_used=rows[-1]["timesteps"],
                     demo_transitions=5_000 if arm == "finetuned_policy" else None)


def _expert(root: Path) -> ExpertRef:
    return ExpertRef(run_dir=root / "experts" / SCENARIO / "run", model_path=root / "m.zip", model_sha256="0" * 64,
                     promoted=True, scenario=SCENARIO, timesteps_used=100_000)


# ------------------------------------------------------------------ the lock, however a stage ends


def test_an_arm_stage_that_raises_releases_its_run_directory(tmp_path, monkeypatch):
    seen = []

    def dies(config, run_dir):
        assert holds_run_dir(run_dir)  # held while the stage works
        seen.append(run_dir)
        raise RuntimeError("killed mid-training")

    monkeypatch.setattr(finetune, "train_baseline", dies)
    with pytest.raises(RuntimeError, match="killed mid-training"):
        finetune.run_baseline(_config(), tmp_path)
    (run_dir,) = seen
    assert not holds_run_dir(run_dir) and not (run_dir / "manifest.json").exists()
    # free for the retry at once, which resumes the same directory
    again, resumed = open_resumable_run_dir("baseline_policies", f"{SCENARIO}-seed0", _config().run_key(),
                                            root=tmp_path)
    assert (again, resumed) == (run_dir, True)
    release_run_dir(again)


def test_the_expert_stage_that_raises_releases_its_run_directory(tmp_path, monkeypatch):
    seen = []

    def dies(config, run_dir, **kwargs):
        assert holds_run_dir(run_dir)
        seen.append(run_dir)
        raise ValueError("damaged checkpoint")

    monkeypatch.setattr(expert_stage, "train_ppo", dies)
    with pytest.raises(ValueError, match="damaged checkpoint"):
        expert_stage.run_expert(_config(), tmp_path)
    (run_dir,) = seen
    assert not holds_run_dir(run_dir)


def test_an_arm_stage_writes_curve_and_manifest_before_it_releases(tmp_path, monkeypatch):
    rows = _curve(4 * EVERY, end=4 * EVERY)

    def trains(config, run_dir):
        (run_dir / "model.zip").write_bytes(b"model")
        (run_dir / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return TrainResult(model_path=run_dir / "model.zip", curve=rows, timesteps_used=4 * EVERY, wall_time_s=1.0,
                           env_steps_per_s=1.0, stopped_early=False, resumed_from=None, promotion_reached_at=None)

    monkeypatch.setattr(finetune, "train_baseline", trains)
    outcome = finetune.run_baseline(_config(seed=2), tmp_path)
    ref = outcome.ref
    assert (ref.arm, ref.seed, ref.timesteps_used, ref.bc_run) == ("baseline_policy", 2, 4 * EVERY, None)
    assert not holds_run_dir(ref.run_dir)
    manifest = json.loads((ref.run_dir / "manifest.json").read_text())
    assert manifest["kind"] == "baseline_policy" and manifest["partition"] == f"{SCENARIO}-seed2"
    assert {f["path"] for f in manifest["files"]} == {"model.zip", "curve.jsonl", "learning_curve.png",
                                                      "run_key.json"}
    assert (ref.run_dir / "learning_curve.png").read_bytes() == outcome.curve_png


# ------------------------------------------------------------------ reports from their inputs only


def test_run_comparison_reads_only_the_runs_it_is_given(tmp_path):
    ft = [_run(tmp_path, "finetuned_policy", s, _curve(2 * EVERY)) for s in (0, 1, 2)]
    bl = [_run(tmp_path, "baseline_policy", s, _curve(8 * EVERY)) for s in (0, 1, 2, 3)]
    settings = ComparisonSettings(target_success=0.9, max_collision=0.05, consecutive_evals=3, ratio_target=0.7,
                                  statistic="iqm", n_resamples=200, min_seeds=3)
    outcome = run_comparison(settings, _expert(tmp_path), ft, bl, tmp_path / "output")
    assert outcome.ref.seeds == (0, 1, 2)  # seed 3 has one arm only
    report = json.loads(outcome.ref.report_json.read_text())
    assert report["inputs"]["demo_transitions"] == 5_000 and report["inputs"]["expert_steps"] == 100_000
    manifest = json.loads((outcome.ref.report_dir / "manifest.json").read_text())
    assert manifest["seeds"] == {"matched_seeds": [0, 1, 2]} and manifest["config"]["n_resamples"] == 200
    with pytest.raises(StageRefused, match="no seed has both"):
        run_comparison(settings, _expert(tmp_path), ft[:1], bl[1:2], tmp_path / "output")
    with pytest.raises(ValueError, match="given twice"):
        run_comparison(settings, _expert(tmp_path), ft + ft[:1], bl, tmp_path / "output")


def test_comparison_report_and_summary_compute_from_their_inputs(tmp_path, instance, output):
    """Upstream stand-ins return references and record no metadata, so anything read from the
    instance or found by scanning the output tree would be missing: the report must come
    from the IO manager's references (seeds never materialised are skipped)."""
    runs = tmp_path / "runs"

    @dg.asset(key="expert_policy", partitions_def=scenario_partitions)
    def expert_stub() -> ExpertRef:
        return _expert(runs)

    @dg.asset(key="finetuned_policy", partitions_def=scenario_seed_partitions)
    def finetuned_stub(context: dg.AssetExecutionContext) -> PolicyRef:
        seed = int(context.partition_key.keys_by_dimension["seed"])
        return _run(runs, "finetuned_policy", seed, _curve(2 * EVERY))

    @dg.asset(key="baseline_policy", partitions_def=scenario_seed_partitions)
    def baseline_stub(context: dg.AssetExecutionContext) -> PolicyRef:
        seed = int(context.partition_key.keys_by_dimension["seed"])
        return _run(runs, "baseline_policy", seed, _curve(8 * EVERY))

    stubs = [expert_stub, finetuned_stub, baseline_stub]
    assert dg.materialize([expert_stub], partition_key=SCENARIO, instance=instance).success
    for stub, seeds in ((finetuned_stub, (0, 1)), (baseline_stub, (0, 1, 2))):
        for seed in seeds:
            key = dg.MultiPartitionKey({"scenario": SCENARIO, "seed": str(seed)})
            assert dg.materialize([stub], partition_key=key, instance=instance).success

    config = {"n_resamples": 200, "min_seeds": 1}
    report = dg.materialize([*stubs, comparison_report, benchmark_summary], selection=["comparison_report"],
                            partition_key=SCENARIO, instance=instance, resources={"output": output},
                            run_config={"ops": {"comparison_report": {"config": config}}})
    assert report.success
    ref = report.output_for_node("comparison_report")
    assert isinstance(ref, ReportRef) and ref.seeds == (0, 1) and ref.report_dir.parent.name == SCENARIO
    body = json.loads(ref.report_json.read_text())
    assert sorted(body["inputs"]["run_dirs"]["finetuned"]) == ["0", "1"]
    assert (ref.report_dir / "manifest.json").is_file()

    summary = dg.materialize([*stubs, comparison_report, benchmark_summary], selection=["benchmark_summary"],
                             instance=instance, resources={"output": output})
    assert summary.success
    out = summary.output_for_node("benchmark_summary")
    assert isinstance(out, SummaryRef) and [r["scenario"] for r in out.rows] == [SCENARIO]
    assert (out.summary_dir / "summary.md").read_text().count(SCENARIO) >= 1
