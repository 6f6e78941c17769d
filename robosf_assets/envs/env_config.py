"""Typed environment configuration and the override rules of the env factories."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from robosf_assets.sim.params import SimParams


@dataclass(frozen=True)
class EnvConfig:
    """What the factories build; every field can be given as a keyword override.

    Any :class:`~robosf_assets.sim.params.SimParams` field (``robot_radius``,
    ``reward_goal``, ``lidar_range``, ...) is accepted as an override as well.
    """

    n_rays: int = 144
    """LiDAR rays over 360 degrees."""
    frame_stack: int = 1
    """Consecutive observations concatenated (oldest first)."""
    n_peds: int | None = None
    """Pedestrians per world; None keeps the scenario's count (0 gives an empty scenario)."""
    horizon: int | None = None
    """Episode length in steps; None keeps the scenario's horizon."""
    params: SimParams = field(default_factory=SimParams)
    """Physical, sensor and reward constants."""

    @classmethod
    def from_overrides(cls, base_params: SimParams | None = None, **overrides: Any) -> EnvConfig:
        """Split keyword overrides into env fields and simulator parameters.

        :param base_params: parameters the overrides apply to (the scenario's, in the factories).
        :raises TypeError: for a name that is neither, listing the valid names.
        """
        own = {f.name for f in dataclasses.fields(cls)} - {"params"}
        sim = {f.name for f in dataclasses.fields(SimParams)}
        unknown = sorted(set(overrides) - own - sim)
        if unknown:
            raise TypeError(
                f"unknown environment override(s) {unknown}; valid: {sorted(own)} and SimParams fields {sorted(sim)}"
            )
        params = (base_params or SimParams()).replace(**{k: v for k, v in overrides.items() if k in sim})
        cfg = cls(params=params, **{k: v for k, v in overrides.items() if k in own})
        if cfg.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {cfg.frame_stack}")
        return cfg
