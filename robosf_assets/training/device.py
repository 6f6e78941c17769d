"""Which torch device a training run uses: ``device="auto"`` means CUDA only when it pays."""

from __future__ import annotations

import torch

__all__ = ["GPU_MIN_BATCH", "resolve_device"]

GPU_MIN_BATCH = 8192
"""``device="auto"`` trains on CUDA only from this minibatch size up (:func:`resolve_device`)."""


def resolve_device(requested: str, batch_size: int, cuda_available: bool | None = None) -> str:
    """The torch device a run trains on: ``requested`` unless it is ``"auto"``.

    ``"auto"`` means CUDA when a CUDA device is present *and* the minibatch has at least
    :data:`GPU_MIN_BATCH` samples, else the CPU. PPO with small MLP policies (ours: 128x128,
    minibatches of 1,024) spends its time in the simulator and in per-step policy calls of a
    few dozen observations, where the host-device copies cost more than the GPU saves
    (Stable-Baselines3's docs: PPO "is meant to be run primarily on the CPU" unless the
    policy is a CNN); large minibatches are where the GPU's throughput pays. The threshold
    is a documented judgement, not a measurement on this project's GPU runs (none were
    available): ``python -m robosf_assets.bench.ppo_throughput --devices cpu cuda`` measures
    both side by side where a GPU is present.
    """
    if requested != "auto":
        return requested
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    return "cuda" if cuda_available and batch_size >= GPU_MIN_BATCH else "cpu"
