"""`robot-rl reward-eval`'s core on the twin: metrics against ground truth, plots, summaries. The
models are small hand-written RewardModels on the privileged state, so the expected figures are
known: a lift detector agrees with ground-truth success, a constant reward carries no information."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robot_rl.config import load_config
from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.evaluate import EPISODE_KINDS, ScoredEpisode, evaluate_reward_model, fidelity_summary
from robot_rl.rollout import make_env
from robot_rl.spec import STATE_DIMS

CUBE_Z = sum(STATE_DIMS.values()) + 2  # the privileged task state starts with the cube's position


class CubeLiftedReward(RewardModel):
    """Success probability rising with the cube's height; success above 4.5 cm of lift."""

    def forward(self, inputs: RewardInput) -> RewardOutput:
        lift = inputs.state[:, CUBE_Z] - 0.02
        prob = torch.sigmoid((lift - 0.045) * 400.0)
        return RewardOutput(reward=prob, success_prob=prob, success=lift > 0.045)


class ConstantReward(RewardModel):
    def forward(self, inputs: RewardInput) -> RewardOutput:
        return RewardOutput(reward=torch.zeros(len(inputs)))


@pytest.fixture(scope="module")
def env():
    env = make_env(load_config(["task=pick_cube", "sim=state", "task.max_episode_steps=40"]), learned_reward=True)
    yield env
    env.close()


def test_a_lift_detector_agrees_with_ground_truth(env, tmp_path):
    summary = evaluate_reward_model(env, CubeLiftedReward(), "lift", 1, 0, tmp_path, torch.device("cpu"))
    assert summary["all"]["success_steps"] > 0  # the expert episode succeeded
    assert summary["all"]["success_roc_auc"] > 0.95
    assert summary["all"]["success_precision"] > 0.9 and summary["all"]["success_recall"] > 0.9
    assert 0.0 <= summary["all"]["epic_distance_to_oracle_dense"] < 0.5
    for kind in EPISODE_KINDS:
        assert (tmp_path / f"episode_{kind}_00.png").stat().st_size > 0
    assert json.loads((tmp_path / "summary.json").read_text())["reward"] == "lift"
    table = (tmp_path / "summary.md").read_text()
    assert all(f"| {row} |" in table for row in ("all", *EPISODE_KINDS))


def test_a_constant_reward_carries_no_information():
    episodes = [
        ScoredEpisode(
            "expert",
            0,
            reward=[0.0] * 4,
            score=[0.0] * 4,
            decision=[False] * 4,
            oracle=[0.1, 0.5, 0.9, 1.0],
            success=[False, False, True, True],
        ),
        ScoredEpisode(
            "random",
            1,
            reward=[0.0] * 4,
            score=[0.0] * 4,
            decision=[False] * 4,
            oracle=[0.1, 0.1, 0.2, 0.1],
            success=[False] * 4,
        ),
    ]
    summary = fidelity_summary(episodes)
    assert summary["success_roc_auc"] == pytest.approx(0.5)  # all tied
    assert summary["success_recall"] == 0.0
    assert summary["epic_distance_to_oracle_dense"] is None  # a constant has no correlation
    assert summary["return_spearman"] is None


def test_reward_eval_refuses_episodes_that_end_on_success(tmp_path):
    env = make_env(load_config(["task=pick_cube", "sim=state"]))
    try:
        with pytest.raises(ValueError, match="terminate_on_success"):
            evaluate_reward_model(env, ConstantReward(), "c", 1, 0, tmp_path, torch.device("cpu"))
    finally:
        env.close()


def test_success_roc_auc_is_none_when_ground_truth_has_one_class():
    episode = ScoredEpisode(
        "random",
        0,
        reward=list(np.linspace(0, 1, 5)),
        score=list(np.linspace(0, 1, 5)),
        decision=[False] * 5,
        oracle=list(np.linspace(0, 0.2, 5)),
        success=[False] * 5,
    )
    summary = fidelity_summary([episode])
    assert summary["success_roc_auc"] is None and "success_roc_auc_why_none" in summary
