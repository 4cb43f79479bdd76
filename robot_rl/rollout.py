"""Running episodes on the twin: the env from a config, a rollout loop, videos and a report."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from tqdm import tqdm

from robot_rl.config import Config
from robot_rl.sim.env import SimTwinEnv
from robot_rl.sim.experts import make_expert
from robot_rl.sim.scene import VIDEO_SIZE

log = logging.getLogger(__name__)


def make_env(config: Config) -> SimTwinEnv:
    return SimTwinEnv(task=config.task, sim=config.sim, robot=config.robot, reward=config.reward.oracle_type)


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


def run_expert_episodes(config: Config, video_path: Path | None) -> list[EpisodeResult]:
    """`config.episodes` episodes of the scripted expert, seeds config.seed, config.seed+1, ...;
    the first `config.video_episodes` of them are recorded to `video_path`."""
    env = make_env(config)
    expert = make_expert(env)
    writer = None
    if video_path is not None and config.video_episodes > 0:
        writer = imageio.get_writer(video_path, fps=config.sim.control_hz, codec="libx264", quality=7)
    results = []
    progress = tqdm(range(config.episodes), desc=f"{config.task.name} episodes", unit="ep")
    try:
        for episode in progress:
            seed = config.seed + episode
            record = writer is not None and episode < config.video_episodes
            obs, info = env.reset(seed=seed)
            expert.reset()
            episode_return = dense_return = 0.0
            length = 0
            if record:
                writer.append_data(video_frame(env))
            terminated = truncated = False
            while not (terminated or truncated):
                obs, reward, terminated, truncated, info = env.step(expert.act(obs, info))
                length += 1
                episode_return += reward
                dense_return += info["oracle_dense_reward"]
                if record:
                    writer.append_data(video_frame(env))
            results.append(EpisodeResult(seed, bool(info["success"]), length, episode_return, dense_return))
            progress.set_postfix(success_rate=f"{np.mean([r.success for r in results]):.2f}")
    finally:
        if writer is not None:
            writer.close()
        env.close()
    return results


def write_report(results: list[EpisodeResult], config: Config, run_dir: Path, what: str) -> dict:
    report = {
        "what": what,
        "task": config.task.name,
        "reward": f"{config.reward.name} (ground truth from the twin: an oracle, not a learned reward)",
        "episodes": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "mean_episode_length": float(np.mean([r.length for r in results])),
        "mean_return": float(np.mean([r.episode_return for r in results])),
        "per_episode": [asdict(r) for r in results],
    }
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report
