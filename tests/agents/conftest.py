"""Shared fixtures for the agent tests: seeded synthetic Batches and small, fast configs (the
defaults' 256-wide layers and 10 critics are for the benchmark, not for unit tests)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from robot_rl.agents import BCConfig, SACConfig
from robot_rl.data.batch import Batch
from robot_rl.spec import ACTION_DIM, STATE_DIMS

STATE_DIM = sum(STATE_DIMS.values())  # spec.flatten_state without the twin's task state
SMALL = {"hidden_dims": [32, 32], "image_feature_dim": 8, "state_feature_dim": 16, "cnn_channels": [4, 8]}


def random_batch(
    batch_size: int = 32,
    cameras: dict[str, tuple[int, int]] | None = None,
    seed: int = 0,
    state_dim: int = STATE_DIM,
    action_dim: int = ACTION_DIM,
) -> Batch:
    g = torch.Generator().manual_seed(seed)

    def images() -> dict[str, torch.Tensor]:
        return {
            cam: torch.randint(0, 256, (batch_size, h, w, 3), dtype=torch.uint8, generator=g)
            for cam, (h, w) in (cameras or {}).items()
        }

    return Batch(
        state=torch.randn(batch_size, state_dim, generator=g),
        images=images(),
        action=torch.rand(batch_size, action_dim, generator=g) * 2 - 1,
        reward=torch.randn(batch_size, generator=g),
        next_state=torch.randn(batch_size, state_dim, generator=g),
        next_images=images(),
        terminated=(torch.rand(batch_size, generator=g) < 0.3).float(),
    )


@pytest.fixture
def make_batch() -> Callable[..., Batch]:
    return random_batch


@pytest.fixture
def sac_config() -> Callable[..., SACConfig]:
    """A small SACConfig; keyword arguments override any field."""
    return lambda **overrides: SACConfig(**{**SMALL, "num_critics": 4, **overrides})


@pytest.fixture
def bc_config() -> Callable[..., BCConfig]:
    return lambda **overrides: BCConfig(**{**SMALL, **overrides})
