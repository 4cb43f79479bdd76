"""Running episodes on the twin: the env from a config, a rollout loop with video, a report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import imageio.v2 as imageio
import numpy as np
from tqdm import tqdm

from robot_rl.config import Config
from robot_rl.sim.env import SimTwinEnv
from robot_rl.sim.scene import VIDEO_SIZE


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict, info: dict) -> np.ndarray: ...


class AgentPolicy:
    """An agent (act(obs, deterministic)) as a Policy, for evaluation."""

    def __init__(self, agent, deterministic: bool = True):
        self.agent, self.deterministic = agent, deterministic

    def reset(self) -> None:
        pass

    def act(self, obs: dict, info: dict) -> np.ndarray:
        return self.agent.act(obs, deterministic=self.deterministic)


def make_env(config: Config, learned_reward: bool = False) -> SimTwinEnv:
    """The twin for `config`, its reward the configured oracle. With `learned_reward` the caller
    rewards (and ends) episodes with its reward model, so ground-truth success ends nothing: the
    twin then only reports it in info["success"], for scoring."""
    task = replace(config.task, terminate_on_success=False) if learned_reward else config.task
    oracle = config.reward.oracle_type if config.reward.is_oracle else "sparse"
    return SimTwinEnv(task=task, sim=config.sim, robot=config.robot, reward=oracle)


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    length: int
    episode_return: float
    oracle_dense_return: float


def video_frame(env: SimTwinEnv) -> np.ndarray:
    """Front view and, where the rig has one, the wrist view side by side."""
    views = [env.render()]
    if "wrist" in env.sim_cfg.camera_rigs:
        views.append(env.render_camera("wrist", VIDEO_SIZE, VIDEO_SIZE))
    return np.concatenate(views, axis=1)


def run_episodes(
    env: SimTwinEnv,
    policy: Policy,
    episodes: int,
    seed: int,
    video_path: Path | None = None,
    video_episodes: int = 0,
    progress: bool = True,
) -> list[EpisodeResult]:
    """`episodes` episodes on seeds seed, seed+1, ...; the first `video_episodes` are recorded."""
    writer = None
    if video_path is not None and video_episodes > 0:
        writer = imageio.get_writer(video_path, fps=env.sim_cfg.control_hz, codec="libx264", quality=7)
    results = []
    bar = tqdm(range(episodes), desc=f"{env.task.cfg.name} episodes", unit="ep", disable=not progress, leave=False)
    try:
        for episode in bar:
            record = writer is not None and episode < video_episodes
            obs, info = env.reset(seed=seed + episode)
            policy.reset()
            episode_return = dense_return = 0.0
            length = 0
            if record:
                writer.append_data(video_frame(env))
            terminated = truncated = False
            while not (terminated or truncated):
                obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
                length += 1
                episode_return += reward
                dense_return += info["oracle_dense_reward"]
                if record:
                    writer.append_data(video_frame(env))
            results.append(EpisodeResult(seed + episode, bool(info["success"]), length, episode_return, dense_return))
            bar.set_postfix(success_rate=f"{np.mean([r.success for r in results]):.2f}")
    finally:
        if writer is not None:
            writer.close()
    return results


def summarize(results: list[EpisodeResult]) -> dict:
    return {
        "episodes": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "mean_episode_length": float(np.mean([r.length for r in results])),
        "mean_return": float(np.mean([r.episode_return for r in results])),
    }


def write_report(results: list[EpisodeResult], config: Config, run_dir: Path, what: str, **extra) -> dict:
    report = {
        "what": what,
        "task": config.task.name,
        "reward": reward_label(config),
        **summarize(results),
        **extra,
        "per_episode": [asdict(r) for r in results],
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def reward_label(config: Config) -> str:
    """How logs and reports name the training reward: oracle rewards always say so."""
    if config.reward.is_oracle:
        return f"{config.reward.name} (ground truth from the twin: an oracle, not a learned reward)"
    return f"{config.reward.name} (learned/zero-shot reward model; success is scored on the twin's ground truth)"
