"""Nested state <-> safetensors bytes, with no pickles: the one format for checkpoints, reward
model files and what the ROS graph sends that has no standard message (observations, transitions,
policy weights; see ros_nodes/convert.py's blob messages).

A tree is dicts (int or str keys), lists, tuples, numbers, strings, None, torch tensors and numpy
arrays. The tensors and arrays go into the safetensors tensor table; the tree around them goes
into the header's metadata as JSON, with the tensors as references, so decoding gives back the
same structure (numpy arrays as numpy arrays, tensors as tensors, int keys as ints). The metadata
also holds the SHA-256 of the tensor bytes: a blob cut short or altered on the way fails to
decode instead of yielding wrong weights.

Layout of a safetensors blob (https://github.com/huggingface/safetensors#format): an 8-byte
little-endian header length N, N bytes of JSON header (tensor dtypes, shapes, offsets and the
"__metadata__" string map), then the tensor bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

_TENSOR, _ARRAY, _DICT, _TUPLE = "__tensor__", "__ndarray__", "__dict__", "__tuple__"
_HEADER_LENGTH_BYTES = 8


def tree_to_bytes(tree: Any) -> bytes:
    tensors: dict[str, torch.Tensor] = {}

    def add(value: torch.Tensor, key: str) -> str:
        name = key if key not in tensors else f"{key}#{len(tensors)}"
        # clone: safetensors refuses tensors that share memory (tied weights, views)
        tensors[name] = value.detach().cpu().contiguous().clone()
        return name

    def encode(value: Any, key: str) -> Any:
        if isinstance(value, torch.Tensor):
            return {_TENSOR: add(value, key)}
        if isinstance(value, np.ndarray):
            return {_ARRAY: add(torch.from_numpy(np.ascontiguousarray(value)), key)}
        if isinstance(value, Mapping):
            # [key, value] pairs keep int keys int (an optimizer's state is keyed by param index)
            return {_DICT: [[k, encode(v, f"{key}.{k}" if key else str(k))] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v, f"{key}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [encode(v, f"{key}.{i}") for i, v in enumerate(value)]
        if isinstance(value, np.generic):  # a numpy scalar, e.g. a reward read from an array
            return value.item()
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"cannot serialise {key!r} of type {type(value).__name__}")

    structure = json.dumps(encode(tree, ""))
    # The digest covers the tensor bytes; safetensors lays them out in a fixed order, so hashing
    # a first serialisation and then writing the digest into the header of the final one is exact.
    unhashed = save_tensors(tensors, metadata={"tree": structure})
    digest = hashlib.sha256(unhashed[_data_offset(unhashed) :]).hexdigest()
    return save_tensors(tensors, metadata={"tree": structure, "sha256": digest})


def tree_from_bytes(blob: bytes | bytearray | memoryview) -> Any:
    """Raises ValueError, saying what is wrong, for anything that is not a whole blob of this format."""
    blob = bytes(blob)
    metadata = read_metadata(blob)
    if "tree" not in metadata or "sha256" not in metadata:
        raise ValueError("not a robot_rl tree: the safetensors metadata has no 'tree' and 'sha256'")
    digest = hashlib.sha256(blob[_data_offset(blob) :]).hexdigest()
    if digest != metadata["sha256"]:
        expected = metadata["sha256"]
        raise ValueError(f"tensor bytes damaged: their SHA-256 is {digest[:12]}.., the header says {expected[:12]}..")
    try:
        tensors = load_tensors(blob)
    except Exception as error:  # safetensors reports a malformed table in several exception types
        raise ValueError(f"malformed safetensors data: {error}") from error

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if _TENSOR in value:
                return tensors[value[_TENSOR]]
            if _ARRAY in value:
                return tensors[value[_ARRAY]].numpy()
            if _TUPLE in value:
                return tuple(decode(v) for v in value[_TUPLE])
            return {k: decode(v) for k, v in value[_DICT]}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(json.loads(metadata["tree"]))


def read_metadata(blob: bytes) -> dict[str, str]:
    """The "__metadata__" string map of a safetensors blob's header."""
    if len(blob) < _HEADER_LENGTH_BYTES:
        raise ValueError(f"{len(blob)} bytes: shorter than a safetensors header length")
    offset = _data_offset(blob)
    if offset > len(blob):
        raise ValueError(f"{len(blob)} bytes: the header says it alone takes {offset - _HEADER_LENGTH_BYTES}")
    try:
        header = json.loads(blob[_HEADER_LENGTH_BYTES:offset])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the safetensors header is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a JSON object")
    return header.get("__metadata__") or {}


def _data_offset(blob: bytes) -> int:
    return _HEADER_LENGTH_BYTES + int.from_bytes(blob[:_HEADER_LENGTH_BYTES], "little")


def save_tree(path: Path | str, tree: Any) -> None:
    """Write and fsync: a checkpoint that the OS still holds in its cache is not yet saved."""
    with open(path, "wb") as f:
        f.write(tree_to_bytes(tree))
        f.flush()
        os.fsync(f.fileno())


def load_tree(path: Path | str) -> Any:
    return tree_from_bytes(Path(path).read_bytes())
