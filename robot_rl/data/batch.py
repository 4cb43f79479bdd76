"""The training batch every agent's `update` takes: typed tensors, no dicts of unknown keys."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    """B transitions. `state` is the flattened state vector (robot_rl.spec.flatten_state);
    images are uint8 [B, H, W, 3] per camera ({} when state-only); `terminated` is 1.0 where the
    episode ended in a terminal state (no bootstrapping), 0.0 otherwise (time-limit
    truncations bootstrap)."""

    state: torch.Tensor  # float32 [B, S]
    images: dict[str, torch.Tensor]  # uint8 [B, H, W, 3]
    action: torch.Tensor  # float32 [B, A]
    reward: torch.Tensor  # float32 [B]
    next_state: torch.Tensor  # float32 [B, S]
    next_images: dict[str, torch.Tensor]  # uint8 [B, H, W, 3]
    terminated: torch.Tensor  # float32 [B]

    def __len__(self) -> int:
        return self.action.shape[0]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            **{f.name: _map(getattr(self, f.name), lambda t: t.to(device, non_blocking=True)) for f in fields(self)}
        )

    @staticmethod
    def from_numpy(arrays: dict) -> Batch:
        """From the same fields as numpy arrays (images as dicts of arrays)."""
        return Batch(**{f.name: _map(arrays[f.name], torch.from_numpy) for f in fields(Batch)})

    @staticmethod
    def cat(batches: list[Batch]) -> Batch:
        """Concatenate along the batch dimension (e.g. demo and online halves)."""
        out = {}
        for f in fields(Batch):
            values = [getattr(b, f.name) for b in batches]
            if isinstance(values[0], dict):
                out[f.name] = {k: torch.cat([v[k] for v in values]) for k in values[0]}
            else:
                out[f.name] = torch.cat(values)
        return Batch(**out)


def _map(value, fn):
    return {k: fn(v) for k, v in value.items()} if isinstance(value, dict) else fn(value)
