"""The reward-model interface: a batch of observations in, a reward per observation out.

Every reward source (zero-shot CLIP, success classifier, perceptual, preference, intervention,
force-torque terms, ensembles) is a `RewardModel`: `model.score(RewardInput)` -> `RewardOutput`.
The observation is the one *after* the action (r_t = R(o_{t+1})), which is what a camera shows
when the transition is stored and what relabelling reads from the buffer's next observations.

`score()` is the entry point for callers: it converts camera frames to uint8 [B, H, W, 3] (rejecting
what has no single meaning, naming the camera), brings them to the size the model's networks were
built for (`image_size`: a camera rig of another resolution still scores), and never lets a
non-finite reward through (a NaN would poison every critic target it touches). Subclasses
implement `forward()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

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
        obs: Mapping,
        cameras: Sequence[str],
        action: np.ndarray,
        device: torch.device | str = "cpu",
        intervention_start: bool = False,
    ) -> RewardInput:
        """A batch of one: the env-spec observation an action led to; `intervention_start`: a human
        took over after this action (RLIF's penalty)."""
        images = {cam: np.ascontiguousarray(obs["images"][cam]) for cam in cameras}
        return RewardInput(
            state=torch.as_tensor(flatten_state(obs["state"]), device=device)[None],
            images={cam: torch.as_tensor(frame, device=device)[None] for cam, frame in images.items()},
            action=torch.as_tensor(action, dtype=torch.float32, device=device)[None],
            intervention_start=torch.full((1,), intervention_start, dtype=torch.bool, device=device),
        )

    @staticmethod
    def concatenate(inputs: Sequence[RewardInput]) -> RewardInput:
        """One RewardInput of all the inputs' observations (of one layout), in order."""

        def cat(tensors: list[torch.Tensor | None]) -> torch.Tensor | None:
            return None if tensors[0] is None else torch.cat(tensors)

        return RewardInput(
            state=cat([r.state for r in inputs]),
            images={cam: cat([r.images[cam] for r in inputs]) for cam in inputs[0].images},
            action=cat([r.action for r in inputs]),
            intervention_start=cat([r.intervention_start for r in inputs]),
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
    """Base class. Subclasses set `cameras` (the cameras they read), `image_size` where their image
    networks take one frame size, and implement forward()."""

    cameras: tuple[str, ...] = ()
    # [H, W] that score() brings every camera's frames to (see fit_frames). None: the model takes
    # frames of any size (CLIP resizes in its own preprocessing) or reads no frames.
    image_size: tuple[int, int] | None = None

    def forward(self, inputs: RewardInput) -> RewardOutput:
        raise NotImplementedError

    def score(self, inputs: RewardInput) -> RewardOutput:
        """forward() on checked inputs: the cameras it reads as uint8 [B, H, W, 3] of `image_size`.
        The caller's RewardInput is left as it was (a composite's sources may want other sizes of
        the same frames). Raises FloatingPointError if any reward is not finite."""
        images = dict(inputs.images)
        for camera in self.cameras:
            if camera not in images:
                raise KeyError(f"{type(self).__name__} reads camera {camera!r}; the input has {sorted(images)}")
            images[camera] = as_uint8_images(images[camera], camera)
            if self.image_size is not None:
                images[camera] = fit_frames(images[camera], self.image_size, camera)
        inputs = replace(inputs, images=images)
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


def fit_frames(frames: torch.Tensor, size: tuple[int, int], camera: str = "image") -> torch.Tensor:
    """uint8 [B, H, W, 3] -> uint8 [B, size[0], size[1], 3]: the centred window with the target's
    aspect ratio, resized with antialiased bilinear interpolation. Frames of that size pass as they are.

    Cropping, not squashing: a camera of the same lens at another resolution or aspect ratio sees the
    same centre (the twin's cameras keep their vertical field of view, so a wider frame only adds
    columns at the sides), and the crop shows objects with the shapes the model was trained on.
    Antialiasing keeps a 4x downscale from aliasing fine texture into patterns the model never saw."""
    height, width = frames.shape[1:3]
    target_h, target_w = size
    if (height, width) == (target_h, target_w):
        return frames
    if min(height, width) < 1:
        raise ValueError(f"{camera}: empty frames of shape {tuple(frames.shape)}")
    # The largest window of the target's aspect ratio; one side keeps the frame's full length.
    crop_h = min(height, round(width * target_h / target_w))
    crop_w = min(width, round(height * target_w / target_h))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    x = frames[:, top : top + crop_h, left : left + crop_w].permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(target_h, target_w), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
