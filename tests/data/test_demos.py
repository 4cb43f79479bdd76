"""Demos from the twin's scripted expert into a demo buffer: every recorded frame and state
comes back exactly, one transition per env step, and a saved demo buffer reloads."""

from __future__ import annotations

import numpy as np
import torch

from robot_rl.data.demos import add_episodes, collect_expert_demos, record_episode
from robot_rl.data.replay import ReplayBuffer
from robot_rl.sim.config import SimConfig
from robot_rl.sim.env import SimTwinEnv
from robot_rl.sim.experts import make_expert
from robot_rl.spec import flatten_state


def small_camera_env() -> SimTwinEnv:
    sim = SimConfig(cameras=["front", "wrist"])
    for rig in sim.camera_rigs.values():
        rig.width, rig.height = 16, 12
    return SimTwinEnv("reach", sim=sim)


def test_recorded_expert_episode_round_trips_through_the_buffer(tmp_path):
    env = small_camera_env()
    try:
        expert = make_expert(env)
        episode = record_episode(env, expert.act, seed=3)
        buf = ReplayBuffer.from_spaces(env.observation_space, env.action_space, capacity=200)
    finally:
        env.close()
    assert episode.success and episode.terminated and len(episode) > 1
    add_episodes(buf, [episode])
    assert len(buf) == len(episode)
    batch = buf.transitions_at(np.arange(len(episode)))  # a fresh buffer fills slots 0 .. T in order
    for t in range(len(episode)):
        obs, next_obs = episode.observations[t], episode.observations[t + 1]
        assert torch.equal(batch.state[t], torch.from_numpy(flatten_state(obs["state"])))
        assert torch.equal(batch.next_state[t], torch.from_numpy(flatten_state(next_obs["state"])))
        for cam in ("front", "wrist"):
            assert np.array_equal(batch.images[cam][t].numpy(), obs["images"][cam])
            assert np.array_equal(batch.next_images[cam][t].numpy(), next_obs["images"][cam])
        assert np.array_equal(batch.action[t].numpy(), episode.actions[t])
        assert batch.reward[t].item() == episode.rewards[t]
    assert batch.terminated.tolist() == [0.0] * (len(episode) - 1) + [1.0]


def test_collect_expert_demos_fills_a_buffer_that_saves_and_reloads(tmp_path):
    env = small_camera_env()
    try:
        buf = ReplayBuffer.from_spaces(env.observation_space, env.action_space, capacity=500)
        got = collect_expert_demos(env, buf, num_episodes=3, seed=10)
    finally:
        env.close()
    assert len(got.seeds) == 3 and got.attempts >= 3 and len(buf) == got.transitions
    assert int(buf.terminated.sum()) == 3  # reach terminates on success: one terminal step per demo
    buf.save(tmp_path / "demos")
    back = ReplayBuffer.load(tmp_path / "demos")
    a, b = buf.sample(16, np.random.default_rng(0)), back.sample(16, np.random.default_rng(0))
    assert torch.equal(a.state, b.state) and torch.equal(a.next_images["wrist"], b.next_images["wrist"])
