"""Reward server latency and throughput: N actors through RewardServer vs direct score() calls.

    .venv/bin/python bench/reward_server_latency.py                 # CPU, ~2.5 minutes on 2 cores
    .venv/bin/python bench/reward_server_latency.py --device cuda   # GPU: writes *_cuda.json/png
    .venv/bin/python bench/reward_server_latency.py --rate-hz 10    # actors at a 10 Hz control rate

What is measured
  The model is the success classifier (SuccessClassifierReward, default config: small CNN encoder
  per camera, "front" and "wrist" at 128x128, MLP head), built untrained: the cost of a forward
  pass does not depend on the weights' values, so the rewards are meaningless but the timings hold.
  Each of N actor threads owns one synthetic observation (uint8 frames and a state in host memory,
  as a camera message arrives) and, in a closed loop, builds a RewardInput of it, has it scored
  and reads the reward back to the host (`.tolist()`, which waits for a GPU), then goes again.
  With --rate-hz an actor instead starts a request at each tick of its own clock (random phase),
  skipping ticks it missed, as a control loop does.

  Latency = one request, from building its RewardInput to holding its reward on the host, as the
  actor sees it: queueing, batching wait, concatenation, score(), the split and the device copy.
  Every request sent in a timed run counts, one still in flight at its end included (waited for).
  Throughput = observations whose reward arrived within a timed run, per second; also that of the
  slowest actor, since a total can hide an actor that starves (a 10 Hz robot needs 10/s of its own).

  Two ways to serve the same actors, on the same model in the same process:
    server, max_batch=B: RewardServer(max_batch=B, max_wait_s); actors submit() and wait on the future.
    direct: each actor calls model.score() itself under a lock (one call at a time on the model,
      batch of 1): what an actor sharing a learner's model without a server does. Python's lock
      is not fair: a thread that releases it often takes it straight back.
  Every (actors, mode) pair is timed --repeats times for --run-s seconds each, after a score() call
  at every batch size the server can form and one untimed warm-up run per pair; the pairs take
  turns so that a slow spell of this shared machine hits all of them. We report the median over
  runs (with min and max) of each run's p50 and p99 latency and its throughput, and the server's
  mean batch size. On a CPU, torch uses --threads intra-op threads
  (default 1: on this 2-core machine another job holds a core, and 2 threads contending with it
  ran 10-50x slower and erratically).

Writes bench/results/reward_server_latency{,_cuda}.json and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from machine import machine_info, spread  # noqa: E402  (bench/machine.py, beside this script)
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

from robot_rl.rewards.base import RewardInput, RewardModel  # noqa: E402
from robot_rl.rewards.classifier.config import SuccessClassifierConfig  # noqa: E402
from robot_rl.rewards.classifier.model import SuccessClassifierReward  # noqa: E402
from robot_rl.rewards.server import RewardServer, RewardServerConfig  # noqa: E402
from robot_rl.spec import STATE_DIMS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CAMERAS = ["front", "wrist"]
DIRECT = "direct"


def observation(image_size: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One actor's observation: state [1, S] and uint8 [1, H, W, 3] per camera, in host memory."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(1, sum(STATE_DIMS.values()), generator=g)
    images = {
        cam: torch.randint(0, 256, (1, image_size, image_size, 3), dtype=torch.uint8, generator=g) for cam in CAMERAS
    }
    return state, images


def timed_run(model: RewardModel, mode: str, actors: int, run_s: float, args: argparse.Namespace, seed: int) -> dict:
    """One run of `actors` threads for run_s seconds: latency percentiles of the requests sent in it
    (a request still in flight at the end is waited for: a starved actor's wait must count), the
    observations per second whose reward arrived in it, and those of the slowest actor."""
    server = None
    if mode != DIRECT:
        server = RewardServer(model, RewardServerConfig(max_batch=int(mode), max_wait_s=args.max_wait_s))
    lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(actors)]
    completed = [0] * actors  # rewards that arrived before the end of the run
    window: dict[str, float] = {}
    start = threading.Barrier(actors, action=lambda: window.update(start=time.perf_counter()))
    rng = random.Random(seed)
    phases = [rng.random() / args.rate_hz if args.rate_hz else 0.0 for _ in range(actors)]

    def score(state: torch.Tensor, images: dict[str, torch.Tensor]) -> None:
        inputs = RewardInput(state=state, images=dict(images))  # a fresh one per request, as from a message
        if server is not None:
            server.submit(inputs).result().reward.tolist()
        else:
            with lock, torch.no_grad():
                model.score(inputs).reward.tolist()

    def actor(index: int) -> None:
        state, images = observation(args.image_size, seed + index)
        start.wait()
        end, tick = window["start"] + run_s, window["start"] + phases[index]
        while True:
            if args.rate_hz:
                time.sleep(max(0.0, tick - time.perf_counter()))
                while tick <= time.perf_counter():  # a control loop skips the ticks it missed
                    tick += 1.0 / args.rate_hz
            sent = time.perf_counter()
            if sent >= end:
                break
            score(state, images)
            done = time.perf_counter()
            latencies[index].append(done - sent)
            completed[index] += done <= end

    threads = [threading.Thread(target=actor, args=(i,)) for i in range(actors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = None
    if server is not None:
        server.close()
        stats = server.stats()
    all_latencies = np.concatenate([np.asarray(x) for x in latencies])
    return {
        "p50_ms": 1e3 * float(np.percentile(all_latencies, 50)),
        "p99_ms": 1e3 * float(np.percentile(all_latencies, 99)),
        "max_ms": 1e3 * float(all_latencies.max()),
        "obs_per_s": sum(completed) / run_s,
        "slowest_actor_obs_per_s": min(completed) / run_s,
        "requests": len(all_latencies),
        "mean_batch_size": None if stats is None else stats.mean_batch_size,
    }


def summarise(runs: list[dict]) -> dict:
    batch = [r["mean_batch_size"] for r in runs if r["mean_batch_size"] is not None]
    return {
        "latency_p50_ms": spread([r["p50_ms"] for r in runs]),
        "latency_p99_ms": spread([r["p99_ms"] for r in runs]),
        "latency_max_ms": spread([r["max_ms"] for r in runs]),
        "obs_per_s": spread([r["obs_per_s"] for r in runs]),
        "slowest_actor_obs_per_s": spread([r["slowest_actor_obs_per_s"] for r in runs]),
        "requests_per_run": int(statistics.median(r["requests"] for r in runs)),
        "mean_batch_size": spread(batch) if batch else None,
    }


def plot(results: dict, modes: list[str], path: Path, title: str) -> None:
    x = list(range(len(modes)))
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))

    def with_range(ax, key: str, by_mode: dict, **style) -> None:
        values = [by_mode[m][key] for m in modes]
        medians = [v["median"] for v in values]
        errors = [[v["median"] - v["min"] for v in values], [v["max"] - v["median"] for v in values]]
        ax.errorbar(x, medians, yerr=errors, marker="o", capsize=4, **style)

    for i, (label, by_mode) in enumerate(results.items()):
        color = f"C{i}"
        p50 = [by_mode[m]["latency_p50_ms"]["median"] for m in modes]
        p99 = [by_mode[m]["latency_p99_ms"]["median"] for m in modes]
        left.plot(x, p50, marker="o", color=color, label=f"{label} p50")
        left.plot(x, p99, marker="^", color=color, linestyle="--", label=f"{label} p99")
        with_range(middle, "obs_per_s", by_mode, color=color, label=label)
        with_range(right, "slowest_actor_obs_per_s", by_mode, color=color, label=label)
    labels = [DIRECT + "\n(lock, batch 1)" if m == DIRECT else f"server\nmax_batch={m}" for m in modes]
    for ax in (left, middle, right):
        ax.set_xticks(x, labels, fontsize=8)
        ax.axvline(0.5, color="grey", linewidth=0.8)
    left.set_yscale("log")
    left.yaxis.set_major_formatter(ScalarFormatter())
    left.yaxis.set_minor_formatter(NullFormatter())
    left.set_ylabel("ms per request (median of runs)")
    left.set_title("latency: request -> reward on the host")
    left.legend(fontsize=7, ncol=2)
    middle.set_ylabel("observations / s (median, min-max)")
    middle.set_title("throughput, all actors")
    right.set_ylabel("observations / s (median, min-max)")
    right.set_title("throughput of the slowest actor")
    right.set_yscale("symlog", linthresh=10)
    right.yaxis.set_major_formatter(ScalarFormatter())
    for ax in (middle, right):
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--max-wait-s", type=float, default=RewardServerConfig.max_wait_s)
    parser.add_argument("--rate-hz", type=float, default=0.0, help="each actor's request rate; 0: closed loop")
    parser.add_argument("--image-size", type=int, default=128, help="square frames, this many pixels")
    parser.add_argument("--run-s", type=float, default=None, help="length of a timed run in s (2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per configuration (CPU 3, GPU 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on a CPU")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    on_cpu = args.device == "cpu"
    run_s = args.run_s or 2.0
    if args.rate_hz:
        run_s = max(run_s, 5.0 / args.rate_hz)  # a few ticks per actor at least
    repeats = args.repeats or (3 if on_cpu else 5)
    if on_cpu:
        torch.set_num_threads(args.threads)

    t_start, load_before = time.perf_counter(), os.getloadavg()
    torch.manual_seed(args.seed)
    t_build = time.perf_counter()
    config = SuccessClassifierConfig(cameras=CAMERAS, image_size=[args.image_size, args.image_size])
    model = SuccessClassifierReward(config).to(args.device).eval()
    build_s = time.perf_counter() - t_build

    # Every batch size the server can form, once: first calls pay CUDA's lazy loading of kernels
    # (seconds) and the CPU allocator's growth, which no timed run should see.
    state, images = observation(args.image_size, args.seed)
    with torch.no_grad():
        for size in range(1, min(max(args.actors), max(args.max_batches)) + 1):
            batch = {cam: frames.expand(size, -1, -1, -1).contiguous() for cam, frames in images.items()}
            model.score(RewardInput(state=state.expand(size, -1), images=batch)).reward.tolist()
    modes = [DIRECT] + [str(b) for b in args.max_batches]
    runs: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for actors in args.actors:
        for mode in modes:
            timed_run(model, mode, actors, 0.5, args, args.seed)  # warm-up
    for repeat in range(repeats):
        for actors in args.actors:
            for mode in modes:
                run = timed_run(model, mode, actors, run_s, args, args.seed + 1000 * repeat)
                runs[actors, mode].append(run)
                print(
                    f"[run {repeat + 1}/{repeats}] {actors:2d} actors, {mode:>6s}: p50 {run['p50_ms']:7.2f} ms, "
                    f"p99 {run['p99_ms']:7.2f} ms, {run['obs_per_s']:7.1f} obs/s"
                )

    results = {}
    for actors in args.actors:
        by_mode = {mode: summarise(runs[actors, mode]) for mode in modes}
        direct = by_mode[DIRECT]
        for mode in modes[1:]:
            r = by_mode[mode]
            r["vs_direct"] = {
                key: round(r[key]["median"] / direct[key]["median"], 3)
                for key in ("obs_per_s", "latency_p50_ms", "latency_p99_ms")
            }
        results[f"{actors} actor{'s' if actors > 1 else ''}"] = by_mode

    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    report = {
        "benchmark": "reward_server_latency",
        "device": args.device,
        "device_name": device_name,
        "config": {
            "model": "SuccessClassifierReward, default SuccessClassifierConfig (cnn encoder "
            f"{config.cnn_channels}, {config.image_feature_dim} features per camera, head {config.hidden_dims})",
            "weights": "untrained (random init): a forward pass costs the same with trained weights; "
            "the rewards themselves are meaningless",
            "cameras": CAMERAS,
            "image_size": [args.image_size, args.image_size],
            "state_dim": sum(STATE_DIMS.values()),
            "actors": args.actors,
            "max_batches": args.max_batches,
            "max_wait_s": args.max_wait_s,
            "load": f"each actor at {args.rate_hz} Hz" if args.rate_hz else "closed loop (next request on reply)",
            "run_s": run_s,
            "repeats": repeats,
            "warmup": "one score() call per batch size the server can form, then one 0.5 s untimed run per "
            "configuration",
            "torch_threads": torch.get_num_threads(),
            "latency": "per request: RewardInput built -> reward on the host (queue, batching wait, score, copy)",
            "direct": "each actor calls model.score() on its own observation under a shared lock",
            "data": "one synthetic observation per actor, uint8 frames in host memory",
        },
        "build_s": round(build_s, 2),
        "results": results,
        "machine": machine_info(load_before),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    suffix = "" if on_cpu else f"_{args.device.split(':')[0]}"
    if args.rate_hz:
        suffix += f"_{args.rate_hz:g}hz"
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"reward_server_latency{suffix}"
    json_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".png")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    load = report["config"]["load"]
    threads = f", torch threads {torch.get_num_threads()}" if on_cpu else ""
    title = (
        f"Success classifier (2 cams, {args.image_size}x{args.image_size}) via RewardServer "
        f"(max_wait {1e3 * args.max_wait_s:g} ms) vs direct score() calls\n{device_name}{threads}, {load}, "
        f"load average {load_before[0]:.1f} at start"
    )
    plot(results, modes, png_path, title)

    header = ["actors", "mode", "p50 ms", "p99 ms", "max ms", "obs/s", "slowest", "batch", "x direct"]
    print("\n" + " ".join(f"{h:>8s}" for h in header))
    for label, by_mode in results.items():
        for mode, r in by_mode.items():
            row = [r[k]["median"] for k in ("latency_p50_ms", "latency_p99_ms", "latency_max_ms", "obs_per_s")]
            row += [
                r["slowest_actor_obs_per_s"]["median"],
                r["mean_batch_size"]["median"] if r["mean_batch_size"] else 1,
            ]
            ratio = f"{r['vs_direct']['obs_per_s']:.2f}" if "vs_direct" in r else ""
            print(f"{label.split()[0]:>8s} {mode:>8s} " + " ".join(f"{v:8.2f}" for v in row) + f" {ratio:>8s}")
    print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
    main()
