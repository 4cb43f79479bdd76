"""InterventionReward (RLIF) and ContactForcePenalty: values by hand, config checks naming the key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.simple import (
    ContactForcePenalty,
    ForcePenaltyConfig,
    InterventionReward,
    InterventionRewardConfig,
)
from robot_rl.sim.config import ConfigError
from robot_rl.spec import STATE_DIMS, flatten_state


def states_with_wrenches(wrenches: list[list[float]], task_dim: int = 0) -> torch.Tensor:
    """Flattened states (spec.flatten_state) whose only non-zero part is the given 12-value wrench."""
    rows = []
    for wrench in wrenches:
        state = {key: np.zeros(dim, np.float32) for key, dim in STATE_DIMS.items()}
        state["wrench"] = np.asarray(wrench, np.float32)
        if task_dim:
            state["task"] = np.full(task_dim, 99.0, np.float32)  # must not be read as a wrench
        rows.append(flatten_state(state))
    return torch.as_tensor(np.stack(rows))


def wrench(mean_force=(0, 0, 0), mean_torque=(0, 0, 0), max_force=(0, 0, 0), max_torque=(0, 0, 0)) -> list[float]:
    return [*mean_force, *mean_torque, *max_force, *max_torque]


def test_intervention_reward_is_penalty_only_where_an_intervention_starts():
    model = InterventionReward()
    inputs = RewardInput(
        state=torch.zeros(4, 26), images={}, intervention_start=torch.tensor([False, True, False, True])
    )
    out = model.score(inputs)
    assert out.reward.dtype == torch.float32
    assert out.reward.tolist() == [0.0, -1.0, 0.0, -1.0]
    assert out.success_prob is None and out.uncertainty is None


def test_intervention_reward_uses_the_configured_penalty():
    model = InterventionReward(InterventionRewardConfig(penalty=-0.5))
    out = model.score(RewardInput(torch.zeros(2, 26), {}, intervention_start=torch.tensor([1, 0])))
    assert out.reward.tolist() == [-0.5, 0.0]


def test_intervention_reward_without_intervention_flags_fails_clearly():
    with pytest.raises(ValueError, match="intervention_start"):
        InterventionReward().score(RewardInput(torch.zeros(2, 26), {}))


def test_intervention_config_rejects_a_non_negative_penalty():
    with pytest.raises(ConfigError, match=r"reward\.penalty"):
        InterventionRewardConfig(penalty=0.0).validate()
    with pytest.raises(ConfigError, match=r"reward\.penalty"):
        InterventionReward(InterventionRewardConfig(penalty=1.0))


def test_force_penalty_is_zero_below_threshold_and_linear_above():
    config = ForcePenaltyConfig(force_threshold=10.0, force_scale=0.1, max_penalty=100.0)
    states = states_with_wrenches(
        [
            wrench(max_force=(0, 0, 5)),  # 5 N: free
            wrench(max_force=(0, 6, 8)),  # 10 N: at the threshold
            wrench(max_force=(0, 0, -30)),  # 30 N (sign does not matter): -0.1 * 20
            wrench(max_force=(12, 16, 0), mean_force=(99, 0, 0)),  # 20 N peak; the mean is not read
        ]
    )
    out = ContactForcePenalty(config).score(RewardInput(states, {}))
    torch.testing.assert_close(out.reward, torch.tensor([0.0, 0.0, -2.0, -1.0]))


def test_force_penalty_mean_statistic_reads_the_mean_force():
    config = ForcePenaltyConfig(statistic="mean", force_threshold=10.0, force_scale=0.1)
    states = states_with_wrenches([wrench(mean_force=(0, 0, 15), max_force=(0, 0, 500))])
    torch.testing.assert_close(ContactForcePenalty(config).score(RewardInput(states, {})).reward, torch.tensor([-0.5]))


def test_force_penalty_torque_term_and_clip():
    config = ForcePenaltyConfig(
        force_threshold=10.0, force_scale=0.1, torque_threshold=1.0, torque_scale=0.5, max_penalty=1.0
    )
    states = states_with_wrenches(
        [
            wrench(max_torque=(0, 0, 2)),  # 1 Nm over: -0.5
            wrench(max_force=(0, 0, 12), max_torque=(0, 0, 1.5)),  # -0.2 - 0.25
            wrench(max_force=(0, 0, 1000)),  # a hard collision: clipped at -max_penalty
        ]
    )
    out = ContactForcePenalty(config).score(RewardInput(states, {}))
    torch.testing.assert_close(out.reward, torch.tensor([-0.5, -0.45, -1.0]))


def test_force_penalty_reads_the_wrench_when_task_state_follows():
    config = ForcePenaltyConfig(force_threshold=10.0, force_scale=0.1)
    states = states_with_wrenches([wrench(max_force=(0, 0, 11))], task_dim=9)
    torch.testing.assert_close(ContactForcePenalty(config).score(RewardInput(states, {})).reward, torch.tensor([-0.1]))


def test_force_penalty_rejects_a_state_without_wrench():
    with pytest.raises(ValueError, match="wrench"):
        ContactForcePenalty().score(RewardInput(torch.zeros(2, 14), {}))


@pytest.mark.parametrize(
    "override, key",
    [
        ({"statistic": "median"}, "reward.statistic"),
        ({"force_threshold": -1.0}, "reward.force_threshold"),
        ({"torque_scale": -0.1}, "reward.torque_scale"),
        ({"max_penalty": 0.0}, "reward.max_penalty"),
        ({"name": "intervention"}, "reward.name"),
    ],
)
def test_force_penalty_config_names_the_bad_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ForcePenaltyConfig(**override).validate()


def test_configs_are_hydra_structured_configs():
    for schema in (InterventionRewardConfig, ForcePenaltyConfig):
        config = OmegaConf.to_object(OmegaConf.structured(schema))  # fails on a type OmegaConf cannot hold
        assert config == schema()
        config.validate()
