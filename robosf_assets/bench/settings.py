"""PPO settings side by side: steps and wall time to the promotion bar, from scratch.

Trains PPO from scratch on one scenario, for every seed and every settings arm (runs
interleaved: seed 0 of every arm, then seed 1, ...), exactly as the training stage does
(:func:`robosf_assets.training.ppo.train_ppo` on the profile's config with the arm's
``n_envs``, ``n_steps``, ``batch_size``, ``n_epochs``, ``net_arch`` and ``learning_rate``),
and prints per arm the steps to threshold of every seed
(:func:`~robosf_assets.benchmark.efficiency.time_to_threshold`: success >= 0.90 and
collision <= 0.05 on ``k`` = 3 curve evaluations in a row, the profile's promotion bar),
the wall time until the run knew it (the k-th evaluation), the training throughput, and
the median steps-to-threshold ratio of each arm over the first with a 95% bootstrap CI
(:func:`~robosf_assets.benchmark.efficiency.efficiency_ratio`). Runs that never reach the
bar within the budget are censored (``>N``) and enter the ratio at their last evaluation.

Each run stops once the bar has held for ``k`` evaluations (``--run-to-budget`` trains to
the budget anyway). The learning rate follows the profile's decay over the profile's whole
horizon, so the first steps are those of a real expert run.

Arms (``--settings``): ``old`` (the settings before issue 11: 16 envs x 256 steps,
batch 1024, 10 epochs), ``new`` (the profile's current ones), a JSON object such as
``'{"name": "e3", "n_epochs": 3}'`` (unset keys from ``new``), or ``@file.json`` holding
one object or a list. The flags ``--n-envs ... --lr`` add one arm ``custom`` (unset flags
from ``new``).

Run::

    python -m robosf_assets.bench.settings --scenario crossing --seeds 0 1 2 \\
        --budget 400000 --eval-every 8192 --settings old new --out /tmp/settings.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from robosf_assets.artifacts import atomic_write_json
from robosf_assets.benchmark.efficiency import (
    ThresholdResult,
    efficiency_ratio,
)
from robosf_assets.logs import configure_logging, get_logger
from robosf_assets.training.train_config import PROFILES, TrainConfig, profile_config
from robosf_assets.training.curves import curve_threshold

__all__ = [
    "OLD_SETTINGS",
    "PPOSettings",
    "arm_config",
    "main",
    "parse_settings",
    "profile_settings",
    "run_comparison",
]

log = get_logger("bench.settings")


@dataclass(frozen=True)
class PPOSettings:
    """The throughput-relevant PPO settings of one arm.

    :param name: arm label.
    :param n_envs: training worlds stepped together.
    :param n_steps: steps per world per rollout.
    :param batch_size: minibatch size (must divide ``n_envs * n_steps``).
    :param n_epochs: passes over each rollout.
    :param net_arch: hidden layers of the actor and of the critic.
    :param learning_rate: Adam learning rate at the start (``None``: the profile's).
    """

    name: str
    n_envs: int
    n_steps: int
    batch_size: int
    n_epochs: int
    net_arch: tuple[int, ...] = (128, 128)
    learning_rate: float | None = None

    @property
    def rollout(self) -> int:
        return self.n_envs * self.n_steps

    def label(self) -> str:
        lr = "" if self.learning_rate is None else f" lr {self.learning_rate:g}"
        net = "x".join(str(n) for n in self.net_arch)
        return (
            f"{self.n_envs} envs x {self.n_steps}, batch {self.batch_size}, "
            f"{self.n_epochs} epochs, net {net}{lr}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "net_arch": list(self.net_arch)}


OLD_SETTINGS = PPOSettings(
    "old", n_envs=16, n_steps=256, batch_size=1024, n_epochs=10, learning_rate=3e-4
)
"""Both profiles' PPO settings before issue 11 (3,688 env-steps/s on crossing then)."""


def profile_settings(profile: str = "full", name: str = "new") -> PPOSettings:
    """The PPO settings profile ``profile`` trains with now (read from ``PROFILES``)."""
    cfg = profile_config(profile, "crossing")
    return PPOSettings(
        name,
        n_envs=cfg.n_envs,
        n_steps=cfg.ppo.n_steps,
        batch_size=cfg.ppo.batch_size,
        n_epochs=cfg.ppo.n_epochs,
        net_arch=tuple(cfg.ppo.net_arch),
        learning_rate=cfg.ppo.learning_rate,
    )


_FIELDS = {"name", "n_envs", "n_steps", "batch_size", "n_epochs", "net_arch", "learning_rate"}


def _from_mapping(obj: Any, base: PPOSettings, where: str) -> PPOSettings:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object of settings, got {type(obj).__name__}")
    unknown = set(obj) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown settings {sorted(unknown)}; known: {sorted(_FIELDS)}")
    values = dict(obj)
    if "net_arch" in values:
        values["net_arch"] = tuple(int(n) for n in values["net_arch"])
    values.setdefault("name", where)
    return replace(base, **values)


def parse_settings(specs: list[str], profile: str = "full") -> list[PPOSettings]:
    """Arms from ``old``, ``new``, inline JSON objects or ``@file.json`` (see module doc)."""
    new = profile_settings(profile)
    arms: list[PPOSettings] = []
    for spec in specs:
        if spec == "old":
            arms.append(OLD_SETTINGS)
        elif spec == "new":
            arms.append(new)
        elif spec.startswith("@"):
            data = json.loads(Path(spec[1:]).read_text(encoding="utf-8"))
            for i, obj in enumerate(data if isinstance(data, list) else [data]):
                arms.append(_from_mapping(obj, new, f"{spec[1:]}[{i}]"))
        elif spec.lstrip().startswith("{"):
            try:
                obj = json.loads(spec)
            except json.JSONDecodeError as err:
                raise ValueError(f"--settings {spec!r} is not valid JSON: {err}") from None
            arms.append(_from_mapping(obj, new, f"arm{len(arms)}"))
        else:
            raise ValueError(f"--settings {spec!r}: give old, new, a JSON object or @file.json")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be distinct, got {names}")
    return arms


def arm_config(
    settings: PPOSettings,
    scenario: str,
    seed: int,
    *,
    profile: str = "full",
    budget: int,
    eval_every: int,
    n_eval_episodes: int,
    run_to_budget: bool = False,
    device: str = "cpu",
    env_overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """The training config of one run: the profile's, with the arm's settings.

    The budget is rounded up to whole rollouts; the learning rate decays over the
    profile's own horizon (so a short run is the start of a real one); evaluation has no
    dense phase; early stop (unless ``run_to_budget``) uses the plain bar, no margin.
    ``env_overrides`` are merged over the profile's.
    """
    base = PROFILES[profile]
    horizon = base["ppo"].get("learning_rate_horizon") or base["total_timesteps"]
    ppo: dict[str, Any] = {
        "n_steps": settings.n_steps,
        "batch_size": settings.batch_size,
        "n_epochs": settings.n_epochs,
        "net_arch": list(settings.net_arch),
        "learning_rate_horizon": horizon,
    }
    if settings.learning_rate is not None:
        ppo["learning_rate"] = settings.learning_rate
    total = -(-budget // settings.rollout) * settings.rollout
    return profile_config(
        profile,
        scenario,
        seed,
        n_envs=settings.n_envs,
        ppo=ppo,
        total_timesteps=total,
        eval={
            "eval_every_steps": eval_every,
            "n_eval_episodes": n_eval_episodes,
            "dense_eval_every_steps": None,
            "dense_eval_until_steps": 0,
        },
        early_stop=not run_to_budget,
        early_stop_margin=0.0,
        checkpoint_every_steps=total,
        progress_interval_s=60.0,
        device=device,
        env_overrides={**base.get("env_overrides", {}), **dict(env_overrides or {})},
    )


@dataclass
class RunResult:
    """One training run of one arm and seed."""

    arm: str
    seed: int
    steps_to_threshold: int | None
    censored_at: int | None
    wall_to_threshold_s: float | None
    wall_time_s: float
    timesteps_used: int
    train_env_steps_per_s: float
    eval_time_s: float
    curve: list[dict[str, Any]] = field(default_factory=list)

    def threshold(self) -> ThresholdResult:
        if self.steps_to_threshold is None:
            return ThresholdResult(None, True, self.censored_at)
        return ThresholdResult(self.steps_to_threshold, False)


def _run_one(config: TrainConfig, arm: str, work_dir: Path) -> RunResult:
    from robosf_assets.training.ppo import train_ppo

    run_dir = work_dir / f"{arm}-seed{config.seed}"
    result = train_ppo(config, run_dir)
    curve = result.curve
    reached = curve_threshold(curve, config.promotion)
    wall = None
    if not reached.censored:
        wall = float(curve[reached.index + config.promotion.consecutive_evals - 1]["wall_time_s"])
    return RunResult(
        arm=arm,
        seed=config.seed,
        steps_to_threshold=reached.steps,
        censored_at=reached.censored_at,
        wall_to_threshold_s=wall,
        wall_time_s=result.wall_time_s,
        timesteps_used=result.timesteps_used,
        train_env_steps_per_s=result.env_steps_per_s,
        eval_time_s=result.eval_time_s,
        curve=[
            {k: r[k] for k in ("timesteps", "success", "collision", "wall_time_s", "eval_s")}
            for r in curve
        ],
    )


def _summarise(arms: list[PPOSettings], runs: list[RunResult]) -> list[dict[str, Any]]:
    by_arm = {a.name: [r for r in runs if r.arm == a.name] for a in arms}
    reference = by_arm[arms[0].name]
    out = []
    for arm in arms:
        mine = by_arm[arm.name]
        times = [r.threshold() for r in mine]
        walls = [r.wall_to_threshold_s for r in mine]
        entry: dict[str, Any] = {
            "arm": arm.name,
            "settings": arm.to_dict(),
            "seeds": [r.seed for r in mine],
            "steps_to_threshold": [r.steps_to_threshold for r in mine],
            "censored_at": [r.censored_at for r in mine],
            "median_steps": float(np.median([t.time for t in times])),
            "any_censored": any(t.censored for t in times),
            "wall_to_threshold_s": walls,
            "median_wall_to_threshold_s": (
                None if any(w is None for w in walls) else float(np.median(walls))
            ),
            "train_env_steps_per_s": float(np.median([r.train_env_steps_per_s for r in mine])),
            "eval_share": float(
                sum(r.eval_time_s for r in mine) / max(sum(r.wall_time_s for r in mine), 1e-9)
            ),
        }
        if arm.name != arms[0].name and all(t.time > 0 for t in (r.threshold() for r in reference)):
            ratio = efficiency_ratio(
                times, [r.threshold() for r in reference], statistic="median", seed=0
            )
            entry["steps_ratio"] = {
                "point": ratio.point,
                "ci_low": ratio.ci_low,
                "ci_high": ratio.ci_high,
                "bound": ratio.bound,
            }
        out.append(entry)
    return out


def format_table(summary: list[dict[str, Any]], reference: str) -> str:
    """The comparison as fixed-width text, one line per arm."""

    def steps(s: int | None, c: int | None) -> str:
        return f"{s:,}" if s is not None else f">{c:,}"

    def wall(w: float | None) -> str:
        return "-" if w is None else f"{w:.0f}s"

    lines = [
        f"{'arm':<10} {'steps to threshold per seed':<32} {'median':>9} "
        f"{'ratio vs ' + reference + ' [95% CI]':<26} {'wall to thr per seed':<22} "
        f"{'train/s':>8} {'eval %':>6}"
    ]
    for e in summary:
        per_seed = " ".join(
            steps(s, c) for s, c in zip(e["steps_to_threshold"], e["censored_at"], strict=True)
        )
        walls = " ".join(wall(w) for w in e["wall_to_threshold_s"])
        r = e.get("steps_ratio")
        ratio = "-" if r is None else f"{r['point']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        median = f"{e['median_steps']:,.0f}" + ("*" if e["any_censored"] else "")
        lines.append(
            f"{e['arm']:<10} {per_seed:<32} {median:>9} {ratio:<26} {walls:<22} "
            f"{e['train_env_steps_per_s']:>8,.0f} {100 * e['eval_share']:>5.0f}%"
        )
    return "\n".join(lines)


def run_comparison(
    arms: list[PPOSettings],
    scenario: str,
    seeds: list[int],
    work_dir: Path,
    **config_kwargs: Any,
) -> dict[str, Any]:
    """Train every arm on every seed (interleaved) and summarise; see the module doc."""
    configs = {
        (a.name, s): arm_config(a, scenario, s, **config_kwargs) for a in arms for s in seeds
    }  # every config validated before the first run starts
    runs: list[RunResult] = []
    started = time.perf_counter()
    for seed in seeds:
        for arm in arms:
            run = _run_one(configs[arm.name, seed], arm.name, work_dir)
            runs.append(run)
            reached = (
                f"{run.steps_to_threshold:,} steps ({run.wall_to_threshold_s:.0f}s)"
                if run.steps_to_threshold is not None
                else f"censored at {run.censored_at:,}"
            )
            print(
                f"{arm.name} seed {seed}: threshold {reached}; {run.timesteps_used:,} steps in "
                f"{run.wall_time_s:.0f}s, training {run.train_env_steps_per_s:,.0f} env-steps/s",
                flush=True,
            )
    summary = _summarise(arms, runs)
    return {
        "scenario": scenario,
        "seeds": seeds,
        "config": {k: v for k, v in config_kwargs.items()},
        "bar": configs[arms[0].name, seeds[0]].promotion.model_dump(),
        "arms": summary,
        "runs": [asdict(r) for r in runs],
        "wall_time_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    parser.add_argument("--scenario", default="crossing", help="scenario name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds")
    parser.add_argument("--profile", default="full", choices=sorted(PROFILES), help="base config")
    parser.add_argument("--budget", type=int, default=400_000, help="env steps per run at most")
    parser.add_argument("--eval-every", type=int, default=8192, help="env steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=100, help="episodes per evaluation")
    parser.add_argument(
        "--settings", nargs="+", default=["old", "new"],
        help="arms: old, new, a JSON object or @file.json; the first is the reference",
    )
    parser.add_argument("--n-envs", type=int, help="custom arm: training worlds")
    parser.add_argument("--n-steps", type=int, help="custom arm: steps per world per rollout")
    parser.add_argument("--batch-size", type=int, help="custom arm: minibatch size")
    parser.add_argument("--n-epochs", type=int, help="custom arm: epochs per rollout")
    parser.add_argument("--net-arch", type=int, nargs="+", help="custom arm: hidden layers")
    parser.add_argument("--lr", type=float, help="custom arm: initial learning rate")
    parser.add_argument("--run-to-budget", action="store_true", help="no early stop")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto)")
    parser.add_argument(
        "--env-overrides", type=json.loads, default={},
        help='JSON object of make_vec_env overrides over the profile\'s, e.g. \'{"n_peds": 30}\'',
    )
    parser.add_argument("--work-dir", help="keep the run directories here (default: a temp dir)")
    parser.add_argument("--out", help="write the result as JSON to this new file")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    arms = parse_settings(args.settings, args.profile)
    custom = {
        "n_envs": args.n_envs, "n_steps": args.n_steps, "batch_size": args.batch_size,
        "n_epochs": args.n_epochs, "net_arch": args.net_arch, "learning_rate": args.lr,
    }
    if any(v is not None for v in custom.values()):
        chosen = {k: v for k, v in custom.items() if v is not None}
        arms.append(_from_mapping({"name": "custom", **chosen}, profile_settings(args.profile), "custom"))
    if args.out and Path(args.out).exists():
        parser.error(f"--out {args.out} exists; results are never overwritten")
    kwargs = {
        "profile": args.profile, "budget": args.budget, "eval_every": args.eval_every,
        "n_eval_episodes": args.eval_episodes, "run_to_budget": args.run_to_budget,
        "device": args.device, "env_overrides": args.env_overrides,
    }
    for arm in arms:
        print(f"{arm.name:<10} {arm.label()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="robosf-settings-") as tmp:
        work_dir = Path(args.work_dir) if args.work_dir else Path(tmp)
        work_dir.mkdir(parents=True, exist_ok=True)
        result = run_comparison(arms, args.scenario, args.seeds, work_dir, **kwargs)
    result["settings"] = [a.to_dict() for a in arms]
    print(
        f"\n{args.scenario}, seeds {args.seeds}, budget {args.budget:,}, evaluation every "
        f"{args.eval_every:,} steps ({args.eval_episodes} episodes); threshold: success >= "
        f"{result['bar']['min_success']}, collision <= {result['bar']['max_collision']} on "
        f"{result['bar']['consecutive_evals']} evaluations in a row (>N: censored at N, *: "
        "median includes censored runs); wall time until the bar was confirmed\n"
        + format_table(result["arms"], arms[0].name),
        flush=True,
    )
    if args.out:
        atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
