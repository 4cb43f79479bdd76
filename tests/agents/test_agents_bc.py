"""BCAgent: imitates a linear expert on synthetic data; same checkpoint and NaN contract as SAC."""

from __future__ import annotations

import pytest
import torch

from robot_rl.agents import BCAgent, make_agent
from robot_rl.data.batch import Batch
from robot_rl.sim.config import ConfigError
from robot_rl.spec import ACTION_DIM, STATE_DIMS

STATE_DIM = sum(STATE_DIMS.values())  # spec.flatten_state without the twin's task state


def _linear_expert_data(n: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    expert = torch.randn(STATE_DIM, ACTION_DIM, generator=torch.Generator().manual_seed(42)) / STATE_DIM**0.5
    state = torch.randn(n, STATE_DIM, generator=g)
    zeros = torch.zeros(n)
    return Batch(state, {}, (state @ expert).clamp(-1, 1), zeros, state, {}, zeros)


def test_bc_imitates_a_linear_expert(bc_config):
    agent = make_agent(bc_config(hidden_dims=[64, 64], lr=1e-3), STATE_DIM, ACTION_DIM)
    assert isinstance(agent, BCAgent)
    train, held_out = _linear_expert_data(2048, seed=0), _linear_expert_data(512, seed=1)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        idx = torch.randint(0, 2048, (128,), generator=g)
        agent.update(Batch(train.state[idx], {}, train.action[idx], *[train.reward[idx]] * 2, {}, train.reward[idx]))
    with torch.no_grad():
        error = ((agent._policy(held_out.state, {}) - held_out.action) ** 2).mean()
    assert error < 0.05 * held_out.action.var()


def test_bc_with_a_camera_learns_and_resumes_exactly(bc_config, make_batch):
    cameras = {"front": (16, 16)}
    agent = BCAgent(bc_config(lr=1e-3), STATE_DIM, ACTION_DIM, cameras)
    batch = make_batch(32, cameras)
    first = agent.update(batch)["loss/bc"]
    for _ in range(60):
        last = agent.update(batch)["loss/bc"]
    assert last < 0.5 * first
    resumed = BCAgent(bc_config(lr=1e-3, seed=9), STATE_DIM, ACTION_DIM, cameras)
    resumed.load_state_dict(agent.state_dict())
    assert agent.update(batch) == resumed.update(batch)


def test_bc_nan_guard(bc_config, make_batch):
    agent = BCAgent(bc_config(), STATE_DIM, ACTION_DIM)
    before = agent.actor_state_dict()
    batch = make_batch()
    batch.state[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="loss/bc"):
        agent.update(batch)
    assert all(torch.equal(v, agent.actor_state_dict()[k]) for k, v in before.items())


def test_bc_config_errors_name_the_key(bc_config):
    with pytest.raises(ConfigError, match="agent.lr"):
        make_agent(bc_config(lr=0.0), STATE_DIM, ACTION_DIM)
    with pytest.raises(TypeError, match="no agent"):
        make_agent(object(), STATE_DIM, ACTION_DIM)
