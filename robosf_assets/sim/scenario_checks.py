"""Geometry checks of a scenario, run when its file is read (:mod:`.scenario`).

With walls, the arena is their bounding box; every robot start and goal rectangle must lie
inside it and keep the robot's radius from every wall, every pedestrian source, target and
via point likewise with the pedestrians' radius, each flow's via points and target must be
reachable from its source, and every goal from every start, through the free space (a
0.1 m grid; a gap narrower than the body by less than half a cell still counts as
passable), and some start-goal pair must be ``min_goal_distance`` apart.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from robosf_assets.sim.params import SimParams

if TYPE_CHECKING:
    from robosf_assets.sim.scenario import Scenario

__all__ = ["ScenarioError", "check_geometry", "point_segment_distance", "segment_distance"]


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or inconsistent."""


_GRID_STEP = 0.1  # m, reachability grid (coarser for arenas over 100 m across)
_GRID_CELLS = 1000  # cells per side at most


def point_segment_distance(px: float, py: float, seg) -> float:
    """Distance (m) from the point to the segment ``seg = (x1, y1, x2, y2)``."""
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


def segment_distance(a, b) -> float:
    """Distance (m) between two segments ``(x1, y1, x2, y2)``; 0 when they cross."""
    if _segments_cross(a, b):
        return 0.0
    return min(
        point_segment_distance(a[0], a[1], b),
        point_segment_distance(a[2], a[3], b),
        point_segment_distance(b[0], b[1], a),
        point_segment_distance(b[2], b[3], a),
    )


def _rect_wall_distance(rect, wall) -> float:
    """Distance between an axis-aligned rectangle (filled) and a wall segment."""
    x0, y0, x1, y1 = rect
    for px, py in ((wall[0], wall[1]), (wall[2], wall[3])):
        if x0 <= px <= x1 and y0 <= py <= y1:
            return 0.0
    edges = ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0))
    return min(segment_distance(edge, wall) for edge in edges)


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


def check_geometry(scenario: Scenario, source: str, params: SimParams) -> None:
    """Starts, goals and flows inside the arena, clear of the walls, and connected.

    :param source: the file, for the error message.
    :param params: the scenario's simulation parameters (for the robot's and the
        pedestrians' radius).
    :raises ScenarioError: naming the file, the field and what is wrong.
    """
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
