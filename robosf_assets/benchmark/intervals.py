"""Bootstrap interval estimates, computed by rliable (Agarwal et al., NeurIPS 2021).

Every confidence interval of the benchmark goes through :func:`interval_estimate`, a thin
wrapper over ``rliable.library.get_interval_estimates`` with its
``StratifiedIndependentBootstrap`` (each sample is resampled independently, so the two
arms of a ratio are never assumed paired). Samples are laid out as rliable expects,
``(num_runs, num_tasks)``; within a task, runs are resampled with replacement.

Censoring is not rliable's concern: callers put a censored run in at its censoring step
(a lower bound, see :class:`~robosf_assets.benchmark.efficiency.ThresholdResult`) and
read the interval with that in mind.

Determinism: rliable 1.2 draws its resampling indices from NumPy's *global* legacy RNG
(``np.random.choice``), not from the bootstrap's ``random_state``. :func:`interval_estimate`
therefore seeds the global RNG for the duration of the call and restores its previous
state afterwards (under a lock), so the same ``seed`` gives the same interval and the
caller's global RNG is left as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from rliable import library as rly

__all__ = ["METHOD", "interval_estimate", "seeded_global_rng"]

METHOD = "percentile"
"""rliable's interval method for every CI: the equal-tailed percentile bootstrap. (BCa
needs a jackknife and breaks down on the degenerate samples the benchmark meets, e.g.
every run censored at the same step, or one seed.)"""

_GLOBAL_RNG_LOCK = threading.Lock()


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed NumPy's global legacy RNG for the block; restore the previous state after.

    :param seed: seed for ``np.random.seed``.
    """
    with _GLOBAL_RNG_LOCK:
        state = np.random.get_state()
        np.random.seed(int(seed))
        try:
            yield
        finally:
            np.random.set_state(state)


def interval_estimate(
    samples: Sequence[np.ndarray],
    func: Callable[..., np.ndarray],
    *,
    n_resamples: int,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and percentile CI of ``func(*samples)`` by rliable's stratified
    independent bootstrap.

    :param samples: one or more ``(num_runs, num_tasks)`` arrays, resampled independently
        of each other (runs within each task, with replacement).
    :param func: maps the (resampled) arrays to a 1-D array of statistics.
    :param n_resamples: bootstrap replicates (rliable's ``reps``), >= 1.
    :param confidence: coverage in (0, 1).
    :param seed: seed of the resampling (see the module docstring).
    :return: ``(point, low, high)``, 1-D float arrays as long as ``func``'s output.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    if not arrays or any(a.ndim != 2 or a.shape[0] == 0 for a in arrays):
        raise ValueError("samples must be non-empty (num_runs, num_tasks) arrays")
    with seeded_global_rng(seed):
        points, intervals = rly.get_interval_estimates(
            {"x": arrays}, func, method=METHOD, reps=int(n_resamples),
            confidence_interval_size=confidence,
        )
    point = np.asarray(points["x"], dtype=np.float64).reshape(-1)
    ci = np.asarray(intervals["x"], dtype=np.float64).reshape(2, -1)
    return point, ci[0], ci[1]
