"""The learner loop on the twin (sim=state, task=reach, a few dozen steps): what it stores and
what the agent sees, not how well it learns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robot_rl.config import load_config
from robot_rl.train.learner import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny) -> Trainer:
    trainer = Trainer(load_config(tiny), tmp_path_factory.mktemp("run"))
    trainer.train()
    return trainer


def _transitions(trainer: Trainer) -> tuple[np.ndarray, np.ndarray]:
    buffer = trainer.online
    idx = np.flatnonzero(buffer.has_next)
    return buffer.state[idx], buffer.state[(idx + 1) % buffer.capacity]


def test_evaluation_never_splices_into_a_training_episode(trained):
    # Reach's goal (the privileged task state: goal, then goal - TCP; the goal is the 3 values
    # before the last 3) is fixed within an episode, so
    # every stored transition keeps it. Evaluating on the training env used to reset it mid-
    # episode: the next transition then went from a training observation to an evaluation one.
    state, next_state = _transitions(trained)
    assert len(state) >= 100
    np.testing.assert_array_equal(state[:, -6:-3], next_state[:, -6:-3])


def test_state_normalization_is_fitted_on_the_buffers_before_the_first_update(trained):
    encoder = trained.agent.encoder
    online, demos = trained.online, trained.demos
    # Fitted once, at step learning_starts (its transition stored first), on the random steps
    # so far and the demos.
    first = online.state[np.flatnonzero(online.has_next)][: trained.config.train.learning_starts + 1]
    states = np.concatenate([first, demos.state[np.flatnonzero(demos.has_next)]])
    np.testing.assert_allclose(encoder.state_mean.numpy(), states.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(encoder.state_std.numpy(), np.maximum(states.std(0), 1e-2), rtol=1e-4, atol=1e-5)
    # Positions (metres) and the wrench (newtons) enter the network on the same scale.
    standardized = (torch.as_tensor(states) - encoder.state_mean) / encoder.state_std
    varying = states.std(0) > 1e-2
    assert torch.allclose(standardized.std(0, correction=0)[varying], torch.ones(int(varying.sum())), atol=1e-3)


def test_the_statistics_are_part_of_the_checkpoint(trained):
    state = trained.agent.state_dict()
    assert torch.equal(state["encoder.state_std"], trained.agent.encoder.state_std)
    assert "encoder.state_mean" in trained.agent.actor_state_dict()  # pushed to async actors too


def test_a_state_only_agent_sees_the_standardized_state_itself(trained):
    # No cameras: no learned projection between the state and the actor / critic MLPs.
    encoder = trained.agent.encoder
    assert encoder.output_dim == trained.state_dim
    state = torch.as_tensor(trained.online.state[:5])
    expected = (state - encoder.state_mean) / encoder.state_std
    torch.testing.assert_close(encoder(state, {}), expected)


def test_a_run_that_stopped_before_its_first_checkpoint_starts_over(tmp_path, tiny, caplog):
    """Killed after its buffers were made, before any checkpoint: the same command starts the run
    again (it failed with 'already holds a replay buffer')."""
    config = load_config(tiny)
    first = Trainer(config, tmp_path)
    obs, _ = first.env.reset(seed=0)
    action = np.zeros(7, np.float32)
    next_obs, reward, terminated, truncated, _ = first.env.step(action)
    first.online.add(obs, action, reward, next_obs, terminated, truncated)
    first.online.flush()
    with caplog.at_level("WARNING"):
        again = Trainer(config, tmp_path)
    assert again.step == 0 and len(again.online) == 0
    assert len(again.demos) == len(first.demos)  # collected anew, not appended to the old ones
    assert "stopped before its first checkpoint: starting over, its buffers discarded" in caplog.text


def test_checkpoints_flush_both_buffers_in_place_and_a_resume_reopens_them(tmp_path, tiny):
    """No checkpoint copies a buffer (the demo buffer's copy was ~2 GB with cameras): both live in
    the run directory, and a resumed trainer continues on exactly what they hold."""
    trained = Trainer(load_config(tiny), tmp_path)
    trained.train()
    latest = json.loads((trained.run_dir / "checkpoints" / "latest.json").read_text())
    assert {name: entry["in_place"] for name, entry in latest["buffers"].items()} == {"online": True, "demos": True}
    assert not list((trained.run_dir / "checkpoints").glob("step_*/buffers"))
    demos = {name: np.array(getattr(trained.demos, name)) for name in ("state", "action", "reward", "has_next")}
    trained.online.close()  # give up the buffers' locks (a killed learner's go with its process)
    trained.demos.close()
    resumed = Trainer(trained.config, trained.run_dir)
    assert resumed.step == trained.step and len(resumed.demos) == len(trained.demos) > 0
    for name, values in demos.items():
        np.testing.assert_array_equal(getattr(resumed.demos, name), values)
