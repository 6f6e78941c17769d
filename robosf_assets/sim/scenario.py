"""Scenarios are data: TOML files describing geometry, robot start/goal sampling and crowd.

The built-in scenarios live in ``robosf_assets/sim/scenarios/*.toml``. Users add their
own by dropping a TOML file into a directory listed in the ``ROBOSF_SCENARIO_PATH``
environment variable (``os.pathsep``-separated); a user file with the same ``name``
replaces the built-in one. See ``scenarios/crossing.toml`` for a commented example.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robosf_assets.sim.params import SimParams

BUILTIN_DIR = Path(__file__).parent / "scenarios"
MAX_VIA = 4  # via points per pedestrian flow


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class Flow:
    """A pedestrian flow: spawn in ``source``, walk through ``via`` points to ``target``."""

    source: tuple[float, float, float, float]
    target: tuple[float, float, float, float]
    via: tuple[tuple[float, float], ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class Scenario:
    """One navigation scenario. Rectangles are ``(xmin, ymin, xmax, ymax)`` in metres."""

    name: str
    description: str
    horizon: int
    walls: tuple[tuple[float, float, float, float], ...]
    robot_start: tuple[tuple[float, float, float, float], ...]
    robot_goal: tuple[tuple[float, float, float, float], ...]
    min_goal_distance: float
    heading_noise: float
    ped_count: int
    ped_speed: tuple[float, float]
    flows: tuple[Flow, ...]
    params: tuple[tuple[str, float], ...] = ()
    """SimParams values this scenario sets (its ``[params]`` table), e.g. how strongly the crowd yields."""
    source_file: str = field(default="", compare=False)

    # ---- arrays the kernels consume ------------------------------------------------
    def walls_array(self) -> np.ndarray:
        return np.array(self.walls, dtype=np.float64).reshape(-1, 4)

    def start_rects(self) -> np.ndarray:
        return np.array(self.robot_start, dtype=np.float64).reshape(-1, 4)

    def goal_rects(self) -> np.ndarray:
        return np.array(self.robot_goal, dtype=np.float64).reshape(-1, 4)

    def flow_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(sources (F,4), targets (F,4), cumulative weights (F,), via (F,MAX_VIA,2), n_via (F,))``."""
        n = max(len(self.flows), 1)
        src = np.zeros((n, 4))
        tgt = np.zeros((n, 4))
        cum = np.ones(n)
        via = np.zeros((n, MAX_VIA, 2))
        n_via = np.zeros(n, dtype=np.int64)
        if self.flows:
            w = np.array([f.weight for f in self.flows], dtype=np.float64)
            cum = np.cumsum(w) / w.sum()
            cum[-1] = 1.0
            for i, f in enumerate(self.flows):
                src[i] = f.source
                tgt[i] = f.target
                n_via[i] = len(f.via)
                for k, p in enumerate(f.via):
                    via[i, k] = p
        return src, tgt, cum, via, n_via

    def fingerprint(self) -> str:
        """sha256 of everything that defines the scenario (not where it was read from): part
        of resumable run keys, so an edited scenario never resumes a run of the old one."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}
        blob = json.dumps(fields, sort_keys=True, default=lambda o: dataclasses.asdict(o))
        return hashlib.sha256(blob.encode()).hexdigest()

    def sim_params(self, base: SimParams | None = None) -> SimParams:
        """``base`` (default SimParams()) with this scenario's ``[params]`` applied."""
        return (base or SimParams()).replace(**dict(self.params))

    def bounds(self) -> tuple[float, float, float, float]:
        """Bounding box of walls, start and goal areas (for plotting)."""
        pts = [(w[0], w[1]) for w in self.walls] + [(w[2], w[3]) for w in self.walls]
        for r in self.robot_start + self.robot_goal:
            pts += [(r[0], r[1]), (r[2], r[3])]
        a = np.array(pts)
        return float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max())


def _rect(value, where: str) -> tuple[float, float, float, float]:
    try:
        r = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: expected [xmin, ymin, xmax, ymax], got {value!r}") from None
    if len(r) != 4 or r[0] > r[2] or r[1] > r[3]:
        raise ScenarioError(f"{where}: expected [xmin, ymin, xmax, ymax] with min <= max, got {value!r}")
    return r  # type: ignore[return-value]


def parse_scenario(data: dict, source: str = "<dict>") -> Scenario:
    """Build a :class:`Scenario` from parsed TOML, naming the offending field on error."""
    try:
        name = str(data["name"])
        robot = data["robot"]
        peds = data.get("pedestrians", {})
        walls = tuple(_rect_any(w, f"{source}: walls[{i}]") for i, w in enumerate(data.get("walls", [])))
        flows = []
        for i, f in enumerate(peds.get("flows", [])):
            via = tuple((float(p[0]), float(p[1])) for p in f.get("via", []))
            if len(via) > MAX_VIA:
                raise ScenarioError(f"{source}: pedestrians.flows[{i}].via has more than {MAX_VIA} points")
            weight = float(f.get("weight", 1.0))
            if weight <= 0:
                raise ScenarioError(f"{source}: pedestrians.flows[{i}].weight must be > 0")
            flows.append(
                Flow(
                    source=_rect(f["source"], f"{source}: pedestrians.flows[{i}].source"),
                    target=_rect(f["target"], f"{source}: pedestrians.flows[{i}].target"),
                    via=via,
                    weight=weight,
                )
            )
        params = data.get("params", {})
        known = set(SimParams.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ScenarioError(f"{source}: [params] has unknown SimParams field(s) {unknown}")
        count = int(peds.get("count", 0))
        speed = tuple(float(v) for v in peds.get("speed", (0.6, 1.0)))
        scenario = Scenario(
            name=name,
            description=str(data.get("description", "")),
            horizon=int(data["horizon"]),
            walls=walls,
            robot_start=tuple(_rect(r, f"{source}: robot.start") for r in robot["start"]),
            robot_goal=tuple(_rect(r, f"{source}: robot.goal") for r in robot["goal"]),
            min_goal_distance=float(robot.get("min_goal_distance", 0.0)),
            heading_noise=float(robot.get("heading_noise", 0.0)),
            ped_count=count,
            ped_speed=(speed[0], speed[1]),
            flows=tuple(flows),
            params=tuple(sorted((str(k), float(v)) for k, v in params.items())),
            source_file=source,
        )
    except KeyError as exc:
        raise ScenarioError(f"{source}: missing required field {exc.args[0]!r}") from None
    if scenario.horizon <= 0:
        raise ScenarioError(f"{source}: horizon must be a positive number of steps")
    if scenario.ped_count < 0:
        raise ScenarioError(f"{source}: pedestrians.count must be >= 0")
    if scenario.ped_count > 0 and not scenario.flows:
        raise ScenarioError(f"{source}: pedestrians.count > 0 needs at least one [[pedestrians.flows]]")
    if not 0 < scenario.ped_speed[0] <= scenario.ped_speed[1]:
        raise ScenarioError(f"{source}: pedestrians.speed must be [low, high] with 0 < low <= high")
    return scenario


def _rect_any(value, where: str) -> tuple[float, float, float, float]:
    """A wall segment [x1, y1, x2, y2] (no ordering constraint)."""
    try:
        seg = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: expected [x1, y1, x2, y2], got {value!r}") from None
    if len(seg) != 4:
        raise ScenarioError(f"{where}: expected [x1, y1, x2, y2], got {value!r}")
    return seg  # type: ignore[return-value]


def load_scenario_file(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario file {path} is not valid TOML: {exc}") from exc
    return parse_scenario(data, str(path))


def scenario_dirs() -> list[Path]:
    """Built-in directory first, then those in ``ROBOSF_SCENARIO_PATH`` (later ones win)."""
    dirs = [BUILTIN_DIR]
    extra = os.environ.get("ROBOSF_SCENARIO_PATH", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return dirs


def load_registry() -> dict[str, Scenario]:
    """All scenarios by name, read afresh from disk."""
    registry: dict[str, Scenario] = {}
    for d in scenario_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.toml")):
            sc = load_scenario_file(f)
            registry[sc.name] = sc
    return registry


DEFAULT_SCENARIOS: tuple[str, ...] = ("crossing", "corridor", "bottleneck")


def list_scenarios() -> list[str]:
    """Names of all registered scenarios, built-in defaults first."""
    names = list(load_registry())
    defaults = [n for n in DEFAULT_SCENARIOS if n in names]
    return defaults + sorted(n for n in names if n not in DEFAULT_SCENARIOS)


def get_scenario(name: str) -> Scenario:
    registry = load_registry()
    if name not in registry:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]
