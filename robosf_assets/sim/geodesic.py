"""Geodesic goal distance for the progress reward (``SimParams.reward_progress_geodesic``).

Habitat's PointNav reward pays the change in *geodesic* distance to the goal; with the
Euclidean distance a wall between start and goal makes a local optimum of the progress
potential in front of the wall (the cup of ``scenarios_benchmark/detour.toml``). The
geodesic distance here is the shortest path round the walls on a visibility graph:

- nodes (:func:`build_nav_graph`, once per world batch, in Python): every wall end point,
  end points shared by several walls merged, pushed out by ``clearance`` (robot radius plus
  :data:`GEODESIC_MARGIN`) along minus the normalised sum of the unit vectors along the
  walls that meet there (away from them, onto a convex corner's outside); a node is dropped
  when that sum vanishes (collinear walls: no corner), when it lies outside the arena (the
  walls' bounding box: the outside of the arena's own corners) or closer than
  ``keep_out`` (the robot radius) to any wall. Two nodes are joined when the segment between
  them touches no wall (:func:`segment_blocked`).
- at each reset, :func:`node_goal_distances` runs Dijkstra from the goal: ``D[n]`` is the
  length of the shortest node path from ``n`` to the goal.
- each step, :func:`goal_distance`: ``|p - g|`` when ``p`` sees the goal, else the minimum
  over the nodes ``n`` that ``p`` sees of ``|p - n| + D[n]``; the Euclidean distance when no
  node with a path is visible (the graph then gives no better estimate).

Visibility ignores the robot's body (a segment grazing a wall end is visible), so the
distance is that of a point robot round walls whose ends are rounded off by ``clearance``:
a slight underestimate of what a disc robot must drive, continuous except for jumps of a
few centimetres where the goal comes into view.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from robosf_assets.sim.scenario_checks import point_segment_distance

__all__ = ["GEODESIC_MARGIN", "build_nav_graph", "geodesic_distance", "goal_distance", "node_goal_distances",
           "segment_blocked"]

GEODESIC_MARGIN = 0.3
"""How far (m) beyond the robot radius the graph's nodes stand from the wall end points."""


@njit(cache=True, inline="always")
def _orient(ax, ay, bx, by, cx, cy):
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True, inline="always")
def _within(ax, ay, bx, by, cx, cy):
    """``c`` (collinear with ``a``-``b``) lies on the closed segment ``a``-``b``."""
    return min(ax, bx) <= cx <= max(ax, bx) and min(ay, by) <= cy <= max(ay, by)


@njit(cache=True, error_model="numpy")
def segment_blocked(ax, ay, bx, by, walls):
    """The closed segment ``a``-``b`` touches a wall (crossing, touching or collinear overlap)."""
    for w in range(walls.shape[0]):
        qx = walls[w, 0]
        qy = walls[w, 1]
        rx = walls[w, 2]
        ry = walls[w, 3]
        d1 = _orient(qx, qy, rx, ry, ax, ay)
        d2 = _orient(qx, qy, rx, ry, bx, by)
        d3 = _orient(ax, ay, bx, by, qx, qy)
        d4 = _orient(ax, ay, bx, by, rx, ry)
        if ((d1 > 0.0 and d2 < 0.0) or (d1 < 0.0 and d2 > 0.0)) and \
                ((d3 > 0.0 and d4 < 0.0) or (d3 < 0.0 and d4 > 0.0)):
            return True
        if d1 == 0.0 and _within(qx, qy, rx, ry, ax, ay):
            return True
        if d2 == 0.0 and _within(qx, qy, rx, ry, bx, by):
            return True
        if d3 == 0.0 and _within(ax, ay, bx, by, qx, qy):
            return True
        if d4 == 0.0 and _within(ax, ay, bx, by, rx, ry):
            return True
    return False


@njit(cache=True, error_model="numpy")
def node_goal_distances(gx, gy, nodes, edges, walls, out):
    """``out[n]``: shortest path length from node ``n`` to the goal ``(gx, gy)`` (inf: none).

    Dijkstra from the goal over ``edges`` ((N, N) lengths, inf where two nodes do not see each
    other); the nodes are few, so a linear scan picks the next node.
    """
    n = nodes.shape[0]
    done = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if segment_blocked(nodes[i, 0], nodes[i, 1], gx, gy, walls):
            out[i] = np.inf
        else:
            out[i] = math.hypot(nodes[i, 0] - gx, nodes[i, 1] - gy)
    for _ in range(n):
        k = -1
        best = np.inf
        for i in range(n):
            if not done[i] and out[i] < best:
                best = out[i]
                k = i
        if k < 0:
            break
        done[k] = True
        for j in range(n):
            if not done[j]:
                alt = best + edges[k, j]
                if alt < out[j]:
                    out[j] = alt


@njit(cache=True, error_model="numpy")
def goal_distance(x, y, gx, gy, nodes, node_dist, walls):
    """Geodesic distance from ``(x, y)`` to the goal given ``node_dist`` from :func:`node_goal_distances`."""
    d = math.hypot(gx - x, gy - y)
    if nodes.shape[0] == 0 or not segment_blocked(x, y, gx, gy, walls):
        return d
    best = np.inf
    for i in range(nodes.shape[0]):
        c = math.hypot(nodes[i, 0] - x, nodes[i, 1] - y) + node_dist[i]
        if c < best and not segment_blocked(x, y, nodes[i, 0], nodes[i, 1], walls):
            best = c
    return best if best < np.inf else d


def build_nav_graph(walls: np.ndarray, clearance: float, keep_out: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``(N, 2)`` and edge lengths ``(N, N)`` (inf: not visible) of the visibility graph.

    :param walls: ``(W, 4)`` wall segments ``x1, y1, x2, y2``.
    :param clearance: distance (m) of a node from its wall end point.
    :param keep_out: nodes closer than this (m) to any wall are dropped.
    """
    walls = np.asarray(walls, dtype=np.float64).reshape(-1, 4)
    # end points, merged when shared, each with the sum of the unit vectors along its walls
    points: list[list[float]] = []  # x, y, sum of unit vectors x, y
    for x1, y1, x2, y2 in walls:
        length = math.hypot(x2 - x1, y2 - y1)
        if length == 0.0:
            continue
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        for px, py, sx, sy in ((x1, y1, ux, uy), (x2, y2, -ux, -uy)):
            for q in points:
                if abs(q[0] - px) < 1e-9 and abs(q[1] - py) < 1e-9:
                    q[2] += sx
                    q[3] += sy
                    break
            else:
                points.append([px, py, sx, sy])
    if len(walls):
        xmin, ymin = walls[:, [0, 2]].min(), walls[:, [1, 3]].min()
        xmax, ymax = walls[:, [0, 2]].max(), walls[:, [1, 3]].max()
    nodes = []
    for px, py, sx, sy in points:
        norm = math.hypot(sx, sy)
        if norm < 1e-9:
            continue
        nx, ny = px - clearance * sx / norm, py - clearance * sy / norm
        if not (xmin <= nx <= xmax and ymin <= ny <= ymax):
            continue
        if min(point_segment_distance(nx, ny, w) for w in walls) < keep_out:
            continue
        nodes.append((nx, ny))
    node_arr = np.array(nodes, dtype=np.float64).reshape(-1, 2)
    n = len(node_arr)
    edges = np.full((n, n), np.inf)
    for i in range(n):
        edges[i, i] = 0.0
        for j in range(i + 1, n):
            if not segment_blocked(node_arr[i, 0], node_arr[i, 1], node_arr[j, 0], node_arr[j, 1], walls):
                edges[i, j] = edges[j, i] = math.hypot(*(node_arr[i] - node_arr[j]))
    return node_arr, edges


def geodesic_distance(walls: np.ndarray, nodes: np.ndarray, edges: np.ndarray,
                      start: tuple[float, float], goal: tuple[float, float]) -> float:
    """The kernels' geodesic distance from ``start`` to ``goal``, for tests and analysis."""
    walls = np.asarray(walls, dtype=np.float64).reshape(-1, 4)
    node_dist = np.zeros(nodes.shape[0])
    node_goal_distances(float(goal[0]), float(goal[1]), nodes, edges, walls, node_dist)
    return goal_distance(float(start[0]), float(start[1]), float(goal[0]), float(goal[1]), nodes, node_dist, walls)
