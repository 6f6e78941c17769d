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
pair must be ``min_goal_distance`` apart. An error names the file and the field.

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
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robosf_assets.logging import get_logger
from robosf_assets.sim.params import SimParams

_log = get_logger("sim.scenario")

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
    if not scenario.robot_start or not scenario.robot_goal:
        raise ScenarioError(f"{source}: robot.start and robot.goal must each list at least one rectangle")
    try:
        params = scenario.sim_params()
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{source}: [params]: {exc}") from None
    _check_geometry(scenario, source, params)
    return scenario


# ---- geometry checks --------------------------------------------------------------------

_GRID_STEP = 0.1  # m, reachability grid (coarser for arenas over 100 m across)
_GRID_CELLS = 1000  # cells per side at most


def _point_segment_distance(px: float, py: float, seg) -> float:
    x1, y1, x2, y2 = seg
    dx, dy = x2 - x1, y2 - y1
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / length2))
    return math.hypot(px - (x1 + t * dx), py - (y1 + t * dy))


def _segments_cross(a, b) -> bool:
    def orient(p, q, r) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    p1, p2, q1, q2 = (a[0], a[1]), (a[2], a[3]), (b[0], b[1]), (b[2], b[3])
    d1, d2, d3, d4 = orient(q1, q2, p1), orient(q1, q2, p2), orient(p1, p2, q1), orient(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def _segment_distance(a, b) -> float:
    if _segments_cross(a, b):
        return 0.0
    return min(
        _point_segment_distance(a[0], a[1], b),
        _point_segment_distance(a[2], a[3], b),
        _point_segment_distance(b[0], b[1], a),
        _point_segment_distance(b[2], b[3], a),
    )


def _rect_wall_distance(rect, wall) -> float:
    """Distance between an axis-aligned rectangle (filled) and a wall segment."""
    x0, y0, x1, y1 = rect
    for px, py in ((wall[0], wall[1]), (wall[2], wall[3])):
        if x0 <= px <= x1 and y0 <= py <= y1:
            return 0.0
    edges = ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0))
    return min(_segment_distance(edge, wall) for edge in edges)


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"


class _Arena:
    """The walls' bounding box and free space, for the geometry checks."""

    def __init__(self, walls: tuple[tuple[float, float, float, float], ...], source: str) -> None:
        a = np.array(walls, dtype=np.float64).reshape(-1, 4)
        self.walls = walls
        self.source = source
        self.box = (
            float(min(a[:, 0].min(), a[:, 2].min())),
            float(min(a[:, 1].min(), a[:, 3].min())),
            float(max(a[:, 0].max(), a[:, 2].max())),
            float(max(a[:, 1].max(), a[:, 3].max())),
        )
        x0, y0, x1, y1 = self.box
        self.step = max(_GRID_STEP, (x1 - x0) / _GRID_CELLS, (y1 - y0) / _GRID_CELLS)
        self.nx = max(1, int(math.ceil((x1 - x0) / self.step)))
        self.ny = max(1, int(math.ceil((y1 - y0) / self.step)))
        xs = x0 + (np.arange(self.nx) + 0.5) * self.step
        ys = y0 + (np.arange(self.ny) + 0.5) * self.step
        px, py = np.meshgrid(xs, ys)  # (ny, nx)
        dist = np.full(px.shape, np.inf)
        for wx1, wy1, wx2, wy2 in a:
            dx, dy = wx2 - wx1, wy2 - wy1
            length2 = dx * dx + dy * dy
            t = np.zeros_like(px) if length2 == 0 else np.clip(((px - wx1) * dx + (py - wy1) * dy) / length2, 0, 1)
            dist = np.minimum(dist, np.hypot(px - (wx1 + t * dx), py - (wy1 + t * dy)))
        self.clearance = dist
        self._components: dict[float, np.ndarray] = {}

    def box_text(self) -> str:
        return _fmt(self.box)

    def check_rect(self, rect, field_name: str, radius: float, body: str, text: str | None = None) -> None:
        x0, y0, x1, y1 = self.box
        text = text or _fmt(rect)
        if rect[0] < x0 or rect[1] < y0 or rect[2] > x1 or rect[3] > y1:
            raise ScenarioError(
                f"{self.source}: {field_name} {text} is not inside the arena {self.box_text()} "
                "(the bounding box of the walls)"
            )
        for i, wall in enumerate(self.walls):
            d = _rect_wall_distance(rect, wall)
            if d < radius:
                raise ScenarioError(
                    f"{self.source}: {field_name} {text} comes within {d:.2f} m of walls[{i}] "
                    f"{_fmt(wall)}; {body} (radius {radius:g} m) would touch the wall"
                )

    def check_point(self, point, field_name: str, radius: float, body: str) -> None:
        self.check_rect((point[0], point[1], point[0], point[1]), field_name, radius, body, _fmt(point))

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        i = min(self.ny - 1, max(0, int((y - self.box[1]) / self.step)))
        j = min(self.nx - 1, max(0, int((x - self.box[0]) / self.step)))
        return i, j

    def component(self, radius: float, x: float, y: float) -> np.ndarray:
        """Boolean grid of the free cells reachable from ``(x, y)`` by a disc of ``radius``."""
        free = self.clearance >= radius - self.step / 2
        reach = np.zeros_like(free)
        reach[self._cell(x, y)] = True
        reach &= free
        while True:
            grown = reach.copy()
            grown[1:, :] |= reach[:-1, :]
            grown[:-1, :] |= reach[1:, :]
            grown[:, 1:] |= reach[:, :-1]
            grown[:, :-1] |= reach[:, 1:]
            grown &= free
            if (grown == reach).all():
                return reach
            reach = grown

    def reaches(self, reach: np.ndarray, x: float, y: float) -> bool:
        return bool(reach[self._cell(x, y)])


def _centre(rect) -> tuple[float, float]:
    return (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2


def _check_geometry(scenario: Scenario, source: str, params: SimParams) -> None:
    """Starts, goals and flows inside the arena, clear of the walls, and connected."""
    starts, goals = scenario.robot_start, scenario.robot_goal
    reach = max(
        math.dist(a, b)
        for s in starts
        for g in goals
        for a in ((s[0], s[1]), (s[0], s[3]), (s[2], s[1]), (s[2], s[3]))
        for b in ((g[0], g[1]), (g[0], g[3]), (g[2], g[1]), (g[2], g[3]))
    )
    if scenario.min_goal_distance > reach:
        raise ScenarioError(
            f"{source}: robot.min_goal_distance {scenario.min_goal_distance:g} m is more than the "
            f"largest start-goal distance the rectangles allow ({reach:.2f} m)"
        )
    if not scenario.walls:
        return  # an open arena: nothing to collide with
    arena = _Arena(scenario.walls, source)
    robot, ped = float(params.robot_radius), float(params.ped_radius)
    robot_body, ped_body = "the robot", "a pedestrian"
    for key, rects in (("robot.start", starts), ("robot.goal", goals)):
        for i, rect in enumerate(rects):
            arena.check_rect(rect, f"{key}[{i}]", robot, robot_body)
    region = arena.component(robot, *_centre(starts[0]))
    for key, rects in (("robot.start", starts), ("robot.goal", goals)):
        for i, rect in enumerate(rects):
            if not arena.reaches(region, *_centre(rect)):
                raise ScenarioError(
                    f"{source}: {key}[{i}] {_fmt(rect)} cannot be reached from robot.start[0] "
                    f"{_fmt(starts[0])} by the robot (radius {robot:g} m): walls close the way"
                )
    if scenario.ped_count == 0:
        return
    for k, flow in enumerate(scenario.flows):
        name = f"pedestrians.flows[{k}]"
        arena.check_rect(flow.source, f"{name}.source", ped, ped_body)
        arena.check_rect(flow.target, f"{name}.target", ped, ped_body)
        for v, point in enumerate(flow.via):
            arena.check_point(point, f"{name}.via[{v}]", ped, ped_body)
        region = arena.component(ped, *_centre(flow.source))
        stops = [(f"{name}.via[{v}]", _fmt(p), p) for v, p in enumerate(flow.via)]
        stops.append((f"{name}.target", _fmt(flow.target), _centre(flow.target)))
        for field_name, text, (x, y) in stops:
            if not arena.reaches(region, x, y):
                raise ScenarioError(
                    f"{source}: {field_name} {text} cannot be reached from {name}.source "
                    f"{_fmt(flow.source)} by a pedestrian (radius {ped:g} m): walls close the way"
                )


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


DEFAULT_SCENARIOS: tuple[str, ...] = ("crossing", "corridor", "bottleneck")


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
