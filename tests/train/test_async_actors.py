"""Async training: the in-process actor thread, and any other source of executed steps (the ROS
learner node's) through the same `Actors` contract."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

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


class LockstepActors:
    """Steps the trainer's env when the learner asks, with the learner's own agent and generator,
    as the synchronous loop does: async training on these steps must be sync training exactly."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def start(self, actor_state):
        self.obs, _ = self.trainer.env.reset(seed=self.trainer._episode_seed())

    def get(self):
        t = self.trainer
        if t.step < t.config.train.learning_starts:
            action = t.rng.uniform(-1.0, 1.0, ACTION_DIM).astype(np.float32)
        else:
            action = t.agent.act(self.obs)
        next_obs, reward, terminated, truncated, info = t.env.step(action)
        step = StepMessage(
            "episode", 0, 0, self.obs, action, action, False, float(reward), next_obs, terminated, truncated,
            bool(info["success"]),
        )  # fmt: skip
        self.obs = next_obs
        if terminated or truncated:
            self.obs, _ = t.env.reset(seed=t._episode_seed())
        return step

    def push_weights(self, actor_state, version):
        pass

    def close(self):
        pass


def test_the_async_loop_on_lockstep_steps_trains_exactly_as_the_sync_loop(tmp_path, tiny):
    """The learner side of async mode (storing, updating from the same step on, evaluating) is the
    sync loop's: what differs in async runs is only where the actions come from."""
    config = load_config(tiny)
    sync, lockstep = Trainer(config, tmp_path / "sync"), Trainer(config, tmp_path / "lockstep")
    sync.train()
    lockstep.train(LockstepActors(lockstep))
    assert sync.agent.update_step == lockstep.agent.update_step > 0
    rows = np.flatnonzero(sync.online.has_next)
    np.testing.assert_array_equal(rows, np.flatnonzero(lockstep.online.has_next))
    np.testing.assert_array_equal(sync.online.state[rows], lockstep.online.state[rows])
    np.testing.assert_array_equal(sync.online.action[rows], lockstep.online.action[rows])
    for name, weights in sync.agent.actor_state_dict().items():
        torch.testing.assert_close(weights, lockstep.agent.actor_state_dict()[name], rtol=0, atol=0)
    for trainer in (sync, lockstep):
        trainer.online.close()
        trainer.demos.close()


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


def test_an_operators_intervention_start_penalises_the_policys_action_over_ros(tmp_path, tiny):
    """RLIF through the graph: the step where the operator took over carries the server's reward
    for the policy's action with the start; the learner stores it as in-process, a terminal
    transition of its own beside the executed (human's) step."""
    config = load_config([*tiny, "hil=rlif"])
    steps = twin_steps(config, config.train.env_steps, intervened_every=10)
    policy_action = np.full(ACTION_DIM, 0.5, np.float32)
    for step in steps:
        step.reward = 0.0  # what the intervention reward gives any executed step
        if step.intervened:
            step.intervention_start, step.start_reward, step.policy_action = True, -1.0, policy_action
    trainer = Trainer(config, tmp_path / "run")
    trainer.train(ScriptedActors(steps))

    starts = sum(s.intervention_start for s in steps)
    rows = np.flatnonzero(trainer.online.has_next)
    assert len(rows) == config.train.env_steps + starts
    penalised = np.flatnonzero(trainer.online.reward[rows] == -1.0)  # positions among the stored
    assert len(penalised) == starts and trainer.online.terminated[rows[penalised]].all()
    np.testing.assert_array_equal(trainer.online.action[rows[penalised]], np.tile(policy_action, (starts, 1)))
    # each follows the human's unpenalised step from the same state
    human = rows[penalised - 1]
    np.testing.assert_array_equal(trainer.online.state[rows[penalised]], trainer.online.state[human])
    assert (trainer.online.reward[human] == 0.0).all() and not trainer.online.terminated[human].any()


def test_an_intervention_start_without_a_scored_penalty_stops_rlif(tmp_path, tiny):
    config = load_config([*tiny, "hil=rlif"])
    steps = twin_steps(config, config.train.env_steps, intervened_every=10)
    for step in steps:
        step.intervention_start = step.intervened  # start_reward stays NaN: nothing scored it
    with pytest.raises(RuntimeError, match="no reward scored the policy's action"):
        Trainer(config, tmp_path / "run").train(ScriptedActors(steps))
