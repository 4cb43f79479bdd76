"""Synthetic episodes for the replay tests: every stored value encodes (episode, t), so any
stored or sampled transition can be checked against the truth, frames byte for byte.

Also imported by the crash test's child process (replay_crash_child.py), hence a plain module.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from robot_rl.spec import ACTION_DIM, STATE_DIMS

STATE_DIM = sum(STATE_DIMS.values())
# Small and not square, so a mix-up of H and W or of the two cameras shows.
CAMERAS = {"front": (6, 10), "wrist": (4, 4)}


def frame(ep: int, t: int, cam: str, hw: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng([ep, t, zlib.crc32(cam.encode())])
    return rng.integers(0, 256, (*hw, 3), dtype=np.uint8)


def observation(ep: int, t: int, cameras=CAMERAS) -> dict:
    state = {key: np.full(dim, 0.5, np.float32) for key, dim in STATE_DIMS.items()}
    state["tcp_pose"][:2] = ep, t  # flatten_state puts these at index 0 and 1
    obs = {"state": state}
    if cameras:
        obs["images"] = {cam: frame(ep, t, cam, hw) for cam, hw in cameras.items()}
    return obs


def action(ep: int, t: int) -> np.ndarray:
    a = np.zeros(ACTION_DIM, np.float32)
    a[:2] = ep, t
    return a


def reward(ep: int, t: int) -> float:
    return float(ep * 1000 + t)


def add_episode_steps(buffer, ep: int, length: int, terminated: bool, log: list | None = None, cameras=CAMERAS):
    """Add an episode step by step with add(), as an actor would; `log` gets the (ep, t) of every
    slot the buffer writes (obs_0 .. obs_T, the layout replay.py promises)."""
    for t in range(length):
        end = t == length - 1
        buffer.add(
            observation(ep, t, cameras),
            action(ep, t),
            reward(ep, t),
            observation(ep, t + 1, cameras),
            terminated and end,
            (not terminated) and end,
        )
    if log is not None:
        log.extend((ep, t) for t in range(length + 1))


def expected_transitions(log: list, capacity: int, lost_positions=()) -> set:
    """(ep, t) of the transitions a ring of `capacity` slots should hold after writing the slots of
    `log` in order: both observations still in the ring, consecutive in one episode, and neither
    in a lost (crash-reserved) ring position."""
    ring = {}
    for n, entry in enumerate(log):
        ring[n % capacity] = entry
    newest = (len(log) - 1) % capacity
    lost = set(lost_positions)
    out = set()
    for pos, (ep, t) in ring.items():
        nxt = (pos + 1) % capacity
        if pos != newest and pos not in lost and nxt not in lost and ring.get(nxt) == (ep, t + 1):
            out.add((ep, t))
    return out


def stored_transitions(buffer) -> set:
    slots = np.flatnonzero(buffer.has_next)
    return {(int(buffer.state[i, 0]), int(buffer.state[i, 1])) for i in slots}


def check_batch(batch, ends: dict, cameras=CAMERAS) -> None:
    """Every row of `batch` is the true transition (ep, t) -> (ep, t + 1). ends: ep -> (length,
    terminated) of each episode added."""
    ep = batch.state[:, 0].long()
    t = batch.state[:, 1].long()
    assert torch.equal(batch.next_state[:, 0].long(), ep), "a transition crosses an episode boundary"
    assert torch.equal(batch.next_state[:, 1].long(), t + 1), "next observation is not the next step"
    assert torch.equal(batch.state[:, 2:], batch.next_state[:, 2:])
    for i, (e, s) in enumerate(zip(ep.tolist(), t.tolist(), strict=True)):
        assert torch.equal(batch.action[i], torch.from_numpy(action(e, s)))
        assert batch.reward[i].item() == reward(e, s)
        length, terminated = ends[e]
        assert batch.terminated[i].item() == float(terminated and s == length - 1)
        for cam, hw in cameras.items():
            assert np.array_equal(batch.images[cam][i].numpy(), frame(e, s, cam, hw)), f"frame {cam} {e} {s}"
            assert np.array_equal(batch.next_images[cam][i].numpy(), frame(e, s + 1, cam, hw))


def check_all_stored(buffer, ends: dict, cameras=CAMERAS) -> None:
    """check_batch on every transition the buffer holds, not a sample of them."""
    slots = np.flatnonzero(buffer.has_next)
    if len(slots):
        check_batch(buffer.transitions_at(slots), ends, cameras)


def frame_bytes(cameras=CAMERAS) -> int:
    return sum(h * w * 3 for h, w in cameras.values())
