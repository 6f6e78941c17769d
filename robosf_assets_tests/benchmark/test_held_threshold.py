"""Tests for the "reached and held" time to threshold on hand-made curves."""

import numpy as np
import pytest

from robosf_assets.benchmark.efficiency import (
    ThresholdResult,
    bar_met_mask,
    share_from,
    time_to_held_threshold,
    time_to_threshold,
)

HI, LO = 0.95, 0.5  # meets / misses the 0.90 success bar


def steps(n: int) -> list[int]:
    return [10 * i for i in range(n)]


def test_censored_when_the_bar_is_never_met() -> None:
    s = [LO] * 12
    res = time_to_held_threshold(steps(12), s)
    assert res == ThresholdResult(steps=None, censored=True, censored_at=110)
    assert res.time == 110


def test_held_from_the_start() -> None:
    s = [HI] * 10
    assert time_to_held_threshold(steps(10), s).steps == 0
    # one dip in ten still leaves 90% from step 0 on
    s[4] = LO
    res = time_to_held_threshold(steps(10), s)
    assert (res.steps, res.index) == (0, 0)
    assert time_to_threshold(steps(10), s, k=3).steps == 0


def test_reached_then_lost_is_censored_where_k_in_a_row_says_reached() -> None:
    s = [HI] * 4 + [LO] * 8  # touches the bar, then drifts off it for good
    assert time_to_threshold(steps(12), s, k=3).steps == 0
    assert time_to_held_threshold(steps(12), s).censored


def test_reached_lost_regained_counts_from_the_regain() -> None:
    s = [HI] * 3 + [LO] * 5 + [HI] * 12
    assert time_to_threshold(steps(20), s, k=3).steps == 0
    res = time_to_held_threshold(steps(20), s)
    assert res.steps == 80 and res.index == 8
    # a looser hold fraction forgives the lost stretch: from 0, 15 of 20 meet it (75%)
    assert time_to_held_threshold(steps(20), s, hold_fraction=0.75).steps == 0


def test_the_held_evaluation_itself_meets_the_bar() -> None:
    # from index 2 (a miss) 19 of 20 evaluations meet the bar, but held starts at index 3
    s = [LO, LO, LO] + [HI] * 19
    assert time_to_held_threshold(steps(22), s).steps == 30


def test_exactly_the_hold_fraction_qualifies() -> None:
    s = [HI, LO] + [HI] * 8  # from 0: 9 of 10 = 0.90 exactly
    assert time_to_held_threshold(steps(10), s).steps == 0
    s = [HI, LO, LO] + [HI] * 7  # from 0: 8 of 10; from 3: 7 of 7
    assert time_to_held_threshold(steps(10), s).steps == 30


def test_a_short_tail_does_not_count_as_held() -> None:
    s = [LO] * 8 + [HI, HI]
    assert time_to_held_threshold(steps(10), s).censored  # 2 evaluations < min_evals 3
    assert time_to_held_threshold(steps(10), s, min_evals=2).steps == 80
    s = [LO] * 7 + [HI] * 3
    assert time_to_held_threshold(steps(10), s).steps == 70


def test_collision_bar_and_nan() -> None:
    s = [HI] * 10
    c = [0.02] * 5 + [0.10] * 5  # success holds, collisions do not
    assert time_to_held_threshold(steps(10), s, collision=c).censored
    assert time_to_held_threshold(steps(10), s, collision=[0.02] * 10).steps == 0
    s_nan = [HI] * 3 + [np.nan] * 7
    assert time_to_held_threshold(steps(10), s_nan).censored


def test_mask_share_and_argument_checks() -> None:
    ok = bar_met_mask([0.95, 0.95, 0.5], [0.0, 0.2, 0.0], target=0.9, max_collision=0.05)
    assert ok.tolist() == [True, False, False]
    assert share_from([True, False, True, True], 1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="outside"):
        share_from([True], 1)
    with pytest.raises(ValueError, match="hold_fraction"):
        time_to_held_threshold([0, 1], [1, 1], hold_fraction=0.0)
    with pytest.raises(ValueError, match="min_evals"):
        time_to_held_threshold([0, 1], [1, 1], min_evals=0)
    with pytest.raises(ValueError, match="increasing"):
        time_to_held_threshold([0, 0], [1, 1])
