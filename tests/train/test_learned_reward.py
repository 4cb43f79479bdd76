"""Training on a reward model's reward instead of the twin's oracle: what is stored and what ends
an episode. The model here is a small hand-written RewardModel (TCP above a height), so that the
expected reward of every stored transition is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robot_rl.train.learner as learner
from robot_rl.config import load_config, to_yaml
from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.sim.config import ConfigError
from robot_rl.train.learner import Trainer

HEIGHT = 0.32  # m; reach starts the TCP at 0.25-0.35, so some episodes begin above it


class TCPHeightReward(RewardModel):
    """1 and success where the TCP is above HEIGHT (z is the third state value), else 0."""

    def __init__(self, cameras=()):
        super().__init__()
        self.cameras = tuple(cameras)

    def forward(self, inputs: RewardInput) -> RewardOutput:
        above = inputs.state[:, 2] > HEIGHT
        return RewardOutput(reward=above.float(), success=above)


@pytest.fixture
def with_reward_model(monkeypatch):
    def install(model: RewardModel) -> None:
        monkeypatch.setattr(learner, "make_reward_model", lambda config, device: model)

    return install


def test_stored_rewards_and_episode_ends_are_the_models(with_reward_model, tmp_path, tiny):
    with_reward_model(TCPHeightReward())
    trainer = Trainer(load_config([*tiny, "reward=intervention"]), tmp_path)
    trainer.train()
    for buffer in (trainer.online, trainer.demos):  # demos were recorded with the oracle: relabelled
        idx = buffer.transition_slots()
        next_z = buffer.state[(idx + 1) % buffer.capacity, 2]
        expected = (next_z > HEIGHT).astype(np.float32)
        np.testing.assert_array_equal(buffer.reward[idx], expected)
        # the model's success ends the episode (and only it: the twin's own success does not)
        np.testing.assert_array_equal(buffer.terminated[idx], expected.astype(bool))
        if buffer is trainer.online:
            assert expected.any() and not expected.all()  # both cases were exercised
    assert not trainer.env.task.cfg.terminate_on_success
    # evaluation still scores ground truth on an env that ends on the twin's success
    assert trainer.eval_env.task.cfg.terminate_on_success
    # the report sets the model's success calls and the training return beside the truth
    curve = trainer.curve
    assert len(curve.train_success_reward_model) == len(curve.train_return) == len(curve.env_steps)
    assert curve.train_success_reward_model[-1] is not None and curve.train_return[-1] is not None


def test_a_reward_that_never_decides_success_reports_no_success_rate(with_reward_model, tmp_path, tiny):
    class HeightOnly(TCPHeightReward):
        def forward(self, inputs):
            return RewardOutput(reward=inputs.state[:, 2])

    with_reward_model(HeightOnly())
    trainer = Trainer(load_config([*tiny, "reward=intervention"]), tmp_path)
    trainer.train()
    assert set(trainer.curve.train_success_reward_model) == {None}  # not a 0% success rate
    assert trainer.curve.train_return[-1] is not None


def test_a_reward_model_reading_a_camera_the_sim_lacks_fails_at_start(with_reward_model, tmp_path, tiny):
    with_reward_model(TCPHeightReward(cameras=["front"]))
    with pytest.raises(ConfigError, match="front"):
        Trainer(load_config([*tiny, "reward=intervention"]), tmp_path)


def test_a_non_finite_learned_reward_stops_training_with_a_message(with_reward_model, tmp_path, tiny):
    class NaNReward(TCPHeightReward):
        def forward(self, inputs):
            return RewardOutput(reward=torch.full((len(inputs),), float("nan")))

    with_reward_model(NaNReward())
    with pytest.raises(FloatingPointError, match="NaNReward"):  # at the demos' relabelling, before training
        Trainer(load_config([*tiny, "reward=intervention"]), tmp_path).train()


def test_a_state_based_policy_can_train_on_a_camera_only_the_reward_reads(with_reward_model, tmp_path, tiny):
    # HIL-SERL's split: the success classifier reads cameras the policy does not see
    with_reward_model(TCPHeightReward(cameras=["front"]))
    camera = ["sim.cameras=[front]", "sim.camera_rigs.front.height=24", "sim.camera_rigs.front.width=32"]
    config = load_config([*tiny, *camera, "agent.cameras=[]", "reward=intervention"])
    trainer = Trainer(config, tmp_path)
    trainer.train()
    assert trainer.agent.cameras == [] and trainer.spec["cameras"] == {}
    assert trainer.online.cameras == {"front": (24, 32)}  # stored for relabelling with a retrained reward
    frames = trainer.online.transitions_at(trainer.online.transition_slots()).next_images["front"]
    assert frames.shape[1:] == (24, 32, 3) and frames.float().std() > 0  # real renders, not placeholders
    trainer.online.close()
    (tmp_path / "config.yaml").write_text(to_yaml(config))  # as `robot-rl train` writes it
    env = learner.make_env(config)
    agent, step = learner.load_trained_agent(load_config([*tiny, *camera]), tmp_path, env)  # eval's own agent config
    assert agent.cameras == [] and step == 120


def test_a_policy_camera_that_is_not_rendered_fails_at_start(tmp_path, tiny):
    with pytest.raises(ConfigError, match=r"agent.cameras: \['wrist'\] not among the rendered"):
        Trainer(load_config([*tiny, "sim.cameras=[]", "agent.cameras=[wrist]"]), tmp_path)
