"""ReplayBuffer: exact round trips through both frame tiers, episode boundaries, ring eviction,
mixing of demo and online batches, save/load. Values encode (episode, t): see replay_synthetic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from replay_synthetic import (
    CAMERAS,
    STATE_DIM,
    action,
    add_episode_steps,
    check_all_stored,
    check_batch,
    expected_transitions,
    frame_bytes,
    observation,
    reward,
    stored_transitions,
)

from robot_rl import spec
from robot_rl.data.replay import ReplayBuffer, mixed_batch
from robot_rl.spec import ACTION_DIM

# (length, terminated) per episode: a 1-step episode, terminations and time-limit truncations.
EPISODES = {0: (7, True), 1: (1, False), 2: (12, True), 3: (9, False), 4: (5, True)}


def make_buffer(tmp_path, tier: str, capacity: int = 64, **kw) -> ReplayBuffer:
    """tier: "ram" (no storage_dir), "disk" (no RAM budget) or "both" (RAM for 40% of the slots)."""
    budget = {"ram": capacity, "disk": 0, "both": int(0.4 * capacity)}[tier] * frame_bytes()
    storage = None if tier == "ram" else tmp_path / "replay"
    return ReplayBuffer(capacity, STATE_DIM, ACTION_DIM, CAMERAS, budget, storage, **kw)


@pytest.mark.parametrize("tier", ["ram", "disk", "both"])
def test_every_transition_and_frame_round_trips_exactly(tmp_path, tier):
    buf = make_buffer(tmp_path, tier)
    for ep, (length, terminated) in EPISODES.items():
        add_episode_steps(buf, ep, length, terminated)
    assert len(buf) == sum(length for length, _ in EPISODES.values())
    assert buf.ram_slots == {"ram": 64, "disk": 0, "both": 25}[tier]  # 39 slots written: "both" spans the tiers
    check_all_stored(buf, EPISODES)
    check_batch(buf.sample(200, np.random.default_rng(0)), EPISODES)


def test_sampled_batch_has_the_batch_dtypes_and_shapes(tmp_path):
    buf = make_buffer(tmp_path, "both")
    add_episode_steps(buf, 0, 30, True)
    batch = buf.sample(8, np.random.default_rng(0))
    assert batch.state.dtype == torch.float32 and batch.state.shape == (8, STATE_DIM)
    assert batch.action.shape == (8, ACTION_DIM) and batch.reward.shape == (8,) and batch.terminated.shape == (8,)
    for cam, (h, w) in CAMERAS.items():
        assert batch.images[cam].dtype == torch.uint8 and batch.images[cam].shape == (8, h, w, 3)
        assert batch.next_images[cam].shape == (8, h, w, 3)


def test_sampling_is_deterministic_given_the_rng(tmp_path):
    buf = make_buffer(tmp_path, "both")
    add_episode_steps(buf, 0, 30, True)
    a, b = buf.sample(16, np.random.default_rng(7)), buf.sample(16, np.random.default_rng(7))
    assert torch.equal(a.state, b.state) and torch.equal(a.images["front"], b.images["front"])


@pytest.mark.parametrize("tier", ["ram", "both"])
def test_ring_wraparound_never_keeps_a_transition_whose_frames_were_overwritten(tmp_path, tier):
    capacity = 23
    buf = make_buffer(tmp_path, tier, capacity=capacity, flush_every=4)
    rng = np.random.default_rng(3)
    log, ends = [], {}
    for ep in range(25):  # ~5 times round the ring, episodes of 1..9 steps
        length, terminated = int(rng.integers(1, 10)), bool(rng.integers(2))
        ends[ep] = (length, terminated)
        for t in range(length):  # one add at a time, checked after each
            end = t == length - 1
            obs, next_obs = observation(ep, t), observation(ep, t + 1)
            buf.add(obs, action(ep, t), reward(ep, t), next_obs, terminated and end, end and not terminated)
            log.extend([(ep, 0), (ep, 1)] if t == 0 else [(ep, t + 1)])  # obs_0 .. obs_T, each once
            assert stored_transitions(buf) == expected_transitions(log, capacity)
            assert len(buf) == len(expected_transitions(log, capacity))
            assert not buf.has_next[(len(log) - 1) % capacity]  # the newest slot never starts a transition
        check_all_stored(buf, ends)
    check_batch(buf.sample(100, np.random.default_rng(0)), ends)


def test_an_episode_longer_than_the_ring_keeps_only_its_newest_steps(tmp_path):
    buf = make_buffer(tmp_path, "both", capacity=10)
    add_episode_steps(buf, 0, 25, True)
    assert stored_transitions(buf) == {(0, t) for t in range(16, 25)}
    check_all_stored(buf, {0: (25, True)})


def test_obs_that_does_not_continue_the_open_episode_starts_a_new_segment(tmp_path):
    buf = make_buffer(tmp_path, "both")
    buf.add(observation(0, 0), action(0, 0), reward(0, 0), observation(0, 1), False, False)
    # No done flag, but the next obs is another episode's (e.g. the actor reset without telling).
    buf.add(observation(5, 0), action(5, 0), reward(5, 0), observation(5, 1), False, False)
    buf.add(observation(5, 1), action(5, 1), reward(5, 1), observation(5, 2), False, False)
    log = [(0, 0), (0, 1), (5, 0), (5, 1), (5, 2)]  # obs (5, 1) chained: stored once
    assert stored_transitions(buf) == expected_transitions(log, buf.capacity) == {(0, 0), (5, 0), (5, 1)}
    check_all_stored(buf, {0: (9, False), 5: (9, False)})


def test_an_episode_end_is_kept_even_when_the_reset_obs_equals_the_final_one(tmp_path):
    buf = make_buffer(tmp_path, "ram")
    buf.add(observation(0, 0), action(0, 0), reward(0, 0), observation(0, 1), True, False)
    # A reset that returns the very same observation (nothing moved) must still start a new slot.
    buf.add(observation(0, 1), action(1, 0), reward(1, 0), observation(1, 1), False, True)
    assert len(buf) == 2 and not buf.has_next[1] and buf.has_next[2]
    assert buf.terminated[0] and not buf.terminated[2]


def test_add_episode_matches_step_by_step_adds(tmp_path):
    a, b = make_buffer(tmp_path / "a", "ram"), make_buffer(tmp_path / "b", "ram")
    for ep, (length, terminated) in EPISODES.items():
        add_episode_steps(a, ep, length, terminated)
        b.add_episode(
            [observation(ep, t) for t in range(length + 1)],
            [action(ep, t) for t in range(length)],
            [reward(ep, t) for t in range(length)],
            terminated,
            not terminated,
        )
    for name in ("state", "action", "reward", "terminated", "has_next"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    with pytest.raises(ValueError, match="T\\+1 observations"):
        b.add_episode([observation(9, 0)], [action(9, 0)], [0.0], True, False)


def test_bad_input_is_refused_with_a_message(tmp_path):
    buf = make_buffer(tmp_path, "ram")
    obs, nxt = observation(0, 0), observation(0, 1)
    with pytest.raises(ValueError, match="uint8"):
        bad = observation(0, 0)
        bad["images"]["front"] = bad["images"]["front"].astype(np.float32)
        buf.add(bad, action(0, 0), 0.0, nxt, False, False)
    with pytest.raises(ValueError, match="cameras"):
        buf.add(observation(0, 0, cameras={"front": CAMERAS["front"]}), action(0, 0), 0.0, nxt, False, False)
    with pytest.raises(ValueError, match="action"):
        buf.add(obs, np.zeros(3), 0.0, nxt, False, False)
    with pytest.raises(ValueError, match="no transitions"):
        buf.sample(4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="storage_dir"):
        ReplayBuffer(100, STATE_DIM, ACTION_DIM, CAMERAS, 10 * frame_bytes(), None)
    assert len(buf) == 0


def test_state_only_buffer_and_from_spaces():
    space = spec.observation_space({}, task_state_dim=3)
    buf = ReplayBuffer.from_spaces(space, spec.action_space(), capacity=16)
    assert (buf.state_dim, buf.action_dim, buf.cameras) == (STATE_DIM + 3, ACTION_DIM, {})
    obs = space.sample()
    buf.add(obs, np.zeros(ACTION_DIM), 1.0, space.sample(), True, False)
    batch = buf.sample(4, np.random.default_rng(0))
    assert batch.images == {} and torch.equal(batch.state[0], torch.from_numpy(spec.flatten_state(obs["state"])))


def test_mixed_batch_takes_the_demo_fraction_from_the_demos():
    demo_eps = {100 + ep: v for ep, v in EPISODES.items()}  # demo episodes have ids >= 100
    online = ReplayBuffer(64, STATE_DIM, ACTION_DIM, CAMERAS, 64 * frame_bytes())
    demos = ReplayBuffer(64, STATE_DIM, ACTION_DIM, CAMERAS, 64 * frame_bytes())
    empty = ReplayBuffer(8, STATE_DIM, ACTION_DIM, CAMERAS, 8 * frame_bytes())
    for buf, eps in ((online, EPISODES), (demos, demo_eps)):
        for ep, (length, terminated) in eps.items():
            add_episode_steps(buf, ep, length, terminated)
    rng = np.random.default_rng(0)

    def n_demo(batch):
        return int((batch.state[:, 0] >= 100).sum())

    for fraction, size, expected in ((0.5, 256, 128), (0.3, 10, 3), (0.25, 7, 2), (0.0, 9, 0), (1.0, 9, 9)):
        batch = mixed_batch(online, demos, size, fraction, rng)
        assert len(batch) == size and n_demo(batch) == expected
        assert bool((batch.state[:expected, 0] >= 100).all())  # demos first
        check_batch(batch, {**EPISODES, **demo_eps})
    assert n_demo(mixed_batch(online, empty, 10, 0.5, rng)) == 0  # no demos yet: all online
    assert n_demo(mixed_batch(empty, demos, 10, 0.5, rng)) == 10  # no online data yet: all demos
    with pytest.raises(ValueError, match="no transitions"):
        mixed_batch(empty, empty, 10, 0.5, rng)


def test_save_and_load_round_trip_across_tiers(tmp_path):
    src = make_buffer(tmp_path / "src", "both", capacity=30, flush_every=5)
    for ep, (length, terminated) in EPISODES.items():  # 39 slots: wraps the 30-slot ring
        add_episode_steps(src, ep, length, terminated)
    src.save(tmp_path / "copy")
    # No pickles: every file is JSON or a .npy that loads with allow_pickle=False.
    for f in (tmp_path / "copy").iterdir():
        assert f.suffix in (".json", ".npy"), f
        if f.suffix == ".npy":
            np.load(f, allow_pickle=False)
    json.loads((tmp_path / "copy" / "buffer.json").read_text())

    in_ram = ReplayBuffer.load(tmp_path / "copy", ram_frame_budget_bytes=10**9)
    on_disk = ReplayBuffer.load(tmp_path / "copy", ram_frame_budget_bytes=7 * frame_bytes(), storage_dir=tmp_path / "d")
    src.close()
    reopened = ReplayBuffer.open(tmp_path / "src" / "replay")  # save() of its own dir = flush: nothing lost on close
    for buf in (in_ram, on_disk, reopened):
        assert stored_transitions(buf) == stored_transitions(in_ram) and len(buf) == len(in_ram)
        check_all_stored(buf, EPISODES)
        a, b = buf.sample(32, np.random.default_rng(1)), in_ram.sample(32, np.random.default_rng(1))
        assert torch.equal(a.state, b.state) and torch.equal(a.next_images["wrist"], b.next_images["wrist"])
        for name in ("state", "action", "reward", "terminated", "has_next"):
            assert np.array_equal(getattr(buf, name), getattr(in_ram, name))
    assert on_disk.ram_slots == 7 and in_ram.ram_slots == 30
    assert stored_transitions(in_ram) == expected_transitions(
        [(ep, t) for ep, (n, _) in EPISODES.items() for t in range(n + 1)], 30
    )
    # A loaded buffer goes on like the original: the open episode 4 ended, so this is a new one.
    add_episode_steps(on_disk, 50, 3, True)
    check_all_stored(on_disk, {**EPISODES, 50: (3, True)})


def test_storage_dir_is_locked_and_never_overwritten(tmp_path):
    buf = make_buffer(tmp_path, "both")
    add_episode_steps(buf, 0, 5, True)
    with pytest.raises(RuntimeError, match="in use"):
        ReplayBuffer.open(tmp_path / "replay")
    buf.close()
    with pytest.raises(FileExistsError, match="ReplayBuffer.open"):
        make_buffer(tmp_path, "both")
    assert len(ReplayBuffer.open(tmp_path / "replay")) == 5


def test_a_batch_can_carry_a_subset_of_the_cameras(tmp_path):
    buf = make_buffer(tmp_path, "both")
    add_episode_steps(buf, 0, 30, True)
    slots = buf.transition_slots()[:5]
    full, front_only = buf.transitions_at(slots), buf.transitions_at(slots, ["front"])
    assert set(front_only.images) == set(front_only.next_images) == {"front"}
    assert torch.equal(front_only.images["front"], full.images["front"])
    assert set(buf.sample(4, np.random.default_rng(0), cameras=[]).images) == set()
    with pytest.raises(KeyError, match="no camera"):
        buf.transitions_at(slots, ["side"])


def test_relabel_changes_rewards_and_ends_only(tmp_path):
    buf = make_buffer(tmp_path, "ram")
    add_episode_steps(buf, 0, 10, True)
    slots = buf.transition_slots()
    before = buf.transitions_at(slots)
    assert buf.relabel(slots, np.full(len(slots), 7.0), np.ones(len(slots), bool)) == len(slots)
    after = buf.transitions_at(slots)
    assert (after.reward == 7.0).all() and (after.terminated == 1.0).all()
    assert torch.equal(after.state, before.state) and torch.equal(after.action, before.action)
    assert torch.equal(after.next_images["front"], before.next_images["front"])
    with pytest.raises(ValueError, match="no transition"):
        buf.relabel(np.array([len(slots)]), np.zeros(1), np.zeros(1, bool))  # the final observation's slot


def test_relabel_skips_transitions_written_after_the_stamp(tmp_path):
    # A relabelling thread read transitions, then the learner kept adding (here: wrapping the ring
    # over the oldest slots) before the new rewards were written back.
    buf = make_buffer(tmp_path, "ram", capacity=16)
    add_episode_steps(buf, 0, 9, True)  # slots 0..9
    stamp, slots = buf.write_count(), buf.transition_slots()  # transitions at slots 0..8
    add_episode_steps(buf, 1, 5, False)  # slots 10..15: the newest transitions, already rewarded
    add_episode_steps(buf, 2, 2, True)  # slots 0..2: evict the old transitions at slots 0..2
    relabelled = buf.relabel(slots, np.full(len(slots), -1.0), np.zeros(len(slots), bool), stamp)
    # slot 2's transition (ep 0: obs 2 -> obs 3) lost slot 2; slot 3's is intact, and so on up to 8
    assert relabelled == 6
    assert (buf.reward[3:9] == -1.0).all()
    np.testing.assert_array_equal(buf.reward[:2], [reward(2, 0), reward(2, 1)])  # ep 2's own rewards
    np.testing.assert_array_equal(buf.reward[10:15], [reward(1, t) for t in range(5)])
