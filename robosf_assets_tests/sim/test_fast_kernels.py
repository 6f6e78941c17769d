"""The fast simulator kernels against the first-written ones (``*_reference``).

The fast social force and LiDAR must compute the same physics: the same LiDAR bytes, forces
within float rounding of the reference (which PySocialForce parity pins down), and a whole
step that agrees to rounding from the same state. Determinism of the fast kernels (same seed,
same bytes; serial = threaded; batch = single worlds) is tested in test_world.py.
"""

import numpy as np
import pytest
from numba import njit

from robosf_assets.sim import forces, kernels
from robosf_assets.sim.params import SimParams
from robosf_assets.sim.scenario import DEFAULT_SCENARIOS, get_scenario
from robosf_assets.sim.world import BatchedWorld

P = SimParams()
SOCIAL = (P.lambda_importance, P.gamma, P.n, P.n_prime, P.social_factor)


@njit
def _atan2_all(y, x, out):
    for i in range(y.shape[0]):
        out[i] = forces.atan2(y[i], x[i])


@njit
def _exp_all(x, out):
    for i in range(x.shape[0]):
        out[i] = forces.exp_nonpositive(x[i])


def test_atan2_matches_libm_to_two_ulp_with_its_signed_zero_conventions():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200_000) * 10.0 ** rng.uniform(-8, 8, 200_000)
    x = rng.normal(size=200_000) * 10.0 ** rng.uniform(-8, 8, 200_000)
    special = [0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 3.0]
    sy, sx = np.meshgrid(special, special)
    y = np.concatenate([y, sy.ravel()])
    x = np.concatenate([x, sx.ravel()])
    got = np.empty_like(y)
    _atan2_all(y, x, got)
    want = np.arctan2(y, x)
    assert np.all(np.abs(got - want) <= 2 * np.spacing(np.abs(want)))
    assert np.array_equal(np.signbit(got), np.signbit(want))  # atan2(-0, -1) = -pi, atan2(-0, 1) = -0


def test_exp_nonpositive_matches_libm_to_one_ulp_and_underflows_like_it():
    rng = np.random.default_rng(1)
    x = np.concatenate([-rng.exponential(30.0, 200_000), -rng.uniform(0, 1e-6, 1000),
                        [0.0, -0.0, -708.0, -744.9, -745.0, -745.2, -800.0, -np.inf, np.nan]])
    got = np.empty_like(x)
    _exp_all(x, got)
    want = np.exp(x)
    normal = want > 1e-300
    assert np.all(np.abs(got - want)[normal] <= np.spacing(want[normal]))
    assert np.all(got[~normal & ~np.isnan(x)] <= 1e-300)
    assert np.isnan(got[-1]) and got[-2] == 0.0


def _scene(rng, n, size):
    return rng.uniform(0, size, (n, 2)), rng.normal(0, 0.7, (n, 2))


@pytest.mark.parametrize("n, size", [(2, 3.0), (9, 8.0), (20, 16.0), (45, 16.0), (30, 60.0)])
def test_social_force_equals_the_reference_to_rounding(n, size):
    rng = np.random.default_rng(n)
    largest = 0.0
    for _ in range(20):
        pos, vel = _scene(rng, n, size)
        fast = np.zeros_like(pos)
        ref = np.zeros_like(pos)
        forces.social_force(pos, vel, *SOCIAL, fast)
        forces.social_force_reference(pos, vel, *SOCIAL, ref)
        np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-13 * np.abs(ref).max())
        largest = max(largest, np.abs(ref).max())
    assert largest > 1e-2, "scenes too sparse to test anything"


def test_social_force_handles_degenerate_pairs_as_the_reference():
    pos = np.array([[1.0, 1.0], [1.0, 1.0], [3.0, 1.0], [1.0, 4.0], [5.0, 5.0]])  # 0 and 1 coincide
    vel = np.array([[0.5, 0.0], [0.0, 0.5], [0.0, 0.0], [0.0, 0.0], [0.1, 0.2]])
    # pedestrian 2 sees pedestrian 3 with D = lambda (v3 - v2) + e = 0: make v3 - v2 = -e / lambda
    e = (pos[2] - pos[3]) / np.linalg.norm(pos[2] - pos[3])
    vel[3] = vel[2] - e / P.lambda_importance
    fast = np.zeros_like(pos)
    ref = np.zeros_like(pos)
    forces.social_force(pos, vel, *SOCIAL, fast)
    forces.social_force_reference(pos, vel, *SOCIAL, ref)
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-12)
    # the robot on top of a pedestrian, and a pedestrian with D = 0 towards it
    for avx, avy in [(0.3, -0.2), (0.0, 0.0)]:
        out_fast = np.zeros_like(pos)
        out_ref = np.zeros_like(pos)
        forces.agent_force(pos, vel, 1.0, 1.0, avx, avy, *SOCIAL, out_fast)
        forces.agent_force_reference(pos, vel, 1.0, 1.0, avx, avy, *SOCIAL, out_ref)
        np.testing.assert_allclose(out_fast, out_ref, rtol=1e-9, atol=1e-12)  # NaN where the reference has NaN


def test_agent_force_equals_the_reference_to_rounding():
    rng = np.random.default_rng(5)
    for n in (1, 7, 20, 33):
        pos, vel = _scene(rng, n, 16.0)
        ax, ay = rng.uniform(0, 16, 2)
        avx, avy = rng.normal(0, 1, 2)
        fast = np.zeros_like(pos)
        ref = np.zeros_like(pos)
        forces.agent_force(pos, vel, ax, ay, avx, avy, *SOCIAL, fast)
        forces.agent_force_reference(pos, vel, ax, ay, avx, avy, *SOCIAL, ref)
        np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-13 * np.abs(ref).max())


@pytest.mark.parametrize("name", DEFAULT_SCENARIOS)
def test_lidar_gives_the_reference_bytes(name):
    rng = np.random.default_rng(2)
    w = BatchedWorld(get_scenario(name), 128, list(range(128)), n_peds=20)
    w.reset()
    for _ in range(5):
        w.robot[:, 0] = rng.uniform(-2, 26, 128)
        w.robot[:, 1] = rng.uniform(-2, 18, 128)
        w.robot[:, 2] = rng.uniform(-np.pi, np.pi, 128)
        w.robot[:6, :2] = w.walls[rng.integers(0, len(w.walls), 6), :2]  # on a wall's end point
        w.robot[6:12, :2] = w.ped_pos[6:12, 0] + rng.uniform(-0.3, 0.3, (6, 2))  # inside a pedestrian
        fast = np.zeros_like(w.lidar)
        ref = np.zeros_like(w.lidar)
        kernels.lidar_only(w.robot, w.ped_pos, w.walls, w.groups[4].ray_cos, w.groups[4].ray_sin, fast, w.params.to_array(), False)
        kernels.lidar_only(w.robot, w.ped_pos, w.walls, w.groups[4].ray_cos, w.groups[4].ray_sin, ref, w.params.to_array(), True)
        assert fast.tobytes() == ref.tobytes()
        assert (ref < w.params.lidar_range).mean() > 0.2


@pytest.mark.parametrize("n_peds", [20, 80])
def test_a_step_from_the_same_state_agrees_with_the_reference_kernel(n_peds):
    sc = get_scenario("crossing")
    fast = BatchedWorld(sc, 16, list(range(16)), n_peds=n_peds)
    ref = BatchedWorld(sc, 16, list(range(16)), n_peds=n_peds, reference=True)
    fast.reset()
    ref.reset()
    assert fast.obs.tobytes() == ref.obs.tobytes()
    actions = np.random.default_rng(0).uniform(-1, 1, (16, 2))
    fast.step(actions)
    ref.step(actions)
    np.testing.assert_allclose(fast.ped_vel, ref.ped_vel, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.ped_pos, ref.ped_pos, rtol=0, atol=1e-13)
    np.testing.assert_allclose(fast.obs, ref.obs, rtol=0, atol=1e-6)  # float32 observations
    assert np.array_equal(fast.status, ref.status)
