"""Async training: the in-process actor thread, and any other source of executed steps (the ROS
learner node's) through the same `Actors` contract."""

from __future__ import annotations

import threading

import numpy as np

from robot_rl.config import load_config
from robot_rl.robot.messages import StepMessage
from robot_rl.rollout import make_env
from robot_rl.spec import ACTION_DIM
from robot_rl.train.learner import Trainer


def test_async_mode_trains_on_the_actor_threads_steps(tmp_path, tiny):
    config = load_config([*tiny, "train.mode=async"])
    trainer = Trainer(config, tmp_path / "run")
    result = trainer.train()
    assert trainer.step == config.train.env_steps
    assert int(trainer.online.has_next.sum()) == config.train.env_steps  # every executed step stored once
    assert trainer.agent.update_step > 0
    assert result["curve"]["env_steps"][-1] == config.train.env_steps


class ScriptedActors:
    """Steps recorded from the twin, handed over as a remote actor would; records the pushes."""

    def __init__(self, steps: list[StepMessage]):
        self.steps, self.pushes, self.closed = list(steps), [], threading.Event()
        self.started_with = None

    def start(self, actor_state):
        self.started_with = actor_state

    def get(self):
        return self.steps.pop(0) if self.steps else None

    def push_weights(self, actor_state, version):
        self.pushes.append(version)

    def close(self):
        self.closed.set()


def twin_steps(config, count: int, intervened_every: int) -> list[StepMessage]:
    env, rng = make_env(config), np.random.default_rng(0)
    obs, _ = env.reset(seed=3)
    steps, episode, index = [], 0, 0
    for i in range(count):
        action = rng.uniform(-1, 1, ACTION_DIM).astype(np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        steps.append(
            StepMessage(
                f"robot_a_{episode:06d}", index, i, obs, action, action, i % intervened_every == 0,
                float(reward), next_obs, terminated, truncated, bool(info["success"]),
            )
        )  # fmt: skip
        obs, index = next_obs, index + 1
        if terminated or truncated:
            obs, _ = env.reset(seed=4 + episode)
            episode, index = episode + 1, 0
    env.close()
    return steps


def test_steps_from_other_actors_are_stored_and_the_operators_go_to_the_demos_too(tmp_path, tiny):
    config = load_config([*tiny, "train.weight_push_every=5"])
    trainer = Trainer(config, tmp_path / "run")
    demos_before = int(trainer.demos.has_next.sum())
    steps = twin_steps(config, config.train.env_steps, intervened_every=10)
    actors = ScriptedActors(steps)
    trainer.train(actors)

    assert actors.started_with is not None and actors.closed.is_set()
    assert int(trainer.online.has_next.sum()) == config.train.env_steps
    intervened = sum(s.intervened for s in steps)
    assert int(trainer.demos.has_next.sum()) == demos_before + intervened
    # weights went out every 5 updates, numbered by update
    assert actors.pushes and all(v % 5 == 0 for v in actors.pushes)
    stored = trainer.online.action[np.flatnonzero(trainer.online.has_next)]
    np.testing.assert_array_equal(stored, np.stack([s.action for s in steps]))
