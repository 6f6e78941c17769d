"""Batched world kernels (numba): reset, step, LiDAR and observation for B worlds at once.

Each world is independent and owns a splitmix64 random stream, so a world's trajectory
depends only on its seed and its actions: world ``i`` of a batch seeded ``s + i``
reproduces a single world seeded ``s + i`` bit for bit, and the parallel kernels
(``prange`` over worlds) give the same bytes as the serial ones. ``step_serial_reference``
steps with the first-written social forces and LiDAR (for the tests and ``bench.sim``'s
old-versus-new comparison); the fast kernels compute the same physics, see ``forces.py``.

The kernels take their arrays in six groups (named tuples, below), plus the actions and
the parameter vector ``p`` (``SimParams.to_array``). B worlds, P pedestrians, R rays, F flows,
N navigation nodes:

===========  ==============  ===========  ================================================
group        array           shape        meaning
===========  ==============  ===========  ================================================
WorldState   robot           (B, 5)       x, y, heading, linear speed, angular speed
             robot_goal      (B, 2)       goal position
             steps           (B,)         steps taken in the current episode
             rng             (B,)         splitmix64 state
             metrics         (B, NM)      episode accumulators, see ``M_*``
             status          (B,)         ``RUNNING``/``GOAL``/``COLLISION_*``/``TIMEOUT``
             nav_dist        (B, N)       geodesic distance of each navigation node to the
                                          world's goal (set at reset)
Crowd        ped_pos/vel     (B, P, 2)    pedestrian position / velocity
             ped_goal        (B, P, 2)    the point the desired force pulls towards (via or
                                          target)
             ped_target      (B, P, 2)    final target of the pedestrian's current trip
             ped_vmax        (B, P)       max (= desired) speed, 1.3 x initial speed
             ped_flow        (B, P)       index of the pedestrian's flow
             ped_via         (B, P)       index of the next via point (== n_via: heading to
                                          target)
Scratch      f_total/f_part  (B, P, 2)    force buffers; after a step ``f_part`` holds the
                                          robot's force on each pedestrian
Outputs      reward          (B,)         reward of the last step
             lidar           (B, R)       ranges (m)
             obs             (B, R + 5)   float32 observation
Layout       walls           (W, 4)       wall segments x1, y1, x2, y2
             start_rects     (S, 4)       robot start rectangles
             goal_rects      (G, 4)       robot goal rectangles
             nav_nodes       (N, 2)       navigation graph nodes (``geodesic.py``)
             nav_edges       (N, N)       their visible distances (inf: no edge)
             ray_cos/sin     (R,)         ray directions relative to the heading
Flows        flow_src/tgt    (F, 4)       source / target rectangle of each flow
             flow_cum        (F,)         cumulative weights (reset picks a flow)
             flow_via        (F, V, 2)    via points
             flow_nvia       (F,)         number of via points
===========  ==============  ===========  ================================================

N = 0 unless ``reward_progress_geodesic`` is on, and the geodesic code runs only when it is.
Buffers are allocated once (``world.BatchedWorld``) and written in place.

The kernels take each group as a plain tuple laid out as its named tuple (``tuple(group)``,
``BatchedWorld`` builds them once) and unpack it in that order, naming every array: numba
types a plain tuple of arrays in its C fast path but a named tuple through Python (about
2 us more per call, 15% of a one-world step), and named tuples made or unpacked inside the
kernels cost a few per cent of a step more than plain ones.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from robosf_assets.sim import forces, geodesic
from robosf_assets.sim.params import PARAM_INDEX as _I

# ---- argument groups (see the module docstring's table) --------------------------------
class WorldState(NamedTuple):
    """The robot and the episode of each world."""

    robot: np.ndarray
    robot_goal: np.ndarray
    steps: np.ndarray
    rng: np.ndarray
    metrics: np.ndarray
    status: np.ndarray
    nav_dist: np.ndarray


class Crowd(NamedTuple):
    """The pedestrians of each world."""

    ped_pos: np.ndarray
    ped_vel: np.ndarray
    ped_goal: np.ndarray
    ped_target: np.ndarray
    ped_vmax: np.ndarray
    ped_flow: np.ndarray
    ped_via: np.ndarray


class Scratch(NamedTuple):
    """Per-pedestrian force buffers."""

    f_total: np.ndarray
    f_part: np.ndarray


class Outputs(NamedTuple):
    """What a step writes for the caller."""

    reward: np.ndarray
    lidar: np.ndarray
    obs: np.ndarray


class Layout(NamedTuple):
    """The scenario's static geometry and the LiDAR's ray directions (shared by all worlds)."""

    walls: np.ndarray
    start_rects: np.ndarray
    goal_rects: np.ndarray
    nav_nodes: np.ndarray
    nav_edges: np.ndarray
    ray_cos: np.ndarray
    ray_sin: np.ndarray


class Flows(NamedTuple):
    """The scenario's pedestrian flows (shared by all worlds)."""

    flow_src: np.ndarray
    flow_tgt: np.ndarray
    flow_cum: np.ndarray
    flow_via: np.ndarray
    flow_nvia: np.ndarray


# ---- status codes ---------------------------------------------------------------------
RUNNING, GOAL, COLLISION_PED, COLLISION_WALL, TIMEOUT = 0, 1, 2, 3, 4
STATUS_NAMES = {RUNNING: "running", GOAL: "goal", COLLISION_PED: "pedestrian", COLLISION_WALL: "obstacle", TIMEOUT: "timeout"}

# ---- metric accumulators ----------------------------------------------------------------
# M_START_DIST is the straight-line start distance (metrics); M_START_PROG and M_PREV_DIST
# are the start and previous goal distance the progress reward measures (the same numbers
# unless reward_progress_geodesic is on, then geodesic)
(M_PATH, M_MIN_CLEAR, M_NEAR, M_COMFORT, M_JERK, M_PREV_ACC, M_PED_STEPS, M_START_DIST, M_RETURN, M_PREV_DIST,
 M_START_PROG) = range(11)
NM = 11

# ---- parameter indices (compile-time constants for numba) --------------------------------
_DT = _I["dt"]
_RR = _I["robot_radius"]
_VMAX = _I["robot_max_speed"]
_WMAX = _I["robot_max_angular"]
_ACC = _I["robot_max_accel"]
_WACC = _I["robot_max_angular_accel"]
_GOAL_R = _I["goal_radius"]
_LRANGE = _I["lidar_range"]
_PR = _I["ped_radius"]
_DF = _I["desired_factor"]
_TAU = _I["relaxation_time"]
_GTH = _I["goal_threshold"]
_SF = _I["social_factor"]
_LAM = _I["lambda_importance"]
_GAMMA = _I["gamma"]
_N = _I["n"]
_NP = _I["n_prime"]
_OF = _I["obstacle_factor"]
_OSIG = _I["obstacle_sigma"]
_OTH = _I["obstacle_threshold"]
_MULT = _I["max_speed_multiplier"]
_RF = _I["robot_force_factor"]
_RRF = _I["robot_repulsion_factor"]
_RRS = _I["robot_repulsion_sigma"]
_AWARE = _I["ped_aware_fraction"]
_STOP = _I["ped_stop_distance"]
_RESPAWN = _I["ped_respawn_distance"]
_VIA = _I["via_reach_distance"]
_START_CLEAR = _I["ped_start_clearance"]
_NEAR = _I["near_miss_distance"]
_COMFORT = _I["comfort_force_threshold"]
_GSCALE = _I["goal_distance_scale"]
_W_PROG = _I["reward_progress"]
_W_TIME = _I["reward_time"]
_W_GOAL = _I["reward_goal"]
_W_COLL = _I["reward_collision"]
_W_NEAR = _I["reward_near_miss"]
_HORIZON = _I["horizon"]
_MIN_GOAL = _I["min_goal_distance"]
_HEADING = _I["heading_noise"]
_SPD_LO = _I["ped_speed_low"]
_SPD_HI = _I["ped_speed_high"]
_GEO = _I["reward_progress_geodesic"]

STATE_DIM = 5  # v, w, goal distance, sin and cos of the goal bearing


# ---- random numbers: splitmix64, one stream per world -------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)


def seed_state(seed: int) -> np.uint64:
    """Initial splitmix64 state for a world seed (any Python int)."""
    mask = (1 << 64) - 1
    z = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return np.uint64(z ^ (z >> 31))


@njit(cache=True, inline="always")
def _uniform(rng, b):
    z = rng[b] + _GOLDEN
    rng[b] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _in_rect(rng, b, rects, k):
    x = rects[k, 0] + (rects[k, 2] - rects[k, 0]) * _uniform(rng, b)
    y = rects[k, 1] + (rects[k, 3] - rects[k, 1]) * _uniform(rng, b)
    return x, y


@njit(cache=True, inline="always")
def _pick(rng, b, n):
    k = int(_uniform(rng, b) * n)
    return n - 1 if k >= n else k


@njit(cache=True, inline="always")
def _wrap(a):
    return (a + math.pi) % (2.0 * math.pi) - math.pi


# ---- reset -------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _ped_goal_for(f, k, target_x, target_y, flow_via, flow_nvia):
    if k < flow_nvia[f]:
        return flow_via[f, k, 0], flow_via[f, k, 1]
    return target_x, target_y


@njit(cache=True, error_model="numpy")
def _spawn_ped(b, i, rng, robot, ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via,
               flow_src, flow_tgt, flow_via, flow_nvia, p, initial):
    """Place pedestrian ``i``: on reset anywhere on its first leg, later at its flow's source."""
    f = ped_flow[b, i]
    rr_clear = p[_RR] + p[_PR] + (p[_START_CLEAR] if initial else 1.6)
    for attempt in range(30):
        sx, sy = _in_rect(rng, b, flow_src, f)
        tx, ty = _in_rect(rng, b, flow_tgt, f)
        gx, gy = _ped_goal_for(f, 0, tx, ty, flow_via, flow_nvia)
        if initial:
            u = _uniform(rng, b)
            x = sx + u * (gx - sx)
            y = sy + u * (gy - sy)
        else:
            x = sx
            y = sy
        ok = math.hypot(x - robot[b, 0], y - robot[b, 1]) >= rr_clear
        if ok:
            for j in range(ped_pos.shape[1]):
                if j != i and math.hypot(x - ped_pos[b, j, 0], y - ped_pos[b, j, 1]) < 2.0 * p[_PR] + 0.1:
                    ok = False
                    break
        if ok:
            break
    ped_pos[b, i, 0] = x
    ped_pos[b, i, 1] = y
    ped_target[b, i, 0] = tx
    ped_target[b, i, 1] = ty
    ped_goal[b, i, 0] = gx
    ped_goal[b, i, 1] = gy
    ped_via[b, i] = 0
    speed = ped_vmax[b, i] / p[_MULT]
    dx = gx - x
    dy = gy - y
    d = math.hypot(dx, dy)
    if d > 0.0:
        ped_vel[b, i, 0] = speed * dx / d
        ped_vel[b, i, 1] = speed * dy / d
    else:
        ped_vel[b, i, 0] = 0.0
        ped_vel[b, i, 1] = 0.0


@njit(cache=True, error_model="numpy")
def reset_worlds(mask, world, crowd, layout, flows, p):
    """Start a new episode in every world ``b`` with ``mask[b]``."""
    robot, robot_goal, steps, rng, metrics, status, nav_dist = world
    ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via = crowd
    walls, start_rects, goal_rects, nav_nodes, nav_edges, _, _ = layout
    flow_src, flow_tgt, flow_cum, flow_via, flow_nvia = flows
    n_peds = ped_pos.shape[1]
    for b in range(mask.shape[0]):
        if not mask[b]:
            continue
        # robot start and goal, at least min_goal_distance apart
        for attempt in range(100):
            sx, sy = _in_rect(rng, b, start_rects, _pick(rng, b, start_rects.shape[0]))
            gx, gy = _in_rect(rng, b, goal_rects, _pick(rng, b, goal_rects.shape[0]))
            if math.hypot(gx - sx, gy - sy) >= p[_MIN_GOAL]:
                break
        heading = math.atan2(gy - sy, gx - sx) + p[_HEADING] * (2.0 * _uniform(rng, b) - 1.0)
        robot[b, 0] = sx
        robot[b, 1] = sy
        robot[b, 2] = _wrap(heading)
        robot[b, 3] = 0.0
        robot[b, 4] = 0.0
        robot_goal[b, 0] = gx
        robot_goal[b, 1] = gy
        # pedestrians: park them far away first so the overlap test only sees placed ones
        for i in range(n_peds):
            ped_pos[b, i, 0] = 1e9 + 10.0 * i
            ped_pos[b, i, 1] = 1e9
        for i in range(n_peds):
            u = _uniform(rng, b)
            f = 0
            while f < flow_cum.shape[0] - 1 and u > flow_cum[f]:
                f += 1
            ped_flow[b, i] = f
            s0 = p[_SPD_LO] + (p[_SPD_HI] - p[_SPD_LO]) * _uniform(rng, b)
            ped_vmax[b, i] = p[_MULT] * s0
            _spawn_ped(b, i, rng, robot, ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via,
                       flow_src, flow_tgt, flow_via, flow_nvia, p, True)
        d0 = math.hypot(gx - sx, gy - sy)
        d0_prog = d0
        if p[_GEO] != 0.0:
            geodesic.node_goal_distances(gx, gy, nav_nodes, nav_edges, walls, nav_dist[b])
            d0_prog = geodesic.goal_distance(sx, sy, gx, gy, nav_nodes, nav_dist[b], walls)
        for k in range(metrics.shape[1]):
            metrics[b, k] = 0.0
        metrics[b, M_MIN_CLEAR] = np.inf
        metrics[b, M_START_DIST] = d0
        metrics[b, M_START_PROG] = d0_prog
        metrics[b, M_PREV_DIST] = d0_prog
        steps[b] = 0
        status[b] = RUNNING


# ---- step -------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _advance_robot(b, action, robot, metrics, p):
    dt = p[_DT]
    a0 = min(max(action[b, 0], -1.0), 1.0)
    a1 = min(max(action[b, 1], -1.0), 1.0)
    v_cmd = 0.5 * (a0 + 1.0) * p[_VMAX]
    w_cmd = a1 * p[_WMAX]
    dv = min(max(v_cmd - robot[b, 3], -p[_ACC] * dt), p[_ACC] * dt)
    dw = min(max(w_cmd - robot[b, 4], -p[_WACC] * dt), p[_WACC] * dt)
    v = robot[b, 3] + dv
    w = robot[b, 4] + dw
    th = _wrap(robot[b, 2] + w * dt)
    robot[b, 0] += v * math.cos(th) * dt
    robot[b, 1] += v * math.sin(th) * dt
    robot[b, 2] = th
    robot[b, 3] = v
    robot[b, 4] = w
    acc = dv / dt
    metrics[b, M_PATH] += v * dt
    metrics[b, M_JERK] += abs(acc - metrics[b, M_PREV_ACC]) / dt
    metrics[b, M_PREV_ACC] = acc


@njit(cache=True, error_model="numpy")
def _advance_peds(b, robot, ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via, rng, metrics,
                  f_total, f_part, walls, flow_src, flow_tgt, flow_via, flow_nvia, p, reference):
    """Move world ``b``'s pedestrians one step (``reference``: the first-written social forces)."""
    n_peds = ped_pos.shape[1]
    if n_peds == 0:
        return
    pos = ped_pos[b]
    vel = ped_vel[b]
    ft = f_total[b]
    fp = f_part[b]
    forces.desired_force(pos, vel, ped_goal[b], ped_vmax[b], p[_TAU], p[_GTH], p[_DF], ft)
    if reference:
        forces.social_force_reference(pos, vel, p[_LAM], p[_GAMMA], p[_N], p[_NP], p[_SF], fp)
    else:
        forces.social_force(pos, vel, p[_LAM], p[_GAMMA], p[_N], p[_NP], p[_SF], fp)
    ft += fp
    forces.obstacle_force(pos, walls, p[_PR], p[_OSIG], p[_OTH], p[_OF], fp)
    ft += fp
    v = robot[b, 3]
    # only the first round(fraction * P) pedestrians react to the robot (ped_aware_fraction)
    n_aware = int(np.rint(p[_AWARE] * n_peds))
    pa = pos[:n_aware]
    fa = fp[:n_aware]
    avx = v * math.cos(robot[b, 2])
    avy = v * math.sin(robot[b, 2])
    if reference:
        forces.agent_force_reference(pa, vel[:n_aware], robot[b, 0], robot[b, 1], avx, avy,
                                     p[_LAM], p[_GAMMA], p[_N], p[_NP], p[_RF], fa)
    else:
        forces.agent_force(pa, vel[:n_aware], robot[b, 0], robot[b, 1], avx, avy,
                           p[_LAM], p[_GAMMA], p[_N], p[_NP], p[_RF], fa)
    forces.disc_repulsion(pa, robot[b, 0], robot[b, 1], p[_RR] + p[_PR], p[_RRS], p[_OTH], p[_RRF], fa)
    for i in range(n_aware, n_peds):
        fp[i, 0] = 0.0
        fp[i, 1] = 0.0
    ft += fp
    uncomfortable = 0
    comfort2 = p[_COMFORT] * p[_COMFORT]
    for i in range(n_peds):
        if fp[i, 0] * fp[i, 0] + fp[i, 1] * fp[i, 1] > comfort2:
            uncomfortable += 1
    metrics[b, M_COMFORT] += uncomfortable
    metrics[b, M_PED_STEPS] += n_peds
    forces.integrate_peds(pos, vel, ped_goal[b], ped_vmax[b], ft, p[_DT], p[_STOP])
    # move on along the route; respawn at the source after the final target
    via2 = p[_VIA] * p[_VIA]
    respawn2 = p[_RESPAWN] * p[_RESPAWN]
    for i in range(n_peds):
        gx = ped_goal[b, i, 0] - pos[i, 0]
        gy = ped_goal[b, i, 1] - pos[i, 1]
        d2 = gx * gx + gy * gy
        f = ped_flow[b, i]
        k = ped_via[b, i]
        if k < flow_nvia[f]:
            if d2 < via2:
                k += 1
                ped_via[b, i] = k
                gx, gy = _ped_goal_for(f, k, ped_target[b, i, 0], ped_target[b, i, 1], flow_via, flow_nvia)
                ped_goal[b, i, 0] = gx
                ped_goal[b, i, 1] = gy
        elif d2 < respawn2:
            _spawn_ped(b, i, rng, robot, ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via,
                       flow_src, flow_tgt, flow_via, flow_nvia, p, False)


@njit(cache=True, error_model="numpy")
def _wall_clearance(x, y, walls, radius):
    best = np.inf
    for w in range(walls.shape[0]):
        qx, qy = forces.closest_point_on_segment(x, y, walls[w, 0], walls[w, 1], walls[w, 2], walls[w, 3])
        d = math.hypot(x - qx, y - qy) - radius
        if d < best:
            best = d
    return best


_W_FORFEIT = _I["reward_collision_forfeit"]


@njit(cache=True, error_model="numpy")
def _judge(b, robot, robot_goal, ped_pos, steps, metrics, status, reward, walls, nav_nodes, nav_dist, p):
    """Collisions, goal, timeout and the reward of this step.

    A collision ends the episode without the goal bonus (the goal test comes after it) and
    also takes back ``reward_collision_forfeit`` of the net progress reward earned so far.
    The progress term measures the geodesic goal distance with ``reward_progress_geodesic``;
    the goal test is always on the straight-line distance.
    """
    x = robot[b, 0]
    y = robot[b, 1]
    clear = np.inf
    for i in range(ped_pos.shape[1]):
        c = math.hypot(ped_pos[b, i, 0] - x, ped_pos[b, i, 1] - y) - p[_RR] - p[_PR]
        if c < clear:
            clear = c
    if clear < metrics[b, M_MIN_CLEAR]:
        metrics[b, M_MIN_CLEAR] = clear
    wall_clear = _wall_clearance(x, y, walls, p[_RR])
    d = math.hypot(robot_goal[b, 0] - x, robot_goal[b, 1] - y)
    d_prog = d
    if p[_GEO] != 0.0:
        d_prog = geodesic.goal_distance(x, y, robot_goal[b, 0], robot_goal[b, 1], nav_nodes, nav_dist[b], walls)
    r = p[_W_PROG] * (metrics[b, M_PREV_DIST] - d_prog) - p[_W_TIME]
    metrics[b, M_PREV_DIST] = d_prog
    steps[b] += 1
    if clear < 0.0 or wall_clear < 0.0:
        status[b] = COLLISION_PED if clear < 0.0 else COLLISION_WALL
        r -= p[_W_COLL] + p[_W_FORFEIT] * p[_W_PROG] * (metrics[b, M_START_PROG] - d_prog)
    elif d < p[_GOAL_R]:
        status[b] = GOAL
        r += p[_W_GOAL]
    elif steps[b] >= p[_HORIZON]:
        status[b] = TIMEOUT
    if 0.0 <= clear < p[_NEAR]:
        metrics[b, M_NEAR] += 1.0
        r -= p[_W_NEAR] * (1.0 - clear / p[_NEAR])
    metrics[b, M_RETURN] += r
    reward[b] = r


@njit(cache=True, error_model="numpy")
def _step_world(b, action, world, crowd, scratch, out, layout, flows, p, reference):
    """Robot, pedestrians and judgement of world ``b`` (the LiDAR and observation follow)."""
    robot, robot_goal, steps, rng, metrics, status, nav_dist = world
    ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via = crowd
    f_total, f_part = scratch
    reward, _, _ = out
    walls, _, _, nav_nodes, _, _, _ = layout
    flow_src, flow_tgt, _, flow_via, flow_nvia = flows
    _advance_robot(b, action, robot, metrics, p)
    _advance_peds(b, robot, ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via, rng, metrics,
                  f_total, f_part, walls, flow_src, flow_tgt, flow_via, flow_nvia, p, reference)
    _judge(b, robot, robot_goal, ped_pos, steps, metrics, status, reward, walls, nav_nodes, nav_dist, p)


# ---- lidar and observation ------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _lidar_world(b, robot, ped_pos, walls, ray_cos, ray_sin, out, p, reference):
    """Ranges (m) of ``R`` rays starting at the robot heading, counter-clockwise.

    Every ray is intersected with every wall (wall by wall, a SIMD loop over the rays; scenarios
    have a few walls) and with the pedestrians whose angular extent it falls in: those within
    ``asin(r / d)`` of a pedestrian's bearing, found for all pedestrians in one SIMD loop with
    ``forces.atan2`` and the bound ``atan(r / sqrt(d^2 - r^2)) >= asin(r / d)``
    (``reference``: the first-written version, ray by ray with ``math.atan2`` and
    ``math.asin``). Each tested ray uses the same arithmetic either way and a range is the
    minimum over the hits, so both give the same bytes.
    """
    n_rays = ray_cos.shape[0]
    max_range = p[_LRANGE]
    rx = robot[b, 0]
    ry = robot[b, 1]
    ch = math.cos(robot[b, 2])
    sh = math.sin(robot[b, 2])
    if reference:
        for r in range(n_rays):
            dx = ch * ray_cos[r] - sh * ray_sin[r]
            dy = sh * ray_cos[r] + ch * ray_sin[r]
            best = max_range
            for w in range(walls.shape[0]):
                ex = walls[w, 2] - walls[w, 0]
                ey = walls[w, 3] - walls[w, 1]
                denom = dx * ey - dy * ex
                if denom == 0.0:
                    continue
                fx = walls[w, 0] - rx
                fy = walls[w, 1] - ry
                t = (fx * ey - fy * ex) / denom
                if t < 0.0 or t >= best:
                    continue
                u = (fx * dy - fy * dx) / denom
                if 0.0 <= u <= 1.0:
                    best = t
            out[b, r] = best
    else:
        # the same tests wall by wall, each a branch-free (SIMD) loop over the rays
        row = out[b]
        for r in range(n_rays):
            row[r] = max_range
        for w in range(walls.shape[0]):
            ex = walls[w, 2] - walls[w, 0]
            ey = walls[w, 3] - walls[w, 1]
            fx = walls[w, 0] - rx
            fy = walls[w, 1] - ry
            num = fx * ey - fy * ex
            for r in range(n_rays):
                dx = ch * ray_cos[r] - sh * ray_sin[r]
                dy = sh * ray_cos[r] + ch * ray_sin[r]
                denom = dx * ey - dy * ex
                t = num / denom
                u = (fx * dy - fy * dx) / denom
                best = row[r]
                miss = (t < 0.0) | (t >= best)
                hit = (denom != 0.0) & (miss ^ True) & (u >= 0.0) & (u <= 1.0)
                row[r] = t if hit else best
    # pedestrians: only the rays inside each pedestrian's angular extent
    pr = p[_PR]
    step = 2.0 * math.pi / n_rays
    heading = robot[b, 2]
    n_peds = ped_pos.shape[1]
    extent = np.empty((2, n_peds))
    if not reference:  # bearings and extents of all pedestrians in one SIMD loop
        for i in range(n_peds):
            px = ped_pos[b, i, 0] - rx
            py = ped_pos[b, i, 1] - ry
            tangent = px * px + py * py - pr * pr
            alpha = min(pr / math.sqrt(tangent), math.pi) if tangent > 0.0 else math.pi
            phi = forces.atan2(py, px) - heading
            extent[0, i] = math.ceil((phi - alpha) / step)
            extent[1, i] = math.floor((phi + alpha) / step)
    for i in range(n_peds):
        px = ped_pos[b, i, 0] - rx
        py = ped_pos[b, i, 1] - ry
        d2 = px * px + py * py
        if d2 > (max_range + pr) * (max_range + pr):
            continue
        d = math.sqrt(d2)
        if d <= pr:
            for r in range(n_rays):
                out[b, r] = 0.0
            continue
        if reference:
            phi = math.atan2(py, px) - heading
            alpha = math.asin(pr / d)
            lo = int(math.ceil((phi - alpha) / step))
            hi = int(math.floor((phi + alpha) / step))
        else:
            lo = int(extent[0, i])
            hi = int(extent[1, i])
        r = lo % n_rays
        for _ in range(hi - lo + 1):
            dx = ch * ray_cos[r] - sh * ray_sin[r]
            dy = sh * ray_cos[r] + ch * ray_sin[r]
            proj = px * dx + py * dy
            if proj > 0.0:
                h2 = pr * pr - (d2 - proj * proj)
                if h2 >= 0.0:
                    t = proj - math.sqrt(h2)
                    if t < out[b, r]:
                        out[b, r] = t
            r += 1
            if r == n_rays:
                r = 0


@njit(cache=True, error_model="numpy")
def _observe_world(b, robot, robot_goal, lidar, obs, p):
    n_rays = lidar.shape[1]
    inv = 1.0 / p[_LRANGE]
    for r in range(n_rays):
        obs[b, r] = lidar[b, r] * inv
    dx = robot_goal[b, 0] - robot[b, 0]
    dy = robot_goal[b, 1] - robot[b, 1]
    d = math.hypot(dx, dy)
    bearing = math.atan2(dy, dx) - robot[b, 2]
    obs[b, n_rays] = robot[b, 3] / p[_VMAX]
    obs[b, n_rays + 1] = robot[b, 4] / p[_WMAX]
    obs[b, n_rays + 2] = min(d / p[_GSCALE], 1.0)
    obs[b, n_rays + 3] = math.sin(bearing)
    obs[b, n_rays + 4] = math.cos(bearing)


# ---- batched entry points: a serial and a parallel version of each ---------------------------
@njit(cache=True)
def step_serial(action, world, crowd, scratch, out, layout, flows, p):
    """Step every world with ``action`` (B, 2) in [-1, 1]; groups as in the module docstring."""
    robot, robot_goal, _, _, _, _, _ = world
    ped_pos, _, _, _, _, _, _ = crowd
    _, lidar, obs = out
    walls, _, _, _, _, ray_cos, ray_sin = layout
    for b in range(robot.shape[0]):
        _step_world(b, action, world, crowd, scratch, out, layout, flows, p, False)
        _lidar_world(b, robot, ped_pos, walls, ray_cos, ray_sin, lidar, p, False)
        _observe_world(b, robot, robot_goal, lidar, obs, p)


@njit(cache=True, parallel=True)
def step_parallel(action, world, crowd, scratch, out, layout, flows, p):
    """``step_serial`` threaded over the worlds (numba ``prange``): the same bytes."""
    robot, robot_goal, _, _, _, _, _ = world
    ped_pos, _, _, _, _, _, _ = crowd
    _, lidar, obs = out
    walls, _, _, _, _, ray_cos, ray_sin = layout
    for b in prange(robot.shape[0]):
        _step_world(b, action, world, crowd, scratch, out, layout, flows, p, False)
        _lidar_world(b, robot, ped_pos, walls, ray_cos, ray_sin, lidar, p, False)
        _observe_world(b, robot, robot_goal, lidar, obs, p)


@njit(cache=True)
def observe(mask, world, crowd, out, layout, p):
    """LiDAR and observation of the worlds with ``mask`` set (after a reset)."""
    robot, robot_goal, _, _, _, _, _ = world
    ped_pos, _, _, _, _, _, _ = crowd
    _, lidar, obs = out
    walls, _, _, _, _, ray_cos, ray_sin = layout
    for b in range(mask.shape[0]):
        if mask[b]:
            _lidar_world(b, robot, ped_pos, walls, ray_cos, ray_sin, lidar, p, False)
            _observe_world(b, robot, robot_goal, lidar, obs, p)


# ---- the first-written kernels and phase kernels, used only by tests and the benchmark -------
@njit(cache=True)
def step_serial_reference(action, world, crowd, scratch, out, layout, flows, p):
    """``step_serial`` with the first-written social forces and LiDAR (every ray against every wall)."""
    robot, robot_goal, _, _, _, _, _ = world
    ped_pos, _, _, _, _, _, _ = crowd
    _, lidar, obs = out
    walls, _, _, _, _, ray_cos, ray_sin = layout
    for b in range(robot.shape[0]):
        _step_world(b, action, world, crowd, scratch, out, layout, flows, p, True)
        _lidar_world(b, robot, ped_pos, walls, ray_cos, ray_sin, lidar, p, True)
        _observe_world(b, robot, robot_goal, lidar, obs, p)


@njit(cache=True)
def peds_only(robot, ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via, rng, metrics,
              f_total, f_part, walls, flow_src, flow_tgt, flow_via, flow_nvia, p, reference=False):
    """The pedestrian phase alone, for ``bench.sim``."""
    for b in range(robot.shape[0]):
        _advance_peds(b, robot, ped_pos, ped_vel, ped_goal, ped_target, ped_vmax, ped_flow, ped_via, rng, metrics,
                      f_total, f_part, walls, flow_src, flow_tgt, flow_via, flow_nvia, p, reference)


@njit(cache=True)
def lidar_only(robot, ped_pos, walls, ray_cos, ray_sin, lidar, p, reference=False):
    for b in range(robot.shape[0]):
        _lidar_world(b, robot, ped_pos, walls, ray_cos, ray_sin, lidar, p, reference)
