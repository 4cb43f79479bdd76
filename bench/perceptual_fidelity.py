"""Perceptual reward fidelity on the twin's pick_cube: does a reward fitted from a few expert demos
order frames as the twin's ground-truth progress does?

    OMP_NUM_THREADS=1 .venv/bin/python bench/perceptual_fidelity.py          # ~15 s on 1 core
    .venv/bin/python bench/perceptual_fidelity.py --demos 3 --num-steps 5 --image-size 128

What is measured
  The twin: Hydra config task=pick_cube sim=fast (object pose randomised every episode: the cube
  lands anywhere in a 20 x 30 cm area), the front camera only, at --image-size (default 64x64).
  Ground-truth progress is info["oracle_dense_reward"] in [0, 1] (0.25 reach + 0.25 grasped +
  0.5 lift fraction); the episode ends at success (the cube 5 cm up, held).

  Fit: robot_rl.rewards.perceptual.model.fit_perceptual_reward on --demos scripted-expert episodes
  (seeds 0..), frames only: no progress, no success label, no state. The headline figures are
  this fit's; the same fit on --demo-sets - 1 further disjoint sets of demos (seeds --demos..)
  shows how much they depend on which demos were recorded ("demo_sets" in the JSON).

  Test, on fresh seeds (100000..), --test-episodes episodes of each kind:
    expert   the scripted expert, start to success
    partial  the expert stopped part-way (somewhere in its first 20 steps), then holding still 10 steps
    release  the expert until it has lifted the cube a few steps, then the gripper opens: the cube
             falls and progress goes down, so the reward must go down too
    noisy    the expert with Gaussian action noise (std 0.3), up to 60 steps
    random   a random walk of the arm, 30 steps: progress stays near 0
  Reported: the Spearman rank correlation of reward and progress, pooled over all frames of a kind
  (does the reward order frames of different episodes as progress does?) and per episode (mean,
  over episodes whose progress is not constant), and the success_prob's ROC-AUC for info["success"].
  Target (the issue): Spearman >= 0.8 with ground-truth progress, on held-out expert episodes and
  on partially successful / perturbed ones (partial, release, noisy pooled).

Writes bench/results/perceptual_fidelity.json and .png (reward and progress along episodes; reward vs progress).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_rl import spec  # noqa: E402
from robot_rl.config import load_config  # noqa: E402
from robot_rl.rewards.base import RewardInput  # noqa: E402
from robot_rl.rewards.fidelity import roc_auc, spearman  # noqa: E402
from robot_rl.rewards.perceptual.config import PerceptualRewardConfig  # noqa: E402
from robot_rl.rewards.perceptual.model import fit_perceptual_reward  # noqa: E402
from robot_rl.rollout import make_env  # noqa: E402
from robot_rl.sim.experts import make_expert  # noqa: E402

TARGET_SPEARMAN = 0.8
TEST_SEED = 100_000
KINDS = ("expert", "partial", "release", "noisy", "random")
PERTURBED = ("partial", "release", "noisy")
RESULTS = Path(__file__).resolve().parent / "results"


def run_episode(env, expert, kind: str, seed: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One episode of `kind` (see the module docstring): front frames, progress and success per
    observation, the reset's included."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    frames, progress, success = [obs["images"]["front"]], [info["oracle_dense_reward"]], [info["success"]]
    hold = np.zeros(spec.ACTION_DIM, dtype=np.float32)  # no motion; the gripper keeps its last command
    release = hold.copy()
    release[6] = -1.0  # open
    stop_at = int(rng.integers(3, 20)) if kind == "partial" else None
    walk = np.zeros(spec.ACTION_DIM, dtype=np.float32)
    lifting_steps, released_at = 0, None
    max_steps = {"noisy": 60, "random": 30}.get(kind, 100)
    for t in range(max_steps):
        if kind == "random":
            walk = np.clip(0.7 * walk + rng.normal(0.0, 0.5, spec.ACTION_DIM), -1.0, 1.0).astype(np.float32)
            walk[6] = rng.choice([-1.0, 0.0, 1.0], p=[0.1, 0.8, 0.1])
            action = walk
        elif kind == "partial" and t >= stop_at:
            if t >= stop_at + 10:
                break
            action = hold
        elif released_at is not None:
            if t >= released_at + 10:
                break
            action = release
        else:
            action = expert.act(obs, info)
            if kind == "noisy":
                action = np.clip(action + rng.normal(0.0, 0.3, spec.ACTION_DIM), -1.0, 1.0).astype(np.float32)
            if kind == "release" and expert.phase == "lift":
                lifting_steps += 1
                if lifting_steps >= int(rng.integers(2, 5)):  # part of the way up
                    released_at = t
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(obs["images"]["front"])
        progress.append(info["oracle_dense_reward"])
        success.append(info["success"])
        if terminated or truncated:
            break
    return {"frames": np.stack(frames), "progress": np.array(progress), "success": np.array(success, dtype=bool)}


def score(model, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inputs = RewardInput(torch.zeros(len(frames), 0), {"front": torch.from_numpy(frames)})
    out = model.score(inputs)
    return out.reward.double().numpy(), out.success_prob.double().numpy()


def fidelity(episodes: list[dict]) -> dict:
    """Pooled and per-episode Spearman of reward vs progress over some episodes."""
    reward = np.concatenate([e["reward"] for e in episodes])
    progress = np.concatenate([e["progress"] for e in episodes])
    per_episode = [
        spearman(e["reward"], e["progress"])
        for e in episodes
        if np.ptp(e["progress"]) > 1e-3 and np.ptp(e["reward"]) > 0
    ]
    return {
        "episodes": len(episodes),
        "frames": len(reward),
        "spearman_pooled": round(spearman(reward, progress), 4),
        "spearman_per_episode_mean": round(float(np.mean(per_episode)), 4) if per_episode else None,
        "spearman_per_episode_min": round(float(np.min(per_episode)), 4) if per_episode else None,
        "episodes_with_varying_progress": len(per_episode),
        "reward_mean": round(float(reward.mean()), 4),
        "progress_mean": round(float(progress.mean()), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64, help="square front-camera images, pixels")
    parser.add_argument("--demos", type=int, default=5, help="expert demos to fit from (the paper: a handful)")
    parser.add_argument("--demo-sets", type=int, default=3, help="disjoint demo sets fitted (spread)")
    parser.add_argument("--test-episodes", type=int, default=10, help="per episode kind")
    parser.add_argument("--num-steps", type=int, default=PerceptualRewardConfig.num_steps)
    parser.add_argument("--features-per-step", type=int, default=PerceptualRewardConfig.features_per_step)
    parser.add_argument("--feature-extractor", default=PerceptualRewardConfig.feature_extractor)
    parser.add_argument("--no-write", action="store_true", help="print only (parameter sweeps)")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    size = args.image_size
    overrides = ["task=pick_cube", "sim=fast", "sim.cameras=[front]"]
    overrides += [f"sim.camera_rigs.front.{dim}={size}" for dim in ("width", "height")]
    env = make_env(load_config(overrides))
    expert = make_expert(env)
    rng = np.random.default_rng(0)

    t = time.perf_counter()
    demo_sets = [
        [run_episode(env, expert, "expert", seed, rng) for seed in range(n * args.demos, (n + 1) * args.demos)]
        for n in range(args.demo_sets)
    ]
    demos = demo_sets[0]
    test = {
        kind: [run_episode(env, expert, kind, TEST_SEED + 1000 * i + n, rng) for n in range(args.test_episodes)]
        for i, kind in enumerate(KINDS)
    }
    collect_seconds = time.perf_counter() - t
    env.close()

    config = PerceptualRewardConfig(
        cameras=["front"],
        image_size=[size, size],
        num_steps=args.num_steps,
        features_per_step=args.features_per_step,
        feature_extractor=args.feature_extractor,
    )
    t = time.perf_counter()
    model, fit_report = fit_perceptual_reward(config, [d["frames"] for d in demos])
    fit_seconds = time.perf_counter() - t

    t = time.perf_counter()
    n_scored = 0
    for episodes in test.values():
        for e in episodes:
            e["reward"], e["success_prob"] = score(model, e["frames"])
            n_scored += len(e["frames"])
    score_seconds = time.perf_counter() - t
    for d in demos:
        d["reward"], d["success_prob"] = score(model, d["frames"])

    by_kind = {kind: fidelity(episodes) for kind, episodes in test.items()}
    spread = []
    for n, other_demos in enumerate(demo_sets):
        other = model if n == 0 else fit_perceptual_reward(config, [d["frames"] for d in other_demos])[0]
        rewards = {kind: [{**e, "reward": score(other, e["frames"])[0]} for e in eps] for kind, eps in test.items()}
        spread.append(
            {
                "demo_seeds": [n * args.demos, (n + 1) * args.demos - 1],
                "expert": fidelity(rewards["expert"])["spearman_pooled"],
                "perturbed": fidelity([e for kind in PERTURBED for e in rewards[kind]])["spearman_pooled"],
            }
        )
    perturbed = fidelity([e for kind in PERTURBED for e in test[kind]])
    everything = [e for episodes in test.values() for e in episodes]
    success = np.concatenate([e["success"] for e in everything])
    success_prob = np.concatenate([e["success_prob"] for e in everything])
    results = {
        "benchmark": "perceptual_fidelity",
        "task": "pick_cube",
        "sim": "fast (object_pose randomised)",
        "camera": "front",
        "image_size": [size, size],
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "reward_config": asdict(config),
        "fit": {"demo_seeds": [0, args.demos - 1], **fit_report, "seconds": round(fit_seconds, 3)},
        "fit_demos": fidelity(demos),
        "test_seeds_from": TEST_SEED,
        "test": by_kind,
        "test_perturbed_pooled": perturbed,
        "test_all_pooled": fidelity(everything),
        "demo_sets": spread,
        "success_prob_roc_auc": round(roc_auc(success_prob, success), 4) if 0 < success.sum() < len(success) else None,
        "target_spearman": TARGET_SPEARMAN,
        "pass": {
            "expert": by_kind["expert"]["spearman_pooled"] >= TARGET_SPEARMAN,
            "perturbed": perturbed["spearman_pooled"] >= TARGET_SPEARMAN,
            "every_demo_set": all(min(r["expert"], r["perturbed"]) >= TARGET_SPEARMAN for r in spread),
        },
        "seconds": {
            "collect": round(collect_seconds, 1),
            "score_per_1000_frames": round(1000 * score_seconds / max(1, n_scored), 3),
            "total": round(time.perf_counter() - t_start, 1),
        },
    }
    summary = ", ".join(
        f"{kind} {r['spearman_pooled']:.3f} (per episode {r['spearman_per_episode_mean']})"
        for kind, r in by_kind.items()
    )
    print(f"Spearman(reward, progress) pooled: {summary}; perturbed pooled {perturbed['spearman_pooled']:.3f}")
    print(f"success_prob ROC-AUC {results['success_prob_roc_auc']}; boundaries {fit_report['boundaries']}")
    print("demo sets (expert, perturbed):", [(r["expert"], r["perturbed"]) for r in spread])
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "perceptual_fidelity.json").write_text(json.dumps(results, indent=2))
        plot(test, results, RESULTS / "perceptual_fidelity.png")
    return results


def plot(test: dict[str, list[dict]], results: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, kind in zip(axes[:2], ("expert", "release"), strict=True):
        episode = test[kind][0]
        steps = np.arange(len(episode["progress"]))
        ax.plot(steps, episode["progress"], "k-", label="ground-truth progress")
        ax.plot(steps, episode["reward"], "C0-o", ms=3, label="perceptual reward")
        ax.plot(steps, episode["success_prob"], "C1:", label="success_prob")
        rho = spearman(episode["reward"], episode["progress"])
        ax.set(
            xlabel="step", ylabel="value", ylim=(-0.05, 1.05), title=f"a held-out {kind} episode (Spearman {rho:.2f})"
        )
        ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    for i, kind in enumerate(KINDS):
        progress = np.concatenate([e["progress"] for e in test[kind]])
        reward = np.concatenate([e["reward"] for e in test[kind]])
        rho = results["test"][kind]["spearman_pooled"]
        ax.scatter(progress, reward, s=6, alpha=0.5, color=f"C{i}", label=f"{kind} (Spearman {rho:.2f})")
    ax.set(
        xlabel="ground-truth progress (oracle_dense_reward)", ylabel="perceptual reward", title="all held-out frames"
    )
    ax.legend(fontsize=8)
    c = results["reward_config"]
    size = results["image_size"]
    fig.suptitle(
        f"perceptual reward, pick_cube, {results['fit']['demos']} expert demos, front {size[0]}x{size[1]}, "
        f"{c['feature_extractor']}, K={c['num_steps']}, M={c['features_per_step']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
