"""Replay buffer: bytes per transition, fill and sampling speed per frame tier, and a 200k buffer.

    .venv/bin/python bench/replay_buffer.py              # ~3-4 min; writes ~20 GB to --tmp-dir, then deletes it
    .venv/bin/python bench/replay_buffer.py --skip-200k  # ~30 s

What is measured (two 128x128 cameras + the spec's 26-D state + 7-D action, batch 256)
  layout      bytes per slot of robot_rl.data.replay.ReplayBuffer, from its actual arrays (RAM arrays'
              nbytes + the memory-mapped files' array sizes), and per transition for 100-step episodes
              (101 slots per 100 transitions), against the naive layout that stores obs and next_obs
              frames and state per transition (its arrays allocated, untouched, and their nbytes summed).
  tiers       a --tier-slots buffer (default 20k slots, ~2 GB of frames) with half of its frames in RAM,
              half memory-mapped, filled with add() from synthetic frames (a pool of random images; the
              simulator would dominate the time). Batches/s of 256 transitions (obs and next-obs frames
              of both cameras: 1024 frames, 50 MB a batch) drawn from
                ram          slots of the RAM tier only
                disk_warm    slots of the disk tier only, the file in the page cache (it was just written)
                disk_cold    the same after msync + posix_fadvise(DONTNEED) dropped the file's pages from the
                             page cache: reads hit the disk; first --cold-batches batches only (sampling
                             warms the cache again)
                mixed        ReplayBuffer.sample(): uniform over all slots, both tiers in one batch
              median of --repeats runs of --batches batches each (cold: one run).
  200k        capacity 200,000 slots with a --ram-gib RAM budget (default 4 GiB: 43,690 slots) and the
              rest memory-mapped under --tmp-dir. Filled to capacity with add() (default flush_every=1000:
              200 automatic flushes, each msync-ing the files; their total time is reported), then: disk
              usage (allocated blocks), resident memory (anonymous vs mapped file pages, which the kernel
              may reclaim), and the four sampling figures above. Deleted after.
              Crash safety keeps a copy of the RAM tier in the camera files (replay.py), so the files
              hold all 200k slots: 19.7 GB, not only the 15.4 GB disk tier. The run checks for twice that
              free space first and skips this part otherwise.

Writes bench/results/replay_buffer.json and bench/results/replay_buffer.png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from robot_rl.data.replay import ReplayBuffer  # noqa: E402
from robot_rl.spec import ACTION_DIM, STATE_DIMS  # noqa: E402

CAMERAS = {"front": (128, 128), "wrist": (128, 128)}
STATE_DIM = sum(STATE_DIMS.values())
EPISODE_LEN = 100
BATCH = 256
RESULTS = Path(__file__).resolve().parent / "results"
GB = 1e9


class SyntheticActor:
    """Observations in the spec format from a pool of random frames, so filling costs the buffer's
    time, not the simulator's. Each obs has a unique state (tcp_pose[0] = a counter)."""

    def __init__(self, seed: int, pool: int = 64):
        rng = np.random.default_rng(seed)
        self.frames = {cam: rng.integers(0, 256, (pool, h, w, 3), dtype=np.uint8) for cam, (h, w) in CAMERAS.items()}
        self.state = {key: rng.standard_normal(dim).astype(np.float32) for key, dim in STATE_DIMS.items()}
        self.action = rng.uniform(-1, 1, ACTION_DIM).astype(np.float32)
        self.count = 0

    def obs(self) -> dict:
        self.count += 1
        k = self.count
        state = {**self.state, "tcp_pose": self.state["tcp_pose"].copy()}
        state["tcp_pose"][0] = k
        images = {cam: f[(k * (i + 3)) % len(f)] for i, (cam, f) in enumerate(self.frames.items())}
        return {"state": state, "images": images}


def fill(buf: ReplayBuffer, slots: int, actor: SyntheticActor) -> float:
    """add() EPISODE_LEN-step episodes (the last one cut short) until `slots` slots were written;
    returns seconds."""
    start = time.perf_counter()
    written = 0
    while written < slots:
        obs = actor.obs()
        written += 1  # obs_0
        for t in range(min(EPISODE_LEN, slots - written)):
            next_obs = actor.obs()
            buf.add(obs, actor.action, 0.0, next_obs, False, t == EPISODE_LEN - 1)
            obs, written = next_obs, written + 1
    return time.perf_counter() - start


def batches_per_s(buf: ReplayBuffer, slots: np.ndarray, n_batches: int, rng: np.random.Generator) -> float:
    """Batches of BATCH transitions starting at slots drawn from `slots` (all with has_next)."""
    start = time.perf_counter()
    for _ in range(n_batches):
        buf.transitions_at(slots[rng.integers(len(slots), size=BATCH)])
    return n_batches / (time.perf_counter() - start)


def sample_per_s(buf: ReplayBuffer, n_batches: int, rng: np.random.Generator) -> float:
    start = time.perf_counter()
    for _ in range(n_batches):
        buf.sample(BATCH, rng)
    return n_batches / (time.perf_counter() - start)


def drop_page_cache(buf: ReplayBuffer) -> None:
    """Write the camera files out and drop their pages from the page cache (these files only): unmap
    the pages from this process (MADV_DONTNEED; the data stays in the file), then evict them."""
    buf.flush()
    for cam in buf.cameras:
        buf._files[cam]._mmap.madvise(mmap.MADV_DONTNEED)
        fd = os.open(buf.storage_dir / f"frames_{cam}.npy", os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def tier_speeds(buf: ReplayBuffer, args, rng: np.random.Generator) -> dict:
    valid = np.flatnonzero(buf.has_next)
    ram, disk = valid[valid < buf.ram_slots], valid[valid >= buf.ram_slots]
    out = {}
    for name, fn in (
        ("ram", lambda: batches_per_s(buf, ram, args.batches, rng)),
        ("disk_warm", lambda: batches_per_s(buf, disk, args.batches, rng)),
        ("mixed", lambda: sample_per_s(buf, args.batches, rng)),
    ):
        fn()  # warm-up run (allocator, page tables)
        runs = [fn() for _ in range(args.repeats)]
        out[name] = {"median": statistics.median(runs), "min": min(runs), "max": max(runs)}
    drop_page_cache(buf)
    out["disk_cold"] = {"median": batches_per_s(buf, disk, args.cold_batches, rng)}
    out["slots_in_ram"], out["slots_on_disk"] = int(buf.ram_slots), int(buf.capacity - buf.ram_slots)
    return out


def disk_usage(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.iterdir())


def memory() -> dict:
    """This process's resident memory: anonymous (the RAM tier, Python, numpy) and file-backed (pages
    of the memory-mapped files that are in the page cache and mapped here: the kernel can reclaim them)."""
    fields = {"VmRSS": "rss", "RssAnon": "rss_anon", "RssFile": "rss_file"}
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in fields:
            out[f"{fields[key]}_gb"] = int(line.split()[1]) * 1024 / GB
    return out


def layout(buf: ReplayBuffer) -> dict:
    """Bytes per slot and per transition, from the arrays' sizes; the naive layout for comparison."""
    ram_frames = sum(a.nbytes for a in buf._ram.values())
    disk_frames = sum(a.nbytes for a in buf._disk.values())
    index = sum(getattr(buf, n).nbytes for n in ("state", "action", "reward", "terminated", "has_next"))
    per_slot = (ram_frames + disk_frames + index) / buf.capacity
    slots_per_transition = (EPISODE_LEN + 1) / EPISODE_LEN
    n = 1000  # the naive arrays, allocated (np.zeros does not touch the pages) only to read their nbytes
    naive = {
        "obs_frames": np.zeros((n, len(CAMERAS), 128, 128, 3), np.uint8),
        "next_obs_frames": np.zeros((n, len(CAMERAS), 128, 128, 3), np.uint8),
        "state": np.zeros((n, STATE_DIM), np.float32),
        "next_state": np.zeros((n, STATE_DIM), np.float32),
        "action": np.zeros((n, ACTION_DIM), np.float32),
        "reward": np.zeros(n, np.float32),
        "terminated": np.zeros(n, np.bool_),
    }
    naive_per_transition = sum(a.nbytes for a in naive.values()) / n
    ours = per_slot * slots_per_transition
    return {
        "frame_bytes_per_slot": (ram_frames + disk_frames) / buf.capacity,
        "other_bytes_per_slot": index / buf.capacity,
        "bytes_per_slot": per_slot,
        "bytes_per_transition": ours,
        "naive_bytes_per_transition": naive_per_transition,
        "ratio_naive_over_ours": naive_per_transition / ours,
        "episode_length": EPISODE_LEN,
        "gb_for_200k_transitions": 200_000 * ours / GB,
        "naive_gb_for_200k_transitions": 200_000 * naive_per_transition / GB,
    }


def bench_tiers(args, tmp: Path) -> tuple[dict, dict]:
    frame_bytes = sum(h * w * 3 for h, w in CAMERAS.values())
    buf = ReplayBuffer(
        args.tier_slots, STATE_DIM, ACTION_DIM, CAMERAS, args.tier_slots // 2 * frame_bytes, tmp / "tiers"
    )
    seconds = fill(buf, args.tier_slots, SyntheticActor(0))
    result = {"capacity": args.tier_slots, "fill_s": seconds, "fill_adds_per_s": len(buf) / seconds}
    result |= tier_speeds(buf, args, np.random.default_rng(0))
    lay = layout(buf)
    lay["measured_slots_per_transition"] = args.tier_slots / len(buf)
    buf.close()
    shutil.rmtree(tmp / "tiers")
    return lay, result


def bench_200k(args, tmp: Path) -> dict:
    capacity = 200_000
    frame_bytes = sum(h * w * 3 for h, w in CAMERAS.values())
    need = capacity * frame_bytes
    free = shutil.disk_usage(tmp).free
    if free < 2 * need:
        return {"skipped": f"{free / GB:.1f} GB free under {tmp}, want {2 * need / GB:.1f} GB"}
    buf = ReplayBuffer(capacity, STATE_DIM, ACTION_DIM, CAMERAS, int(args.ram_gib * 2**30), tmp / "200k")
    flush_times = []
    flush = buf._flush

    def timed_flush(reserve):
        t0 = time.perf_counter()
        flush(reserve)
        flush_times.append(time.perf_counter() - t0)

    buf._flush = timed_flush
    memory_before = memory()
    seconds = fill(buf, capacity, SyntheticActor(1))
    result = {
        "capacity": capacity,
        "transitions": len(buf),
        "ram_budget_gib": args.ram_gib,
        "fill_s": seconds,
        "fill_adds_per_s": len(buf) / seconds,
        "automatic_flushes": len(flush_times),
        "flush_s_total": sum(flush_times),
        "flush_s_median": statistics.median(flush_times) if flush_times else 0.0,
        "flush_s_max": max(flush_times, default=0.0),
        "disk_gb_after_fill": disk_usage(tmp / "200k") / GB,
        "memory_before_fill": memory_before,
        "memory_after_fill": memory(),
    }
    t0 = time.perf_counter()
    buf.flush()
    result["final_flush_s"] = time.perf_counter() - t0
    result["disk_gb"] = disk_usage(tmp / "200k") / GB
    result |= tier_speeds(buf, args, np.random.default_rng(1))
    buf.close()
    shutil.rmtree(tmp / "200k")
    return result


def plot(result: dict, path: Path) -> None:
    tiers = ["ram", "disk_warm", "mixed", "disk_cold"]
    labels = ["RAM tier", "disk tier\n(page cache)", "mixed\n(sample())", "disk tier\n(cold)"]
    groups = [("tiers", f"{result['tiers']['capacity'] // 1000}k slots, half in RAM")]
    if "skipped" not in result["buffer_200k"]:
        groups.append(("buffer_200k", f"200k slots, {result['buffer_200k']['ram_budget_gib']:g} GiB RAM"))
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / len(groups)
    for g, (key, label) in enumerate(groups):
        values = [result[key][t]["median"] for t in tiers]
        x = np.arange(len(tiers)) + (g - (len(groups) - 1) / 2) * width
        bars = ax.bar(x, values, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(np.arange(len(tiers)), labels)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel(f"batches/s (batch {BATCH}, 2 cameras 128x128, obs + next obs)")
    ax.set_title("ReplayBuffer sampling speed per frame tier (CPU, median)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier-slots", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=20, help="batches per timed run")
    parser.add_argument("--cold-batches", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ram-gib", type=float, default=4.0, help="RAM budget of the 200k buffer")
    parser.add_argument("--tmp-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--skip-200k", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="replay_bench_", dir=args.tmp_dir))
    try:
        lay, tiers = bench_tiers(args, tmp)
        big = {"skipped": "--skip-200k"} if args.skip_200k else bench_200k(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "what": "robot_rl.data.replay.ReplayBuffer: two 128x128 cameras, 26-D state, batch 256, CPU",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "disk_free_gb_at_start": shutil.disk_usage(args.tmp_dir).free / GB,
        "layout": lay,
        "tiers": tiers,
        "buffer_200k": big,
        "seconds_total": time.perf_counter() - start,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay_buffer.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "replay_buffer.png")

    print(
        f"bytes/transition {lay['bytes_per_transition']:.0f} vs naive {lay['naive_bytes_per_transition']:.0f} "
        f"({lay['ratio_naive_over_ours']:.2f}x); 200k transitions: {lay['gb_for_200k_transitions']:.1f} GB "
        f"vs {lay['naive_gb_for_200k_transitions']:.1f} GB"
    )
    for key in ("tiers", "buffer_200k"):
        r = result[key]
        if "skipped" in r:
            print(f"{key}: skipped ({r['skipped']})")
            continue
        speeds = ", ".join(f"{t} {r[t]['median']:.1f}" for t in ("ram", "disk_warm", "mixed", "disk_cold"))
        print(f"{key}: fill {r['fill_s']:.1f} s ({r['fill_adds_per_s']:.0f} adds/s); batches/s: {speeds}")
    if "skipped" not in big:
        print(
            f"200k: disk {big['disk_gb']:.1f} GB, RSS {big['memory_after_fill']['rss_anon_gb']:.1f} GB anonymous "
            f"+ {big['memory_after_fill']['rss_file_gb']:.1f} GB mapped file pages, "
            f"{big['automatic_flushes']} flushes {big['flush_s_total']:.1f} s in all (max {big['flush_s_max']:.2f} s)"
        )
    print(f"wrote {RESULTS / 'replay_buffer.json'} and replay_buffer.png ({result['seconds_total']:.0f} s)")


if __name__ == "__main__":
    main()
