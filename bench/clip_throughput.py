"""CLIP reward throughput: camera frames per second through CLIPReward.score(), vs batch size.

    .venv/bin/python bench/clip_throughput.py                 # CPU, ~2 minutes on 2 cores
    .venv/bin/python bench/clip_throughput.py --device cuda   # GPU, bf16 autocast: writes *_cuda.json/png

What is measured
  One call = CLIPReward.score() on B synthetic uint8 frames [B, H, W, 3] (default 128x128, the twin's
  camera size) that start in host memory, as frames from a camera or the replay buffer do: input
  checks, the host-to-device copy (on a GPU), the batched preprocessing (resize to the model's
  224x224, center crop, normalise), the ViT-B-32 image encoder, and the VLM-RM reward and goal
  probability, returned to the host. Prompt embeddings are computed once at construction and not
  counted. CLIPRewardConfig defaults otherwise (mode "projection", alpha 0.5, batch_size raised to
  the largest B so that one call is one forward pass); precision fp32 on a CPU, bf16 autocast on CUDA.

  Weights: ViT-B-32 with random init (pretrained=None). The cost of a forward pass does not depend
  on the weights' values, and no weights can be downloaded on this machine; the rewards are meaningless.

  After --warmup calls per batch size, each batch size is timed --repeats times; a timed run makes as
  many calls as fill about --min-run-s seconds. The batch sizes take turns so that a slow spell of
  this shared machine hits all of them; we report the median frames/s (with min and max). Beside it,
  the preprocessing alone (copy + resize + crop + normalise) in ms per frame, to show where time goes.

Writes bench/results/clip_throughput{,_cuda}.json and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import math
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

from robot_rl.rewards.base import RewardInput  # noqa: E402
from robot_rl.rewards.clip.config import CLIPRewardConfig  # noqa: E402
from robot_rl.rewards.clip.model import CLIPReward  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_BATCH_SIZES = {"cpu": [1, 8, 32, 64], "cuda": [1, 8, 32, 128, 256, 512, 1024]}


def synthetic_frames(batch_size: int, image_size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch_size, image_size, image_size, 3), dtype=torch.uint8, generator=g)


def timed_calls(reward: CLIPReward, frames: torch.Tensor, n: int) -> float:
    """Seconds for n score() calls. The rewards come back to the host, which synchronises a GPU."""
    start = time.perf_counter()
    for _ in range(n):
        # score() converts the frames in place; a fresh dict per call, the frames tensor is reused as is
        out = reward.score(RewardInput(state=torch.zeros(len(frames), 1), images={reward.config.camera: frames}))
        out.reward.tolist()
    return time.perf_counter() - start


def timed_preprocess(reward: CLIPReward, frames: torch.Tensor, n: int) -> float:
    sync = torch.cuda.synchronize if reward.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(n):
        reward.preprocess(frames.to(reward.device, non_blocking=True))
    sync()
    return time.perf_counter() - start


def plot(results: dict, path: Path, title: str) -> None:
    batch_sizes = [r["batch_size"] for r in results.values()]
    medians = [r["frames_per_s"]["median"] for r in results.values()]
    errors = [
        [m - r["frames_per_s"]["min"] for m, r in zip(medians, results.values(), strict=True)],
        [r["frames_per_s"]["max"] - m for m, r in zip(medians, results.values(), strict=True)],
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.errorbar(batch_sizes, medians, yerr=errors, marker="o", capsize=4)
    for b, m in zip(batch_sizes, medians, strict=True):
        left.annotate(f"{m:.1f}", (b, m), textcoords="offset points", xytext=(6, -10), ha="left", fontsize=8)
    left.set_xlabel("frames per call (batch size)")
    left.set_ylabel("frames / s (median, min-max)")
    left.set_ylim(0, 1.15 * max(r["frames_per_s"]["max"] for r in results.values()))
    left.set_title("score(): uint8 frames -> rewards")
    total = [r["ms_per_frame"] for r in results.values()]
    preprocess = [r["preprocess_ms_per_frame"]["median"] for r in results.values()]
    right.plot(batch_sizes, total, marker="o", label="score() total")
    right.plot(batch_sizes, preprocess, marker="s", label="preprocessing alone")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
        ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    right.set_yscale("log")
    right.set_xlabel("frames per call (batch size)")
    right.set_ylabel("ms / frame (median)")
    right.set_title("where the time goes")
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture (random init)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default: by device")
    parser.add_argument("--image-size", type=int, default=128, help="camera frames are square, this many pixels")
    parser.add_argument("--precision", default="bf16", help="autocast dtype on CUDA (fp32, bf16, fp16)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per batch size (CPU 5, GPU 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls per batch size (CPU 1, GPU 3)")
    parser.add_argument("--min-run-s", type=float, default=None, help="target length of a timed run (CPU 2, GPU 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    on_cpu = args.device == "cpu"
    kind = "cpu" if on_cpu else "cuda"
    batch_sizes = args.batch_sizes or DEFAULT_BATCH_SIZES[kind]
    repeats = args.repeats or (5 if on_cpu else 10)
    warmup = args.warmup if args.warmup is not None else (1 if on_cpu else 3)
    min_run_s = args.min_run_s or (2.0 if on_cpu else 0.3)

    t_start, load_before = time.perf_counter(), os.getloadavg()
    torch.manual_seed(args.seed)
    config = CLIPRewardConfig(
        model=args.model,
        random_init=True,
        goal_prompts=["a robot gripper holding a red cube above the table"],
        baseline_prompts=["a robot gripper and a red cube on a table"],
        precision=args.precision,
        device=args.device,
        batch_size=max(batch_sizes),
    )
    t_build = time.perf_counter()
    reward = CLIPReward(config)
    build_s = time.perf_counter() - t_build

    setups = {}
    for batch_size in batch_sizes:
        frames = synthetic_frames(batch_size, args.image_size, args.seed + batch_size)
        timed_calls(reward, frames, max(warmup - 1, 0))
        one_call = timed_calls(reward, frames, 1)  # the last warm-up call sizes the timed runs
        calls = max(1, math.ceil(min_run_s / one_call))
        setups[batch_size] = (frames, calls)
        print(f"[batch {batch_size}] warm-up {warmup} calls, {one_call * 1e3:.1f} ms/call; {calls} calls per timed run")

    rates, preprocess_ms = defaultdict(list), defaultdict(list)
    for run in range(repeats):
        for batch_size, (frames, calls) in setups.items():
            rates[batch_size].append(calls * batch_size / timed_calls(reward, frames, calls))
            preprocess_ms[batch_size].append(1e3 * timed_preprocess(reward, frames, calls) / (calls * batch_size))
            print(f"[batch {batch_size}] run {run + 1}/{repeats}: {rates[batch_size][-1]:.2f} frames/s")

    results = {
        str(batch_size): {
            "batch_size": batch_size,
            "calls_per_run": calls,
            "frames_per_s": spread(rates[batch_size]),
            "ms_per_frame": round(1e3 / statistics.median(rates[batch_size]), 3),
            "ms_per_call": round(1e3 * batch_size / statistics.median(rates[batch_size]), 2),
            "preprocess_ms_per_frame": spread(preprocess_ms[batch_size]),
        }
        for batch_size, (_, calls) in setups.items()
    }
    autocast = None if on_cpu or args.precision == "fp32" else args.precision
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    report = {
        "benchmark": "clip_throughput",
        "device": args.device,
        "device_name": device_name,
        "config": {
            "model": args.model,
            "weights": "random init (pretrained=None): a forward pass costs the same with trained weights; "
            "no weights can be downloaded here, so the rewards themselves are meaningless",
            "frame_size": [args.image_size, args.image_size],
            "model_input_size": list(reward.preprocess.size),
            "resize_mode": reward.preprocess.resize_mode,
            "autocast": autocast or "none (fp32)",
            "mode": config.mode,
            "alpha": config.alpha,
            "prompts": {"goal": len(config.goal_prompts), "baseline": len(config.baseline_prompts)},
            "warmup_calls": warmup,
            "repeats": repeats,
            "min_run_s": min_run_s,
            "data": "synthetic uint8 frames in host memory (the host-to-device copy is counted on a GPU)",
        },
        "build_s": round(build_s, 2),
        "results": results,
        "machine": machine_info(load_before),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    suffix = "" if on_cpu else f"_{args.device.split(':')[0]}"
    RESULTS.mkdir(exist_ok=True)
    json_path, png_path = RESULTS / f"clip_throughput{suffix}.json", RESULTS / f"clip_throughput{suffix}.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    precision = f"{autocast} autocast" if autocast else f"fp32, {torch.get_num_threads()} threads"
    title = f"CLIPReward.score(), {args.model} (random init), {args.image_size}x{args.image_size} frames — "
    plot(results, png_path, title + f"{device_name}, {precision}, load average {load_before[0]:.1f} at start")

    print(f"\n{'batch':>6s} {'frames/s':>10s} {'min-max':>15s} {'ms/frame':>9s} {'preprocess ms/frame':>20s}")
    for r in results.values():
        f = r["frames_per_s"]
        print(
            f"{r['batch_size']:6d} {f['median']:10.2f} {f['min']:7.2f}-{f['max']:<7.2f} {r['ms_per_frame']:9.2f} "
            f"{r['preprocess_ms_per_frame']['median']:20.3f}"
        )
    print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
    main()
