"""The actor's bookkeeping on a robot: one observation in, one action and one executed step out.

The ROS actor node (ros_nodes/actor_node.py) calls `EpisodeActor.on_observation` at every control
tick with the aggregator's observation and the operator's command if one is intervening; it gets
back the action to command and, from the second tick of an episode on, the StepMessage of the step
that just ended (observation, the action executed, reward, next observation, ends). Everything that
decides what to do lives here, with no rclpy, so it is tested without DDS:

  which action    the operator's while an intervention is active (HIL-SERL: the human's action is
                  what the robot did, so it is what the step stores), else the policy's. An
                  intervention begun between episodes (while the robot resets) is ignored until
                  released: the reset's motion is not the operator's, nor a correction; before
                  `random_steps` steps in all (the learner's `learning_starts`) a uniform random one.
  the reward      `reward_fn(next_obs_message, action) -> StepReward`: the twin's oracle
                  (privileged ground truth passed through by the aggregator) or a reward model's
                  score, which the node fetches from the reward server before the tick (what it
                  needs for the request: `open_step`). Where the operator took over with the step,
                  the step says so and carries the server's score of the policy's action with the
                  intervention start (RLIF's penalty: the learner stores it as the policy's).
  episode ends    terminated: success when the task ends episodes on success; truncated: the
                  task's step limit, the twin truncating (physics diverged), or the operator's
                  end-episode key. After the last step the actor waits for a reset.
  weights         `load_weights` swaps the policy between two ticks; the control loop never waits
                  for the learner (the node calls it from another thread, hence the lock).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from robot_rl.robot.messages import ObservationMessage, StepMessage
from robot_rl.spec import ACTION_DIM

Policy = Callable[[dict], np.ndarray]  # spec observation -> float32[7]


class StepReward(NamedTuple):
    reward: float  # the executed action's
    success: bool
    start_reward: float = math.nan  # the policy's action with an intervention start; NaN: not scored


RewardFn = Callable[[ObservationMessage, np.ndarray], StepReward]  # (next obs, executed action)


def oracle_reward(message: ObservationMessage, action: np.ndarray) -> StepReward:
    """The twin's ground truth for the observation an action led to (labelled an oracle in logs)."""
    if not message.privileged:
        raise ValueError(
            "oracle reward: the observation carries no privileged ground truth (the twin's sim/privileged); "
            "on a real robot use a learned reward"
        )
    return StepReward(float(message.privileged["reward"]), bool(message.privileged["success"]))


def operator_reward(message: ObservationMessage, action: np.ndarray) -> StepReward:
    """While an operator records demos or labels (the actor holding still otherwise): the twin's
    ground truth where the observation carries it, else none. The operator's success mark labels the
    episode, and a learned reward relabels the demos where they are used, so no reward model (which
    may not be trained yet) has to run."""
    return oracle_reward(message, action) if message.privileged else StepReward(0.0, False)


@dataclass
class ActorCounters:
    episodes: int = 0
    steps: int = 0  # executed steps over all episodes
    intervened_steps: int = 0
    weight_version: int = -1  # of the policy acting now; -1: its initial weights


class EpisodeActor:
    def __init__(
        self,
        policy: Policy,
        reward_fn: RewardFn,
        max_episode_steps: int,
        terminate_on_success: bool,
        random_steps: int = 0,
        seed: int = 0,
        episode_prefix: str = "episode",
    ):
        self.policy, self.reward_fn = policy, reward_fn
        self.max_episode_steps, self.terminate_on_success = max_episode_steps, terminate_on_success
        self.random_steps, self.rng = random_steps, np.random.default_rng(seed)
        self.episode_prefix = episode_prefix
        self.counters = ActorCounters()
        self._lock = threading.Lock()
        self._episode: str | None = None  # None: waiting for the first observation of an episode
        self._step = 0
        self._last: tuple[ObservationMessage, np.ndarray, np.ndarray, bool] | None = (
            None  # obs, action, policy's, human's
        )
        self._end_requested = False
        self._success = False
        self._previous_intervened = False  # whether the step before the open one was intervened
        self._ignored_intervention = False  # begun during a reset: ignored until released

    @property
    def in_episode(self) -> bool:
        return self._episode is not None

    def open_step(self) -> tuple[np.ndarray, np.ndarray, bool] | None:
        """The step the next observation closes: (the action executed, the policy's, whether an
        intervention started with it); None when the next observation opens the episode (nothing
        to reward)."""
        if self._episode is None or self._last is None:
            return None
        _, action, policy_action, intervened = self._last
        return action, policy_action, intervened and not self._previous_intervened

    def start_episode(self) -> str:
        """The next observation is the first of a new episode (call after the robot was reset)."""
        self._episode = f"{self.episode_prefix}_{self.counters.episodes:06d}"
        self.counters.episodes += 1
        self._step, self._last, self._end_requested, self._success = 0, None, False, False
        self._previous_intervened = False
        return self._episode

    def set_intervening(self, active: bool) -> bool:
        """The operator's intervention flag changed. False: it began between episodes, during the
        reset, and is ignored until released (the caller says so)."""
        if not active:
            self._ignored_intervention = False
        elif self._episode is None:
            self._ignored_intervention = True
        return not self._ignored_intervention

    def request_end(self) -> None:
        """The operator ends the episode: the next step is its last (truncated)."""
        self._end_requested = True

    def mark_success(self) -> None:
        """The operator says the task is done: the episode's success label, and its end."""
        self._success = True
        self._end_requested = True

    def load_weights(self, load: Callable[[], None], version: int) -> None:
        """Run `load` (which swaps the policy's weights) between two ticks."""
        with self._lock:
            load()
            self.counters.weight_version = version

    def on_observation(
        self, message: ObservationMessage, human_action: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, StepMessage | None]:
        """(action to command, or None when the episode is over; the step that ended, if any)."""
        if self._episode is None:
            raise RuntimeError("on_observation outside an episode: call start_episode after the reset")
        step = self._close_step(message) if self._last is not None else None
        if step is not None and (step.terminated or step.truncated):
            self._episode = None
            return None, step
        with self._lock:
            policy_action = self._policy_action(message.obs)
        if self._ignored_intervention:
            human_action = None
        intervened = human_action is not None
        action = np.asarray(human_action, np.float32) if intervened else policy_action
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"human action: expected {ACTION_DIM} values, got shape {action.shape}")
        self._last = (message, action, policy_action, intervened)
        return action, step

    def _policy_action(self, obs: dict) -> np.ndarray:
        if self.counters.steps < self.random_steps:
            return self.rng.uniform(-1.0, 1.0, ACTION_DIM).astype(np.float32)
        return np.asarray(self.policy(obs), np.float32)

    def _close_step(self, next_message: ObservationMessage) -> StepMessage:
        message, action, policy_action, intervened = self._last
        intervention_start = intervened and not self._previous_intervened
        reward, success, start_reward = self.reward_fn(next_message, action)
        self._success = self._success or success
        self._step += 1
        self.counters.steps += 1
        self.counters.intervened_steps += int(intervened)
        self._previous_intervened = intervened
        terminated = bool(success and self.terminate_on_success)
        truncated = not terminated and (
            self._step >= self.max_episode_steps
            or self._end_requested
            or bool(next_message.privileged.get("truncated", False))
        )
        return StepMessage(
            episode=self._episode,
            step=self._step - 1,
            stamp_ns=next_message.stamp_ns,
            obs=message.obs,
            action=action,
            policy_action=policy_action,
            intervened=intervened,
            reward=float(reward),
            next_obs=next_message.obs,
            terminated=terminated,
            truncated=truncated,
            success=self._success,
            intervention_start=intervention_start,
            start_reward=float(start_reward) if intervention_start else math.nan,
        )
