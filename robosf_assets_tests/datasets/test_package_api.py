"""The ``robosf_assets.datasets`` package re-exports its public API lazily: every name in
``__all__`` resolves to the object of the module that defines it."""

import importlib

import pytest

import robosf_assets.datasets as datasets


@pytest.mark.parametrize("name", datasets.__all__)
def test_every_exported_name_resolves_to_its_module_object(name):
    obj = getattr(datasets, name)
    # functions and classes name their module; the constants come from the schema
    module = getattr(obj, "__module__", "robosf_assets.datasets.schema")
    assert module.startswith("robosf_assets.datasets.")
    assert obj is getattr(importlib.import_module(module), name)


def test_the_dataset_stages_are_exported():
    from robosf_assets.datasets import DatasetSettings, run_trajectory_dataset, run_validated_dataset
    from robosf_assets.datasets.record import run_trajectory_dataset as record_stage
    from robosf_assets.datasets.validate import run_validated_dataset as validate_stage

    assert run_trajectory_dataset is record_stage and run_validated_dataset is validate_stage
    assert {"DatasetSettings", "DatasetOutcome", "ValidationOutcome"} <= set(datasets.__all__)
    assert DatasetSettings.__module__ == "robosf_assets.datasets.record"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        datasets.nope  # noqa: B018
