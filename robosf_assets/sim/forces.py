"""Social force model kernels for one world (numba).

The formulas follow PySocialForce 1.1.2 (``pysocialforce/forces.py``), which the test
suite checks to 1e-6 relative error:

- desired force: ``(v_max * e_goal - v) / tau`` while farther than ``goal_threshold``
  from the goal, ``-v / tau`` inside it;
- social force (Moussaid et al. 2009): interaction vector
  ``D = lambda * (v_j - v_i) + e_ij`` with ``e_ij`` pointing from j to i, ``B = gamma |D|``,
  ``theta = angle(D) - angle(e_ij)`` (not wrapped, as in PySocialForce), force
  ``exp(-d/B - (n' B theta)^2) t - sign(theta) exp(-d/B - (n B theta)^2) n_left``;
- obstacle force: ``sum exp(-(d - r)/sigma) e`` over obstacles closer than
  ``threshold + r``. PySocialForce samples each wall into points; we use the closest
  point of each segment, which is the same thing for a degenerate (point) segment.

Speed: the social force is evaluated once per unordered pair in one loop over all pairs
that LLVM turns into SIMD code, with this module's ``atan2`` and ``exp_nonpositive``
(plain arithmetic, within 1-2 ulp of libm's) instead of libm calls; ``*_reference`` are
the first-written pairwise versions, kept for the tests and the benchmark. No fast-math
flags anywhere: every operation is IEEE, so the same inputs give the same bytes whether a
pair lands in a SIMD lane or in the scalar remainder, in the serial or the threaded kernel.

All functions write into ``out`` (shape ``(n, 2)``); ``social_force`` and ``agent_force``
allocate their per-pair scratch. Numba's cache of a kernel in ``kernels.py`` does not notice
edits here (it checks its own file only): after editing this module, touch ``kernels.py``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Cephes atan (S. L. Moshier): relative error about 1e-16 on [0, 0.66] and, by
# atan(x) = pi/4 + atan((x - 1) / (x + 1)), on [0.66, 1].
_ATAN_P0, _ATAN_P1, _ATAN_P2, _ATAN_P3, _ATAN_P4 = (
    -8.750608600031904122785e-01, -1.615753718733365076637e01, -7.500855792314704667340e01,
    -1.228866684490136173410e02, -6.485021904942025371773e01,
)
_ATAN_Q0, _ATAN_Q1, _ATAN_Q2, _ATAN_Q3, _ATAN_Q4 = (
    2.485846490142306297962e01, 1.650270098316988542046e02, 4.328810604912902668951e02,
    4.853903996359136964868e02, 1.945506571482613964425e02,
)
_MOREBITS = 6.123233995736765886130e-17  # pi/2 - float(pi/2)


@njit(cache=True, inline="always", error_model="numpy")
def atan2(y, x):
    """``math.atan2`` to about 2e-16 (Cephes' rational atan on [0, 1]), a third of its cost.

    Same conventions: result in ``[-pi, pi]``, ``atan2(+-0, x < 0) = +-pi``, ``atan2(0, 0) = 0``.
    """
    ax = abs(x)
    ay = abs(y)
    # written as selects, without data-dependent branches (the quadrants are random)
    swap = ay > ax
    hi = max(ax, ay)
    lo = min(ax, ay)
    # atan(lo / hi), with atan(a) = pi/4 + atan((a - 1) / (a + 1)) for a > 0.66: one division
    big = lo > 0.66 * hi
    z0 = (lo - hi if big else lo) / (lo + hi if big else (hi if hi > 0.0 else 1.0))
    z = z0 * z0
    num = (((_ATAN_P0 * z + _ATAN_P1) * z + _ATAN_P2) * z + _ATAN_P3) * z + _ATAN_P4
    den = ((((z + _ATAN_Q0) * z + _ATAN_Q1) * z + _ATAN_Q2) * z + _ATAN_Q3) * z + _ATAN_Q4
    r = (0.25 * math.pi if big else 0.0) + ((z0 * (z * num / den) + z0) + (0.5 * _MOREBITS if big else 0.0))
    r = (0.5 * math.pi - r) + _MOREBITS if swap else r
    neg_x = (x < 0.0) | ((x == 0.0) & (ay == 0.0) & (math.copysign(1.0, x) < 0.0))
    r = (math.pi - r) + 2.0 * _MOREBITS if neg_x else r
    return math.copysign(r, y)



# exp(x) = 2^k exp(r), k = round(x / ln 2), |r| <= ln(2) / 2 (Cody-Waite split of ln 2),
# exp(r) by its Taylor series to degree 13 (truncation < 1e-17); 2^(k + 100) built from its
# bits (exact), then scaled by 2^-100 (exact unless the result is subnormal), so the loop
# vectorises without table gathers.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_TWO_M100 = 2.0**-100


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (an LLVM bitcast)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, inline="always", error_model="numpy")
def exp_nonpositive(x):
    """``math.exp(x)`` for ``x <= 0`` to 1 ulp (0 below -745, where exp underflows; NaN stays NaN)."""
    xc = min(max(x, -745.0), 0.0)
    kf = math.floor(xc * _INV_LN2 + 0.5)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    v = (p * _float_from_bits((np.int64(kf) + 1123) << 52)) * _TWO_M100
    return v if x >= -745.0 else (0.0 if x < -745.0 else x)


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


@njit(cache=True, inline="always", error_model="numpy")
def _upper(x, y):
    """Whether ``atan2(y, x) > 0`` (the upper half plane, with the negative x axis at +0)."""
    return (y > 0.0) | ((y == 0.0) & (x < 0.0) & (math.copysign(1.0, y) > 0.0))


@njit(cache=True, inline="always", error_model="numpy")
def _pair_sides(dx, dy, vx, vy, lam, gamma, n, n_prime):
    """Social force of a pair on i, ``(gx, gy)``, and minus the force on j, ``(hx, hy)``.

    ``(dx, dy) = p_i - p_j``, ``(vx, vy) = v_j - v_i``. Seen from j, ``e``, ``D`` and ``t``
    change sign while ``d`` and ``B`` stay. ``theta = angle(t) - angle(e)`` (not wrapped)
    is the wrapped angle from ``e`` to ``t`` (one ``atan2``), plus or minus ``2 pi`` when
    ``t`` and ``e`` lie in different half planes, and then the reversed pair's ``theta``
    differs from it by ``2 pi``; otherwise both are the same and ``h == g`` (Newton's third
    law). Branch-free (selects), so that a loop over pairs vectorises. ``ok`` is False for a
    degenerate pair (``d == 0`` or ``D == 0``), which ``_pair_sides_degenerate`` handles.
    """
    d = math.sqrt(dx * dx + dy * dy)
    inv = 1.0 / d if d > 0.0 else 0.0
    ex = dx * inv
    ey = dy * inv
    ix = lam * vx + ex
    iy = lam * vy + ey
    il = math.sqrt(ix * ix + iy * iy)
    inv = 1.0 / il if il > 0.0 else 0.0
    tx = ix * inv
    ty = iy * inv
    b = gamma * il
    w = atan2(ex * ty - ey * tx, ex * tx + ey * ty)
    ue = _upper(ex, ey)
    ut = _upper(tx, ty)
    up = ut & (ue ^ True)
    down = ue & (ut ^ True)
    two_pi = 2.0 * math.pi
    theta = w + two_pi if (up & (w <= 0.0)) else (w - two_pi if (down & (w >= 0.0)) else w)
    theta_r = theta - two_pi if up else (theta + two_pi if down else theta)
    db = -d / b
    a1 = n_prime * b * theta
    a2 = n * b * theta
    fv = exp_nonpositive(db - a1 * a1)
    fa = exp_nonpositive(db - a2 * a2)
    fa = -fa if theta < 0.0 else (0.0 if theta == 0.0 else fa)
    gx = fv * tx + fa * ty
    gy = fv * ty - fa * tx
    a1 = n_prime * b * theta_r
    a2 = n * b * theta_r
    fv = exp_nonpositive(db - a1 * a1)
    fa = exp_nonpositive(db - a2 * a2)
    fa = -fa if theta_r < 0.0 else (0.0 if theta_r == 0.0 else fa)
    hx = fv * tx + fa * ty
    hy = fv * ty - fa * tx
    return gx, gy, hx, hy, (d > 0.0) & (il > 0.0)


@njit(cache=True, error_model="numpy")
def _pair_sides_degenerate(dx, dy, vx, vy, lam, gamma, n, n_prime):
    """``_pair_sides`` for coincident agents or ``D = 0``, with the reference's formulas
    (``angle(0, 0) = 0``; ``d = 0`` and ``D = 0`` gives NaN, as in PySocialForce)."""
    gx, gy = _pair_force(dx, dy, 0.0, 0.0, 0.0, 0.0, vx, vy, lam, gamma, n, n_prime)
    rx, ry = _pair_force(-dx, -dy, vx, vy, 0.0, 0.0, 0.0, 0.0, lam, gamma, n, n_prime)
    return gx, gy, -rx, -ry


@njit(cache=True, inline="always")
def _padded_scratch(rows, n):
    """``(rows, n')`` scratch with ``n' >= n`` a multiple of 8, so that the SIMD loops run no
    scalar remainder (which costs more than the padding lanes); the padding pairs are
    harmless (``d = 1``, no relative velocity) and never read back."""
    scratch = np.empty((rows, (n + 7) // 8 * 8))
    for k in range(n, scratch.shape[1]):
        scratch[0, k] = 1.0
        scratch[1, k] = 0.0
        scratch[2, k] = 0.0
        scratch[3, k] = 0.0
    return scratch


@njit(cache=True, error_model="numpy")
def _social_pairs(dx, dy, vx, vy, gx, gy, hx, hy, ok, lam, gamma, n, n_prime):
    """The SIMD loop: ``_pair_sides`` of every pair, contiguous arrays in and out."""
    for k in range(dx.shape[0]):
        a, b, c, e, f = _pair_sides(dx[k], dy[k], vx[k], vy[k], lam, gamma, n, n_prime)
        gx[k] = a
        gy[k] = b
        hx[k] = c
        hy[k] = e
        ok[k] = 1.0 if f else 0.0


@njit(cache=True, error_model="numpy")
def social_force(pos, vel, lam, gamma, n, n_prime, factor, out):
    """The social force on every agent from every other (see ``_pair_sides``).

    Gathers each unordered pair's relative position and velocity, evaluates all pairs in
    one vectorised loop, then adds the forces up; agent i's are summed over j in
    increasing order, as ``social_force_reference`` does.
    """
    m = pos.shape[0]
    n_pairs = m * (m - 1) // 2
    scratch = _padded_scratch(9, n_pairs)
    k = 0
    for i in range(m):
        for j in range(i + 1, m):
            scratch[0, k] = pos[i, 0] - pos[j, 0]
            scratch[1, k] = pos[i, 1] - pos[j, 1]
            scratch[2, k] = vel[j, 0] - vel[i, 0]
            scratch[3, k] = vel[j, 1] - vel[i, 1]
            k += 1
    _social_pairs(scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5], scratch[6],
                  scratch[7], scratch[8], lam, gamma, n, n_prime)
    for i in range(m):
        out[i, 0] = 0.0
        out[i, 1] = 0.0
    k = 0
    for i in range(m):
        for j in range(i + 1, m):
            if scratch[8, k] == 0.0:
                a, b, c, e = _pair_sides_degenerate(scratch[0, k], scratch[1, k], scratch[2, k], scratch[3, k],
                                                    lam, gamma, n, n_prime)
                scratch[4, k] = a
                scratch[5, k] = b
                scratch[6, k] = c
                scratch[7, k] = e
            out[i, 0] += scratch[4, k]
            out[i, 1] += scratch[5, k]
            out[j, 0] -= scratch[6, k]
            out[j, 1] -= scratch[7, k]
            k += 1
    for i in range(m):
        out[i, 0] *= factor
        out[i, 1] *= factor


@njit(cache=True, error_model="numpy")
def _agent_pairs(dx, dy, vx, vy, gx, gy, ok, lam, gamma, n, n_prime):
    """The SIMD loop of ``agent_force``: the force on i of each (pedestrian i, robot) pair."""
    for k in range(dx.shape[0]):
        a, b, _, _, f = _pair_sides(dx[k], dy[k], vx[k], vy[k], lam, gamma, n, n_prime)
        gx[k] = a
        gy[k] = b
        ok[k] = 1.0 if f else 0.0


@njit(cache=True, error_model="numpy")
def agent_force(pos, vel, ax, ay, avx, avy, lam, gamma, n, n_prime, factor, out):
    """Social force on every pedestrian from one extra agent (the robot) at ``(ax, ay)``."""
    m = pos.shape[0]
    scratch = _padded_scratch(7, m)
    for i in range(m):
        scratch[0, i] = pos[i, 0] - ax
        scratch[1, i] = pos[i, 1] - ay
        scratch[2, i] = avx - vel[i, 0]
        scratch[3, i] = avy - vel[i, 1]
    _agent_pairs(scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5], scratch[6],
                 lam, gamma, n, n_prime)
    degenerate = False
    for i in range(m):
        out[i, 0] = scratch[4, i] * factor
        out[i, 1] = scratch[5, i] * factor
        if scratch[6, i] == 0.0:
            degenerate = True
    if degenerate:
        for i in range(pos.shape[0]):
            dx = pos[i, 0] - ax
            dy = pos[i, 1] - ay
            vx = avx - vel[i, 0]
            vy = avy - vel[i, 1]
            _, _, _, _, ok = _pair_sides(dx, dy, vx, vy, lam, gamma, n, n_prime)
            if not ok:
                gx, gy, _, _ = _pair_sides_degenerate(dx, dy, vx, vy, lam, gamma, n, n_prime)
                out[i, 0] = gx * factor
                out[i, 1] = gy * factor


@njit(cache=True, error_model="numpy")
def social_force_reference(pos, vel, lam, gamma, n, n_prime, factor, out):
    """The social force as first written: every ordered pair, two ``atan2`` and two ``exp`` each."""
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
def agent_force_reference(pos, vel, ax, ay, avx, avy, lam, gamma, n, n_prime, factor, out):
    """``agent_force`` as first written, with two ``atan2`` per pedestrian."""
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
