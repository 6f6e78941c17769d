"""The fine-tuning ablation's numbers from hand-made curves (no training)."""

import json

from robosf_assets.bench.finetune_ablation import (
    VARIANTS,
    ablation_markdown,
    recompute,
    run_metrics,
    summarize,
)


def rows(success: list[float], every: int = 8192) -> list[dict]:
    return [{"timesteps": i * every, "success": s, "collision": round(1 - s, 2)}
            for i, s in enumerate(success)]


def test_run_metrics_drifting_and_steady() -> None:
    drift = run_metrics(rows([0.97] * 6 + [0.90, 0.80] * 6), warmup_steps=5 * 8192)
    assert drift["k_in_a_row"] == {"steps": 0, "censored": False, "time": 0}
    assert drift["held"]["censored"] and drift["held_after_held"] is None
    # from the warm-up's end (eval 5) on: 1 + 0 of the 0.90/0.80 pairs meet 0.90 / 0.05
    assert drift["held_after_warmup"] == 1 / 13
    steady = run_metrics(rows([0.5, 0.5] + [0.97] * 10), warmup_steps=0)
    assert steady["held"]["steps"] == 2 * 8192 and steady["held_after_held"] == 1.0
    assert steady["final_success"] == 0.97 and steady["n_evals"] == 12


def test_summary_markdown_and_recompute(tmp_path, capsys) -> None:
    curves = {"warmup": {0: rows([0.97] * 3 + [0.5] * 9), 1: rows([0.97] * 12)},
              "warmup+anchor": {0: rows([0.97] * 12), 1: rows([0.97] * 12)}}
    variants = summarize(curves)
    assert variants["warmup"]["n_censored_held"] == 1
    assert variants["warmup+anchor"]["median_held"] == 0.0
    result = {
        "command": "python -m robosf_assets.bench.finetune_ablation ...", "git_revision": "abc",
        "settings": {"scenario": "crossing", "seeds": [0, 1], "steps": 90_112,
                     "eval_every": 8192, "eval_episodes": 100},
        "variant_configs": {v: VARIANTS[v].model_dump() for v in curves},
        "expert": {"timesteps_used": 1, "model_timesteps": 1, "verdict": "PASSED",
                   "validation_pooled": {"success": 0.95, "collision": 0.05}},
        "dataset": {"episodes": 200, "transitions": 20_000},
        "bc": {"0": {"success": 0.96, "collision": 0.04}},
        "variants": variants,
    }
    md = ablation_markdown(result)
    assert "| warmup | 0 | 0.97 | 0 | > 90,112 (censored) |" in md
    (tmp_path / "curves").mkdir()
    for v, by_seed in curves.items():
        for seed, r in by_seed.items():
            (tmp_path / "curves" / f"{v}-seed{seed}.jsonl").write_text(
                "".join(json.dumps(x) + "\n" for x in r))
    (tmp_path / "ablation.json").write_text(json.dumps(result))
    assert recompute(tmp_path) == 0
    r = curves["warmup"][1]
    r[5]["success"] = 0.1
    (tmp_path / "curves" / "warmup-seed1.jsonl").write_text("".join(json.dumps(x) + "\n" for x in r))
    assert recompute(tmp_path) == 1
    assert "DIFFERS warmup.runs.1" in capsys.readouterr().out
