"""Checkpoints to resume a learner: step, agent state, RNGs and replay buffers, with no pickles.

    run_dir/checkpoints/latest.json            step, numpy RNG state, where each buffer is
    run_dir/checkpoints/step_000012000/
        agent.safetensors                      agent state + torch's RNG; the tree's shape in its metadata
        buffers/<name>/                        a copy of each in-RAM buffer (replay.py's layout)

A buffer with a storage_dir (the online buffer, in the run directory) is flushed in place rather
than copied: copying 20 GB of frames per checkpoint would be absurd. So its directory always holds
the *newest* flushed contents: a clean stop (checkpoint, exit) resumes with exactly the
checkpoint's buffer; after a crash the agent comes back from the last checkpoint while the buffer
keeps every transition up to its last automatic flush (replay.py says precisely what survives).

latest.json is replaced atomically after the step directory is complete, so a crash during a
save leaves the previous checkpoint in force.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robot_rl.data.replay import ReplayBuffer, write_json_atomic
from robot_rl.data.tree import load_tree, save_tree

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.json"
AGENT_FILE = "agent.safetensors"


@dataclass
class Checkpoint:
    step: int
    agent_state: dict
    rng: np.random.Generator
    buffers: dict[str, ReplayBuffer]


def save_checkpoint(
    run_dir: Path | str,
    step: int,
    agent_state: Mapping,
    rng: np.random.Generator,
    buffers: Mapping[str, ReplayBuffer],
    keep: int = 2,
) -> Path:
    """Write a checkpoint of `step` and make it the latest; older ones beyond `keep` are deleted.
    agent_state: the agent's state_dict() (nested dicts/lists of tensors and plain values,
    optimizer state included). Torch's global RNG is saved too, so sampling resumes exactly."""
    root = Path(run_dir) / CHECKPOINT_DIR
    step_dir = root / f"step_{step:09d}"
    if step_dir.exists():  # left by a crash during an earlier save of this step
        shutil.rmtree(step_dir)
    step_dir.mkdir(parents=True)
    save_tree(step_dir / AGENT_FILE, {"agent": agent_state, "torch_rng": torch.get_rng_state()})
    entries = {}
    for name, buffer in buffers.items():
        in_place = buffer.storage_dir is not None
        where = buffer.storage_dir if in_place else step_dir / "buffers" / name
        buffer.save(where)
        entries[name] = {"path": os.path.relpath(where, root), "in_place": in_place}
    latest = {"step": step, "dir": step_dir.name, "rng": rng.bit_generator.state, "buffers": entries}
    write_json_atomic(root / LATEST, latest)
    old = sorted(p for p in root.glob("step_*") if p.is_dir() and p != step_dir)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p)
    return step_dir


def load_checkpoint(run_dir: Path | str, ram_frame_budget_bytes: Mapping[str, int] | None = None) -> Checkpoint | None:
    """The latest checkpoint of run_dir, or None if it has none. Restores torch's global RNG.
    In-place buffers are reopened in place (and go on writing there); copies are loaded into RAM.
    ram_frame_budget_bytes: per buffer name; default: the budget each buffer was saved with."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not (root / LATEST).exists():
        return None
    latest = json.loads((root / LATEST).read_text())
    tree = load_tree(root / latest["dir"] / AGENT_FILE)
    torch.set_rng_state(tree["torch_rng"])
    state = latest["rng"]
    rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
    rng.bit_generator.state = state
    budgets = ram_frame_budget_bytes or {}
    buffers = {}
    for name, entry in latest["buffers"].items():
        path = root / entry["path"]
        opener = ReplayBuffer.open if entry["in_place"] else ReplayBuffer.load
        buffers[name] = opener(path, budgets.get(name))
    return Checkpoint(latest["step"], tree["agent"], rng, buffers)


def load_agent_state(run_dir: Path | str) -> tuple[int, dict]:
    """Only the agent of the latest checkpoint (step, state), e.g. to evaluate a trained policy
    while its run goes on: no buffer is opened."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not (root / LATEST).exists():
        raise FileNotFoundError(f"{run_dir} holds no checkpoint ({root / LATEST} is missing)")
    latest = json.loads((root / LATEST).read_text())
    path = root / latest["dir"] / AGENT_FILE
    try:
        tree = load_tree(path)
    except Exception as error:  # safetensors reports a truncated or garbled file in many ways
        raise ValueError(f"corrupt checkpoint {path}: {error}") from error
    return latest["step"], tree["agent"]
