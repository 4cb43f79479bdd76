"""Pixel-based pick_cube: ground-truth success vs env steps for RLPD from two 128x128 cameras.

    .venv/bin/python bench/pick_cube_pixels.py --device cuda     # on a GPU machine (~25 min on an H100)
    .venv/bin/python bench/pick_cube_pixels.py --env-steps 5000  # a reduced run on a CPU (say so)

What is measured
  `robot-rl train` on the twin's pick_cube with the policy seeing only what a robot has: the
  front and wrist cameras (128x128, sim=fast rendering, object pose randomised) and proprio +
  wrench; no privileged cube pose. SAC in the RLPD recipe (configs/agent/sac.yaml: 2 critics,
  batch 128, CNN encoder per camera, DrQ shift) with --utd updates per env step, --demos scripted
  demos mixed 50/50 into every batch, sparse ground-truth success reward (an oracle). Success rate =
  deterministic policy on 20 held-out seeds every 2500 env steps (the learner's own evaluation).
  Target from the learner issue: >= 80% success within 20k env steps with 20 demos.
  Running the bench again resumes the run in outputs/bench/pick_cube_pixels/ from its checkpoint.

Writes bench/results/pick_cube_pixels[_cuda].json and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_SUCCESS, TARGET_STEPS = 0.8, 20_000


def train_overrides(args: argparse.Namespace, run_dir: Path) -> list[str]:
    return [
        "task=pick_cube",
        "sim=fast",
        "agent=sac",
        f"agent.utd_ratio={args.utd}",
        f"train.device={args.device}",
        f"train.demo_episodes={args.demos}",
        f"train.env_steps={args.env_steps}",
        "train.eval_every=2500",
        "train.eval_episodes=20",
        "train.checkpoint_every=1000",
        "train.buffer_capacity=25000",
        "train.video_episodes=1",
        f"seed={args.seed}",
        f"run_dir={run_dir}",
    ]


def write_results(curve: dict, args: argparse.Namespace, command: str, out: Path, note: str = "") -> dict:
    reached = next(
        (s for s, v in zip(curve["env_steps"], curve["success_rate"], strict=True) if v >= TARGET_SUCCESS), None
    )
    result = {
        "benchmark": "pick_cube_pixels",
        "task": "pick_cube from pixels: front + wrist cameras 128x128 and proprio + wrench (no privileged state), "
        "sparse ground-truth success reward (oracle)",
        "device": args.device,
        "agent": f"SAC/RLPD, configs/agent/sac.yaml with utd_ratio={args.utd}",
        "demos": args.demos,
        "env_steps_budget": args.env_steps,
        "seed": args.seed,
        "curve": curve,
        "env_steps_to_80pct": reached,
        "target": f">= {TARGET_SUCCESS:.0%} success within {TARGET_STEPS} env steps",
        "target_met": reached is not None and reached <= TARGET_STEPS,
        "note": note,
        "command": command,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(curve["env_steps"], curve["success_rate"], marker="o", label=f"RLPD from pixels ({args.demos} demos)")
    ax.axhline(TARGET_SUCCESS, color="grey", linestyle=":", label="target")
    ax.axvline(TARGET_STEPS, color="grey", linestyle=":")
    ax.set(xlabel="env steps", ylabel="ground-truth success rate", ylim=(-0.02, 1.02))
    ax.set_title(f"pick_cube, two 128x128 cameras, UTD {args.utd} ({args.device})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    plt.close(fig)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device of the learner: cpu or cuda")
    parser.add_argument("--env-steps", type=int, default=TARGET_STEPS)
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--utd", type=int, default=2, help="updates per env step (2 fits an H100 run in ~25 min)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run_dir = ROOT / "outputs" / "bench" / "pick_cube_pixels" / f"{args.device}_s{args.seed}"
    command = [sys.executable, "-m", "robot_rl.cli", "train", *train_overrides(args, run_dir)]
    subprocess.run(command, check=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    curve = json.loads((run_dir / "curve.json").read_text())
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    result = write_results(curve, args, "python " + " ".join(sys.argv), RESULTS / f"pick_cube_pixels{suffix}.json")
    print(json.dumps({k: result[k] for k in ("curve", "env_steps_to_80pct", "target_met")}, indent=2))


if __name__ == "__main__":
    main()
