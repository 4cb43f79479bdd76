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
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from robot_rl.data.replay import ReplayBuffer, write_json_atomic

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


# Nested state (a state_dict, an optimizer's state_dict) <-> one safetensors file -----------------
# Tensors go into the file's tensor table; the tree around them (dicts with int or str keys, lists,
# tuples, numbers, strings, None) goes into its metadata as JSON, with tensors as references.
_TENSOR, _DICT, _TUPLE = "__tensor__", "__dict__", "__tuple__"


def save_tree(path: Path, tree: Any) -> None:
    tensors: dict[str, torch.Tensor] = {}

    def encode(value: Any, key: str) -> Any:
        if isinstance(value, torch.Tensor):
            name = key if key not in tensors else f"{key}#{len(tensors)}"
            # clone: safetensors refuses tensors that share memory (tied weights, views)
            tensors[name] = value.detach().cpu().contiguous().clone()
            return {_TENSOR: name}
        if isinstance(value, Mapping):
            # [key, value] pairs keep int keys int (an optimizer's state is keyed by param index)
            return {_DICT: [[k, encode(v, f"{key}.{k}" if key else str(k))] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v, f"{key}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [encode(v, f"{key}.{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"cannot checkpoint {key!r} of type {type(value).__name__}")

    metadata = {"tree": json.dumps(encode(tree, ""))}
    save_file(tensors, str(path), metadata=metadata)
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def load_tree(path: Path) -> Any:
    with safe_open(str(path), framework="pt") as f:
        tree = json.loads(f.metadata()["tree"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is no dict)

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if _TENSOR in value:
                return tensors[value[_TENSOR]]
            if _TUPLE in value:
                return tuple(decode(v) for v in value[_TUPLE])
            return {k: decode(v) for k, v in value[_DICT]}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(tree)
