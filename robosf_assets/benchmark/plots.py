"""Plots as PNG bytes (matplotlib, Agg backend): learning curves and arm comparisons."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["learning_curve_png", "plt", "png_bytes"]
# ``plt`` is exported so that plotting modules get pyplot with the Agg backend set.


def png_bytes(fig) -> bytes:
    """``fig`` as PNG bytes (100 dpi, tight box), then closed. The PNG metadata is fixed,
    so the same figure gives the same bytes."""
    buf = io.BytesIO()
    # fixed metadata so the same data gives the same bytes
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def learning_curve_png(
    curve: Sequence[Mapping[str, Any]],
    *,
    title: str,
    min_success: float | None = None,
    max_collision: float | None = None,
) -> bytes:
    """Success and collision rate against env steps, with the promotion bar if given."""
    steps = [row["timesteps"] for row in curve]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(steps, [row["success"] for row in curve], marker="o", ms=3, label="success")
    ax.plot(steps, [row["collision"] for row in curve], marker="o", ms=3, label="collision", color="tab:red")
    if min_success is not None:
        ax.axhline(min_success, ls="--", lw=1, color="tab:blue", alpha=0.6, label=f"success bar {min_success:.2f}")
    if max_collision is not None:
        ax.axhline(max_collision, ls="--", lw=1, color="tab:red", alpha=0.6,
                   label=f"collision bar {max_collision:.2f}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("rate (evaluation episodes)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    return png_bytes(fig)
