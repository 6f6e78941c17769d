"""Fine-tuning ablation: which way of starting PPO from a BC policy keeps the start.

Usage::

    python -m robosf_assets.bench.finetune_ablation --work /tmp/ablation \\
        --out docs/results/ablation [--scenario crossing] [--seeds 0 1 2]

Prepares once, under ``--work`` (each stage is skipped when its result is already there,
so an interrupted run is completed by running the same command again):

1. the quick-profile expert of the scenario (:func:`robosf_assets.training.expert.train_expert`),
   unless ``<work>/expert`` already holds one (e.g. a copy of a shipped full-profile expert,
   ``robosf_assets/experts/<scenario>``);
2. 200 expert episodes (:func:`robosf_assets.datasets.record.record_dataset`), validated;
3. one BC policy per seed (:func:`robosf_assets.training.bc.train_bc`, default settings).

Then fine-tunes every variant of :data:`VARIANTS` from each seed's BC policy with the
full profile's comparison-arm PPO (the learning-rate decay of the full-profile arm's budget,
so an arm is the start of a full-profile arm), evaluating every ``--eval-every`` steps on
``--eval-episodes`` fixed episodes. Per variant and seed it reports the time to threshold
(k consecutive evaluations, and "reached and held",
:func:`robosf_assets.benchmark.efficiency.time_to_held_threshold`), the share of
evaluations from the held time on that meet the bar, the share after the critic warm-up,
and final success / collision; it writes ``ablation.json`` and ``ablation.md`` to ``--out``.

The expert is only the source of demonstrations here: it is used whether or not it
passes validation (its validation is recorded in the output).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robosf_assets.artifacts import atomic_write_json, atomic_write_text, git_revision, read_json
from robosf_assets.benchmark.efficiency import (
    bar_met_mask,
    time_to_held_threshold,
    time_to_threshold,
)
from robosf_assets.training.finetune import CRITIC_WARMUP_STEPS, FinetuneConfig

__all__ = ["VARIANTS", "ablation_markdown", "main", "prepare", "run_metrics", "summarize"]

SCENARIO = "crossing"
DATASET_SEED_BASE = 3_000_000
"""Episode seeds of the demonstrations (the Dagster dataset asset's default)."""
N_DEMO_EPISODES = 200
WARMUP = CRITIC_WARMUP_STEPS["full"]
TARGET_SUCCESS, MAX_COLLISION, K, HOLD_FRACTION = 0.90, 0.05, 3, 0.90
"""The report's bar, k and hold fraction (robosf_assets.benchmark.report defaults)."""

VARIANTS: dict[str, FinetuneConfig] = {
    # the earlier default: the 40,960-step critic warm-up, then the actor at the PPO rate
    "warmup": FinetuneConfig(critic_warmup_steps=WARMUP, actor_ramp_steps=0, anchor_coef=0.0),
    # PIRLNav: then the actor's rate rising from 0 over 10 rollouts (40,960 steps)
    "warmup+ramp": FinetuneConfig(critic_warmup_steps=WARMUP, actor_ramp_steps=40_960,
                                  anchor_coef=0.0),
    # DAPG-style: then 2.0 * KL(pi_BC || pi), x0.99 per rollout (half-life 69 rollouts);
    # the default after the crossing ablation (docs/results/ablation/)
    "warmup+anchor": FinetuneConfig(critic_warmup_steps=WARMUP, actor_ramp_steps=0,
                                    anchor_coef=2.0, anchor_decay=0.99),
    "warmup+ramp+anchor": FinetuneConfig(
        critic_warmup_steps=WARMUP, actor_ramp_steps=40_960, anchor_coef=2.0, anchor_decay=0.99
    ),
    # the anchor over a 3M-step arm (732 rollouts): x0.998 per rollout (half-life 346
    # rollouts, 0.23 of the weight left at the end; the default since the hallway
    # ablation, docs/results/ablation/hallway-3m), and a constant anchor (no decay)
    "warmup+anchor-slow": FinetuneConfig(critic_warmup_steps=WARMUP, actor_ramp_steps=0,
                                         anchor_coef=2.0, anchor_decay=0.998),
    "warmup+anchor-const": FinetuneConfig(critic_warmup_steps=WARMUP, actor_ramp_steps=0,
                                          anchor_coef=2.0, anchor_decay=1.0),
}
"""The compared fine-tuning variants (the first three run by default)."""
DEFAULT_VARIANTS = ("warmup", "warmup+ramp", "warmup+anchor")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prepare_expert(work: Path, scenario: str) -> dict[str, Any]:
    """Train (or reuse) the quick-profile expert; return its summary."""
    from robosf_assets.training.train_config import profile_config
    from robosf_assets.training.expert import train_expert

    run_dir = work / "expert"
    manifest = run_dir / "manifest.json"
    if not manifest.is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        _log(f"training the quick-profile {scenario} expert into {run_dir}")
        train_expert(profile_config("quick", scenario, 0), run_dir)
    m = read_json(manifest)
    validation = read_json(run_dir / "validation.json")
    return {
        "run_dir": run_dir.as_posix(),
        # a shipped full-profile expert copied to <work>/expert is used as it is
        "profile": m.get("profile", "quick"),
        "model_path": (run_dir / m["expert_model"]).as_posix(),
        "model_timesteps": m["expert_model_timesteps"],
        "timesteps_used": m["timesteps_used"],
        "promoted": m["promoted"],
        "verdict": m["verdict"],
        "validation_pooled": {
            k: validation["pooled"][k]["mean"] for k in ("success", "collision")
        },
    }


def prepare_dataset(work: Path, scenario: str, expert: dict[str, Any]) -> Path:
    """Record (or reuse) the demonstrations and validate them; return the iteration dir."""
    from stable_baselines3 import PPO

    from robosf_assets.artifacts import sha256_file
    from robosf_assets.datasets.load import latest_validated
    from robosf_assets.datasets.record import record_dataset
    from robosf_assets.datasets.validate import validate_dataset, write_integrity_report
    from robosf_assets.envs.rollout import sb3_policy

    parent = work / "datasets" / scenario
    found = latest_validated(parent) if parent.is_dir() else None
    if found is not None:
        return found
    model_path = Path(expert["model_path"])
    model = PPO.load(model_path, device="cpu")
    overrides = read_json(Path(expert["run_dir"]) / "manifest.json")["config"]["env_overrides"]
    _log(f"recording {N_DEMO_EPISODES} expert episodes")
    iter_dir = record_dataset(
        sb3_policy(model, deterministic=True), scenario, parent,
        n_episodes=N_DEMO_EPISODES, seed_base=DATASET_SEED_BASE, env_overrides=overrides,
        source={"run_dir": expert["run_dir"], "model_sha256": sha256_file(model_path)},
    )
    report = validate_dataset(iter_dir, min_episodes=N_DEMO_EPISODES)
    write_integrity_report(iter_dir, report)
    if not report.passed:
        raise RuntimeError(f"{iter_dir} failed validation: {report.failed_checks()}")
    return iter_dir


def arm_config(scenario: str, seed: int, steps: int, eval_every: int, eval_episodes: int):
    """The full profile's comparison-arm config, cut to ``steps`` with evaluations every
    ``eval_every`` steps on ``eval_episodes`` episodes (the learning rate follows the full
    arm's decay over its whole budget)."""
    from robosf_assets.training.train_config import ARM_TIMESTEPS, profile_config

    return profile_config(
        "full", scenario, seed,
        total_timesteps=steps,
        early_stop=False,
        ppo={"learning_rate_horizon": ARM_TIMESTEPS["full"]},
        eval={"eval_every_steps": eval_every, "n_eval_episodes": eval_episodes},
    )


def prepare_bc(work: Path, dataset: Path, config) -> Path:
    """Train (or reuse) the BC policy of ``config.seed``; return its ``policy.pt``."""
    from robosf_assets.datasets.load import load_trajectories
    from robosf_assets.training.bc import BCConfig, train_bc

    run_dir = work / "bc" / f"seed{config.seed}"
    policy = run_dir / "policy.pt"
    if policy.is_file():
        return policy
    run_dir.mkdir(parents=True, exist_ok=True)
    _log(f"BC for seed {config.seed}")
    train_bc(config, BCConfig(), load_trajectories(dataset), run_dir)
    return policy


def prepare(work: Path, scenario: str, seeds: Sequence[int], steps: int, eval_every: int,
            eval_episodes: int) -> dict[str, Any]:
    """Expert, dataset and one BC policy per seed under ``work``."""
    expert = prepare_expert(work, scenario)
    _log(f"expert: {expert['verdict']}")
    dataset = prepare_dataset(work, scenario, expert)
    bc = {}
    for seed in seeds:
        config = arm_config(scenario, seed, steps, eval_every, eval_episodes)
        bc[seed] = prepare_bc(work, dataset, config)
        ev = read_json(bc[seed].parent / "evaluation.json")["deterministic"]
        _log(f"BC seed {seed}: success {ev['success']:.2f}, collision {ev['collision']:.2f}")
    return {"expert": expert, "dataset": dataset, "bc": bc}


# ---------------------------------------------------------------------- the arms


def run_arm(work: Path, variant: str, config, bc_policy: Path) -> list[dict[str, Any]]:
    """Fine-tune (or reuse) one variant x seed; return its curve rows."""
    from robosf_assets.training.finetune import finetune_from_bc
    from robosf_assets.training.ppo import CURVE_NAME, RESULT_NAME, read_curve

    run_dir = work / "arms" / variant / f"seed{config.seed}"
    if not (run_dir / RESULT_NAME).is_file():
        _log(f"fine-tuning {variant} seed {config.seed} ({config.total_timesteps:,} steps)")
        finetune_from_bc(config, VARIANTS[variant], bc_policy, run_dir)
    return read_curve(run_dir / CURVE_NAME)


# ------------------------------------------------------------------- the numbers


def run_metrics(rows: Sequence[Mapping[str, Any]], warmup_steps: int = WARMUP) -> dict[str, Any]:
    """One run's numbers from its curve rows (pure).

    ``held_after_held``: share of evaluations from the held time on that meet the bar
    (>= the hold fraction by definition; ``None`` when censored). ``held_after_warmup``:
    share of evaluations at or after the warm-up's end that meet it.
    """
    t = np.array([r["timesteps"] for r in rows], dtype=np.int64)
    s = np.array([r["success"] for r in rows], dtype=np.float64)
    c = np.array([r["collision"] for r in rows], dtype=np.float64)
    ok = bar_met_mask(s, c, target=TARGET_SUCCESS, max_collision=MAX_COLLISION)
    k_res = time_to_threshold(t, s, target=TARGET_SUCCESS, collision=c,
                              max_collision=MAX_COLLISION, k=K)
    held = time_to_held_threshold(t, s, target=TARGET_SUCCESS, collision=c,
                                  max_collision=MAX_COLLISION, hold_fraction=HOLD_FRACTION,
                                  min_evals=K)
    after = t >= warmup_steps
    return {
        "jumpstart_success": float(s[0]),
        "k_in_a_row": {"steps": k_res.steps, "censored": k_res.censored, "time": k_res.time},
        "held": {"steps": held.steps, "censored": held.censored, "time": held.time},
        "held_after_held": None if held.censored else float(np.mean(ok[held.index:])),
        "held_after_warmup": float(np.mean(ok[after])) if after.any() else None,
        "mean_success_after_warmup": float(np.mean(s[after])) if after.any() else None,
        "final_success": float(s[-1]),
        "final_collision": float(c[-1]),
        "last_step": int(t[-1]),
        "n_evals": int(t.size),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def summarize(curves: Mapping[str, Mapping[int, Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    """Per variant: every seed's :func:`run_metrics` and the means / medians over seeds."""
    out: dict[str, Any] = {}
    for variant, by_seed in curves.items():
        runs = {str(seed): run_metrics(rows) for seed, rows in sorted(by_seed.items())}
        r = list(runs.values())
        out[variant] = {
            "runs": runs,
            "median_k_in_a_row": float(np.median([x["k_in_a_row"]["time"] for x in r])),
            "median_held": float(np.median([x["held"]["time"] for x in r])),
            "n_censored_k_in_a_row": sum(x["k_in_a_row"]["censored"] for x in r),
            "n_censored_held": sum(x["held"]["censored"] for x in r),
            "mean_held_after_held": _mean([x["held_after_held"] for x in r]),
            "mean_held_after_warmup": _mean([x["held_after_warmup"] for x in r]),
            "mean_success_after_warmup": _mean([x["mean_success_after_warmup"] for x in r]),
            "mean_final_success": _mean([x["final_success"] for x in r]),
            "mean_final_collision": _mean([x["final_collision"] for x in r]),
        }
    return out


def _time(x: Mapping[str, Any]) -> str:
    return f"> {x['time']:,} (censored)" if x["censored"] else f"{x['steps']:,}"


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def ablation_markdown(result: Mapping[str, Any]) -> str:
    """The ablation's tables (per variant, per seed) and how they were made."""
    s = result["settings"]
    hp = s.get("ppo")
    ppo = "" if hp is None else (
        f" ({s['n_envs']} worlds x {hp['n_steps']} steps per rollout, batch {hp['batch_size']}, "
        f"{hp['n_epochs']} epochs, learning rate {hp['learning_rate']:g} decaying towards "
        f"{hp['learning_rate_final']:g} over {hp['learning_rate_horizon']:,} steps)"
    )
    lines = [
        f"# Fine-tuning ablation on {s['scenario']}: keeping the BC start", "",
        f"Command: `{result['command']}`", "",
        f"Each arm: PPO fine-tuned from the seed's BC policy for {s['steps']:,} steps with the "
        f"full profile's comparison-arm PPO{ppo}, evaluated every {s['eval_every']:,} steps on "
        f"{s['eval_episodes']} fixed episodes; seeds {', '.join(map(str, s['seeds']))}. Bar: success >= "
        f"{TARGET_SUCCESS:.2f} and collision <= {MAX_COLLISION:.2f}. *{K} in a row*: the "
        f"first of {K} consecutive evaluations meeting it; *held*: the first evaluation from "
        f"which >= {HOLD_FRACTION:.0%} of all later ones meet it (at least {K} of them). "
        "Censored times are the last evaluated step.", "",
        "| variant | median time, 3 in a row | median held time | censored (held) "
        "| bar met after held time | bar met after warm-up | mean success after warm-up "
        "| final success | final collision |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    n = len(s["seeds"])
    for variant, v in result["variants"].items():
        lines.append(
            f"| {variant} | {v['median_k_in_a_row']:,.0f} | {v['median_held']:,.0f} | "
            f"{v['n_censored_held']} of {n} | {_f(v['mean_held_after_held'])} | "
            f"{_f(v['mean_held_after_warmup'])} | {_f(v['mean_success_after_warmup'])} | "
            f"{_f(v['mean_final_success'])} | {_f(v['mean_final_collision'])} |"
        )
    lines += [
        "", "Rates are means over seeds; *bar met after held time* is averaged over the "
        "seeds that hold it (>= 0.90 by definition); *bar met after warm-up* counts every "
        f"evaluation from step {WARMUP:,} on.", "",
        "## Per seed", "",
        "| variant | seed | jumpstart | 3 in a row | held | bar met after held | "
        "bar met after warm-up | final success | final collision |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, v in result["variants"].items():
        for seed, r in v["runs"].items():
            lines.append(
                f"| {variant} | {seed} | {r['jumpstart_success']:.2f} | {_time(r['k_in_a_row'])} "
                f"| {_time(r['held'])} | {_f(r['held_after_held'])} | "
                f"{_f(r['held_after_warmup'])} | {r['final_success']:.2f} | "
                f"{r['final_collision']:.2f} |"
            )
    e = result["expert"]
    lines += [
        "", "## Variants", "",
        *[f"- `{name}`: `{cfg}`" for name, cfg in result["variant_configs"].items()],
        "", "## Inputs", "",
        f"Expert: {e.get('profile', 'quick')} profile, {e['timesteps_used']:,} steps, validated model at "
        f"{e['model_timesteps']:,} steps; validation {e['validation_pooled']['success']:.3f} / "
        f"{e['validation_pooled']['collision']:.3f} ({e['verdict']}). Demonstrations: "
        f"{result['dataset']['episodes']} episodes, {result['dataset']['transitions']:,} "
        "transitions. BC (deterministic) per seed: "
        + ", ".join(f"seed {k} {v['success']:.2f} / {v['collision']:.2f}"
                    for k, v in result["bc"].items())
        + f". Code: {result['git_revision']}. The curves are in `curves/`; "
        "`python -m robosf_assets.bench.finetune_ablation --from-curves <this dir>` "
        "recomputes every number above from them.", "",
    ]
    return "\n".join(lines)


def _write(out: Path, result: dict[str, Any], curves: Mapping[str, Mapping[int, Any]]) -> None:
    import json

    (out / "curves").mkdir(parents=True, exist_ok=True)
    for variant, by_seed in curves.items():
        for seed, rows in by_seed.items():
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
            atomic_write_text(out / "curves" / f"{variant}-seed{seed}.jsonl", text, overwrite=True)
    atomic_write_json(out / "ablation.json", result, overwrite=True)
    atomic_write_text(out / "ablation.md", ablation_markdown(result), overwrite=True)


def _read_curves(out: Path, result: Mapping[str, Any]) -> dict[str, dict[int, list]]:
    import json

    curves: dict[str, dict[int, list]] = {}
    for variant in result["variants"]:
        curves[variant] = {}
        for seed in result["settings"]["seeds"]:
            path = out / "curves" / f"{variant}-seed{seed}.jsonl"
            curves[variant][seed] = [json.loads(x) for x in path.read_text().splitlines() if x]
    return curves


def recompute(out: Path) -> int:
    """Recompute ``out/ablation.json``'s numbers from ``out/curves``; 0 when they match."""
    from robosf_assets.benchmark.recompute import diff_values

    result = read_json(out / "ablation.json")
    fresh = summarize(_read_curves(out, result))
    diffs, n = diff_values(result["variants"], fresh)
    for d in diffs:
        print(f"DIFFERS {d}")
    print(("OK: all" if not diffs else f"FAILED: {len(diffs)} of") + f" {n} values")
    return 0 if not diffs else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(prog="python -m robosf_assets.bench.finetune_ablation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, help="work directory (resumable)")
    parser.add_argument("--out", type=Path, default=None, help="where ablation.json/.md go")
    parser.add_argument("--scenario", default=SCENARIO)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                        choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=163_840, help="fine-tuning steps per arm")
    parser.add_argument("--eval-every", type=int, default=8192)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--from-curves", type=Path, default=None,
                        help="recompute a written ablation from its curves/ and check it")
    args = parser.parse_args(argv)
    if args.from_curves is not None:
        return recompute(args.from_curves)
    if args.work is None:
        parser.error("--work is required")
    started = time.time()
    prep = prepare(args.work, args.scenario, args.seeds, args.steps, args.eval_every,
                   args.eval_episodes)
    if args.prepare_only:
        return 0
    curves: dict[str, dict[int, list]] = {v: {} for v in args.variants}
    for seed in args.seeds:  # seed-major: a partial run already compares the variants
        config = arm_config(args.scenario, seed, args.steps, args.eval_every, args.eval_episodes)
        for variant in args.variants:
            curves[variant][seed] = run_arm(args.work, variant, config, prep["bc"][seed])
    dataset = read_json(prep["dataset"] / "manifest.json")
    arm = arm_config(args.scenario, args.seeds[0], args.steps, args.eval_every, args.eval_episodes)
    command = ("python -m robosf_assets.bench.finetune_ablation --work <work dir> --out "
               f"{args.out} --scenario {args.scenario} --seeds {' '.join(map(str, args.seeds))} "
               f"--variants {' '.join(args.variants)} --steps {args.steps} --eval-every "
               f"{args.eval_every} --eval-episodes {args.eval_episodes}")
    result = {
        "command": command,
        "git_revision": git_revision(Path(__file__).resolve().parent),
        "settings": {"scenario": args.scenario, "seeds": args.seeds, "steps": args.steps,
                     "n_envs": arm.n_envs, "ppo": arm.ppo.model_dump(),
                     "eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
                     "target_success": TARGET_SUCCESS, "max_collision": MAX_COLLISION, "k": K,
                     "hold_fraction": HOLD_FRACTION, "warmup_steps": WARMUP},
        "variant_configs": {v: VARIANTS[v].model_dump() for v in args.variants},
        "expert": prep["expert"],
        "dataset": {"iteration": prep["dataset"].name, "episodes": dataset["n_episodes"],
                    "transitions": dataset["n_transitions"]},
        "bc": {str(seed): read_json(path.parent / "evaluation.json")["deterministic"]
               for seed, path in prep["bc"].items()},
        "arm_wall_time_s": {
            v: {str(seed): read_json(args.work / "arms" / v / f"seed{seed}" / "training.json")
                ["wall_time_s"] for seed in args.seeds} for v in args.variants},
        "total_wall_time_s": round(time.time() - started, 1),
        "variants": summarize(curves),
    }
    print(ablation_markdown(result))
    if args.out is not None:
        _write(args.out, result, curves)
        _log(f"wrote {args.out / 'ablation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
