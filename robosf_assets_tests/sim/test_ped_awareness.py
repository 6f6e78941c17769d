"""``SimParams.ped_aware_fraction``: only the first round(fraction * P) pedestrians feel the robot."""

import numpy as np
import pytest

from robosf_assets.sim.params import SimParams
from robosf_assets.sim.scenario import get_scenario
from robosf_assets.sim.world import BatchedWorld

N_WORLDS = 8
FORWARD = np.tile([1.0, 0.3], (N_WORLDS, 1))


def world(fraction=None, n_peds=20):
    sc = get_scenario("crossing")
    params = sc.sim_params() if fraction is None else sc.sim_params().replace(ped_aware_fraction=fraction)
    w = BatchedWorld(sc, N_WORLDS, list(range(N_WORLDS)), params=params, n_peds=n_peds)
    w.reset()
    return w


def test_fraction_zero_puts_the_robot_force_on_no_pedestrian():
    w = world(0.0)
    for _ in range(30):
        w.step(FORWARD)
        assert not w.robot_force.any()
    assert w.metrics[:, 3].sum() == 0.0  # comfort exposure counts robot forces only
    aware = world(1.0)
    aware.step(FORWARD)
    assert np.abs(aware.robot_force).max() > 1e-3


@pytest.mark.parametrize("fraction, n_aware", [(0.5, 10), (0.26, 5), (0.975, 20), (0.025, 0)])
def test_exactly_the_first_round_fraction_p_pedestrians_feel_the_robot(fraction, n_aware):
    part = world(fraction)
    full = world(1.0)
    part.step(FORWARD)
    full.step(FORWARD)
    # same state before the step, so the aware ones feel exactly what everyone feels at 1.0
    np.testing.assert_array_equal(part.robot_force[:, :n_aware], full.robot_force[:, :n_aware])
    assert not part.robot_force[:, n_aware:].any()
    assert full.robot_force[:, n_aware:].any() or n_aware == 20
    if n_aware:
        assert part.robot_force[:, :n_aware].any()


def test_fraction_one_is_the_default_and_zero_changes_the_crowd():
    a, b, c = world(None), world(1.0), world(0.0)
    for _ in range(50):
        for w in (a, b, c):
            w.step(FORWARD)
    assert a.ped_pos.tobytes() == b.ped_pos.tobytes() and a.obs.tobytes() == b.obs.tobytes()
    assert not np.array_equal(a.ped_pos, c.ped_pos)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_fraction_outside_zero_one_is_rejected(bad):
    with pytest.raises(ValueError, match="ped_aware_fraction"):
        SimParams(ped_aware_fraction=bad)
