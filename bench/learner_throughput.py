"""Learner throughput: SACAgent.update() calls per second at batch 256, UTD 1, on this machine.

    .venv/bin/python bench/learner_throughput.py                 # CPU, ~40 s on 2 cores
    .venv/bin/python bench/learner_throughput.py --device cuda   # GPU: writes *_cuda.json/png

What is measured
  One update = one critic step (encoder forward with gradient on the observations, encoder forward
  without gradient on the next observations, DrQ shifts, REDQ target, critic backward + Adam,
  Polyak), then one actor step and one temperature step: SACAgent.update([batch]) at the default
  SACConfig (hidden [256, 256], LayerNorm, small CNN encoder) with utd_ratio 1.
  Four configurations: state-only or two 128x128 cameras ("front", "wrist"), each with 2 and with
  10 critics. The batch is synthetic (seeded random state, uint8 images, actions, rewards), built
  once and already on the device: replay sampling and host-to-device copies are not counted.
  torch's default thread count. After --warmup updates per configuration, each one is timed
  --repeats times; the configurations take turns so that a slow spell of this shared machine hits
  all of them; we report the median (with min and max) and pass/fail on the median against the
  issue's CPU targets (>= 48 updates/s state-only and >= 1.5 updates/s with two cameras, both at
  2 critics). On another device the targets are not applied.

  Breakdown: one more run per configuration timing the critic step and the actor + temperature
  step separately (the agent's two halves of update()), so a reader sees where the time goes.

Writes bench/results/learner_throughput{,_cuda}.json and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from machine import machine_info, spread  # noqa: E402  (bench/machine.py, beside this script)

from robot_rl.agents import SACAgent, SACConfig  # noqa: E402
from robot_rl.data.batch import Batch  # noqa: E402
from robot_rl.spec import ACTION_DIM, STATE_DIMS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STATE_DIM = sum(STATE_DIMS.values())
MODES = {"state_only": [], "two_cameras": ["front", "wrist"]}
TARGETS = {("state_only", 2): 48.0, ("two_cameras", 2): 1.5}  # updates/s on the 2-core CPU, from the issue


def synthetic_batch(batch_size: int, cameras: dict[str, tuple[int, int]], device: str, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)

    def images() -> dict[str, torch.Tensor]:
        return {
            c: torch.randint(0, 256, (batch_size, h, w, 3), dtype=torch.uint8, generator=g)
            for c, (h, w) in cameras.items()
        }

    batch = Batch(
        state=torch.randn(batch_size, STATE_DIM, generator=g),
        images=images(),
        action=torch.rand(batch_size, ACTION_DIM, generator=g) * 2 - 1,
        reward=torch.randn(batch_size, generator=g),
        next_state=torch.randn(batch_size, STATE_DIM, generator=g),
        next_images=images(),
        terminated=(torch.rand(batch_size, generator=g) < 0.1).float(),
    )
    return batch.to(device)


def timed_updates(agent: SACAgent, batch: Batch, n: int) -> float:
    """Seconds for n updates (update() returns Python floats, so the device is synchronised)."""
    start = time.perf_counter()
    for _ in range(n):
        agent.update([batch])
    return time.perf_counter() - start


def phase_breakdown(agent: SACAgent, batch: Batch, n: int) -> dict[str, float]:
    """ms per update in the critic step and in the actor + temperature step."""
    sync = torch.cuda.synchronize if agent.device.type == "cuda" else (lambda: None)
    critic = actor = 0.0
    for _ in range(n):
        start = time.perf_counter()
        _, features = agent._update_critic(batch)
        sync()
        middle = time.perf_counter()
        agent._update_actor_and_temperature(features)
        sync()
        critic, actor = critic + middle - start, actor + time.perf_counter() - middle
    return {"critic_step_ms": round(1e3 * critic / n, 2), "actor_temperature_step_ms": round(1e3 * actor / n, 2)}


def plot(results: dict, path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, mode in zip(axes, MODES, strict=True):
        rows = [r for r in results.values() if r["mode"] == mode]
        labels = [f"{r['num_critics']} critics" for r in rows]
        medians = [r["updates_per_s"]["median"] for r in rows]
        errors = [
            [m - r["updates_per_s"]["min"] for m, r in zip(medians, rows, strict=True)],
            [r["updates_per_s"]["max"] - m for m, r in zip(medians, rows, strict=True)],
        ]
        bars = ax.bar(labels, medians, yerr=errors, capsize=4, color=["tab:blue", "tab:orange"][: len(rows)])
        ax.bar_label(bars, fmt="%.2f", padding=3)
        target = TARGETS.get((mode, 2)) if results[next(iter(results))]["target_applies"] else None
        if target is not None:
            ax.axhline(target, color="tab:red", linestyle="--", label=f"target (2 critics) {target:g}/s")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title(mode.replace("_", " ") + (" (2 x 128x128)" if MODES[mode] else ""))
        ax.set_ylabel("updates / s (median, min-max)")
        ax.set_ylim(0, 1.25 * max(medians + [target or 0]))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--critics", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--updates-state-only", type=int, default=40, help="updates per timed run")
    parser.add_argument("--updates-two-cameras", type=int, default=4, help="updates per timed run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates per configuration")
    parser.add_argument("--breakdown-updates", type=int, default=3, help="x10 for state-only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    on_cpu = args.device == "cpu"
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    updates_per_run = {"state_only": args.updates_state_only, "two_cameras": args.updates_two_cameras}

    t_start, load_before = time.perf_counter(), os.getloadavg()
    setups = {}
    for mode, camera_names in MODES.items():
        cameras = {cam: (args.image_size, args.image_size) for cam in camera_names}
        batch = synthetic_batch(args.batch_size, cameras, args.device, args.seed)
        for num_critics in args.critics:
            config = SACConfig(num_critics=num_critics, batch_size=args.batch_size, seed=args.seed)
            agent = SACAgent(config, STATE_DIM, ACTION_DIM, cameras, args.device)
            print(f"[{mode}/{num_critics} critics] warm-up {args.warmup} updates")
            timed_updates(agent, batch, args.warmup * (10 if mode == "state_only" else 1))
            setups[f"{mode}/{num_critics}_critics"] = (mode, num_critics, agent, batch)

    rates = defaultdict(list)
    for run in range(args.repeats):
        for name, (mode, _, agent, batch) in setups.items():
            n = updates_per_run[mode]
            rates[name].append(n / timed_updates(agent, batch, n))
            print(f"[{name}] run {run + 1}/{args.repeats}: {rates[name][-1]:.2f} updates/s")

    results = {}
    for name, (mode, num_critics, agent, batch) in setups.items():
        n = args.breakdown_updates * (10 if mode == "state_only" else 1)
        target = TARGETS.get((mode, num_critics)) if on_cpu else None
        median = statistics.median(rates[name])
        results[name] = {
            "mode": mode,
            "cameras": MODES[mode],
            "num_critics": num_critics,
            "updates_per_run": updates_per_run[mode],
            "updates_per_s": spread(rates[name]),
            "ms_per_update": round(1e3 / median, 2),
            "breakdown": phase_breakdown(agent, batch, n),
            "target_updates_per_s": target,
            "target_applies": on_cpu,
            "pass": None if target is None else median >= target,
        }

    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    report = {
        "benchmark": "learner_throughput",
        "device": args.device,
        "device_name": device_name,
        "config": {
            "agent": "SACAgent, default SACConfig except num_critics (hidden [256, 256], LayerNorm, cnn encoder "
            f"{SACConfig().cnn_channels}, image_pad 4)",
            "batch_size": args.batch_size,
            "utd_ratio": 1,
            "image_size": [args.image_size, args.image_size],
            "state_dim": STATE_DIM,
            "action_dim": ACTION_DIM,
            "warmup_updates": args.warmup,
            "repeats": args.repeats,
            "data": "one synthetic batch, already on the device (sampling and transfers not counted)",
        },
        "results": results,
        "machine": machine_info(load_before),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    suffix = "" if on_cpu else f"_{args.device.split(':')[0]}"
    RESULTS.mkdir(exist_ok=True)
    json_path, png_path = RESULTS / f"learner_throughput{suffix}.json", RESULTS / f"learner_throughput{suffix}.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    title = f"SACAgent.update() at batch {args.batch_size}, UTD 1 — {device_name}, {torch.get_num_threads()} threads"
    plot(results, png_path, title)

    print(f"\n{'configuration':28s} {'updates/s':>10s} {'ms/update':>10s}  critic / actor ms   target")
    for name, r in results.items():
        b = r["breakdown"]
        verdict = "" if r["pass"] is None else f">= {r['target_updates_per_s']:g}: {'PASS' if r['pass'] else 'FAIL'}"
        print(
            f"{name:28s} {r['updates_per_s']['median']:10.2f} {r['ms_per_update']:10.1f}  "
            f"{b['critic_step_ms']:7.1f} / {b['actor_temperature_step_ms']:<7.1f}   {verdict}"
        )
    print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
    main()
