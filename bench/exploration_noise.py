"""How much of SAC's exploration noise each task tolerates: the scripted expert with a
tanh-Gaussian's noise on its actions, success rate and entropy per noise level.

    .venv/bin/python bench/exploration_noise.py                    # ~6 min on 2 busy cores
    .venv/bin/python bench/exploration_noise.py --episodes 20 --tasks peg_insert

What is measured
  SAC explores with a tanh-squashed Gaussian, a = tanh(u), u ~ N(mu, sigma^2), on the action
  entries the task controls (TaskConfig.controlled_actions), and its temperature holds the
  policy's entropy E[-log pi(a|s)] at agent.target_entropy (default -dim/2). Here the scripted
  expert is that policy's mean (mu = atanh of its action, clipped to +-0.999) with a fixed sigma
  per level, on seeds 0..N-1 (state-only, no randomisation beyond the tasks' own). Per level:
  the success rate, and the mean over the executed steps of -log pi(a|s) = sum over the
  controlled entries of [-log N(u; mu, sigma) + log(1 - tanh(u)^2)] (the actor's own
  tanh_gaussian_log_prob), i.e. the entropy SAC's temperature would be holding. A task whose
  success collapses at an entropy above its configured target cannot be solved by SAC's
  exploratory policy there, however good its mean: online episodes rarely succeed and the sparse
  reward never shows up. The configured target
  per task is read from the composed config (`task=<name>`, configs/task_agent/ specialises it).

Writes bench/results/exploration_noise.json and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_rl.agents.networks import tanh_gaussian_log_prob  # noqa: E402
from robot_rl.agents.sac.config import SACConfig  # noqa: E402
from robot_rl.config import load_config  # noqa: E402
from robot_rl.sim.config import TASK_NAMES, SimConfig  # noqa: E402
from robot_rl.sim.env import SimTwinEnv  # noqa: E402
from robot_rl.sim.experts import make_expert  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIGMAS = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2)
MAX_ABS_ACTION = 0.999  # atanh(+-1) is infinite: a saturated expert action is a mean of +-atanh(0.999)


def noisy_episode(env: SimTwinEnv, expert, seed: int, sigma: float, dims: list[int], rng) -> tuple[bool, list[float]]:
    """One episode of the expert with tanh-Gaussian noise; (success, -log pi of each step)."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    neg_log_probs = []
    while True:
        action = expert.act(obs, info).astype(np.float64)
        mu = np.arctanh(np.clip(action[dims], -MAX_ABS_ACTION, MAX_ABS_ACTION))
        noise = rng.standard_normal(len(dims))
        u = mu + sigma * noise
        action[dims] = np.tanh(u)
        log_prob = tanh_gaussian_log_prob(*map(torch.as_tensor, (u, noise, np.full(len(dims), np.log(sigma)))))
        neg_log_probs.append(-float(log_prob))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return bool(info["success"]), neg_log_probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40, help="episodes per noise level, seeds 0..episodes-1")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
    args = parser.parse_args()

    t_start = time.perf_counter()
    results = {}
    for task in args.tasks:
        env = SimTwinEnv(task, sim=SimConfig(cameras=[]))
        expert = make_expert(env)
        dims = env.task.cfg.controlled_actions()
        configured = load_config([f"task={task}"]).agent.target_entropy_for(len(dims))
        default_target = SACConfig().target_entropy_for(len(dims))
        rng = np.random.default_rng(0)
        levels = []
        for sigma in SIGMAS:
            outcomes = [noisy_episode(env, expert, seed, sigma, dims, rng) for seed in range(args.episodes)]
            levels.append(
                {
                    "sigma": sigma,
                    "success_rate": float(np.mean([success for success, _ in outcomes])),
                    "entropy": round(float(np.mean([v for _, steps in outcomes for v in steps])), 3),
                }
            )
            print(
                f"{task:10s} sigma {sigma:<5g} success {levels[-1]['success_rate']:.2f} entropy {levels[-1]['entropy']}"
            )
        env.close()
        results[task] = {
            "controlled_actions": dims,
            "default_target_entropy": default_target,
            "configured_target_entropy": configured,
            "levels": levels,
        }

    result = {
        "benchmark": "exploration_noise",
        "config": {"episodes": args.episodes, "sigmas": list(SIGMAS), "sim": "SimConfig(cameras=[])"},
        "tasks": results,
        "seconds": round(time.perf_counter() - t_start, 1),
        "command": " ".join([".venv/bin/python", *sys.argv]),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "exploration_noise.json").write_text(json.dumps(result, indent=2) + "\n")

    fig, (ax_sigma, ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, (task, r) in enumerate(results.items()):
        color = f"C{i}"
        success = [level["success_rate"] for level in r["levels"]]
        ax_sigma.plot(SIGMAS, success, marker="o", color=color, label=task)
        ax.plot([level["entropy"] for level in r["levels"]], success, marker="o", color=color, label=task)
        ax.axvline(r["configured_target_entropy"], color=color, linestyle="--", linewidth=1)
        if r["configured_target_entropy"] != r["default_target_entropy"]:
            ax.axvline(r["default_target_entropy"], color=color, linestyle=":", linewidth=1)
    ax_sigma.set(
        xscale="log",
        xlabel="sigma of u = atanh(a) (the Gaussian before the tanh)",
        ylabel=f"success rate ({args.episodes} seeds)",
        title="scripted expert + tanh-Gaussian noise",
        ylim=(-0.02, 1.02),
    )
    ax.set(
        xlabel="policy entropy E[-log pi] of the noisy expert (controlled entries)",
        title="the same against entropy\n(dashed: configured target entropy, dotted: default -dim/2)",
        ylim=(-0.02, 1.02),
    )
    for a in (ax_sigma, ax):
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "exploration_noise.png", dpi=110)
    print(f"wrote {RESULTS / 'exploration_noise.json'} and exploration_noise.png ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
