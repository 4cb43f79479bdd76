"""State-based pick_cube: ground-truth success vs env steps for RLPD, plain SAC and BC.

    .venv/bin/python bench/pick_cube_learning.py        # ~40 min on 2 cores
    .venv/bin/python bench/pick_cube_learning.py --env-steps 10000 --seeds 0 1   # shorter / more seeds

What is measured
  Three methods on the twin's pick_cube, state-based (sim=state: proprio + wrench + the cube's
  pose, privileged), sparse ground-truth success reward (an oracle), CPU:
    rlpd     SAC in the RLPD recipe (configs/agent/sac.yaml) with --demos scripted demos mixed
             50/50 into every batch;
    sac      the same agent and budget without demos (demo_episodes=0: online data only);
    bc       behaviour cloning on the same demos (train.env_steps counts its gradient steps, so
             it is one point, not a curve: its final success rate).
  Each run is `robot-rl train` in its own process with one torch thread (the two online runs
  share the two cores), in outputs/bench/pick_cube/<method>_s<seed>; running the bench again
  resumes unfinished runs from their checkpoints. Success rate = deterministic policy on
  --eval-episodes held-out seeds every --eval-every env steps (the learner's own evaluation).
  Target from the issue: RLPD >= 90% success within 30k env steps with 10 demos.

Writes bench/results/pick_cube_learning.json and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_SUCCESS, TARGET_STEPS = 0.9, 30_000


def run_command(method: str, seed: int, args: argparse.Namespace, run_dir: Path) -> list[str]:
    common = [
        "task=pick_cube",
        "sim=state",
        "reward=oracle_sparse",
        f"seed={seed}",
        f"run_dir={run_dir}",
        f"train.eval_every={args.eval_every}",
        f"train.eval_episodes={args.eval_episodes}",
        "train.checkpoint_every=5000",
        "train.buffer_capacity=50000",
        "train.video_episodes=0",
    ]
    per_method = {
        "rlpd": ["agent=sac", f"train.env_steps={args.env_steps}", f"train.demo_episodes={args.demos}"],
        "sac": ["agent=sac", f"train.env_steps={args.env_steps}", "train.demo_episodes=0"],
        "bc": ["agent=bc", f"train.env_steps={args.bc_steps}", f"train.demo_episodes={args.demos}"],
    }[method]
    return [sys.executable, "-m", "robot_rl.cli", "train", *common, *per_method]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-steps", type=int, default=TARGET_STEPS)
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--bc-steps", type=int, default=5000)
    parser.add_argument("--eval-every", type=int, default=2500)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", default=["rlpd", "sac", "bc"])
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (one torch thread each)")
    parser.add_argument("--out", type=Path, default=RESULTS / "pick_cube_learning.json")
    args = parser.parse_args()

    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    run_dirs = {job: ROOT / "outputs" / "bench" / "pick_cube" / f"{job[0]}_s{job[1]}" for job in jobs}
    pending, running, wall = list(jobs), {}, {}
    while pending or running:
        while pending and len(running) < args.parallel:
            job = pending.pop(0)
            run_dirs[job].mkdir(parents=True, exist_ok=True)
            log = open(run_dirs[job] / "bench_stdout.log", "a")  # noqa: SIM115 (closed with the process)
            running[job] = (
                subprocess.Popen(run_command(*job, args, run_dirs[job]), env=env, stdout=log, stderr=log),
                log,
            )
            wall[job] = time.perf_counter()
            print(f"started {job[0]} seed {job[1]} -> {run_dirs[job]}", flush=True)
        time.sleep(5)
        for job, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                del running[job]
                wall[job] = time.perf_counter() - wall[job]
                if process.returncode != 0:
                    sys.exit(f"{job[0]} seed {job[1]} failed (rc {process.returncode}): see {log.name}")
                print(f"finished {job[0]} seed {job[1]} in {wall[job] / 60:.1f} min", flush=True)

    runs = {}
    for method, seed in jobs:
        curve = json.loads((run_dirs[method, seed] / "curve.json").read_text())
        runs[f"{method}_s{seed}"] = {"method": method, "seed": seed, "wall_s": round(wall[method, seed], 1), **curve}
    summary = {}
    for method in args.methods:
        finals = [r["success_rate"][-1] for r in runs.values() if r["method"] == method]
        summary[method] = {"final_success_mean": sum(finals) / len(finals), "final_success_per_seed": finals}
        if method != "bc":
            # first evaluation at which the success rate reached the target, per seed
            summary[method]["env_steps_to_90pct"] = [
                next((s for s, v in zip(r["env_steps"], r["success_rate"], strict=True) if v >= TARGET_SUCCESS), None)
                for r in runs.values()
                if r["method"] == method
            ]
    rlpd_hits = summary.get("rlpd", {}).get("env_steps_to_90pct", [])
    result = {
        "benchmark": "pick_cube_learning",
        "task": "pick_cube, state-based (privileged cube pose), sparse ground-truth success reward (oracle), CPU",
        "demos": args.demos,
        "env_steps": args.env_steps,
        "bc_gradient_steps": args.bc_steps,
        "eval_episodes": args.eval_episodes,
        "seeds": args.seeds,
        "target": f"RLPD >= {TARGET_SUCCESS:.0%} success within {TARGET_STEPS} env steps",
        "target_met": bool(rlpd_hits) and all(s is not None and s <= TARGET_STEPS for s in rlpd_hits),
        "summary": summary,
        "runs": runs,
        "command": "python " + " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({"target_met": result["target_met"], "summary": summary}, indent=2))


def plot(result: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"rlpd": "tab:blue", "sac": "tab:orange", "bc": "tab:green"}
    labels = {"rlpd": f"RLPD ({result['demos']} demos)", "sac": "SAC, no demos", "bc": f"BC ({result['demos']} demos)"}
    for name, run in result["runs"].items():
        method = run["method"]
        label = labels[method] if name.endswith(f"s{result['seeds'][0]}") else None
        if method == "bc":
            ax.axhline(run["success_rate"][-1], color=colors[method], linestyle="--", label=label)
        else:
            ax.plot(run["env_steps"], run["success_rate"], marker="o", color=colors[method], label=label, alpha=0.8)
    ax.axhline(TARGET_SUCCESS, color="grey", linestyle=":", label="target")
    ax.set(xlabel="env steps", ylabel="ground-truth success rate", ylim=(-0.02, 1.02))
    ax.set_title("pick_cube, state-based, sparse success reward (CPU)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
