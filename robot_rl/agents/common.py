"""The agent contract the learner loop and weight sync rely on, and the small helpers that the
agents share (observation -> tensors, the NaN guard, Polyak averaging, flat checkpoints).

Checkpoints are flat dicts of tensors, so that safetensors can store them and nothing on the
wire is a pickle:
  "<module>.<param>"              module weights (encoder, actor, critic, critic_target, ...)
  "optim.<name>.<i>.<key>"        optimiser state of parameter i (Adam: step, exp_avg, exp_avg_sq)
  "rng"                           the agent's torch.Generator state (augmentation, REDQ subsets,
                                  action noise), as uint8
  "update_step"                   how many update() calls the agent has made
Optimiser hyper-parameters (learning rates, betas) are not stored: they come from the config.
Loading a checkpoint into an agent built from the same config resumes training exactly (same
next actions, same next update), as tests/agents test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from robot_rl.data.batch import Batch
from robot_rl.spec import flatten_state


class Agent(Protocol):
    def act(self, obs: dict, deterministic: bool = False) -> np.ndarray:
        """One env-spec observation -> float32 action [7] in [-1, 1]."""

    def fit_state_normalization(self, states: np.ndarray) -> None:
        """Standardise the state input with the statistics of `states` [N, S] (before training)."""

    def update(self, batches: Batch | Sequence[Batch]) -> dict[str, float]:
        """One learner step on `config.utd_ratio` batches; returns metrics by prefix."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume training exactly (see the module docstring)."""

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None: ...

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        """What act() needs, for pushing weights to actor processes."""

    def load_actor_state_dict(self, state: Mapping[str, torch.Tensor]) -> None: ...


def obs_to_tensors(
    obs: Mapping, cameras: list[str], state_dim: int, device: torch.device
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One env-spec observation -> (state [1, S] float32, {camera: uint8 [1, H, W, 3]})."""
    state = flatten_state(obs["state"])
    if state.shape != (state_dim,):
        raise ValueError(f"obs['state'] flattens to {state.shape[0]} values, the agent was built for {state_dim}")
    images = {}
    for cam in cameras:
        if cam not in obs.get("images", {}):
            raise KeyError(f"obs['images'] lacks camera {cam!r}; the agent was built for {cameras}")
        images[cam] = torch.as_tensor(np.ascontiguousarray(obs["images"][cam]), device=device).unsqueeze(0)
    return torch.as_tensor(state, device=device).unsqueeze(0), images


def check_finite(**losses: torch.Tensor) -> None:
    """The NaN guard: raise FloatingPointError naming every non-finite loss. Call it after the
    losses are computed and before any backward/step, so no NaN ever reaches the weights."""
    values = torch.stack([loss.detach().float() for loss in losses.values()])
    if not bool(torch.isfinite(values).all()):
        report = ", ".join(f"{name}={value:.6g}" for name, value in zip(losses, values.tolist(), strict=True))
        raise FloatingPointError(f"non-finite loss, no optimiser step taken: {report}")


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * online, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o, tau)


def flatten_optimizer(name: str, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"optim.{name}.{index}.{key}"] = torch.as_tensor(value).detach().clone()
    return out


def load_flat_optimizer(name: str, optimizer: torch.optim.Optimizer, flat: Mapping[str, torch.Tensor]) -> None:
    """Inverse of flatten_optimizer; hyper-parameters (param_groups) stay those of `optimizer`."""
    prefix = f"optim.{name}."
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        if key.startswith(prefix):
            index, field = key[len(prefix) :].split(".", 1)
            state.setdefault(int(index), {})[field] = value.clone()
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})


def prefixed(prefix: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().clone() for k, v in state.items()}


def unprefixed(prefix: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def modules_state_dict(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Named modules' weights as one flat dict: "<module>.<param>"."""
    out: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        out |= prefixed(name, module.state_dict())
    return out


def load_modules_state_dict(modules: Mapping[str, nn.Module], state: Mapping[str, torch.Tensor]) -> None:
    for name, module in modules.items():
        module.load_state_dict(unprefixed(name, state))
