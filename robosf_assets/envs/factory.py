"""The only way to make environments: ``make_robot_env`` and ``make_vec_env``."""

from __future__ import annotations

from typing import Any

from robosf_assets.envs.env_config import EnvConfig
from robosf_assets.envs.robot_env import RobotNavEnv
from robosf_assets.envs.vec_env import RobotNavVecEnv
from robosf_assets.sim.scenario import get_scenario
from robosf_assets.sim.scenario import list_scenarios as _list_scenarios


def list_scenarios() -> list[str]:
    """Registered scenario names (built-in defaults first, then user files)."""
    return _list_scenarios()


def make_robot_env(scenario: str, seed: int, **overrides: Any) -> RobotNavEnv:
    """A single ``gymnasium.Env`` of ``scenario`` whose episodes are drawn from ``seed``.

    :param scenario: a name from :func:`list_scenarios`.
    :param seed: the world's random seed (starts, goals, crowd).
    :param overrides: :class:`EnvConfig` fields (``n_rays``, ``frame_stack``, ``n_peds``,
        ``horizon``) or :class:`~robosf_assets.sim.params.SimParams` fields; these win over
        the scenario's own ``[params]``, which win over the SimParams defaults.
    """
    sc = get_scenario(scenario)
    return RobotNavEnv(sc, int(seed), EnvConfig.from_overrides(sc.sim_params(), **overrides))


def make_vec_env(scenario: str, n_envs: int, seed: int, **overrides: Any) -> RobotNavVecEnv:
    """An SB3 ``VecEnv`` of ``n_envs`` worlds seeded ``seed, seed + 1, ...``, stepped in one call.

    Same overrides as :func:`make_robot_env`, plus ``parallel`` (bool, default False) to use the
    threaded kernel (numba prange over worlds) instead of the serial one.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    parallel = bool(overrides.pop("parallel", False))
    sc = get_scenario(scenario)
    return RobotNavVecEnv(sc, int(n_envs), int(seed), EnvConfig.from_overrides(sc.sim_params(), **overrides),
                          parallel=parallel)
