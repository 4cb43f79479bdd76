"""Demonstrations for the demo / intervention buffer: recorded episodes, and the twin's scripted
expert as a source of them. (Reading ROS 2 bags comes later; it will yield the same Episode.)"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from robot_rl.data.replay import ReplayBuffer
from robot_rl.sim.experts import make_expert

Policy = Callable[[dict, dict], np.ndarray]  # (obs, info) -> action


@dataclass
class Episode:
    observations: list[dict]  # obs_0 .. obs_T, spec format
    actions: np.ndarray  # float32 [T, A]
    rewards: np.ndarray  # float32 [T]
    terminated: bool  # of the last step
    truncated: bool
    success: bool  # info["success"] at the end
    seed: int | None = None

    def __len__(self) -> int:
        return len(self.actions)


def record_episode(env: gym.Env, policy: Policy, seed: int | None = None) -> Episode:
    obs, info = env.reset(seed=seed)
    observations, actions, rewards = [obs], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = np.asarray(policy(obs, info), dtype=np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
    return Episode(
        observations,
        np.stack(actions),
        np.asarray(rewards, np.float32),
        bool(terminated),
        bool(truncated),
        bool(info.get("success", False)),
        seed,
    )


def add_episodes(buffer: ReplayBuffer, episodes: Iterable[Episode]) -> None:
    for ep in episodes:
        buffer.add_episode(ep.observations, ep.actions, ep.rewards, ep.terminated, ep.truncated)


@dataclass
class DemoCollection:
    seeds: list[int]  # of the episodes put into the buffer
    attempts: int
    transitions: int


def collect_expert_demos(
    env,
    buffer: ReplayBuffer,
    num_episodes: int,
    seed: int = 0,
    only_successes: bool = True,
    max_attempts: int | None = None,
) -> DemoCollection:
    """Run the scripted expert of env's task (a robot_rl.sim.env.SimTwinEnv) on seeds seed,
    seed+1, ... and add its episodes to `buffer` until it holds `num_episodes` of them; with
    only_successes, failed ones are skipped (RLPD's demos are successes), up to max_attempts
    (default 3 * num_episodes) episodes in all."""
    expert = make_expert(env)
    max_attempts = 3 * num_episodes if max_attempts is None else max_attempts
    kept: list[int] = []
    attempts = transitions = 0
    while len(kept) < num_episodes and attempts < max_attempts:
        expert.reset()
        ep = record_episode(env, expert.act, seed + attempts)
        attempts += 1
        if only_successes and not ep.success:
            continue
        add_episodes(buffer, [ep])
        kept.append(ep.seed)
        transitions += len(ep)
    if len(kept) < num_episodes:
        raise RuntimeError(
            f"the scripted expert succeeded in {len(kept)} of {attempts} episodes, {num_episodes} were asked for"
        )
    return DemoCollection(kept, attempts, transitions)
