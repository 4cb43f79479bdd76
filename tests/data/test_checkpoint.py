"""Checkpoints: agent state round trip without pickles, and a stopped-and-resumed run that ends
bit for bit where an uninterrupted one does (agent, optimizer, RNGs, online and demo buffers)."""

from __future__ import annotations

import json

import numpy as np
import torch
from replay_synthetic import (
    CAMERAS,
    STATE_DIM,
    action,
    add_episode_steps,
    expected_transitions,
    frame_bytes,
    observation,
    reward,
    stored_transitions,
)
from torch import nn

from robot_rl.data.checkpoint import load_checkpoint, save_checkpoint
from robot_rl.data.replay import ReplayBuffer, mixed_batch
from robot_rl.spec import ACTION_DIM

STEPS_PER_EPISODE = 7


def toy_run(run_dir, total_steps: int, stop_at: int | None = None):
    """A miniature learner loop: one synthetic env step into the online buffer (in the run dir,
    frames in both tiers), an "intervention" into the demo buffer every 5 steps, and an Adam
    update of a linear agent on a mixed batch, with torch noise in the loss. At `stop_at` it
    checkpoints and returns None, as a stopped run would; a later call resumes from there."""
    torch.manual_seed(0)
    agent = nn.Linear(STATE_DIM + 1, ACTION_DIM)
    opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
    ckpt = load_checkpoint(run_dir)  # after the seeding above: it restores torch's RNG
    if ckpt is None:
        step, rng = 0, np.random.default_rng(0)
        online = ReplayBuffer(30, STATE_DIM, ACTION_DIM, CAMERAS, 10 * frame_bytes(), run_dir / "replay", 5)
        demos = ReplayBuffer(50, STATE_DIM, ACTION_DIM, CAMERAS, 50 * frame_bytes())
        add_episode_steps(demos, 1000, 6, terminated=True)
    else:
        agent.load_state_dict(ckpt.agent_state["agent"])
        opt.load_state_dict(ckpt.agent_state["optim"])
        step, rng, online, demos = ckpt.step, ckpt.rng, ckpt.buffers["online"], ckpt.buffers["demos"]
    while step < total_steps:
        ep, t = divmod(step, STEPS_PER_EPISODE)
        end = t == STEPS_PER_EPISODE - 1
        obs, next_obs = observation(ep, t), observation(ep, t + 1)
        online.add(obs, action(ep, t), reward(ep, t), next_obs, end and ep % 2 == 0, end and ep % 2 == 1)
        if step % 5 == 0:
            demos.add(obs, action(ep, t), reward(ep, t), next_obs, False, True)
        step += 1
        batch = mixed_batch(online, demos, 8, 0.5, rng)
        x = torch.cat([batch.state, batch.images["front"].float().mean((1, 2, 3))[:, None] / 255], 1)
        loss = ((agent(x) + 0.01 * torch.randn(8, ACTION_DIM) - batch.action) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == stop_at:
            agent_state = {"agent": agent.state_dict(), "optim": opt.state_dict()}
            save_checkpoint(run_dir, step, agent_state, rng, {"online": online, "demos": demos})
            online.close()
            return None
    return agent, opt, online, demos, rng


def assert_same_buffers(a: ReplayBuffer, b: ReplayBuffer) -> None:
    for name in ("state", "action", "reward", "terminated", "has_next"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    slots = np.flatnonzero(a.has_next)
    batch_a, batch_b = a.transitions_at(slots), b.transitions_at(slots)
    for cam in CAMERAS:
        assert torch.equal(batch_a.images[cam], batch_b.images[cam])
        assert torch.equal(batch_a.next_images[cam], batch_b.next_images[cam])


def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(tmp_path):
    total = 45  # the 30-slot online ring wraps; stop mid-episode (17 = 2 * 7 + 3)
    agent, opt, online, demos, rng = toy_run(tmp_path / "straight", total)
    assert toy_run(tmp_path / "resumed", total, stop_at=17) is None
    r_agent, r_opt, r_online, r_demos, r_rng = toy_run(tmp_path / "resumed", total)

    assert all(torch.equal(p, q) for p, q in zip(agent.parameters(), r_agent.parameters(), strict=True))
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], r_opt.state_dict()["state"][0]["exp_avg"])
    assert rng.bit_generator.state == r_rng.bit_generator.state
    assert_same_buffers(online, r_online)
    assert_same_buffers(demos, r_demos)
    assert len(r_demos) == 6 + 9  # the demo episode + one intervention every 5 steps


def test_checkpoints_rotate_and_a_crash_keeps_the_newer_transitions(tmp_path):
    run_dir = tmp_path / "run"
    toy_run(run_dir, 60, stop_at=10)
    toy_run(run_dir, 60, stop_at=20)
    toy_run(run_dir, 60, stop_at=30)
    steps = sorted(p.name for p in (run_dir / "checkpoints").glob("step_*"))
    assert steps == ["step_000000020", "step_000000030"]  # keep=2

    # Resume from step 30, run on to 43 without another checkpoint, then "crash": drop the buffer
    # without close(), as a killed process would (its RAM tier is lost; the files stay).
    ckpt = load_checkpoint(run_dir)
    online = ckpt.buffers["online"]
    for step in range(30, 43):
        ep, t = divmod(step, STEPS_PER_EPISODE)
        end = t == STEPS_PER_EPISODE - 1
        online.add(observation(ep, t), action(ep, t), reward(ep, t), observation(ep, t + 1), end, False)
    meta = json.loads((run_dir / "replay" / "buffer.json").read_text())  # as of the last automatic flush
    del online, ckpt
    after = load_checkpoint(run_dir)
    assert after.step == 30  # the agent comes back from the last checkpoint, the buffer from its last flush:
    log = [slot for step in range(43) for slot in slots_written(step)]
    assert 43 + 7 - 5 <= meta["written"] <= len(log) == 43 + 7  # 7 episodes: one obs_0 each
    lost = [(meta["ptr"] + k) % 30 for k in range(meta["reserved_until"] - meta["written"])]
    assert stored_transitions(after.buffers["online"]) == expected_transitions(log[: meta["written"]], 30, lost)
    assert (5, 0) in stored_transitions(after.buffers["online"])  # step 35, after the checkpoint


def slots_written(step: int) -> list[tuple[int, int]]:
    """(ep, t) of the slots toy_run's step writes: obs_0 and obs_1 at an episode's start, else obs_t+1."""
    ep, t = divmod(step, STEPS_PER_EPISODE)
    return [(ep, 0), (ep, 1)] if t == 0 else [(ep, t + 1)]
