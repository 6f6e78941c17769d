"""Shipped experts: ship a full-profile expert run into a store, adopt it in another output
tree (checksums, scenario and observations checked, validation run again), and train when
none is shipped. One tiny expert is trained for the module; stores live in tmp dirs."""

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import dagster as dg
import pytest

from robosf_assets.artifacts import REPO_ROOT, read_json, sha256_file, verify_manifest
from robosf_assets.bench import ship_experts
from robosf_assets.defs import build_definitions
from robosf_assets.defs.assets.expert import expert_source
from robosf_assets.defs.run_config import ExpertConfig
from robosf_assets.sim.scenario import get_scenario
from robosf_assets.training import expert as expert_stage
from robosf_assets.training.expert import (
    EXPERTS_DIR_ENV,
    SHIPPED_FILES,
    SHIPPED_JSON,
    ShippedExpertError,
    adopt_shipped_expert,
    default_expert_source,
    run_expert,
)
from robosf_assets.training.profiles import PROFILE_TABLE
from robosf_assets.training.train_config import TrainConfig
from robosf_assets_tests.defs.conftest import expert_config

SCENARIO = "crossing"
# a bar every tiny expert passes: what is tested is the path, not the policy
TINY = expert_config(min_success=0.0, max_collision=1.0)


def _config(**changes) -> TrainConfig:
    return ExpertConfig(**{**TINY, **changes}).train_config(SCENARIO)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The output root of one finished, promoted expert run marked as the full profile's."""
    root = tmp_path_factory.mktemp("full")
    outcome = run_expert(_config(), root, extra={"profile": "full"})
    assert outcome.promoted and outcome.source == "trained"
    return root


@pytest.fixture
def store(trained, tmp_path) -> Path:
    """A store holding the trained expert, shipped by the command."""
    store = tmp_path / "store"
    assert ship_experts.main(["--from", str(trained), "--scenarios", SCENARIO, "--store", str(store)]) == 0
    return store


def _source_run(root: Path) -> Path:
    (run,) = [p for p in (root / "experts" / SCENARIO).iterdir() if (p / "manifest.json").exists()]
    return run


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


# ------------------------------------------------------------------ shipping


def test_ship_writes_the_files_their_checksums_and_where_they_came_from(trained, store):
    run = _source_run(trained)
    shipped_dir = store / SCENARIO
    assert sorted(p.name for p in shipped_dir.iterdir()) == sorted([*SHIPPED_FILES, SHIPPED_JSON])
    shipped = read_json(shipped_dir / SHIPPED_JSON)
    assert shipped["scenario"] == SCENARIO and shipped["source_run"] == run.name
    assert shipped["files"] == {n: sha256_file(shipped_dir / n) for n in SHIPPED_FILES}
    assert shipped["scenario_fingerprint"] == get_scenario(SCENARIO).fingerprint()
    assert shipped["env_overrides"] == TINY["env_overrides"]
    assert shipped["source_git_revision"] == read_json(run / "manifest.json")["git_revision"]
    # the manifest travels unchanged, the model is the validated one
    assert (shipped_dir / "manifest.json").read_bytes() == (run / "manifest.json").read_bytes()
    assert (shipped_dir / "selected_model.zip").read_bytes() == (run / "selected_model.zip").read_bytes()
    assert not [p for p in store.iterdir() if p.name.startswith(".tmp")]  # no leftovers of the rename


def test_shipping_again_is_a_no_op_and_another_expert_needs_replace(trained, store, capsys):
    run = _source_run(trained)
    assert ship_experts.ship(run, SCENARIO, store).status == "already shipped"
    _edit_json(store / SCENARIO / SHIPPED_JSON, source_run="20260101T000000Z-dead")
    with pytest.raises(ship_experts.ShipRefused, match="already ships the expert of run 20260101T000000Z-dead.*--replace"):
        ship_experts.ship(run, SCENARIO, store)
    assert ship_experts.main(["--from", str(trained), "--scenarios", SCENARIO, "--store", str(store)]) == 1
    assert "--replace" in capsys.readouterr().out
    assert ship_experts.ship(run, SCENARIO, store, replace=True).status == "replaced"
    assert read_json(store / SCENARIO / SHIPPED_JSON)["source_run"] == run.name


def test_ship_refuses_a_failed_or_non_full_profile_run(trained, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(trained, root)
    run = _source_run(root)
    manifest = run / "manifest.json"
    _edit_json(manifest, promoted=False)
    with pytest.raises(ship_experts.ShipRefused, match="did not pass validation"):
        ship_experts.newest_shippable(root, SCENARIO)
    _edit_json(manifest, promoted=True, profile="quick")
    with pytest.raises(ship_experts.ShipRefused, match="no full-profile expert run.*quick"):
        ship_experts.newest_shippable(root, SCENARIO)
    with pytest.raises(ship_experts.ShipRefused, match="quick profile's config"):
        ship_experts.ship(run, SCENARIO, tmp_path / "store")
    # without a recorded profile it is inferred from the config: the tiny config is no profile's
    _edit_json(manifest, profile=None)
    assert ship_experts.run_profile(read_json(manifest)) is None
    assert not (tmp_path / "store").exists()


def test_the_profile_of_a_bench_run_is_inferred_from_its_config():
    from robosf_assets.training.train_config import profile_config

    config = profile_config("full", SCENARIO, 0).model_dump(mode="json")
    assert ship_experts.run_profile({"config": {**config, "device": "cpu"}}) == "full"
    assert ship_experts.run_profile({"config": profile_config("quick", SCENARIO, 0).model_dump(mode="json")}) == "quick"


# ------------------------------------------------------------------ adopting


def test_adopting_copies_checks_and_validates_again(trained, store, tmp_path, monkeypatch):
    calls = []
    real = expert_stage.validate_policy
    monkeypatch.setattr(expert_stage, "validate_policy", lambda *a, **k: calls.append(1) or real(*a, **k))
    root = tmp_path / "demo"
    outcome = run_expert(_config(), root, source="shipped", store=store, extra={"profile": "quick"})
    shipped = read_json(store / SCENARIO / SHIPPED_JSON)
    assert calls == [1]  # validated here, not read from the shipped validation.json
    assert outcome.source == "shipped" and outcome.shipped == shipped and outcome.promoted
    run_dir = outcome.run_dir
    assert run_dir.parent == root / "experts" / SCENARIO
    episodes = (run_dir / "validation_episodes.jsonl").read_text().splitlines()
    assert len(episodes) == 3 * TINY["validation_episodes_per_seed"]
    validation = read_json(run_dir / "validation.json")
    assert validation["verdict"]["bar"]["min_success"] == 0.0 and validation["pooled"]["n_episodes"] == len(episodes)
    assert (run_dir / "shipped_validation.json").read_bytes() == (store / SCENARIO / "validation.json").read_bytes()
    assert (run_dir / "shipped_manifest.json").read_bytes() == (store / SCENARIO / "manifest.json").read_bytes()
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["expert_source"] == "shipped" and manifest["shipped"] == shipped
    assert manifest["profile"] == "quick" and manifest["promoted"] is True
    assert verify_manifest(run_dir) == []
    # downstream sees an ordinary expert reference
    ref = outcome.ref
    assert ref.model_path == run_dir / "selected_model.zip" and ref.promoted and ref.scenario == SCENARIO
    assert ref.model_sha256 == shipped["files"]["selected_model.zip"]
    assert dict(ref.env_overrides) == TINY["env_overrides"]
    assert ref.timesteps_used == read_json(store / SCENARIO / "manifest.json")["timesteps_used"]
    # an adopted run is never shipped in place of the full-profile run it came from
    assert "adopted a shipped expert" in ship_experts.refusal(run_dir, SCENARIO)


def test_adopting_judges_against_the_requested_bar(store, tmp_path):
    outcome = adopt_shipped_expert(_config(min_success=1.0, max_collision=0.0), tmp_path, store=store)
    assert outcome.verdict["bar"] == {**outcome.verdict["bar"], "min_success": 1.0, "max_collision": 0.0}
    pooled = outcome.validation["pooled"]
    assert outcome.promoted == (pooled["success"]["mean"] >= 1.0 and pooled["collision"]["mean"] <= 0.0)


def test_a_damaged_shipped_file_is_refused_by_name(store, tmp_path):
    curve = store / SCENARIO / "curve.jsonl"
    curve.write_text(curve.read_text() + "\n")
    with pytest.raises(ShippedExpertError, match=r"damaged.*curve\.jsonl: sha256"):
        adopt_shipped_expert(_config(), tmp_path, store=store)
    (store / SCENARIO / "selected_model.zip").unlink()
    with pytest.raises(ShippedExpertError, match=r"selected_model\.zip: missing"):
        adopt_shipped_expert(_config(), tmp_path, store=store)
    assert not (tmp_path / "experts").exists()  # refused before any run directory


def test_a_shipped_expert_that_does_not_fit_the_config_is_refused(store, tmp_path):
    shipped = store / SCENARIO / SHIPPED_JSON
    _edit_json(shipped, scenario_fingerprint="0" * 64)
    with pytest.raises(ShippedExpertError, match="scenario 'crossing' changed since it was shipped"):
        adopt_shipped_expert(_config(), tmp_path, store=store)
    _edit_json(shipped, scenario_fingerprint=get_scenario(SCENARIO).fingerprint())
    with pytest.raises(ShippedExpertError, match=r"trained with env_overrides .*'n_peds': 3.*the config asks for"):
        adopt_shipped_expert(_config(env_overrides={"n_peds": 5, "horizon": 60}), tmp_path, store=store)
    # the expert of another scenario under this scenario's name
    shutil.copytree(store / SCENARIO, store / "corridor")
    config = ExpertConfig(**TINY).train_config("corridor")
    with pytest.raises(ShippedExpertError, match="expert of scenario 'crossing', not 'corridor'"):
        adopt_shipped_expert(config, tmp_path, store=store)
    # shipped.json claims other observations than the policy has
    wide = {"n_peds": 3, "horizon": 60, "frame_stack": 3}
    _edit_json(shipped, env_overrides=wide)
    with pytest.raises(ShippedExpertError, match="policy observes Box"):
        adopt_shipped_expert(_config(env_overrides=wide), tmp_path, store=store)


def test_no_shipped_expert_trains_and_says_so(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(expert_stage, "train_expert", lambda config, run_dir, **kw: trained.append(run_dir) or "out")
    warnings = []
    monkeypatch.setattr(expert_stage.log, "warning", lambda msg, *a: warnings.append(msg.format(*a)))
    assert run_expert(_config(), tmp_path, source="shipped", store=tmp_path / "empty") == "out"
    assert len(trained) == 1 and "no shipped expert for crossing" in warnings[0]
    with pytest.raises(ValueError, match="choose one of"):
        run_expert(_config(), tmp_path, source="download")


# ------------------------------------------------------------------ configuration, asset, package


def test_expert_source_defaults_to_the_profile_table():
    assert PROFILE_TABLE["quick"]["stage"]["expert_source"] == default_expert_source("quick") == "shipped"
    assert PROFILE_TABLE["full"]["stage"]["expert_source"] == default_expert_source("full") == "train"
    assert expert_source(ExpertConfig(profile="quick"), SCENARIO) == ("quick", "shipped")
    assert expert_source(ExpertConfig(profile="full"), SCENARIO) == ("full", "train")
    assert expert_source(ExpertConfig(profile="quick", expert_source="train"), SCENARIO) == ("quick", "train")
    changed = ExpertConfig(profile="full", scenario_overrides={"corridor": {"expert_source": "shipped"}})
    assert expert_source(changed, "corridor") == ("full", "shipped") and expert_source(changed, SCENARIO)[1] == "train"
    with pytest.raises(dg.Failure, match="choose one of"):
        expert_source(ExpertConfig(expert_source="download"), SCENARIO)


def test_the_expert_asset_adopts_and_says_so(store, tmp_path, monkeypatch):
    monkeypatch.setenv(EXPERTS_DIR_ENV, str(store))
    from robosf_assets.defs.resources import OutputTree

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(build_definitions().assets), selection=["expert_policy"], partition_key=SCENARIO, instance=instance,
            resources={"output": OutputTree(root=str(tmp_path / "output"))},
            run_config={"ops": {"expert_policy": {"config": {**TINY, "expert_source": "shipped"}}}},
        )
    assert result.success
    (mat,) = result.asset_materializations_for_node("expert_policy")
    source_run = read_json(store / SCENARIO / SHIPPED_JSON)["source_run"]
    assert mat.metadata["expert_source"].value == f"shipped from full-profile run {source_run}, revalidated here"
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and "revalidated here" in check.description
    ref = result.output_for_node("expert_policy")
    assert read_json(ref.run_dir / "manifest.json")["expert_source"] == "shipped"


def test_the_store_is_package_data_and_not_ignored(monkeypatch):
    monkeypatch.delenv(EXPERTS_DIR_ENV, raising=False)
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["robosf_assets"]
    for name in (*SHIPPED_FILES, SHIPPED_JSON):
        assert any(Path("experts/crossing", name).match(p) for p in patterns), name
    assert expert_stage.shipped_experts_dir() == REPO_ROOT / "robosf_assets" / "experts"
    paths = [f"robosf_assets/experts/crossing/{n}" for n in (*SHIPPED_FILES, SHIPPED_JSON)]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=REPO_ROOT, capture_output=True, text=True)
    assert ignored.returncode == 1 and not ignored.stdout, ignored.stdout


def test_the_demo_says_which_experts_are_shipped(store, monkeypatch, capsys):
    from types import SimpleNamespace

    from robosf_assets import cli

    monkeypatch.setenv(EXPERTS_DIR_ENV, str(store))
    plan = cli.expert_plan("quick", [SCENARIO, "corridor"], None)
    assert plan.startswith("experts: shipped for crossing: trained by the full profile, not here")
    assert "none shipped for corridor: trained here from scratch" in plan
    assert cli.expert_plan("full", [SCENARIO], None) == "experts: trained here from scratch (expert_source train)"
    assert "trained here" in cli.expert_plan("quick", [SCENARIO], {"expert_policy": {"expert_source": "train"}})
    outcome = SimpleNamespace(status="COMPLETED_SUCCESS", runs=3, reports={}, stopped={}, summary_dir=None)
    cli._report(outcome, 0.0, "abcd", {SCENARIO: "shipped from full-profile run r1, revalidated here",
                                       "corridor": "trained (no shipped expert for this scenario)"})
    out = capsys.readouterr().out
    assert "crossing: expert shipped from full-profile run r1, revalidated here" in out
    assert "corridor: expert trained (no shipped expert" in out and "ships with the repository" in out
