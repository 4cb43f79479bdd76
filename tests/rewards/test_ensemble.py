"""RewardEnsemble aggregations and CompositeReward's weighted sum, on members with known outputs
(composing a composite from the Hydra config: test_composite_config.py)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.config import OracleRewardConfig
from robot_rl.rewards.ensemble import CompositeReward, CompositeRewardConfig, RewardEnsemble, RewardEnsembleConfig
from robot_rl.rewards.simple import ForcePenaltyConfig, InterventionReward, InterventionRewardConfig
from robot_rl.sim.config import ConfigError


class FixedReward(RewardModel):
    """Returns the given per-observation values, whatever the input (a stand-in for a learned model)."""

    def __init__(self, reward, success_prob=None, uncertainty=None, cameras=(), success=None):
        super().__init__()
        self.values = torch.nn.Parameter(torch.tensor(reward), requires_grad=False)  # shows up in state_dict
        self.prob = None if success_prob is None else torch.tensor(success_prob)
        self.spread = None if uncertainty is None else torch.tensor(uncertainty)
        self.decision = None if success is None else torch.tensor(success)
        self.cameras = tuple(cameras)

    def forward(self, inputs: RewardInput) -> RewardOutput:
        return RewardOutput(self.values.clone(), success_prob=self.prob, uncertainty=self.spread, success=self.decision)


class OtherKind(FixedReward):
    pass


def inputs(batch: int = 3, cameras=()) -> RewardInput:
    return RewardInput(
        state=torch.zeros(batch, 26),
        images={cam: torch.zeros(batch, 8, 8, 3, dtype=torch.uint8) for cam in cameras},
        intervention_start=torch.tensor([False, True, False][:batch]),
    )


def three_members() -> list[FixedReward]:
    return [
        FixedReward([1.0, 0.0, 2.0], success_prob=[0.9, 0.1, 0.5]),
        FixedReward([3.0, 0.0, 2.0], success_prob=[0.7, 0.3, 0.5]),
        FixedReward([2.0, 3.0, 2.0], success_prob=[0.8, 0.2, 0.5]),
    ]


def test_ensemble_mean_reports_std_as_uncertainty_and_mean_success_prob():
    out = RewardEnsemble(three_members()).score(inputs())
    torch.testing.assert_close(out.reward, torch.tensor([2.0, 1.0, 2.0]))
    # population std over the 3 members: sqrt(2/3), sqrt(2), 0
    torch.testing.assert_close(out.uncertainty, torch.tensor([(2 / 3) ** 0.5, 2**0.5, 0.0]))
    torch.testing.assert_close(out.success_prob, torch.tensor([0.8, 0.2, 0.5]))


def test_ensemble_min_is_the_worst_case_member():
    out = RewardEnsemble(three_members(), RewardEnsembleConfig(aggregation="min")).score(inputs())
    torch.testing.assert_close(out.reward, torch.tensor([1.0, 0.0, 2.0]))


def test_ensemble_mean_minus_var_penalises_disagreement():
    config = RewardEnsembleConfig(aggregation="mean_minus_var", var_coef=0.5)
    out = RewardEnsemble(three_members(), config).score(inputs())
    torch.testing.assert_close(out.reward, torch.tensor([2.0 - 0.5 * 2 / 3, 1.0 - 0.5 * 2.0, 2.0]))


def test_ensemble_without_success_probs_reports_none():
    members = [FixedReward([1.0, 2.0, 3.0]), FixedReward([1.0, 2.0, 3.0])]
    out = RewardEnsemble(members).score(inputs())
    assert out.success_prob is None
    torch.testing.assert_close(out.uncertainty, torch.zeros(3))


def test_ensemble_success_needs_every_member_to_declare_it():
    members = [
        FixedReward([1.0, 1.0, 0.0], success=[True, True, False]),
        FixedReward([1.0, 0.0, 0.0], success=[True, False, False]),
    ]
    out = RewardEnsemble(members, RewardEnsembleConfig(aggregation="min")).score(inputs())
    assert out.success.tolist() == [True, False, False]  # one member fooled is not enough
    torch.testing.assert_close(out.reward, torch.tensor([1.0, 0.0, 0.0]))
    # a member that makes no decision: the ensemble makes none either (it never ends an episode)
    assert RewardEnsemble([members[0], FixedReward([1.0, 1.0, 0.0])]).score(inputs()).success is None


def test_ensemble_refuses_mixed_kinds_and_no_members():
    with pytest.raises(ValueError, match="CompositeReward"):
        RewardEnsemble([FixedReward([1.0, 2.0, 3.0]), OtherKind([1.0, 2.0, 3.0])])
    with pytest.raises(ValueError, match="at least one"):
        RewardEnsemble([])


def test_ensemble_members_are_submodules_and_their_cameras_united():
    members = [FixedReward([0.0, 0.0, 0.0], cameras=["front"]), FixedReward([0.0, 0.0, 0.0], cameras=["wrist"])]
    ensemble = RewardEnsemble(members)
    assert ensemble.cameras == ("front", "wrist")
    assert set(ensemble.state_dict()) == {"members.0.values", "members.1.values"}
    with pytest.raises(KeyError, match="wrist"):
        ensemble.score(inputs(cameras=["front"]))


def test_ensemble_names_the_member_that_produced_nan():
    members = [FixedReward([1.0, 2.0, 3.0]), FixedReward([1.0, float("nan"), 3.0])]
    with pytest.raises(FloatingPointError, match="FixedReward"):
        RewardEnsemble(members).score(inputs())


def test_composite_is_the_weighted_sum_of_its_sources():
    members = {
        "classifier": FixedReward([1.0, 0.0, 0.5], success_prob=[0.9, 0.1, 0.6], uncertainty=[0.1, 0.2, 0.0]),
        "intervention": InterventionReward(),
        "shaping": FixedReward([2.0, 2.0, -2.0], uncertainty=[0.3, 0.0, 0.0]),
    }
    config = CompositeRewardConfig(
        weights={"classifier": 1.0, "intervention": 2.0, "shaping": 0.5}, success_from="classifier"
    )
    composite = CompositeReward(members, config)
    out = composite.score(inputs())
    torch.testing.assert_close(out.reward, torch.tensor([1.0 + 1.0, 0.0 - 2.0 + 1.0, 0.5 - 1.0]))
    torch.testing.assert_close(out.success_prob, torch.tensor([0.9, 0.1, 0.6]))
    # sqrt(sum w^2 u^2); the intervention term is exact (no uncertainty)
    torch.testing.assert_close(out.uncertainty, torch.tensor([(0.01 + 0.25 * 0.09) ** 0.5, 0.2, 0.0]))
    assert set(composite.score_terms(inputs())) == {"classifier", "intervention", "shaping"}


def test_composite_reports_the_success_decision_of_its_success_source():
    members = {
        "classifier": FixedReward([1.0, 0.0, 0.0], success_prob=[0.9, 0.1, 0.4], success=[True, False, False]),
        "other": FixedReward([0.0, 0.0, 0.0], success_prob=[0.0, 1.0, 1.0], success=[False, True, True]),
    }
    weights = {"classifier": 1.0, "other": 1.0}
    out = CompositeReward(members, CompositeRewardConfig(weights=weights, success_from="classifier")).score(inputs())
    assert out.success.tolist() == [True, False, False]  # ends the episode as the classifier alone would
    assert CompositeReward(members, CompositeRewardConfig(weights=weights)).score(inputs()).success is None


def test_composite_cameras_are_the_union_of_its_sources():
    members = {
        "a": FixedReward([0.0], cameras=["front"]),
        "b": FixedReward([0.0], cameras=["front", "wrist"]),
        "c": FixedReward([0.0]),
    }
    composite = CompositeReward(members, CompositeRewardConfig(weights={"a": 1.0, "b": 1.0, "c": 1.0}))
    assert composite.cameras == ("front", "wrist")
    out = composite.score(inputs(batch=1, cameras=["front", "wrist"]))
    assert out.success_prob is None and out.uncertainty is None


def test_composite_weights_must_match_the_sources():
    members = {"a": FixedReward([0.0]), "b": FixedReward([0.0])}
    with pytest.raises(ConfigError, match=r"reward\.weights.*\['b'\]"):
        CompositeReward(members, CompositeRewardConfig(weights={"a": 1.0}))
    with pytest.raises(ConfigError, match=r"reward\.weights.*'c'"):
        CompositeReward(members, CompositeRewardConfig(weights={"a": 1.0, "b": 1.0, "c": 1.0}))


def test_composite_success_from_a_source_without_success_prob_fails_clearly():
    members = {"a": FixedReward([0.0]), "b": FixedReward([0.0])}
    composite = CompositeReward(members, CompositeRewardConfig(weights={"a": 1.0, "b": 0.0}, success_from="b"))
    with pytest.raises(ValueError, match="success_prob"):
        composite.score(inputs(batch=1))


@pytest.mark.parametrize(
    "config, key",
    [
        (RewardEnsembleConfig(aggregation="max"), "reward.aggregation"),
        (RewardEnsembleConfig(var_coef=-1.0), "reward.var_coef"),
        (RewardEnsembleConfig(name="composite"), "reward.name"),
        (CompositeRewardConfig(), "reward.weights"),
        (CompositeRewardConfig(weights={"a": float("inf")}), "reward.weights.a"),
        (CompositeRewardConfig(weights={"a.b": 1.0}), "reward.weights"),
        (CompositeRewardConfig(weights={"keys": 1.0}), "reward.weights"),
        (CompositeRewardConfig(weights={"a": 1.0}, success_from="b"), "reward.success_from"),
        # with source configs (from Hydra), weights and sources must name the same sources
        (CompositeRewardConfig(sources={"a": InterventionRewardConfig()}, weights={"b": 1.0}), "reward.weights"),
        (
            CompositeRewardConfig(sources={"a": InterventionRewardConfig()}, weights={"a": 1.0, "b": 1.0}),
            "reward.sources",
        ),
        # each source validates, under its own key
        (
            CompositeRewardConfig(sources={"a": InterventionRewardConfig(penalty=1.0)}, weights={"a": 1.0}),
            "reward.sources.a.penalty",
        ),
        (
            CompositeRewardConfig(sources={"f": ForcePenaltyConfig(max_penalty=0.0)}, weights={"f": 1.0}),
            "reward.sources.f.max_penalty",
        ),
        # the twin's ground truth is computed by the env, not by a model that could be a source
        (
            CompositeRewardConfig(sources={"truth": OracleRewardConfig(name="oracle_sparse")}, weights={"truth": 1.0}),
            "reward.sources.truth",
        ),
    ],
)
def test_configs_name_the_bad_key(config, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.validate()


def test_configs_are_hydra_structured_configs():
    for schema in (RewardEnsembleConfig, CompositeRewardConfig):
        OmegaConf.structured(schema)  # fails on a field type OmegaConf cannot hold
    cfg = OmegaConf.merge(
        OmegaConf.structured(CompositeRewardConfig), {"weights": {"clip": 1.0, "force": 0.5}, "success_from": "clip"}
    )
    config = OmegaConf.to_object(cfg)
    assert isinstance(config, CompositeRewardConfig) and config.weights == {"clip": 1.0, "force": 0.5}
    config.validate()
