"""Env speed: steps per second of SimTwinEnv on pick_cube, single process, CPU; gym-hil alongside.

    .venv/bin/python bench/env_speed.py            # ~80 s on 2 cores
    .venv/bin/python bench/env_speed.py --skip-gym-hil --repeats 3

What is measured
  Two modes of robot_rl.sim.env.SimTwinEnv("pick_cube") at the SimConfig defaults (10 Hz control,
  500 Hz physics: 50 mj_step per env step), render_profile "fast":
    state_only    SimConfig(cameras=[]): no rendering
    two_cameras   cameras ["front", "wrist"] rendered every step at --image-size (128x128)
  Each timed run steps the env with seeded random actions (env.action_space.sample()) and resets
  it when an episode ends (terminated or truncated), inside the timed loop: resets are part of a
  rollout's cost and are counted. After --warmup steps, each mode is timed --repeats times; the two
  modes take turns so that a slow spell of this shared, noisy machine hits both. We report the
  median and the min/max, and pass/fail against the issue's targets (>= 500 steps/s state-only,
  >= 100 steps/s with two cameras), on the median.

  Breakdown: one more run per mode with timers around the calls a step is made of, so a reader sees
  where the time goes: mujoco.mj_step (physics), env.render_camera (rendering), and the env's own
  Python around them (substep loop + F/T sensor model, action -> impedance target, observation and
  info, reset). Each bucket is exclusive (a call's time minus its timed children); "other" is the
  rest of the wall time (step()'s own code, random action sampling, the loop). The timers cost a
  little, so this run is slower than the timed runs; its total is reported next to theirs. A
  physics-only loop (mj_step x substeps on the same model, arm holding still after a reset) gives
  the bare physics cost as a cross-check.

  gym-hil: in the same run, so the ratios compare like with like on this machine at this moment,
  bench/gym_hil/measure_gym_hil.py times gym-hil's PandaPickCube (its own venv, as gym-hil pins
  mujoco<3.9) at the same rates and image size. The venv is created by bench/gym_hil/setup_venv.sh
  when missing; if that or the measurement fails, the error goes into the JSON and our numbers are
  still reported. Its two-camera mode runs ~2 steps/s, hence its own (small) step counts.

Writes bench/results/env_speed.json and bench/results/env_speed.png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; must be set before mujoco is imported

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mujoco  # noqa: E402

from robot_rl.sim.config import SimConfig  # noqa: E402
from robot_rl.sim.env import SimTwinEnv  # noqa: E402

TASK = "pick_cube"
MODES = {"state_only": [], "two_cameras": ["front", "wrist"]}
TARGETS = {"state_only": 500.0, "two_cameras": 100.0}  # steps/s, from the issue
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GYM_HIL = HERE / "gym_hil"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps-state-only", type=int, default=2000, help="timed steps per run, state-only")
parser.add_argument("--steps-two-cameras", type=int, default=1000, help="timed steps per run, two cameras")
parser.add_argument("--repeats", type=int, default=5, help="timed runs per mode")
parser.add_argument("--warmup", type=int, default=50, help="untimed steps before the first run")
parser.add_argument("--breakdown-steps", type=int, default=1000, help="steps of the instrumented run, per mode")
parser.add_argument("--image-size", type=int, default=128, help="camera width and height")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--gym-hil-steps-state-only", type=int, default=300)
parser.add_argument("--gym-hil-steps-two-cameras", type=int, default=20)
parser.add_argument("--gym-hil-repeats", type=int, default=3)
parser.add_argument("--skip-gym-hil", action="store_true")
args = parser.parse_args()
steps_per_run = {"state_only": args.steps_state_only, "two_cameras": args.steps_two_cameras}


def make_env(cameras: list[str]) -> SimTwinEnv:
    sim = SimConfig(cameras=list(cameras), render_profile="fast")
    for rig in sim.camera_rigs.values():
        rig.width = rig.height = args.image_size
    env = SimTwinEnv(TASK, sim=sim)
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    return env


def run_steps(env: SimTwinEnv, steps: int) -> tuple[float, int]:
    """Step with random actions, resetting when an episode ends; returns (seconds, resets)."""
    resets = 0
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
            resets += 1
    return time.perf_counter() - start, resets


def spread(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "runs": [round(v, 2) for v in values],
    }


def gl_renderer() -> str:
    """The OpenGL renderer string of the context the env rendered with last, e.g. 'llvmpipe'."""
    try:
        from OpenGL import GL

        return GL.glGetString(GL.GL_RENDERER).decode()
    except Exception as exc:  # informational only
        return f"unknown ({exc})"


# --- 1. timed runs: our env, both modes taking turns ------------------------------------------
t_start = time.perf_counter()
load_before = os.getloadavg()
envs = {mode: make_env(cameras) for mode, cameras in MODES.items()}
sim_cfg = envs["state_only"].sim_cfg
gl_name = None
for mode, env in envs.items():
    print(f"[ours/{mode}] warm-up {args.warmup} steps")
    run_steps(env, args.warmup)
    if MODES[mode]:
        gl_name = gl_renderer()

rates, resets = defaultdict(list), defaultdict(int)
for run in range(args.repeats):
    for mode, env in envs.items():
        seconds, run_resets = run_steps(env, steps_per_run[mode])
        rates[mode].append(steps_per_run[mode] / seconds)
        resets[mode] += run_resets
        print(f"[ours/{mode}] run {run + 1}/{args.repeats}: {rates[mode][-1]:.1f} steps/s, {run_resets} resets")


# --- 2. breakdown: where a step's time goes ----------------------------------------------------
class ExclusiveTimer:
    """Wraps functions so each label accumulates its own time, minus that of timed calls inside it."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self._children = []  # per open call: time spent in timed calls inside it

    def wrap(self, label, fn):
        def timed(*a, **kw):
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                elapsed = time.perf_counter() - start
                self.seconds[label] += elapsed - self._children.pop()
                self.calls[label] += 1
                if self._children:
                    self._children[-1] += elapsed

        return timed


# label -> env method (instance attributes shadow the class's, so env's own calls go through them)
ENV_CALLS = {
    "rendering": "render_camera",
    "substep loop + F/T sensor model": "_simulate",
    "action -> impedance target": "_move_target",
    "observation (state) + info": "observe",
    "info": "_info",  # added to the observation's bucket below
    "reset (IK, randomisation, task)": "reset",
}
PHYSICS, OTHER = "physics (mj_step)", "other (step(), random actions, loop)"
BUCKETS = [PHYSICS, *(label for label in ENV_CALLS if label != "info"), OTHER]  # plotting order
breakdown = {}
real_mj_step = mujoco.mj_step
for mode, env in envs.items():
    timer = ExclusiveTimer()
    mujoco.mj_step = timer.wrap(PHYSICS, real_mj_step)  # env.py calls mujoco.mj_step(...)
    missing = []
    for label, name in ENV_CALLS.items():
        if hasattr(env, name):
            setattr(env, name, timer.wrap(label, getattr(env, name)))
        else:
            missing.append(name)
    try:
        wall, _ = run_steps(env, args.breakdown_steps)
    finally:
        mujoco.mj_step = real_mj_step
        for name in ENV_CALLS.values():
            env.__dict__.pop(name, None)  # back to the class's methods

    timer.seconds["observation (state) + info"] += timer.seconds.pop("info", 0.0)
    timer.seconds[OTHER] = wall - sum(timer.seconds.values())
    us_per_step = {label: 1e6 * timer.seconds[label] / args.breakdown_steps for label in BUCKETS}

    # Cross-check: bare physics, mj_step x substeps from a rested state with the arm holding still.
    env.reset(seed=args.seed)
    n_periods = 200
    start = time.perf_counter()
    for _ in range(n_periods * sim_cfg.substeps):
        real_mj_step(env.model, env.data)
    physics_only_us = 1e6 * (time.perf_counter() - start) / n_periods

    physics_calls = timer.calls[PHYSICS]
    breakdown[mode] = {
        "us_per_step": {k: round(v, 1) for k, v in us_per_step.items()},
        "fraction": {k: round(v / sum(us_per_step.values()), 3) for k, v in us_per_step.items()},
        "instrumented_steps_per_s": round(args.breakdown_steps / wall, 1),
        "mj_step_calls_per_env_step": round(physics_calls / args.breakdown_steps, 2),
        "us_per_mj_step": round(1e6 * timer.seconds[PHYSICS] / physics_calls, 2),
        "us_per_rendered_frame": round(1e6 * timer.seconds["rendering"] / timer.calls["rendering"], 1)
        if timer.calls["rendering"]
        else None,
        "physics_only_loop_us_per_step": round(physics_only_us, 1),
        "env_methods_not_found": missing,
    }
    print(f"[ours/{mode}] breakdown: " + ", ".join(f"{k} {v:.0f} us" for k, v in us_per_step.items()))
for env in envs.values():
    env.close()
ours_seconds = time.perf_counter() - t_start


# --- 3. gym-hil, same machine, same run ---------------------------------------------------------
def measure_gym_hil() -> dict:
    python = GYM_HIL / ".venv" / "bin" / "python"
    if not python.exists():
        print("[gym-hil] venv missing: running bench/gym_hil/setup_venv.sh")
        setup = subprocess.run(["bash", str(GYM_HIL / "setup_venv.sh")], capture_output=True, text=True)
        if setup.returncode != 0:
            return {"error": f"setup_venv.sh exited {setup.returncode}", "stderr_tail": setup.stderr[-2000:]}
    command = [
        str(python),
        str(GYM_HIL / "measure_gym_hil.py"),
        f"--steps-state-only={args.gym_hil_steps_state_only}",
        f"--steps-two-cameras={args.gym_hil_steps_two_cameras}",
        f"--repeats={args.gym_hil_repeats}",
        f"--image-size={args.image_size}",
        f"--seed={args.seed}",
    ]
    print("[gym-hil] " + " ".join(command[1:]))
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": f"measure_gym_hil.py exited {proc.returncode}", "stderr_tail": proc.stderr[-2000:]}
    result = json.loads(proc.stdout)
    result["command"] = " ".join(command)
    return result


gym_hil = {"skipped": True} if args.skip_gym_hil else measure_gym_hil()
gym_hil_ok = "state_only_steps_per_s" in gym_hil
load_after = os.getloadavg()

# --- 4. results -----------------------------------------------------------------------------------
ours = {}
for mode in MODES:
    median = statistics.median(rates[mode])
    ours[mode] = {
        "cameras": MODES[mode],
        "steps_per_run": steps_per_run[mode],
        "steps_per_s": spread(rates[mode]),
        "resets_in_timed_runs": resets[mode],
        "target_steps_per_s": TARGETS[mode],
        "pass": median >= TARGETS[mode],
    }
    if gym_hil_ok:
        theirs = gym_hil[f"{mode}_steps_per_s_runs"]
        ours[mode]["gym_hil_steps_per_s"] = spread(theirs)
        ours[mode]["ratio_ours_over_gym_hil"] = round(median / statistics.median(theirs), 1)

result = {
    "benchmark": "env_speed",
    "task": TASK,
    "config": {
        "physics_dt": sim_cfg.physics_dt,
        "control_hz": sim_cfg.control_hz,
        "substeps": sim_cfg.substeps,
        "render_profile": sim_cfg.render_profile,
        "image_size": [args.image_size, args.image_size],
        "actions": f"env.action_space.sample(), seed {args.seed}",
        "warmup_steps": args.warmup,
        "repeats": args.repeats,
        "breakdown_steps": args.breakdown_steps,
    },
    "modes": ours,
    "breakdown": breakdown,
    "gym_hil": gym_hil,
    "machine": {
        "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "MUJOCO_GL": os.environ["MUJOCO_GL"],
        "gl_renderer": gl_name,
    },
    "seconds": {"ours": round(ours_seconds, 1), "total": round(time.perf_counter() - t_start, 1)},
    "command": " ".join([".venv/bin/python", *sys.argv]),
    "args": vars(args),
}
RESULTS.mkdir(exist_ok=True)
(RESULTS / "env_speed.json").write_text(json.dumps(result, indent=2) + "\n")

# --- 5. plot: steps/s (log) with targets; breakdown of a step's time -------------------------------
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
labels = {"state_only": "state-only", "two_cameras": f"2 cameras {args.image_size}x{args.image_size}"}
for i, mode in enumerate(MODES):
    bars = [("robot_rl twin", ours[mode]["steps_per_s"], "tab:blue", -0.2)]
    if gym_hil_ok:
        bars.append(("gym-hil PandaPickCube", ours[mode]["gym_hil_steps_per_s"], "tab:gray", 0.2))
    for name, s, color, dx in bars:
        err = [[s["median"] - s["min"]], [s["max"] - s["median"]]]
        ax.bar(i + dx, s["median"], 0.4, yerr=err, color=color, label=name if i == 0 else None, capsize=4)
        ax.text(
            i + dx,
            s["max"] * 1.15,
            f"{s['median']:.0f}" if s["median"] >= 10 else f"{s['median']:.1f}",
            ha="center",
            fontsize=9,
        )
    ax.hlines(
        TARGETS[mode],
        i - 0.45,
        i + 0.45,
        colors="tab:red",
        linestyles="--",
        label="target" if i == 0 else None,
    )
ratio = {m: f"\nours = {ours[m]['ratio_ours_over_gym_hil']}x gym-hil" if gym_hil_ok else "" for m in MODES}
ax.set_xticks(range(len(MODES)), [labels[m] + ratio[m] for m in MODES])
ax.set_yscale("log")
ax.set_ylim(1, 1e4)
ax.set_ylabel("env steps / s (median, min-max bars)")
ax.set_title(f"{TASK}, {sim_cfg.control_hz:g} Hz control / {1 / sim_cfg.physics_dt:g} Hz physics, 1 process")
ax.legend(fontsize=8, loc="upper right", ncols=3)

bottom = [0.0] * len(MODES)
colors = plt.cm.tab10.colors
for k, bucket in enumerate(BUCKETS):
    values = [breakdown[m]["us_per_step"].get(bucket, 0.0) / 1000 for m in MODES]
    ax2.bar(range(len(MODES)), values, 0.5, bottom=bottom, label=bucket, color=colors[k % 10])
    bottom = [b + v for b, v in zip(bottom, values, strict=True)]
ax2.set_xticks(range(len(MODES)), [labels[m] for m in MODES])
ax2.set_ylabel("ms per env step (instrumented run)")
ax2.set_title("where a step's time goes (robot_rl twin)")
ax2.legend(fontsize=8, loc="upper left")
ax2.set_ylim(0, max(bottom) * 1.6)
fig.tight_layout()
fig.savefig(RESULTS / "env_speed.png", dpi=120)

# --- 6. summary ---------------------------------------------------------------------------------
print(f"\nenv_speed ({TASK}, {sim_cfg.substeps} substeps/step, render_profile={sim_cfg.render_profile}):")
for mode in MODES:
    m, s = ours[mode], ours[mode]["steps_per_s"]
    line = f"  {mode:12s} {s['median']:8.1f} steps/s (min {s['min']:.1f}, max {s['max']:.1f})"
    line += f"  target >= {m['target_steps_per_s']:.0f}: {'PASS' if m['pass'] else 'FAIL'}"
    if gym_hil_ok:
        line += f"  | gym-hil {m['gym_hil_steps_per_s']['median']:.2f} -> {m['ratio_ours_over_gym_hil']}x"
    print(line)
    b = breakdown[mode]
    share = ", ".join(f"{k} {100 * v:.0f}%" for k, v in b["fraction"].items() if v >= 0.01)
    print(f"  {'':12s} time: {share}")
if not gym_hil_ok:
    print(f"  gym-hil: {gym_hil.get('error', 'skipped')}")
print(f"wrote {RESULTS / 'env_speed.json'} and env_speed.png ({result['seconds']['total']:.0f} s)")
