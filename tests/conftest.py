"""Shared fixtures. `tiny`: a learner run small enough for a test (reach, state-only, a few dozen
steps, tiny networks)."""

from __future__ import annotations

import pytest

TINY_RUN = [
    "sim=state",
    "task=reach",
    "train.env_steps=120",
    "train.learning_starts=40",
    "train.eval_every=30",
    "train.eval_episodes=2",
    "train.video_episodes=0",
    "train.demo_episodes=2",
    "train.checkpoint_every=1000",
    "agent.batch_size=16",
    "agent.hidden_dims=[32,32]",
    "agent.num_critics=2",
]


@pytest.fixture(scope="session")
def tiny() -> list[str]:
    """Overrides for a tiny training run (a fresh list: tests may extend it)."""
    return list(TINY_RUN)
