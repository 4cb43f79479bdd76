"""Demonstrations for the demo / intervention buffer: recorded episodes, from the twin's scripted
expert or from the episode recorder's ROS 2 bags (robot_rl/data/bags.py), both as an Episode."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

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
    # What a recording on the robot adds (robot_rl/data/bags.py); None for an episode recorded here.
    policy_actions: np.ndarray | None = None  # float32 [T, A]: the policy's proposals (actions: executed)
    intervened: np.ndarray | None = None  # bool [T]: the operator's action was the one executed
    successes: np.ndarray | None = None  # bool [T]: the success label as known at each step
    ended: bool = True  # False: the recording stopped before the episode ended (then truncated)

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


def read_demo_bags(folder: Path | str, only_successes: bool = True) -> list[Episode]:
    """The episodes recorded as bags in `folder` (one bag folder each, robot_rl/data/bags.py), in name
    order; with only_successes, those whose success label is set (RLPD's demos are successes). Feed
    them to a buffer with add_episodes."""
    from robot_rl.data.bags import read_episode_bags  # here, not on top: bags.py imports Episode from this module

    return [ep for ep in read_episode_bags(folder) if ep.success or not only_successes]


def check_demo_episodes(
    episodes: list[Episode], state_dim: int, camera_sizes: dict[str, tuple[int, int]], source: str
) -> None:
    """Recorded demos must fit the run's buffers: the same state layout and, for every camera the run
    stores, frames of its size. Raises ValueError saying which episode differs and how."""
    from robot_rl.spec import flatten_state

    for index, episode in enumerate(episodes):
        obs = episode.observations[0]
        where = (
            f"{source}: demo {index} (seed {episode.seed})" if episode.seed is not None else f"{source}: demo {index}"
        )
        recorded_dim = len(flatten_state(obs["state"]))
        if recorded_dim != state_dim:
            raise ValueError(
                f"{where} has a {recorded_dim}-D state, this run's is {state_dim}-D: recorded with another "
                "sim/task (e.g. sim=state adds the task's privileged state)"
            )
        images = obs.get("images", {})
        for cam, (height, width) in camera_sizes.items():
            if cam not in images:
                raise ValueError(f"{where} has no {cam!r} camera (it has {sorted(images)}); this run stores {cam!r}")
            if images[cam].shape[:2] != (height, width):
                raise ValueError(
                    f"{where}: {cam!r} frames are {images[cam].shape[0]}x{images[cam].shape[1]}, this run "
                    f"stores {height}x{width}"
                )


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
