"""Scripted expert success rate per task, with every kind of domain randomisation switched on.

    .venv/bin/python bench/expert_success.py                       # ~15 s on 2 cores
    .venv/bin/python bench/expert_success.py --episodes 20 --tasks pick_cube

What is measured
  For each task (reach, pick_cube, peg_insert), robot_rl.sim.experts.make_expert drives
  SimTwinEnv for --episodes episodes with seeds 0..N-1 (env.reset(seed=seed)), state-only
  (SimConfig(cameras=[]): the experts read only the TCP pose and info["task_state"], so images
  would cost time and change nothing), with SimConfig.randomize all on: object_pose, lighting,
  colors, camera_pose, physics, ft_noise_bias. An episode runs until the env says terminated
  (success, with terminate_on_success) or truncated (the task's max_episode_steps); it succeeds
  when the last step's info["success"] is true. Target: >= 95% per task (pass/fail recorded).

  Also recorded: episode lengths (mean over all episodes and over successes, plus a histogram),
  and for every failed seed what a reader needs to see why: the expert's phases with the step
  each began, the final TCP position and task state, and the largest speed of task_state[:3]
  between two control steps (the cube's position for pick_cube; for reach and peg_insert the
  goal / hole, which do not move), which exposes an object thrown by a physics glitch; the seeds
  of all episodes (failed or not) where it exceeded 1 m/s are listed too.

Writes bench/results/expert_success.json and bench/results/expert_success.png, prints a summary
and the failures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # no rendering here, but keep mujoco's GL choice consistent

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from robot_rl.sim.config import TASK_NAMES, RandomizationConfig, SimConfig  # noqa: E402
from robot_rl.sim.env import SimTwinEnv  # noqa: E402
from robot_rl.sim.experts import make_expert  # noqa: E402

TARGET = 0.95
FAST = 1.0  # m/s: an object moving faster than this between two control steps was knocked or thrown
RESULTS = Path(__file__).resolve().parent / "results"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--episodes", type=int, default=100, help="episodes per task, seeds 0..episodes-1")
parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES)
args = parser.parse_args()

randomize = RandomizationConfig(
    object_pose=True, lighting=True, colors=True, camera_pose=True, physics=True, ft_noise_bias=True
)
t_start = time.perf_counter()
results = {}
for task in args.tasks:
    env = SimTwinEnv(task, sim=SimConfig(cameras=[], randomize=randomize))
    expert = make_expert(env)
    control_dt = 1.0 / env.sim_cfg.control_hz
    episodes = []
    t_task = time.perf_counter()
    for seed in tqdm(range(args.episodes), desc=task, unit="ep"):
        obs, info = env.reset(seed=seed)
        expert.reset()
        phases = []  # [step, phase] each time the expert's phase changes
        object_speed = 0.0
        steps = 0
        while True:
            action = expert.act(obs, info)
            phase = getattr(expert, "phase", "-")
            if not phases or phases[-1][1] != phase:
                phases.append([steps, phase])
            previous = info["task_state"][:3]
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            object_speed = max(object_speed, float(np.linalg.norm(info["task_state"][:3] - previous)) / control_dt)
            if terminated or truncated:
                break
        episodes.append(
            {
                "seed": seed,
                "success": bool(info["success"]),
                "length": steps,
                "phases": phases,
                "final_tcp_pos": np.round(obs["state"]["tcp_pose"][:3].astype(float), 4).tolist(),
                "final_task_state": np.round(info["task_state"].astype(float), 4).tolist(),
                "max_task_state_speed_m_per_s": round(object_speed, 3),
            }
        )
    env.close()

    lengths = [e["length"] for e in episodes]
    success_lengths = [e["length"] for e in episodes if e["success"]]
    rate = float(np.mean([e["success"] for e in episodes]))
    results[task] = {
        "episodes": args.episodes,
        "success_rate": rate,
        "target": TARGET,
        "pass": rate >= TARGET,
        "max_episode_steps": env.task.cfg.max_episode_steps,
        "mean_length": round(float(np.mean(lengths)), 2),
        "mean_length_successes": round(float(np.mean(success_lengths)), 2) if success_lengths else None,
        "lengths": lengths,
        "failure_seeds": [e["seed"] for e in episodes if not e["success"]],
        "failures": [e for e in episodes if not e["success"]],
        "max_task_state_speed_m_per_s_all_episodes": max(e["max_task_state_speed_m_per_s"] for e in episodes),
        # A grasped cube is lifted at ~0.2 m/s; faster than FAST m/s means it was knocked or thrown.
        f"seeds_with_task_state_speed_over_{FAST}_m_per_s": [
            e["seed"] for e in episodes if e["max_task_state_speed_m_per_s"] > FAST
        ],
        "seconds": round(time.perf_counter() - t_task, 1),
    }

sim = SimConfig()
result = {
    "benchmark": "expert_success",
    "config": {
        "cameras": [],
        "randomize": {k: getattr(randomize, k) for k in randomize.__dataclass_fields__},
        "physics_dt": sim.physics_dt,
        "control_hz": sim.control_hz,
        "seeds": f"0..{args.episodes - 1}",
    },
    "tasks": results,
    "seconds": round(time.perf_counter() - t_start, 1),
    "command": " ".join([".venv/bin/python", *sys.argv]),
    "args": vars(args),
}
RESULTS.mkdir(exist_ok=True)
(RESULTS / "expert_success.json").write_text(json.dumps(result, indent=2) + "\n")

# --- plot: success rate per task with the target; episode-length histograms ----------------------
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
tasks = list(results)
rates = [100 * results[t]["success_rate"] for t in tasks]
colors = ["tab:green" if results[t]["pass"] else "tab:red" for t in tasks]
ax.bar(tasks, rates, color=colors)
for i, r in enumerate(rates):
    ax.text(i, r + 1, f"{r:.0f}%", ha="center")
ax.axhline(100 * TARGET, color="black", linestyle="--", label=f"target {100 * TARGET:.0f}%")
ax.set_ylim(0, 110)
ax.set_ylabel(f"success rate over {args.episodes} seeds [%]")
ax.set_title("scripted experts, all randomisation on")
ax.legend(loc="lower right")

longest = max(results[t]["max_episode_steps"] for t in tasks)
bins = np.arange(0, longest + 3, 2)
for t in tasks:
    label = f"{t} (mean {results[t]['mean_length']})"
    ax2.hist(results[t]["lengths"], bins=bins, histtype="step", linewidth=2, label=label)
ax2.set_xlabel("episode length [control steps] (failures run to the step limit)")
ax2.set_ylabel("episodes")
ax2.set_title("episode lengths")
ax2.legend()
fig.tight_layout()
fig.savefig(RESULTS / "expert_success.png", dpi=120)

# --- summary ----------------------------------------------------------------------------------------
print(f"\nexpert_success ({args.episodes} seeds per task, all randomisation on, state-only):")
for t, r in results.items():
    print(
        f"  {t:11s} {100 * r['success_rate']:5.1f}%  target >= {100 * TARGET:.0f}%: {'PASS' if r['pass'] else 'FAIL'}"
        f"  mean length {r['mean_length']} steps  ({r['seconds']} s)"
    )
    fast = r[f"seeds_with_task_state_speed_over_{FAST}_m_per_s"]
    if fast:
        print(f"    task_state[:3] moved faster than {FAST} m/s in {len(fast)} episodes: seeds {fast}")
    for f in r["failures"]:
        phases = " -> ".join(f"{p}@{s}" for s, p in f["phases"])
        print(
            f"    seed {f['seed']:3d} failed: phases {phases}; final tcp {f['final_tcp_pos']}, "
            f"task_state[:3] {f['final_task_state'][:3]}, max task_state speed {f['max_task_state_speed_m_per_s']} m/s"
        )
print(f"wrote {RESULTS / 'expert_success.json'} and expert_success.png ({result['seconds']:.0f} s)")
