"""`robot-rl reward-eval`: how faithful is a reward model to the twin's ground truth?

Rolls out three kinds of episodes on the twin, full length (ground-truth success ends nothing, so
every episode has the same number of steps and returns compare):
  expert    the scripted expert: succeeds, with the dense oracle rising along the way;
  partial   the expert for a random part of the episode, then random actions: progress, then not;
  random    uniform random actions: (almost) never progress.
Every observation after an action is scored by the reward model and by the twin's ground truth
(success, and the dense oracle reward in [0, 1]), then, against ground truth:
  success detection   ROC-AUC of the model's success probability (its reward where it gives none),
                      precision and recall of its success decision (reward > 0.5 where it makes none);
  returns             Spearman correlation of per-episode learned return with the dense oracle return;
  EPIC distance       to the dense oracle reward. Both rewards score the observation after the
                      action, R(s'); for such rewards EPIC's canonicalisation only subtracts the
                      mean over the coverage distribution (C(R)(s, a, s') = R(s') - E[R(S')]), so
                      the distance is the Pearson distance sqrt((1 - rho) / 2) of the two rewards
                      over the visited transitions.
Writes a PNG per episode (reward, oracle and success over time, with frames from the reward's
camera), summary.json and summary.md (a table per episode kind) to the run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_rl.rewards.base import RewardInput, RewardModel  # noqa: E402
from robot_rl.rewards.fidelity import pearson_distance, precision_recall, roc_auc, spearman  # noqa: E402
from robot_rl.sim.env import SimTwinEnv  # noqa: E402
from robot_rl.sim.experts import make_expert  # noqa: E402
from robot_rl.spec import ACTION_DIM  # noqa: E402

EPISODE_KINDS = ("expert", "partial", "random")
FRAMES_PER_PLOT = 6


@dataclass
class ScoredEpisode:
    kind: str
    seed: int
    reward: list[float] = field(default_factory=list)  # the model's, per step
    score: list[float] = field(default_factory=list)  # its success probability (or reward)
    decision: list[bool] = field(default_factory=list)  # its success decision
    oracle: list[float] = field(default_factory=list)  # the twin's dense reward in [0, 1]
    success: list[bool] = field(default_factory=list)  # the twin's ground truth
    frames: list[np.ndarray] = field(default_factory=list, repr=False)


@torch.no_grad()
def score_episode(env: SimTwinEnv, model: RewardModel, kind: str, seed: int, device: torch.device) -> ScoredEpisode:
    rng = np.random.default_rng(seed)
    expert = make_expert(env)
    obs, info = env.reset(seed=seed)
    expert.reset()
    horizon = env.task.cfg.max_episode_steps
    expert_steps = {"expert": horizon, "partial": int(rng.integers(horizon // 5, horizon // 2)), "random": 0}[kind]
    episode = ScoredEpisode(kind, seed)
    camera = model.cameras[0] if model.cameras else None
    for t in range(horizon):
        action = expert.act(obs, info) if t < expert_steps else rng.uniform(-1, 1, ACTION_DIM).astype(np.float32)
        obs, _, _, _, info = env.step(action)
        out = model.score(RewardInput.from_observation(obs, model.cameras, action, device))
        reward = float(out.reward[0])
        episode.reward.append(reward)
        episode.score.append(float(out.success_prob[0]) if out.success_prob is not None else reward)
        episode.decision.append(bool(out.success[0]) if out.success is not None else reward > 0.5)
        episode.oracle.append(float(info["oracle_dense_reward"]))
        episode.success.append(bool(info["success"]))
        if camera is not None and t % max(1, horizon // FRAMES_PER_PLOT) == 0:
            episode.frames.append(obs["images"][camera])
    return episode


def fidelity_summary(episodes: list[ScoredEpisode]) -> dict:
    """The metrics of the module docstring over `episodes`; a metric that needs both classes (or
    some variation) where there is none is reported as None, with the reason."""
    reward = np.concatenate([e.reward for e in episodes])
    score = np.concatenate([e.score for e in episodes])
    decision = np.concatenate([e.decision for e in episodes])
    oracle = np.concatenate([e.oracle for e in episodes])
    success = np.concatenate([e.success for e in episodes])
    summary: dict = {"episodes": len(episodes), "steps": len(reward), "success_steps": int(success.sum())}
    if 0 < success.sum() < len(success):
        summary["success_roc_auc"] = roc_auc(score, success)
    else:
        summary["success_roc_auc"] = None
        summary["success_roc_auc_why_none"] = "ground-truth success is all true or all false on these steps"
    pr = precision_recall(decision, success)
    summary["success_precision"], summary["success_recall"] = pr.precision, pr.recall
    returns = np.array([sum(e.reward) for e in episodes])
    oracle_returns = np.array([sum(e.oracle) for e in episodes])
    varies = np.ptp(returns) > 0 and np.ptp(oracle_returns) > 0
    summary["return_spearman"] = spearman(returns, oracle_returns) if varies and len(episodes) > 2 else None
    constant = np.ptp(reward) == 0 or np.ptp(oracle) == 0
    summary["epic_distance_to_oracle_dense"] = None if constant else pearson_distance(reward, oracle)
    summary["mean_reward"] = float(reward.mean())
    return summary


def plot_episode(episode: ScoredEpisode, path: Path, reward_name: str) -> None:
    n_frames = len(episode.frames)
    fig = plt.figure(figsize=(10, 5.5 if n_frames else 3.5))
    grid = fig.add_gridspec(2 if n_frames else 1, max(1, n_frames), height_ratios=[1, 1.4] if n_frames else [1])
    for i, frame in enumerate(episode.frames):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(frame)
        ax.set_axis_off()
    ax = fig.add_subplot(grid[-1, :])
    steps = np.arange(1, len(episode.reward) + 1)
    ax.plot(steps, episode.reward, label=f"{reward_name} reward")
    ax.plot(steps, episode.oracle, label="oracle dense reward (ground truth)", alpha=0.8)
    ax.fill_between(steps, 0, 1, where=episode.success, color="tab:green", alpha=0.15, label="ground-truth success")
    ax.set(xlabel="step", title=f"{episode.kind} episode, seed {episode.seed}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluate_reward_model(
    env: SimTwinEnv,
    model: RewardModel,
    reward_name: str,
    episodes_per_kind: int,
    seed: int,
    run_dir: Path,
    device: torch.device,
) -> dict:
    """Score `episodes_per_kind` episodes of each kind; write the plots and summaries to run_dir."""
    if env.task.cfg.terminate_on_success:
        raise ValueError("reward-eval needs full-length episodes: build the env with terminate_on_success=False")
    episodes = []
    for k, kind in enumerate(EPISODE_KINDS):
        for i in range(episodes_per_kind):
            episode = score_episode(env, model, kind, seed + 1000 * k + i, device)
            plot_episode(episode, run_dir / f"episode_{kind}_{i:02d}.png", reward_name)
            episodes.append(episode)
    summary = {
        "reward": reward_name,
        "task": env.task.cfg.name,
        "all": fidelity_summary(episodes),
        **{kind: fidelity_summary([e for e in episodes if e.kind == kind]) for kind in EPISODE_KINDS},
        "per_episode": [
            {
                "kind": e.kind,
                "seed": e.seed,
                "return": sum(e.reward),
                "oracle_return": sum(e.oracle),
                "success_steps": int(sum(e.success)),
            }
            for e in episodes
        ],
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (run_dir / "summary.md").write_text(markdown_table(summary))
    return summary


def markdown_table(summary: dict) -> str:
    rows = ["all", *EPISODE_KINDS]
    columns = [
        ("success ROC-AUC", "success_roc_auc"),
        ("precision", "success_precision"),
        ("recall", "success_recall"),
        ("return Spearman", "return_spearman"),
        ("EPIC to oracle", "epic_distance_to_oracle_dense"),
        ("mean reward", "mean_reward"),
    ]

    def cell(value) -> str:
        return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"

    lines = [
        f"# Reward fidelity: {summary['reward']} on {summary['task']}",
        "",
        "| episodes | " + " | ".join(name for name, _ in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(cell(summary[row].get(key)) for _, key in columns) + " |")
    return "\n".join(lines) + "\n"
