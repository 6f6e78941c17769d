"""Torch intra-op threads, limited around small-batch work.

On a shared 2-core machine, torch's OpenMP workers spin against the simulator and other
processes: SB3 ``predict`` on 16 observations took 19 ms per call with 2 threads and
0.14 ms with 1, and BC batches of 256 slowed tenfold. Small networks gain nothing from
more threads, so every stage runs torch with one thread unless told otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op threads to ``n`` inside the block (if torch is loaded; None or 0: leave as is)."""
    torch = sys.modules.get("torch")
    if not n or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
