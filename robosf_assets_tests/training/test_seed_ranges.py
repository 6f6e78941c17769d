"""Seed ranges of every stage checked against each other wherever a config sets them
(issue 13 item 7): an overlap fails before any work, naming both ranges."""

import dagster as dg
import pytest

from robosf_assets.training.train_config import (
    DATASET_SEED_BASE,
    SEED_RANGES,
    TrainConfig,
    check_seed_range,
    profile_config,
    validation_episode_seeds,
)


def test_the_ranges_are_disjoint_and_cover_every_stage():
    spans = sorted((lo, hi if hi is not None else float("inf")) for lo, hi in SEED_RANGES.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert set(SEED_RANGES) == {"training worlds", "curve evaluation episodes", "selection episodes",
                                "validation episodes", "dataset episodes"}
    # the largest validation seed that fits stays below every dataset seed
    assert validation_episode_seeds(9, 10**5)[-1] < DATASET_SEED_BASE


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"validation": {"eval_seeds": [10, 11, 12]}},
         "validation seed 10's episodes [3,000,000, 3,000,100) overlap dataset episodes [3,000,000, ...); "
         "validation episodes must stay in [2,000,000, 3,000,000)"),
        ({"eval": {"eval_seed_base": 0}},
         "[0, 50) overlap training worlds [0, 1,000,000); curve evaluation episodes must stay in "
         "[1,000,000, 1,900,000)"),
        ({"eval": {"eval_seed_base": 1_899_990, "n_eval_episodes": 20}},
         "overlap selection episodes [1,900,000, 2,000,000)"),
    ],
)
def test_train_config_refuses_overlapping_seeds_naming_both_ranges(fields, message):
    with pytest.raises(ValueError) as err:
        TrainConfig(scenario="crossing", **fields)
    assert message in str(err.value)


def test_the_dagster_expert_config_refuses_them_too():
    from robosf_assets.defs.run_config import ExpertConfig

    with pytest.raises(dg.Failure, match="validation seed 12's episodes .* overlap dataset episodes"):
        ExpertConfig(validation_seeds=[0, 1, 12]).train_config("crossing")
    assert ExpertConfig(validation_seeds=[7, 8, 9]).train_config("crossing").validation.eval_seeds == [7, 8, 9]


def test_profiles_and_the_default_dataset_seeds_fit():
    for name in ("quick", "full"):
        profile_config(name, "crossing")
    check_seed_range("dataset episodes", DATASET_SEED_BASE, DATASET_SEED_BASE + 200)
    with pytest.raises(ValueError, match=r"dataset episodes seeds \[1,000,000, 1,000,200\) overlap curve evaluation"):
        check_seed_range("dataset episodes", 10**6, 10**6 + 200)
