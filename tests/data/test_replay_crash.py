"""Crash safety: a process fills a replay buffer in its storage_dir and is SIGKILLed; a new
process reopens the directory and has every transition the last flush recorded, bit for bit,
less the ring positions that flush reserved, and nothing written after it.
(replay.py's docstring states the guarantee; replay_crash_child.py is the killed process.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from replay_crash_child import CAPACITY, FLUSH_EVERY, RAM_SLOTS
from replay_synthetic import add_episode_steps, check_all_stored, check_batch, expected_transitions, stored_transitions

from robot_rl.data.replay import ReplayBuffer

CHILD = Path(__file__).with_name("replay_crash_child.py")


def run_and_kill(storage_dir: Path, mode: str) -> dict:
    """Start the child, read its JSON lines up to "ready", SIGKILL it; returns what it said."""
    child = subprocess.Popen([sys.executable, str(CHILD), str(storage_dir), mode], stdout=subprocess.PIPE, text=True)
    said = {}
    try:
        for line in child.stdout:
            said.update(json.loads(line))
            if "ready" in said:
                break
        assert "ready" in said, f"child exited early with code {child.wait()}"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    said["ends"] = {int(ep): tuple(v) for ep, v in said["ends"].items()}
    said["log"] = [tuple(e) for e in said["log"]]
    return said


def lost_positions(meta: dict) -> list[int]:
    """Ring positions the last flush reserved for writes after it."""
    return [(meta["ptr"] + k) % CAPACITY for k in range(meta["reserved_until"] - meta["written"])]


def test_sigkill_after_flush_loses_only_what_came_after_it(tmp_path):
    said = run_and_kill(tmp_path / "replay", "explicit")
    flushed = [tuple(e) for e in said["flushed_log"]]
    meta = json.loads((tmp_path / "replay" / "buffer.json").read_text())
    # The adds after flush() first flushed again (same contents) to reserve the slots they write.
    assert meta["written"] == len(flushed) and meta["reserved_until"] == len(flushed) + FLUSH_EVERY

    buf = ReplayBuffer.open(tmp_path / "replay")
    assert buf.ram_slots == RAM_SLOTS  # the RAM tier came back from its copy in the camera files
    expected = expected_transitions(flushed, CAPACITY, lost_positions(meta))
    assert stored_transitions(buf) == expected and len(buf) == len(expected)
    assert not any(ep == 99 for ep, _ in stored_transitions(buf))  # added after the flush: gone
    # The reserved positions were the oldest transitions; all the newer ones survived.
    assert len(expected) >= len(expected_transitions(flushed, CAPACITY)) - FLUSH_EVERY
    check_all_stored(buf, said["ends"])

    # The reopened buffer goes on where the flush left it.
    add_episode_steps(buf, 200, 6, terminated=True)
    ends = {**said["ends"], 200: (6, True)}
    check_all_stored(buf, ends)
    check_batch(buf.sample(64, np.random.default_rng(0)), ends)


def test_sigkill_with_only_automatic_flushes_loses_at_most_flush_every_slots(tmp_path):
    said = run_and_kill(tmp_path / "replay", "auto")
    meta = json.loads((tmp_path / "replay" / "buffer.json").read_text())
    written = len(said["log"])
    assert written - FLUSH_EVERY <= meta["written"] <= written  # the last flush was at most FLUSH_EVERY slots ago

    buf = ReplayBuffer.open(tmp_path / "replay")
    expected = expected_transitions(said["log"][: meta["written"]], CAPACITY, lost_positions(meta))
    assert stored_transitions(buf) == expected and len(expected) > 0
    check_all_stored(buf, said["ends"])


def test_reopening_twice_after_a_crash_gives_the_same_buffer(tmp_path):
    run_and_kill(tmp_path / "replay", "auto")
    first = ReplayBuffer.open(tmp_path / "replay")
    contents = stored_transitions(first)
    first.close()
    second = ReplayBuffer.open(tmp_path / "replay")
    assert stored_transitions(second) == contents
    with pytest.raises(RuntimeError, match="in use"):
        ReplayBuffer.open(tmp_path / "replay")
