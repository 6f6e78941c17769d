"""Calibration runs of PPO from scratch: ``python -m robosf_assets.bench.calibrate``.

One run = :func:`robosf_assets.training.ppo.train_ppo` with the ``full`` profile's config for
a scenario and seed (``profile_config("full", ...)``), with the budget, the evaluation
spacing, PPO hyperparameters and env overrides given on the command line. It answers the
benchmark-design question of issue 10: where does PPO's time to threshold (success >= 0.90,
collision <= 0.05, 3 consecutive evaluations) land on a candidate scenario, and with which
settings.

The run trains in ``--run-root/<name>`` (resumable: rerunning the same command continues
from the newest checkpoint) and, when it ends, writes into ``--out-dir/<name>/``:

- ``curve.jsonl``: the learning curve (one row per evaluation, as ``train_ppo`` writes it);
- ``summary.json``: the command, the full config, time to threshold (k-consecutive) and the
  reached-and-held time (censored or not), the final evaluation, steps/s and wall time.

With ``--probe-average D [D ...]`` the run also keeps, for each decay ``D``, an exponential
moving average of the policy's weights (:class:`~robosf_assets.training.callbacks.PolicyAverage`,
what ``ppo.policy_average_decay`` does) and evaluates it at every curve evaluation on the
same fixed episodes: ``average_probe.jsonl`` pairs, row by row, the policy as trained with
its averages, from one training run. The averages are not checkpointed: a resumed run
restarts them from the weights it resumes with.

``python -m robosf_assets.bench.calibrate --table`` prints every summary under ``--out-dir``
as one markdown table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("docs/results/calibration")
DEFAULT_RUN_ROOT = Path("output/calibration")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: Sequence[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"{flag} expects NAME=VALUE, got {item!r}")
        out[name] = _parse_value(value)
    return out


def threshold_summary(curve: Sequence[dict[str, Any]], min_success: float = 0.90, max_collision: float = 0.05,
                      k: int = 3) -> dict[str, Any]:
    """Time to threshold (k in a row) and reached-and-held time of one learning curve."""
    from robosf_assets.benchmark.efficiency import time_to_held_threshold, time_to_threshold

    t = [r["timesteps"] for r in curve]
    s = [r["success"] for r in curve]
    c = [r["collision"] for r in curve]
    first = time_to_threshold(t, s, target=min_success, collision=c, max_collision=max_collision, k=k)
    held = time_to_held_threshold(t, s, target=min_success, collision=c, max_collision=max_collision)
    best = max(curve, key=lambda r: (r["success"] - r["collision"]))
    return {
        "threshold_steps": first.steps,
        "threshold_censored_at": first.censored_at,
        "held_steps": held.steps,
        "held_censored_at": held.censored_at,
        "best_success": best["success"],
        "best_collision": best["collision"],
        "best_at": best["timesteps"],
    }


def give_up_callback(run_dir: Path, at_steps: int, min_success: float):
    """An SB3 callback that stops training at ``at_steps`` if no curve evaluation so far has
    reached ``min_success`` (a run stuck standing still is not worth its remaining budget)."""
    from stable_baselines3.common.callbacks import BaseCallback

    from robosf_assets.training.curves import CURVE_NAME, read_curve

    class GiveUp(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.gave_up = False

        def _on_step(self) -> bool:
            if self.gave_up or self.num_timesteps < at_steps or self.n_calls % 64:
                return True
            curve = read_curve(run_dir / CURVE_NAME)
            if curve and curve[-1]["timesteps"] >= at_steps and max(r["success"] for r in curve) < min_success:
                self.gave_up = True
                return False
            return True

    return GiveUp()


def average_probe(config: Any, path: Path, decays: Sequence[float]):
    """An SB3 callback that keeps one weight average per decay, and is also the curve
    evaluator's hook: with each curve row it evaluates the averages on the curve's episodes
    and appends ``{"timesteps", "weights": {...}, "average <d>": {...}}`` (success, collision,
    mean return; ``weights`` is the row itself) to ``path``. Pass it to ``train_ppo`` both as
    a callback and as an evaluation hook."""
    from stable_baselines3.common.callbacks import BaseCallback

    from robosf_assets.envs import make_vec_env
    from robosf_assets.training.callbacks import PolicyAverage
    from robosf_assets.training.evaluation import curve_point, evaluate_policy_episodes
    from robosf_assets.training.train_config import eval_episode_seeds

    keys = ("success", "collision", "mean_return")

    class AverageProbe(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.averages = {d: PolicyAverage(d) for d in decays}
            self.seeds = eval_episode_seeds(config.eval)
            self.env = make_vec_env(config.scenario, min(config.eval.n_eval_envs, len(self.seeds)),
                                    config.eval.eval_seed_base, **dict(config.env_overrides))

        def _on_training_start(self) -> None:
            for avg in self.averages.values():
                avg.init_callback(self.model)
                avg.on_training_start(self.locals, self.globals)

        def _on_rollout_end(self) -> None:
            for avg in self.averages.values():
                avg.on_rollout_end()

        def _take_update(self) -> None:  # idempotent per update (PolicyAverage's pending flag)
            for avg in self.averages.values():
                avg.on_rollout_start()

        def _on_rollout_start(self) -> None:
            self._take_update()

        def _on_training_end(self) -> None:
            self._take_update()

        def _on_step(self) -> bool:
            return True

        def __call__(self, model: Any, row: dict[str, Any]) -> None:
            # the evaluator runs before this callback at a boundary: take the update first
            self._take_update()
            out = {"timesteps": int(row["timesteps"]), "weights": {k: row[k] for k in keys}}
            for d, avg in self.averages.items():
                with avg.averaged(model):
                    point = curve_point(evaluate_policy_episodes(model, config.scenario, self.seeds, env=self.env))
                out[f"average {d:g}"] = {k: point[k] for k in keys}
            with open(path, "a") as fh:
                fh.write(json.dumps(out, sort_keys=True) + "\n")

    return AverageProbe()


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    from robosf_assets.artifacts import atomic_write_json, atomic_write_text
    from robosf_assets.logs import configure_logging
    from robosf_assets.sim.scenario import get_scenario
    from robosf_assets.training.train_config import profile_config
    from robosf_assets.training.ppo import train_ppo

    configure_logging()
    env_overrides = {"frame_stack": 2, **_pairs(args.set, "--set")}
    config = profile_config(
        "full",
        args.scenario,
        args.seed,
        total_timesteps=args.steps,
        early_stop=args.early_stop,
        early_stop_margin=0.0,
        checkpoint_every_steps=args.checkpoint_every,
        **({} if args.n_envs is None else {"n_envs": args.n_envs}),
        env_overrides=env_overrides,
        ppo=_pairs(args.ppo, "--ppo"),
        eval={"eval_every_steps": args.eval_every, "n_eval_episodes": args.eval_episodes},
        progress_interval_s=60.0,
    )
    name = args.name or f"{args.scenario}-s{args.seed}"
    callbacks = []
    give_up = give_up_callback(args.run_root / name, args.give_up_at, args.give_up_below) if args.give_up_at else None
    if give_up is not None:
        callbacks.append(give_up)
    probe_path = args.run_root / name / "average_probe.jsonl"
    hooks = []
    if args.probe_average:
        probe_path.parent.mkdir(parents=True, exist_ok=True)
        probe = average_probe(config, probe_path, args.probe_average)
        callbacks.append(probe)
        hooks.append(probe)
    result = train_ppo(config, args.run_root / name, callbacks=callbacks, evaluation_hooks=hooks)
    curve = result.curve
    out = args.out_dir / name
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "curve.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in curve),
                      overwrite=True)
    summary = {
        "name": name,
        "command": "python -m robosf_assets.bench.calibrate " + " ".join(shlex.quote(a) for a in argv),
        "scenario": args.scenario,
        "scenario_params": dict(get_scenario(args.scenario).params),
        "scenario_sha256": get_scenario(args.scenario).fingerprint(),
        "scenario_toml": Path(get_scenario(args.scenario).source_file).read_text(),
        "seed": args.seed,
        "timesteps_used": result.timesteps_used,
        "stopped_early": result.stopped_early,
        "gave_up": bool(give_up is not None and give_up.gave_up),
        "wall_time_s": result.wall_time_s,
        "eval_time_s": result.eval_time_s,
        "env_steps_per_s": result.env_steps_per_s,
        "final": {k: curve[-1][k] for k in ("timesteps", "success", "collision", "timeout", "mean_return")
                  if k in curve[-1]},
        **threshold_summary(curve, config.promotion.min_success, config.promotion.max_collision,
                            config.promotion.consecutive_evals),
        "config": config.model_dump(),
    }
    if args.probe_average:
        atomic_write_text(out / "average_probe.jsonl", probe_path.read_text(), overwrite=True)
        summary["average_probe"] = list(args.probe_average)
    atomic_write_json(out / "summary.json", summary, overwrite=True)
    return summary


def table(out_dir: Path) -> str:
    """Every ``summary.json`` under ``out_dir`` as a markdown table."""
    rows = ["| run | scenario | overrides | steps used | time to threshold | held time | final success / collision | best (at) | env-steps/s | wall (s) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(out_dir.glob("*/summary.json")):
        s = json.loads(path.read_text())
        ov = {k: v for k, v in s["config"]["env_overrides"].items() if k != "frame_stack"}
        ppo = s["config"]["ppo"]
        extra = ", ".join(f"{k}={v}" for k, v in ov.items())
        ttt = f"{s['threshold_steps']:,}" if s["threshold_steps"] is not None else f"censored at {s['threshold_censored_at']:,}"
        held = f"{s['held_steps']:,}" if s["held_steps"] is not None else f"censored at {s['held_censored_at']:,}"
        f = s["final"]
        rows.append(
            f"| {s['name']} | {s['scenario']} | {extra or '-'}; lr {ppo['learning_rate']:g}, ent {ppo['ent_coef']:g} | "
            f"{s['timesteps_used']:,} | {ttt} | {held} | {f['success']:.2f} / {f['collision']:.2f} | "
            f"{s['best_success']:.2f} / {s['best_collision']:.2f} ({s['best_at']:,}) | {s['env_steps_per_s']:,.0f} | "
            f"{s['wall_time_s']:,.0f} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m robosf_assets.bench.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", help="scenario name")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1_003_520, help="training budget (rounded up to whole rollouts)")
    p.add_argument("--eval-every", type=int, default=50_000, help="env steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=100, help="fixed curve-evaluation episodes")
    p.add_argument("--early-stop", action=argparse.BooleanOptionalAction, default=True,
                   help="stop once the bar held 3 evaluations in a row (no margin)")
    p.add_argument("--n-envs", type=int, default=None, help="training worlds (default: the full profile's)")
    p.add_argument("--checkpoint-every", type=int, default=250_000)
    p.add_argument("--give-up-at", type=int, default=None,
                   help="stop at this step if no evaluation has reached --give-up-below success")
    p.add_argument("--give-up-below", type=float, default=0.05)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="env override (JSON value)")
    p.add_argument("--ppo", action="append", default=[], metavar="NAME=VALUE", help="PPO hyperparameter (JSON value)")
    p.add_argument("--probe-average", type=float, nargs="+", default=[], metavar="DECAY",
                   help="also evaluate weight averages with these decays at every curve evaluation "
                        "(average_probe.jsonl)")
    p.add_argument("--name", default=None, help="run name (default <scenario>-s<seed>)")
    p.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    p.add_argument("--run-root", type=Path, default=DEFAULT_RUN_ROOT)
    p.add_argument("--table", action="store_true", help="print the table of every summary under --out-dir and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.out_dir))
        return 0
    if not args.scenario:
        p.error("--scenario is required")
    s = run(args, argv)
    print(json.dumps({k: v for k, v in s.items() if k != "config"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
