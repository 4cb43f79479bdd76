"""Nested state <-> safetensors bytes (robot_rl/data/tree.py): checkpoints and the ROS graph's blobs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from robot_rl.data.tree import load_tree, save_tree, tree_from_bytes, tree_to_bytes


def test_nested_state_round_trips_through_safetensors(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.9, 0.99))
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "optim": opt.state_dict(), "log_alpha": torch.tensor(0.3), "n": 7}
    save_tree(tmp_path / "a.safetensors", state)
    back = load_tree(tmp_path / "a.safetensors")

    assert back["n"] == 7 and torch.equal(back["log_alpha"], state["log_alpha"])
    assert back["model"].keys() == state["model"].keys()
    assert all(torch.equal(back["model"][k], v) for k, v in state["model"].items())
    assert back["optim"]["param_groups"] == state["optim"]["param_groups"]  # tuples, floats, None kept
    assert list(back["optim"]["state"]) == [0, 1, 2, 3]  # int keys stay int: Adam maps them to params
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(back["optim"])
    assert torch.equal(fresh.state_dict()["state"][3]["exp_avg_sq"], state["optim"]["state"][3]["exp_avg_sq"])
    # The file is a plain safetensors file: an 8-byte header length, then a JSON header.
    raw = (tmp_path / "a.safetensors").read_bytes()
    json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    with pytest.raises(TypeError, match="cannot serialise"):
        save_tree(tmp_path / "b.safetensors", {"x": object()})


def observation_tree():
    rng = np.random.default_rng(0)
    return {
        "obs": {
            "images": {"front": rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)},
            "state": {"tcp_pose": rng.normal(size=7).astype(np.float32), "gripper": np.ones(1, np.float32)},
        },
        "reward": np.float32(0.5),
        "terminated": np.bool_(False),
        "stamp_ns": 1_700_000_000_123_456_789,
    }


def test_numpy_arrays_come_back_as_numpy_with_their_dtype_and_shape():
    tree = observation_tree()
    back = tree_from_bytes(tree_to_bytes(tree))
    front = back["obs"]["images"]["front"]
    assert isinstance(front, np.ndarray) and front.dtype == np.uint8 and front.shape == (24, 40, 3)
    np.testing.assert_array_equal(front, tree["obs"]["images"]["front"])
    np.testing.assert_array_equal(back["obs"]["state"]["tcp_pose"], tree["obs"]["state"]["tcp_pose"])
    # numpy scalars become plain numbers; a nanosecond stamp keeps every digit
    assert back["reward"] == 0.5 and back["terminated"] is False
    assert back["stamp_ns"] == tree["stamp_ns"]


def test_a_non_contiguous_array_is_sent_as_its_values():
    image = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)[:, ::2]
    np.testing.assert_array_equal(tree_from_bytes(tree_to_bytes({"x": image}))["x"], image)


def test_damaged_or_cut_blobs_are_refused_with_a_reason():
    blob = bytearray(tree_to_bytes(observation_tree()))
    with pytest.raises(ValueError, match="bytes"):
        tree_from_bytes(blob[: len(blob) // 2])  # cut inside the tensor bytes
    flipped = bytearray(blob)
    flipped[-10] ^= 0xFF
    with pytest.raises(ValueError, match="damaged"):
        tree_from_bytes(flipped)
    with pytest.raises(ValueError, match="shorter than"):
        tree_from_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="header"):
        tree_from_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="not JSON"):
        tree_from_bytes((4).to_bytes(8, "little") + b"\xff\xfe{]")


def test_plain_safetensors_without_a_tree_is_refused():
    from safetensors.torch import save

    with pytest.raises(ValueError, match="not a robot_rl tree"):
        tree_from_bytes(save({"w": torch.zeros(3)}))
