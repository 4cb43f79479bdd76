"""The reward-model interface: a batch of observations in, a reward per observation out.

Every reward source (zero-shot CLIP, success classifier, perceptual, preference, intervention,
force-torque terms, ensembles) is a `RewardModel`: `model.score(RewardInput)` -> `RewardOutput`.
The observation is the one *after* the action (r_t = R(o_{t+1})), which is what a camera shows
when the transition is stored and what relabelling reads from the buffer's next observations.

`score()` is the entry point for callers: it checks the inputs and never lets a non-finite reward
through (a NaN would poison every critic target it touches). Subclasses implement `forward()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from robot_rl.spec import flatten_state


@dataclass
class RewardInput:
    """B observations (each the one after an action), as tensors on the model's device or CPU."""

    state: torch.Tensor  # float32 [B, S], robot_rl.spec.flatten_state layout
    images: dict[str, torch.Tensor]  # uint8 [B, H, W, 3] per camera ({} when state-only)
    action: torch.Tensor | None = None  # float32 [B, 7], the action that led to the observation
    intervention_start: torch.Tensor | None = None  # bool [B], a human intervention began at this step

    def __len__(self) -> int:
        return self.state.shape[0]

    @staticmethod
    def from_observation(
        obs: Mapping, cameras: Sequence[str], action: np.ndarray, device: torch.device | str = "cpu"
    ) -> RewardInput:
        """A batch of one: the env-spec observation an action led to, with no human intervention."""
        images = {cam: np.ascontiguousarray(obs["images"][cam]) for cam in cameras}
        return RewardInput(
            state=torch.as_tensor(flatten_state(obs["state"]), device=device)[None],
            images={cam: torch.as_tensor(frame, device=device)[None] for cam, frame in images.items()},
            action=torch.as_tensor(action, dtype=torch.float32, device=device)[None],
            intervention_start=torch.zeros(1, dtype=torch.bool, device=device),
        )


@dataclass
class RewardOutput:
    reward: torch.Tensor  # float32 [B]
    success_prob: torch.Tensor | None = None  # float32 [B] in [0, 1], where the model can say
    uncertainty: torch.Tensor | None = None  # float32 [B] >= 0 (e.g. an ensemble's std)
    # bool [B], the model's own success decision where it makes one (a thresholded classifier):
    # in training it ends the episode, as HIL-SERL's classifier does; None: it never ends one
    success: torch.Tensor | None = None


class RewardModel(torch.nn.Module):
    """Base class. Subclasses set `cameras` (the cameras they read) and implement forward()."""

    cameras: tuple[str, ...] = ()

    def forward(self, inputs: RewardInput) -> RewardOutput:
        raise NotImplementedError

    def score(self, inputs: RewardInput) -> RewardOutput:
        """forward() on checked inputs; raises FloatingPointError if any reward is not finite."""
        for camera in self.cameras:
            if camera not in inputs.images:
                raise KeyError(f"{type(self).__name__} reads camera {camera!r}; the input has {sorted(inputs.images)}")
            inputs.images[camera] = as_uint8_images(inputs.images[camera], camera)
        out = self.forward(inputs)
        if out.reward.shape != (len(inputs),):
            name, shape = type(self).__name__, tuple(out.reward.shape)
            raise ValueError(f"{name} returned rewards of shape {shape}, not ({len(inputs)},)")
        bad = ~torch.isfinite(out.reward)
        if bool(bad.any()):
            raise FloatingPointError(
                f"{type(self).__name__} produced {int(bad.sum())} non-finite reward(s) of {len(inputs)} "
                f"(first at index {int(bad.nonzero()[0, 0])}); refusing to pass them to the learner"
            )
        return out


def as_uint8_images(images: torch.Tensor | np.ndarray, camera: str = "image") -> torch.Tensor:
    """Camera frames -> uint8 [B, H, W, 3]. Converts what has one meaning (a single HWC frame,
    grayscale, RGBA, float in [0, 1]); rejects anything else with a message naming the camera."""
    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"{camera}: expected images [B, H, W, C], got shape {tuple(x.shape)}")
    channels = x.shape[-1]
    if channels == 1:
        x = x.expand(*x.shape[:-1], 3)
    elif channels == 4:
        x = x[..., :3]
    elif channels != 3:
        raise ValueError(f"{camera}: expected 1, 3 or 4 channels last (HWC), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x
    if x.is_floating_point():
        if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise ValueError(f"{camera}: float images must be in [0, 1], got [{float(x.min())}, {float(x.max())}]")
        return (x * 255.0).round().to(torch.uint8)
    raise ValueError(f"{camera}: images must be uint8 or float in [0, 1], got {x.dtype}")
