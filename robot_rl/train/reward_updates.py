"""Improving a learned reward while the learner trains: ONI's annotate-and-distil loop, beside RLPD.

Every `online_every` env steps (reward=preference with reward.online_every > 0) a background thread
  1. copies the reward model: the learner keeps scoring with the current one meanwhile;
  2. improves the copy: asks the labeller about pairs of segments cut from recent training episodes
     (the pairs the ensemble disagrees on most) and trains it on the new labels;
then the learner swaps the copy in between two env steps (`poll`), and the thread
  3. relabels every stored transition (demos and online) with the new model, chunk by chunk,
     skipping those the learner has written since the swap (the new model rewarded them already).
The learner never waits: while a relabelling runs its batches hold part old, part new rewards, as in
ONI (Zheng et al. 2024) and PEBBLE (Lee et al. 2021), which relabel the whole buffer after each update.

On the twin the labeller is the OracleLabeller (ground truth plays the human: an oracle, labelled so
in the logs); on a robot it would be a person at a labelling UI, behind the same Labeller interface.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
import torch

from robot_rl.data.replay import ReplayBuffer
from robot_rl.rewards.base import RewardInput, RewardModel
from robot_rl.rewards.preference.model import Labeller, PreferenceReward, Segment, add_labels, select_queries
from robot_rl.spec import flatten_state

log = logging.getLogger(__name__)

# (model, inputs) -> rewards and episode ends, as the learner computes them for each step
ScoreFn = Callable[[RewardModel, RewardInput], tuple[np.ndarray, np.ndarray]]
CANDIDATES_PER_QUERY = 10  # candidate pairs drawn per label asked for (disagreement picks among them)


def relabel_buffer(
    buffer: ReplayBuffer,
    model: RewardModel,
    score: ScoreFn,
    device: torch.device,
    unless_written_since: int | None = None,
    chunk: int = 256,
) -> int:
    """Every stored transition's reward (and end) from `model`, on its next observation; returns how
    many were relabelled. With `unless_written_since` (a buffer.write_count() stamp), transitions
    written after the stamp are left alone: safe beside a learner that keeps adding."""
    slots = buffer.transition_slots()
    relabelled = 0
    for part in np.array_split(slots, max(1, -(-len(slots) // chunk))):
        batch = buffer.transitions_at(part, model.cameras).to(device)
        inputs = RewardInput(
            state=batch.next_state,
            images={cam: batch.next_images[cam] for cam in model.cameras},
            action=batch.action,
            intervention_start=torch.zeros(len(part), dtype=torch.bool, device=device),  # not stored
        )
        reward, terminated = score(model, inputs)
        relabelled += buffer.relabel(part, reward, terminated, unless_written_since)
    return relabelled


class RecentEpisodes:
    """The last `max_episodes` training episodes as the preference reward reads them (states, its
    cameras' frames) with the twin's ground truth for the simulated labeller: where queries come from."""

    def __init__(self, cameras: Sequence[str], max_episodes: int):
        self.cameras = tuple(cameras)
        self.episodes: deque[Segment] = deque(maxlen=max_episodes)
        self._steps: list[tuple] = []

    def add_step(self, next_obs: dict, info: dict, episode_over: bool) -> None:
        """One env step: the observation it led to and its info (oracle_dense_reward, success)."""
        frames = {cam: next_obs["images"][cam] for cam in self.cameras}
        self._steps.append((flatten_state(next_obs["state"]), frames, info["oracle_dense_reward"], info["success"]))
        if episode_over:
            states, frames, dense, success = zip(*self._steps, strict=True)
            images = {cam: np.stack([f[cam] for f in frames]) for cam in self.cameras}
            self.episodes.append(Segment(np.stack(states), images, np.asarray(dense), np.asarray(success)))
            self._steps = []

    def segment_count(self, length: int) -> int:
        return sum(len(e) // length for e in self.episodes)

    def segments(self, length: int) -> list[Segment]:
        """Non-overlapping windows of `length` observations from every held episode."""
        return [e.window(t, length) for e in self.episodes for t in range(0, len(e) - length + 1, length)]


class OnlinePreferenceUpdates:
    """The loop in the module docstring for a PreferenceReward. The learner calls `record` after
    every env step and `poll` before every step; `close` at the end."""

    def __init__(
        self,
        model: PreferenceReward,
        labeller: Labeller,
        buffers: Sequence[ReplayBuffer],
        score: ScoreFn,
        device: torch.device,
        seed: int,
    ):
        c = model.config
        self.model, self.labeller, self.buffers, self.score, self.device = model, labeller, buffers, score, device
        self.every, self.labels_per_round, self.segment_length = c.online_every, c.online_labels, c.segment_length
        self.recent = RecentEpisodes(model.cameras, c.online_episodes)
        self.rng = np.random.default_rng(seed)
        self.next_round_at = c.online_every
        self.rounds = 0
        self.last_stats: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._ready: PreferenceReward | None = None  # an improved copy waiting to be swapped in
        self._stamps: list[int] | None = None  # the buffers' write counts at the swap
        self._swapped = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None

    def record(self, next_obs: dict, info: dict, episode_over: bool) -> None:
        self.recent.add_step(next_obs, info, episode_over)

    def poll(self, step: int) -> PreferenceReward | None:
        """The improved model when one is ready (the caller scores with it from now on; stored
        transitions are then relabelled in the background), else None. Starts a round when due."""
        if self._error is not None:
            raise RuntimeError("the reward-update thread failed") from self._error
        if self._ready is not None:
            self.model, self._ready = self._ready, None
            self._stamps = [buffer.write_count() for buffer in self.buffers]
            self._swapped.set()
            return self.model
        if self._thread is not None and not self._thread.is_alive():  # the last round is over
            self._thread.join()
            self._thread = None
        if self._thread is None and step >= self.next_round_at and self.recent.segment_count(self.segment_length) >= 2:
            self.next_round_at = step + self.every
            self._swapped.clear()
            self._thread = threading.Thread(target=self._round, name="reward-updates", daemon=True)
            self._thread.start()
        return None

    def close(self) -> None:
        """Stop: a round in progress is abandoned (its relabelling may be partial: the next run's
        start relabels everything with the saved model)."""
        self._stop.set()
        self._swapped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _round(self) -> None:
        try:
            improved = copy.deepcopy(self.model)  # the learner keeps scoring with self.model meanwhile
            segments = self.recent.segments(self.segment_length)
            n = self.labels_per_round
            candidates = [
                tuple(self.rng.choice(len(segments), 2, replace=False)) for _ in range(CANDIDATES_PER_QUERY * n)
            ]
            pairs = [(segments[i], segments[j]) for i, j in candidates]
            chosen = select_queries(improved, pairs, n, rng=self.rng)
            labelled = add_labels(improved.dataset, [pairs[k] for k in chosen], self.labeller)
            stats = improved.update()
            self._ready = improved
            self._swapped.wait()  # the learner swaps it in between two env steps
            if self._stop.is_set():
                return
            relabelled = sum(
                relabel_buffer(buffer, improved, self.score, self.device, stamp)
                for buffer, stamp in zip(self.buffers, self._stamps, strict=True)
            )
            self.rounds += 1
            self.last_stats = {**stats, "reward/new_labels": float(labelled), "reward/relabelled": float(relabelled)}
            log.info("reward update %d: %s", self.rounds, self.last_stats)
        except BaseException as error:  # surfaced in the learner's thread by poll()
            self._error = error
