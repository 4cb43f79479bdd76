"""Online reward updates beside the learner (robot_rl/train/reward_updates.py): episodes become
query segments, an improved copy of the preference reward is swapped in between env steps, and the
stored transitions are relabelled with it in the background, except those written after the swap."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from robot_rl.config import load_config
from robot_rl.data.replay import ReplayBuffer
from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.preference.config import PreferenceRewardConfig
from robot_rl.rewards.preference.model import (
    OracleLabeller,
    PreferenceReward,
    load_preference_reward,
    save_preference_reward,
)
from robot_rl.rollout import make_env
from robot_rl.sim.config import ConfigError
from robot_rl.spec import ACTION_DIM, STATE_DIMS, flatten_state
from robot_rl.train.learner import ONLINE_REWARD_FILE, Trainer
from robot_rl.train.reward_updates import OnlinePreferenceUpdates, RecentEpisodes

STATE_DIM = sum(STATE_DIMS.values())
SEGMENT = 5


def preference_model(**overrides) -> PreferenceReward:
    fields = dict(
        ensemble_size=2,
        hidden_dims=[16],
        segment_length=SEGMENT,
        steps_per_label_batch=5,
        online_every=10,
        online_labels=4,
        online_episodes=3,
    )
    return PreferenceReward(PreferenceRewardConfig(**(fields | overrides)), STATE_DIM).eval()


def observation(value: float) -> dict:
    return {"state": {key: np.full(dim, value, np.float32) for key, dim in STATE_DIMS.items()}, "images": {}}


def info(t: int) -> dict:
    return {"oracle_dense_reward": float(t), "success": t > 8}


def score(model, inputs: RewardInput) -> tuple[np.ndarray, np.ndarray]:
    out = model.score(inputs)
    return out.reward.numpy(), np.zeros(len(inputs), bool)


def add_episode(buffer: ReplayBuffer, start: float, length: int, reward: float) -> None:
    for t in range(length):
        buffer.add(
            observation(start + t), np.zeros(ACTION_DIM), reward, observation(start + t + 1), False, t == length - 1
        )


def scores(model: PreferenceReward, buffer: ReplayBuffer, slots: np.ndarray) -> np.ndarray:
    batch = buffer.transitions_at(slots)
    return model.score(RewardInput(batch.next_state, {})).reward.numpy()


def test_recent_episodes_keep_the_newest_and_cut_whole_windows():
    recent = RecentEpisodes(cameras=[], max_episodes=2)
    for episode, length in enumerate([12, 10, 11]):
        for t in range(length):
            recent.add_step(observation(100 * episode + t), info(t), episode_over=t == length - 1)
    assert [len(e) for e in recent.episodes] == [10, 11]  # the first was dropped
    windows = recent.segments(SEGMENT)
    assert len(windows) == recent.segment_count(SEGMENT) == 2 + 2  # 10 // 5 and 11 // 5
    np.testing.assert_array_equal(windows[1].states[:, 0], np.arange(105, 110))  # episode 1, t = 5..9
    np.testing.assert_array_equal(windows[1].oracle_dense_reward, np.arange(5, 10))


def test_an_improved_model_is_swapped_in_and_only_older_transitions_are_relabelled():
    buffer = ReplayBuffer(200, STATE_DIM, ACTION_DIM)
    add_episode(buffer, 0.0, 20, reward=99.0)
    before = buffer.transition_slots()
    model = preference_model()
    updates = OnlinePreferenceUpdates(model, OracleLabeller(), [buffer], score, torch.device("cpu"), seed=0)
    for t in range(20):
        updates.record(observation(t / 20), info(t), episode_over=t == 19)

    assert updates.poll(step=5) is None and updates._thread is None  # not due yet
    assert updates.poll(step=10) is None and updates._thread is not None  # a round starts
    deadline = time.monotonic() + 60
    while (improved := updates.poll(step=11)) is None:
        assert time.monotonic() < deadline, "no improved model within 60 s"
        time.sleep(0.01)
    assert improved is not model and updates.model is improved
    assert len(improved.dataset) == 4 and len(model.dataset) == 0  # the learner's model was never touched
    add_episode(buffer, 50.0, 5, reward=-5.0)  # the learner goes on adding, rewarded by the new model
    updates._thread.join(timeout=60)
    assert not updates._thread.is_alive()
    assert updates.rounds == 1 and updates.last_stats["reward/new_labels"] == 4
    np.testing.assert_allclose(buffer.reward[before], scores(improved, buffer, before), rtol=1e-6)
    after = np.setdiff1d(buffer.transition_slots(), before)
    assert len(after) == 5 and (buffer.reward[after] == -5.0).all()
    updates.close()


def test_a_failing_round_surfaces_in_the_learners_thread():
    model = preference_model()
    updates = OnlinePreferenceUpdates(model, lambda a, b: 3.0, [], score, torch.device("cpu"), seed=0)  # bad label
    for t in range(10):
        updates.record(observation(t), info(t), episode_over=t == 9)
    updates.poll(step=10)
    updates._thread.join(timeout=60)
    with pytest.raises(RuntimeError, match="reward-update thread failed"):
        updates.poll(step=11)


# --- in the learner -------------------------------------------------------------------------------
def reach_preference_checkpoint(tmp_path, tiny: list[str]) -> str:
    """An untrained state-only preference reward for reach (online updates give it its labels)."""
    env = make_env(load_config(tiny))
    state_dim = len(flatten_state(env.reset(seed=0)[0]["state"]))
    env.close()
    config = PreferenceRewardConfig(ensemble_size=2, hidden_dims=[16], segment_length=10, steps_per_label_batch=5)
    return str(save_preference_reward(PreferenceReward(config, state_dim), tmp_path / "initial.safetensors"))


def online_overrides(checkpoint: str) -> list[str]:
    return [
        "reward=preference",
        f"reward.checkpoint={checkpoint}",
        "reward.ensemble_size=2",
        "reward.hidden_dims=[16]",
        "reward.segment_length=10",
        "reward.steps_per_label_batch=5",
        "reward.online_every=40",
        "reward.online_labels=5",
    ]


def test_training_updates_the_reward_online_and_a_resumed_run_keeps_its_labels(tmp_path, tiny):
    overrides = [*tiny, *online_overrides(reach_preference_checkpoint(tmp_path, tiny))]
    run_dir = tmp_path / "run"
    trainer = Trainer(load_config([*overrides, "train.checkpoint_every=60"]), run_dir)
    trainer.train()
    labels = len(trainer.reward_model.dataset)
    assert labels >= 5 and trainer.reward_updates.rounds >= 1
    saved, _ = load_preference_reward(run_dir / ONLINE_REWARD_FILE)
    assert len(saved.dataset) == labels  # the final checkpoint saved the labels with the model
    trainer.online.close()  # as the process's exit would: the buffers' locks are released
    trainer.demos.close()

    resumed = Trainer(load_config([*overrides, "train.env_steps=160"]), run_dir)
    assert resumed.step == 120 and len(resumed.reward_model.dataset) == labels
    slots = resumed.online.transition_slots()
    expected = resumed.reward_model.score(RewardInput(resumed.online.transitions_at(slots).next_state, {})).reward
    np.testing.assert_allclose(resumed.online.reward[slots], expected.numpy(), rtol=1e-5)  # relabelled at resume


def test_online_reward_updates_need_the_synchronous_loop(tmp_path, tiny):
    overrides = [*tiny, *online_overrides(reach_preference_checkpoint(tmp_path, tiny)), "train.mode=async"]
    with pytest.raises(ConfigError, match="train.mode=sync"):
        Trainer(load_config(overrides), tmp_path / "run")
