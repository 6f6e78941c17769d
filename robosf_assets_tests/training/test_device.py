"""``device="auto"``: CUDA only when present and the minibatch is large enough to pay."""

import pytest

from robosf_assets.training.device import GPU_MIN_BATCH, resolve_device


@pytest.mark.parametrize(
    ("requested", "batch", "cuda", "expected"),
    [
        ("auto", 1024, False, "cpu"),
        ("auto", 1024, True, "cpu"),  # the profiles' minibatch: the CPU is faster
        ("auto", GPU_MIN_BATCH, True, "cuda"),
        ("auto", GPU_MIN_BATCH, False, "cpu"),
        ("cuda", 64, False, "cuda"),  # an explicit choice is never second-guessed
        ("cpu", 1 << 20, True, "cpu"),
    ],
)
def test_resolve_device(requested, batch, cuda, expected):
    assert resolve_device(requested, batch, cuda_available=cuda) == expected


def test_auto_on_this_machine_follows_torch():
    import torch

    big = resolve_device("auto", GPU_MIN_BATCH)
    assert big == ("cuda" if torch.cuda.is_available() else "cpu")
