"""Every config knob is documented in docs/configuration.md, and every profile value the
README and docs/ quote is the one in the profile table (``training/profiles.py``)."""

import re
from pathlib import Path

import pytest

from robosf_assets.defs.archival import ArchiveConfig
from robosf_assets.defs.assets.datasets import DatasetConfig
from robosf_assets.defs.assets.reports import ReportConfig
from robosf_assets.defs.run_config import (
    ArmConfig,
    BCPolicyConfig,
    ExpertConfig,
    FinetuneArmConfig,
    PPOSettings,
)
from robosf_assets.training.profiles import PROFILE_TABLE

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize(
    "config", [ExpertConfig, PPOSettings, DatasetConfig, BCPolicyConfig, FinetuneArmConfig, ArmConfig, ReportConfig,
               ArchiveConfig],
)
def test_every_field_of_every_stage_config_is_documented(config):
    section = DOC.split(f"### `{config.__name__}`", 1)
    assert len(section) == 2, f"docs/configuration.md has no section for {config.__name__}"
    body = section[1].split("### ", 1)[0]
    missing = [name for name in config.model_fields if f"| `{name}` |" not in body]
    assert not missing, f"{config.__name__} fields missing from docs/configuration.md: {missing}"


# ------------------------------------------------------------ documented profile values

Q, F = PROFILE_TABLE["quick"], PROFILE_TABLE["full"]
QE, FE = Q["expert"], F["expert"]
PPO = FE["ppo"]


def n(x: int) -> str:
    """4,096-style thousands separators, as the docs write step counts."""
    return f"{x:,}"


def lr(x: float) -> str:
    """7.5e-4 / 3e-5, as the docs write learning rates."""
    mantissa, exp = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exp)}"


def net(arch: list[int]) -> str:
    return " x ".join(str(w) for w in arch)


def bar(profile: dict, margin_sign: int) -> tuple[str, str]:
    """The profile's promotion bar tightened by ``margin_sign`` times the early-stop margin."""
    m = margin_sign * profile["early_stop_margin"]
    return f"{profile['promotion']['min_success'] + m:.2f}", f"{profile['promotion']['max_collision'] - m:.2f}"


# (file, sentence as the table makes it): each must appear in the file, whitespace aside.
CLAIMS = [
    ("README.md", f"experts capped at about {round(QE['total_timesteps'], -6) // 10**6}M steps (early stop once "
                  f"the bar holds with a {QE['early_stop_margin']:.2f} margin), comparison arms of "
                  f"{n(Q['arm']['total_timesteps'])} steps."),
    ("README.md", f"The `full` profile gives each arm {round(F['arm']['total_timesteps'], -6) // 10**6}M steps"),
    ("README.md", f"The fine-tuned actor is frozen for the first {n(F['finetune']['critic_warmup_steps'])} steps "
                  "(critic warm-up)"),
    ("README.md", f"({n(FE['total_timesteps'])} PPO steps, the learning rate decaying from "
                  f"{lr(FE['ppo']['learning_rate'])} to {lr(FE['ppo']['learning_rate_final'])} over the first "
                  f"{n(FE['ppo']['learning_rate_horizon'])} and constant after; the pick among the curve's "
                  f"{FE['validation']['selection_candidates']} best evaluations and the final policy"),
    ("README.md", f"the profiles' new ones ({FE['n_envs']} envs x {PPO['n_steps']} steps, {PPO['n_epochs']} epochs "
                  f"of batch {n(PPO['batch_size'])}, learning rate {lr(PPO['learning_rate'])})"),
    ("docs/configuration.md", f"The expert is the full profile's expert run cut off at {n(QE['total_timesteps'])} "
                              f"steps: the same PPO ({QE['n_envs']} worlds, rollouts of {QE['ppo']['n_steps']} x "
                              f"{QE['n_envs']}, {QE['ppo']['n_epochs']} epochs of batch {n(QE['ppo']['batch_size'])}, "
                              f"learning rate {lr(QE['ppo']['learning_rate'])}, {net(QE['ppo']['net_arch'])} nets)"),
    ("docs/configuration.md", f"the learning rate of the full run, which decays over {n(QE['ppo']['learning_rate_horizon'])} "
                              f"steps (`learning_rate_horizon`) and then stays at its final value, so its first "
                              f"{n(QE['total_timesteps'])} steps are the full run's bit for bit."),
    ("docs/configuration.md", f"Each comparison arm gets {n(Q['arm']['total_timesteps'])} steps, evaluated on "
                              f"{Q['arm']['eval']['n_eval_episodes']} episodes every "
                              f"{n(Q['arm']['eval']['dense_eval_every_steps'])} steps."),
    ("docs/configuration.md", "`full`: the budget that trains real experts ({} steps, {} evaluation episodes "
                              "every {} steps, {}: the {} best curve evaluations and the final policy are nominated, "
                              "and the pick is validated on {} seeds x {} fresh episodes against the expert bar, "
                              "success >= {} and collision <= {};".format(
                                  n(FE["total_timesteps"]), FE["eval"]["n_eval_episodes"],
                                  n(FE["eval"]["eval_every_steps"]), "early stop" if FE["early_stop"] else "no early stop",
                                  FE["validation"]["selection_candidates"],
                                  len(FE["validation"]["eval_seeds"]), FE["validation"]["episodes_per_seed"],
                                  *bar(FE, 1))),
    ("docs/configuration.md", "each comparison arm {} steps ({} whole rollouts, the most that fit in {}).".format(
                                  n(F["arm"]["total_timesteps"]),
                                  F["arm"]["total_timesteps"] // (FE["n_envs"] * PPO["n_steps"]),
                                  n(-(-F["arm"]["total_timesteps"] // 1_000_000) * 1_000_000))),
    ("docs/configuration.md", f"every {n(Q['arm']['eval']['dense_eval_every_steps'])} steps for the whole "
                              f"{n(Q['arm']['eval']['dense_eval_until_steps'])}-step arm (quick), every "
                              f"{n(F['arm']['eval']['dense_eval_every_steps'])} steps up to "
                              f"{n(F['arm']['eval']['dense_eval_until_steps'])} (full)"),
    ("docs/configuration.md", f"lasts {n(Q['finetune']['critic_warmup_steps'])} steps (quick) and "
                              f"{n(F['finetune']['critic_warmup_steps'])} (full)."),
    ("docs/configuration.md", f"(quick {Q['finetune']['critic_warmup_steps']}, full "
                              f"{F['finetune']['critic_warmup_steps']})"),
    ("docs/configuration.md", f"Both stack two frames (`env_overrides = {{\"frame_stack\": "
                              f"{FE['env_overrides']['frame_stack']}}}`), decay the learning rate linearly to "
                              f"{lr(PPO['learning_rate_final'])} and discount with `gamma` = {PPO['gamma']}"),
    ("docs/configuration.md", f"Both profiles train PPO with {FE['n_envs']} worlds x {PPO['n_steps']} steps per "
                              f"rollout ({n(FE['n_envs'] * PPO['n_steps'])} steps, as before), {PPO['n_epochs']} "
                              f"epochs of minibatch {n(PPO['batch_size'])} "
                              f"({PPO['n_epochs'] * FE['n_envs'] * PPO['n_steps'] // PPO['batch_size']} gradient "
                              f"steps per rollout) at learning rate {lr(PPO['learning_rate'])} decaying to "
                              f"{lr(PPO['learning_rate_final'])}, {net(PPO['net_arch'])} actor and critic nets"),
    ("docs/pipeline.md", f"evaluated on the same {FE['eval']['n_eval_episodes']} fixed episodes (full profile) every "
                         f"{n(F['arm']['eval']['dense_eval_every_steps'])} steps up to "
                         f"{n(F['arm']['eval']['dense_eval_until_steps'])}, then every "
                         f"{n(FE['eval']['eval_every_steps'])}. The fine-tuned arm's actor is frozen for its first "
                         f"{n(F['finetune']['critic_warmup_steps'])} steps (the critic warm-up), so its evaluations "
                         f"at 0 to {n(F['finetune']['critic_warmup_steps'] - F['arm']['eval']['dense_eval_every_steps'])}"
                         " are the BC policy's"),
    ("robosf_assets/defs/run_config.py", f"(quick {n(Q['arm']['total_timesteps'])}, full {n(F['arm']['total_timesteps'])} "
                                     "steps)"),
    ("robosf_assets/training/finetune.py", f"The warm-up is therefore {n(F['finetune']['critic_warmup_steps'])} steps "
                                           "in the full profile"),
]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("path, sentence", CLAIMS, ids=[f"{p}:{s[:40]}" for p, s in CLAIMS])
def test_documented_profile_values_match_the_profile_table(path, sentence):
    text = _flat((ROOT / path).read_text())
    assert _flat(sentence) in text, f"{path} no longer says (as the profile table makes it): {sentence!r}"


def test_every_profile_budget_spacing_and_warmup_is_quoted():
    """Each budget, evaluation spacing and warm-up of both profiles appears in some claim, so
    a value the docs quote cannot change in the table without a claim failing."""
    assert lr(7.5e-4) == "7.5e-4" and lr(3e-5) == "3e-5" and n(40_960) == "40,960"
    assert bar(FE, 1) == ("0.95", "0.03")
    quoted = " ".join(s for _, s in CLAIMS)
    values = [QE["total_timesteps"], FE["total_timesteps"], Q["arm"]["total_timesteps"], F["arm"]["total_timesteps"],
              FE["eval"]["eval_every_steps"], Q["finetune"]["critic_warmup_steps"], F["finetune"]["critic_warmup_steps"],
              QE["ppo"]["learning_rate_horizon"]]
    values += [a["arm"]["eval"][k] for a in (Q, F) for k in ("dense_eval_every_steps", "dense_eval_until_steps")]
    missing = [v for v in values if n(v) not in quoted]
    assert not missing, f"profile values no claim quotes: {missing}"
