"""Scenarios are data: TOML files describing geometry, robot start/goal sampling and crowd.

The built-in scenarios live in ``robosf_assets/sim/scenarios/*.toml``. Users add their
own by dropping a TOML file into a directory listed in the ``ROBOSF_SCENARIO_PATH``
environment variable (``os.pathsep``-separated); a user file with the same ``name``
replaces the built-in one. See ``scenarios/crossing.toml`` for a commented example.

Files are checked when they are read: fields and types, and the geometry. With walls,
the arena is their bounding box; every robot start and goal rectangle must lie inside it
and keep the robot's radius (``[params]`` ``robot_radius``, else the SimParams default)
from every wall, every pedestrian source, target and via point likewise with the
pedestrians' radius, each flow's via points and target must be reachable from its source,
and every goal from every start, through the free space (a 0.1 m grid; a gap narrower
than the body by less than half a cell still counts as passable), and some start-goal
pair must be ``min_goal_distance`` apart (:mod:`.scenario_checks`). An error names the file
and the field.

A broken file does not take the others down: :func:`load_registry` skips it, logs a
warning once, and :func:`scenario_load_errors` lists every file that failed and why;
asking for a scenario whose file is broken (:func:`get_scenario`) raises that file's
error. A broken file that declares the name of another scenario hides it too, so a failed
override never silently falls back to the built-in.
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

from robosf_assets.logs import get_logger
from robosf_assets.sim.params import SimParams
from robosf_assets.sim.scenario_checks import ScenarioError, check_geometry

__all__ = [
    "BUILTIN_DIR",
    "DEFAULT_SCENARIOS",
    "MAX_VIA",
    "Flow",
    "Scenario",
    "ScenarioError",
    "ScenarioLoadError",
    "get_scenario",
    "list_scenarios",
    "load_registry",
    "load_scenario_file",
    "parse_scenario",
    "scenario_dirs",
    "scenario_load_errors",
]

_log = get_logger("sim.scenario")

BUILTIN_DIR = Path(__file__).parent / "scenarios"
MAX_VIA = 4  # via points per pedestrian flow


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
    if not scenario.robot_start or not scenario.robot_goal:
        raise ScenarioError(f"{source}: robot.start and robot.goal must each list at least one rectangle")
    try:
        params = scenario.sim_params()
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{source}: [params]: {exc}") from None
    check_geometry(scenario, source, params)
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


_PARSED: dict[tuple[str, str], Scenario | ScenarioError] = {}
"""(path, sha256 of the file's bytes) -> what parsing it gave: a registry scan re-reads
every file but parses and checks the geometry of each content once per process."""
_WARNED: set[tuple[str, str]] = set()


def load_scenario_file(path: str | Path) -> Scenario:
    """Read and check one scenario file.

    :raises ScenarioError: naming the file and the offending field.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from exc
    key = (str(path), hashlib.sha256(raw).hexdigest())
    if key not in _PARSED:
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            _PARSED[key] = ScenarioError(f"scenario file {path} is not UTF-8 text: {exc}")
        except tomllib.TOMLDecodeError as exc:
            _PARSED[key] = ScenarioError(f"scenario file {path} is not valid TOML: {exc}")
        else:
            try:
                _PARSED[key] = parse_scenario(data, str(path))
            except ScenarioError as exc:
                _PARSED[key] = exc
            except (TypeError, ValueError, AttributeError, IndexError) as exc:
                _PARSED[key] = ScenarioError(f"{path}: malformed field ({type(exc).__name__}: {exc})")
    result = _PARSED[key]
    if isinstance(result, ScenarioError):
        raise ScenarioError(str(result))
    return result


def scenario_dirs() -> list[Path]:
    """Built-in directory first, then those in ``ROBOSF_SCENARIO_PATH`` (later ones win)."""
    dirs = [BUILTIN_DIR]
    extra = os.environ.get("ROBOSF_SCENARIO_PATH", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    return dirs


@dataclass(frozen=True)
class ScenarioLoadError:
    """A scenario file that could not be loaded."""

    path: str
    name: str | None
    """The name the file declares, when it could be read that far."""
    message: str


def _declared_name(path: Path) -> str | None:
    try:
        name = tomllib.loads(path.read_text(encoding="utf-8")).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return name if isinstance(name, str) else None


def _scan() -> tuple[dict[str, Scenario], list[ScenarioLoadError]]:
    registry: dict[str, Scenario] = {}
    errors: list[ScenarioLoadError] = []
    for d in scenario_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.toml")):
            try:
                sc = load_scenario_file(f)
            except ScenarioError as exc:
                name = _declared_name(f)
                errors.append(ScenarioLoadError(str(f), name, str(exc)))
                if name is not None:
                    registry.pop(name, None)  # never fall back to another file's definition
                continue
            registry[sc.name] = sc
    for e in errors:
        if (e.path, e.message) not in _WARNED:
            _WARNED.add((e.path, e.message))
            _log.warning("scenario file skipped, the other scenarios still load: {}", e.message)
    return registry, errors


def load_registry() -> dict[str, Scenario]:
    """All scenarios that load, by name, read afresh from disk (broken files are skipped;
    see :func:`scenario_load_errors`)."""
    return _scan()[0]


def scenario_load_errors() -> list[ScenarioLoadError]:
    """Every scenario file on the search path that failed to load, with its error."""
    return _scan()[1]


DEFAULT_SCENARIOS: tuple[str, ...] = ("hallway", "square", "detour")
"""The benchmark's scenarios (issue 10): what ``make demo``, the full profile and the CLI
run by default, listed first in the UI's partitions. ``crossing``, ``corridor`` and
``bottleneck``, the defaults before, stay registered as easy variants (tests, quick checks):
PPO from scratch meets the bar on them in 25k-104k steps (docs/benchmark.md)."""


def list_scenarios() -> list[str]:
    """Names of all registered scenarios, built-in defaults first."""
    names = list(load_registry())
    defaults = [n for n in DEFAULT_SCENARIOS if n in names]
    return defaults + sorted(n for n in names if n not in DEFAULT_SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``.

    :raises ScenarioError: the file's own error when the scenario's file is broken, else
        an unknown-name error listing the known scenarios and the files that failed.
    """
    registry, errors = _scan()
    if name in registry:
        return registry[name]
    for e in errors:
        if e.name == name or (e.name is None and Path(e.path).stem == name):
            raise ScenarioError(f"scenario {name!r} cannot be loaded: {e.message}")
    broken = f"; files that failed to load: {'; '.join(e.message for e in errors)}" if errors else ""
    raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(sorted(registry))}{broken}")
