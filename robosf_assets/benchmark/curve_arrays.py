"""One learning curve as arrays: ``(timesteps, values)``, validated in one place."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Curve", "validate_curve"]

# (timesteps, values) of one run.
Curve = tuple[ArrayLike, ArrayLike]


def validate_curve(timesteps: ArrayLike, values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a learning curve and return it as (int64 steps, float64 values).

    :param timesteps: strictly increasing, non-negative evaluation steps.
    :param values: one value per evaluation.
    :return: the two arrays.
    """
    t = np.asarray(timesteps)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or v.ndim != 1 or t.size != v.size:
        raise ValueError(
            f"timesteps and values must be aligned 1-D arrays, got {t.shape} and {v.shape}"
        )
    if t.size == 0:
        raise ValueError("learning curve is empty: need at least one evaluation")
    if not np.all(t == np.round(t)):
        raise ValueError("timesteps must be whole environment steps")
    t = t.astype(np.int64)
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("timesteps must be non-negative and strictly increasing")
    return t, v
