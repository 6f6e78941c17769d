"""Social force model kernels for one world (numba).

The formulas and their order of operations follow PySocialForce 1.1.2
(``pysocialforce/forces.py``), which the test suite checks to 1e-6 relative error:

- desired force: ``(v_max * e_goal - v) / tau`` while farther than ``goal_threshold``
  from the goal, ``-v / tau`` inside it;
- social force (Moussaid et al. 2009): interaction vector
  ``D = lambda * (v_j - v_i) + e_ij`` with ``e_ij`` pointing from j to i, ``B = gamma |D|``,
  ``theta = angle(D) - angle(e_ij)`` (not wrapped, as in PySocialForce), force
  ``exp(-d/B - (n' B theta)^2) t - sign(theta) exp(-d/B - (n B theta)^2) n_left``;
- obstacle force: ``sum exp(-(d - r)/sigma) e`` over obstacles closer than
  ``threshold + r``. PySocialForce samples each wall into points; we use the closest
  point of each segment, which is the same thing for a degenerate (point) segment.

All functions write into ``out`` (shape ``(n, 2)``) and allocate nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def desired_force(pos, vel, goal, max_speed, relaxation_time, goal_threshold, factor, out):
    for i in range(pos.shape[0]):
        dx = goal[i, 0] - pos[i, 0]
        dy = goal[i, 1] - pos[i, 1]
        d = math.sqrt(dx * dx + dy * dy)
        if d > goal_threshold:
            fx = dx / d * max_speed[i] - vel[i, 0]
            fy = dy / d * max_speed[i] - vel[i, 1]
        else:
            fx = -vel[i, 0]
            fy = -vel[i, 1]
        out[i, 0] = fx / relaxation_time * factor
        out[i, 1] = fy / relaxation_time * factor


@njit(cache=True, inline="always", error_model="numpy")
def _pair_force(pix, piy, vix, viy, pjx, pjy, vjx, vjy, lam, gamma, n, n_prime):
    """Social force on agent i from agent j (before the factor)."""
    dx = pix - pjx
    dy = piy - pjy
    d = math.sqrt(dx * dx + dy * dy)
    if d > 0.0:
        ex = dx / d
        ey = dy / d
    else:
        ex = 0.0
        ey = 0.0
    ix = lam * (vjx - vix) + ex
    iy = lam * (vjy - viy) + ey
    il = math.sqrt(ix * ix + iy * iy)
    if il > 0.0:
        tx = ix / il
        ty = iy / il
    else:
        tx = 0.0
        ty = 0.0
    theta = math.atan2(ty, tx) - math.atan2(ey, ex)
    b = gamma * il
    fv = math.exp(-d / b - (n_prime * b * theta) ** 2)
    sign = 1.0 if theta > 0.0 else (-1.0 if theta < 0.0 else 0.0)
    fa = -sign * math.exp(-d / b - (n * b * theta) ** 2)
    # left normal of (tx, ty) is (-ty, tx)
    return fv * tx - fa * ty, fv * ty + fa * tx


@njit(cache=True, error_model="numpy")
def social_force(pos, vel, lam, gamma, n, n_prime, factor, out):
    m = pos.shape[0]
    for i in range(m):
        fx = 0.0
        fy = 0.0
        for j in range(m):
            if j == i:
                continue
            gx, gy = _pair_force(
                pos[i, 0], pos[i, 1], vel[i, 0], vel[i, 1],
                pos[j, 0], pos[j, 1], vel[j, 0], vel[j, 1],
                lam, gamma, n, n_prime,
            )
            fx += gx
            fy += gy
        out[i, 0] = fx * factor
        out[i, 1] = fy * factor


@njit(cache=True, error_model="numpy")
def agent_force(pos, vel, ax, ay, avx, avy, lam, gamma, n, n_prime, factor, out):
    """Social force on every pedestrian from one extra agent (the robot) at ``(ax, ay)``."""
    for i in range(pos.shape[0]):
        gx, gy = _pair_force(
            pos[i, 0], pos[i, 1], vel[i, 0], vel[i, 1], ax, ay, avx, avy, lam, gamma, n, n_prime
        )
        out[i, 0] = gx * factor
        out[i, 1] = gy * factor


@njit(cache=True, error_model="numpy")
def disc_repulsion(pos, ax, ay, radius_sum, sigma, threshold, factor, out):
    """Obstacle-force-like push away from a disc at ``(ax, ay)`` (the robot), added to ``out``.

    ``exp(-c / sigma)`` along the centre line, with ``c`` the surface clearance, for
    ``c < threshold``. The Moussaid social force alone lets a pedestrian walk head-on
    into a standing robot (no lateral term at theta = 0 and a range that shrinks with
    speed); this hard-body term keeps them off it, as Robot SF's pedestrian-robot force does.
    """
    for i in range(pos.shape[0]):
        dx = pos[i, 0] - ax
        dy = pos[i, 1] - ay
        norm = math.sqrt(dx * dx + dy * dy)
        c = norm - radius_sum
        if c < threshold and norm > 0.0:
            s = factor * math.exp(-c / sigma) / norm
            out[i, 0] += dx * s
            out[i, 1] += dy * s


@njit(cache=True, inline="always", error_model="numpy")
def closest_point_on_segment(px, py, x1, y1, x2, y2):
    ex = x2 - x1
    ey = y2 - y1
    l2 = ex * ex + ey * ey
    if l2 <= 0.0:
        return x1, y1
    t = ((px - x1) * ex + (py - y1) * ey) / l2
    if t < 0.0:
        t = 0.0
    elif t > 1.0:
        t = 1.0
    return x1 + t * ex, y1 + t * ey


@njit(cache=True, error_model="numpy")
def obstacle_force(pos, walls, agent_radius, sigma, threshold, factor, out):
    """``walls`` is ``(W, 4)``: segments ``x1, y1, x2, y2``."""
    cutoff = threshold + agent_radius
    for i in range(pos.shape[0]):
        fx = 0.0
        fy = 0.0
        for w in range(walls.shape[0]):
            qx, qy = closest_point_on_segment(
                pos[i, 0], pos[i, 1], walls[w, 0], walls[w, 1], walls[w, 2], walls[w, 3]
            )
            dx = pos[i, 0] - qx
            dy = pos[i, 1] - qy
            norm = math.sqrt(dx * dx + dy * dy)
            dist = norm - agent_radius
            if dist < cutoff:
                if norm > 0.0:
                    s = math.exp(-dist / sigma) / norm
                    fx += dx * s
                    fy += dy * s
        out[i, 0] = fx * factor
        out[i, 1] = fy * factor


@njit(cache=True, error_model="numpy")
def integrate_peds(pos, vel, goal, max_speed, force, dt, stop_distance):
    """PySocialForce's ``PedState.step``: capped velocity update, stop when arrived."""
    for i in range(pos.shape[0]):
        vx = vel[i, 0] + dt * force[i, 0]
        vy = vel[i, 1] + dt * force[i, 1]
        s = math.sqrt(vx * vx + vy * vy)
        if s == 0.0:
            vx = 0.0
            vy = 0.0
        elif s > max_speed[i]:
            k = max_speed[i] / s
            vx *= k
            vy *= k
        gx = goal[i, 0] - pos[i, 0]
        gy = goal[i, 1] - pos[i, 1]
        if math.sqrt(gx * gx + gy * gy) < stop_distance:
            vx = 0.0
            vy = 0.0
        pos[i, 0] += vx * dt
        pos[i, 1] += vy * dt
        vel[i, 0] = vx
        vel[i, 1] = vy


def zeros_like_forces(n: int) -> np.ndarray:
    return np.zeros((n, 2), dtype=np.float64)
