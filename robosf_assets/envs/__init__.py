"""Gymnasium and Stable-Baselines3 environments over the batched simulator."""

from robosf_assets.envs.env_config import EnvConfig
from robosf_assets.envs.factory import list_scenarios, make_robot_env, make_vec_env

__all__ = ["EnvConfig", "list_scenarios", "make_robot_env", "make_vec_env"]
