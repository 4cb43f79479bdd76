"""reward=composite and reward=ensemble from the Hydra config: each source or member typed by its
own schema and built by make_reward_model as a single reward would be; weights, member fields and
checkpoints from the command line."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import HydraException

from robot_rl.config import load_config
from robot_rl.rewards import make_reward_model
from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.classifier.config import SuccessClassifierConfig
from robot_rl.rewards.classifier.model import SuccessClassifierReward, save_success_classifier
from robot_rl.rewards.ensemble import CompositeReward, CompositeRewardConfig, RewardEnsemble
from robot_rl.rewards.perceptual.config import PerceptualRewardConfig
from robot_rl.rewards.simple import (
    WRENCH_START,
    ContactForcePenalty,
    ForcePenaltyConfig,
    InterventionReward,
    InterventionRewardConfig,
)
from robot_rl.sim.config import ConfigError

STATE_DIM = 26  # robot_rl.spec.flatten_state without task state
# The shipped composite with its classifier swapped for RLIF's intervention penalty: sources that
# need no trained checkpoint.
NO_CHECKPOINT = [
    "reward=composite",
    "~reward.sources.classifier",
    "~reward.weights.classifier",
    "+reward@reward.sources.intervention=intervention",
    "+reward.weights.intervention=2.0",
    "reward.weights.force_penalty=0.5",
    "reward.success_from=''",
]


def observations() -> RewardInput:
    """4 observations: no contact, a 40 N and a 120 N peak force, and an intervention start."""
    state = torch.zeros(4, STATE_DIM)
    state[1, WRENCH_START + 6] = 40.0  # max-abs force, x
    state[2, WRENCH_START + 8] = 120.0  # max-abs force, z
    return RewardInput(state=state, images={}, intervention_start=torch.tensor([False, False, False, True]))


def test_the_shipped_composite_types_each_source_by_its_schema():
    config = load_config(["reward=composite"]).reward
    assert isinstance(config, CompositeRewardConfig) and not config.is_oracle
    assert config.sources == {"classifier": SuccessClassifierConfig(), "force_penalty": ForcePenaltyConfig()}
    assert config.weights == {"classifier": 1.0, "force_penalty": 1.0}
    assert config.success_from == "classifier"


def test_command_line_overrides_reach_a_source_field_and_a_weight():
    config = load_config(
        [
            "reward=composite",
            "reward.sources.classifier.checkpoint=/models/cube.safetensors",
            "reward.sources.force_penalty.force_threshold=30",
            "reward.weights.force_penalty=0.5",
        ]
    ).reward
    assert config.sources["classifier"].checkpoint == "/models/cube.safetensors"
    assert config.sources["force_penalty"].force_threshold == 30.0
    assert config.weights == {"classifier": 1.0, "force_penalty": 0.5}


def test_a_source_can_be_swapped_for_another_option_of_the_reward_group():
    config = load_config(["reward=composite", "reward@reward.sources.classifier=perceptual"]).reward
    assert config.sources["classifier"] == PerceptualRewardConfig()


def test_a_misspelt_or_mistyped_source_key_fails_naming_it():
    with pytest.raises(HydraException, match=r"reward\.sources\.classifier\.chekpoint"):
        load_config(["reward=composite", "reward.sources.classifier.chekpoint=x"])
    with pytest.raises(HydraException, match=r"reward\.sources\.force_penalty\.force_scale"):
        load_config(["reward=composite", "reward.sources.force_penalty.force_scale=strong"])
    with pytest.raises(ConfigError, match=r"^reward\.sources\.force_penalty\.colour: unknown key"):
        load_config(["reward=composite", "+reward.sources.force_penalty.colour=red"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["reward.sources.force_penalty.max_penalty=0"], r"^reward\.sources\.force_penalty\.max_penalty: must be > 0"),
        (["~reward.weights.force_penalty"], r"^reward\.weights: no weight for source\(s\) \['force_penalty'\]"),
        (["~reward.sources.force_penalty"], r"^reward\.sources: no source for weight\(s\) \['force_penalty'\]"),
        (["reward.success_from=force"], r"^reward\.success_from"),
        (
            ["+reward@reward.sources.truth=oracle_sparse", "+reward.weights.truth=1.0"],
            r"^reward\.sources\.truth: oracle_sparse is the twin's ground truth, computed by the env",
        ),
    ],
)
def test_bad_sources_and_weights_fail_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(["reward=composite", *overrides])


def test_make_reward_model_builds_each_source_as_a_single_reward_and_sums_them():
    config = load_config(NO_CHECKPOINT).reward
    composite = make_reward_model(config)
    assert isinstance(composite, CompositeReward) and not composite.training
    assert isinstance(composite.members["intervention"], InterventionReward)
    assert isinstance(composite.members["force_penalty"], ContactForcePenalty)
    assert composite.cameras == ()  # neither source reads a camera: the learner renders none for it
    inputs = observations()
    out = composite.score(inputs)
    single = {name: make_reward_model(source).score(inputs).reward for name, source in config.sources.items()}
    torch.testing.assert_close(out.reward, 2.0 * single["intervention"] + 0.5 * single["force_penalty"])
    # by hand: 40 N -> -0.01 * 20; 120 N -> -min(1, 0.01 * 100); the intervention start -> 2 * -1
    torch.testing.assert_close(out.reward, torch.tensor([0.0, -0.1, -0.5, -2.0]))
    assert out.success is None and out.success_prob is None


def test_a_classifier_source_loads_its_checkpoint_and_its_success_ends_episodes(tmp_path):
    tiny = {"cameras": ["front"], "image_size": [16, 16], "cnn_channels": [4], "image_feature_dim": 4}
    classifier = SuccessClassifierReward(SuccessClassifierConfig(**tiny, hidden_dims=[8]))
    path = save_success_classifier(classifier, tmp_path / "classifier.safetensors")
    config = load_config(
        [
            "reward=composite",
            "reward.sources.classifier.cameras=[front]",
            "reward.sources.classifier.image_size=[16,16]",
            "reward.sources.classifier.cnn_channels=[4]",
            "reward.sources.classifier.image_feature_dim=4",
            "reward.sources.classifier.hidden_dims=[8]",
            f"reward.sources.classifier.checkpoint={path}",
        ]
    ).reward
    composite = make_reward_model(config)
    assert composite.cameras == ("front",)
    inputs = observations()
    inputs.images["front"] = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8)
    out, alone = composite.score(inputs), classifier.eval().score(inputs)
    penalty = make_reward_model(config.sources["force_penalty"]).score(inputs).reward
    torch.testing.assert_close(out.reward, alone.reward + penalty)
    torch.testing.assert_close(out.success_prob, alone.success_prob)
    assert torch.equal(out.success, alone.success)


def test_a_source_without_its_checkpoint_fails_naming_the_source_key():
    config = load_config(["reward=composite"]).reward
    with pytest.raises(ConfigError, match=r"^reward\.sources\.classifier\.checkpoint: reward=classifier needs"):
        make_reward_model(config)


def test_a_composite_needs_sources_to_be_built_from_config():
    config = CompositeRewardConfig(weights={"intervention": 1.0})  # as a caller building its own members has it
    with pytest.raises(ConfigError, match=r"^reward\.sources: a composite reward needs its sources"):
        make_reward_model(config)
    config.sources = {"intervention": InterventionRewardConfig()}
    assert isinstance(make_reward_model(config).members["intervention"], InterventionReward)


TINY_MEMBER = ["reward.member.cameras=[front]", "reward.member.image_size=[16,16]", "reward.member.cnn_channels=[4]"]
TINY_MEMBER += ["reward.member.image_feature_dim=4", "reward.member.hidden_dims=[8]"]


def test_an_ensemble_builds_one_classifier_per_checkpoint_and_ends_episodes_only_where_all_agree(tmp_path):
    tiny = {"cameras": ["front"], "image_size": [16, 16], "cnn_channels": [4], "image_feature_dim": 4}
    paths, classifiers = [], []
    for i, threshold in enumerate((-0.2, 0.3)):
        torch.manual_seed(i)
        classifiers.append(SuccessClassifierReward(SuccessClassifierConfig(**tiny, hidden_dims=[8])))
        classifiers[-1].logit_threshold.fill_(threshold)
        paths.append(save_success_classifier(classifiers[-1], tmp_path / f"classifier_{i}.safetensors"))
    config = load_config(["reward=ensemble", f"reward.checkpoints=[{paths[0]},{paths[1]}]", *TINY_MEMBER]).reward
    assert config.aggregation == "min"  # the shipped choice: the worst case
    ensemble = make_reward_model(config)
    assert isinstance(ensemble, RewardEnsemble) and ensemble.cameras == ("front",)
    assert [float(m.logit_threshold) for m in ensemble.members] == pytest.approx([-0.2, 0.3])
    inputs = observations()
    inputs.images["front"] = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8)
    out = ensemble.score(inputs)
    alone = [classifier.eval().score(inputs) for classifier in classifiers]
    torch.testing.assert_close(out.reward, torch.minimum(alone[0].reward, alone[1].reward))
    assert out.success.tolist() == (alone[0].success & alone[1].success).tolist()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["reward=ensemble"], r"^reward\.checkpoints: list the members' files"),
        (["reward=ensemble", "reward.checkpoints=[a]", "reward@reward.member=intervention"], "not a trained reward"),
        (["reward=ensemble", "reward.checkpoints=[missing.safetensors]", *TINY_MEMBER], "no such file"),
    ],
)
def test_an_ensemble_without_usable_members_fails_saying_why(overrides, message):
    with pytest.raises((ConfigError, FileNotFoundError), match=message):
        make_reward_model(load_config(overrides).reward)
