"""RewardModel.score brings camera frames of another size to the model's image_size (base.fit_frames):
a model scores a frame from a camera of another resolution as it scores the frame it was built for."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput, fit_frames
from robot_rl.rewards.classifier.config import SuccessClassifierConfig
from robot_rl.rewards.classifier.model import SuccessClassifierReward
from robot_rl.rewards.ensemble import CompositeReward, CompositeRewardConfig
from robot_rl.rewards.perceptual.config import PerceptualRewardConfig
from robot_rl.rewards.perceptual.model import fit_perceptual_reward
from robot_rl.rewards.simple import ContactForcePenalty, InterventionReward

STATE_DIM = 26  # robot_rl.spec.flatten_state without task state
RED, GREEN = (200, 40, 40), (40, 200, 40)


def scene(height: int, width: int, colour=RED, phase: float = 0.0, batch: int = 2) -> torch.Tensor:
    """uint8 [batch, H, W, 3]: one smooth shaded scene seen by a pinhole camera of a fixed vertical
    field of view at H x W pixels (as the twin renders), so a frame of another resolution is a clean
    resampling of the same view, and a wider one adds columns at the sides."""
    y = (torch.arange(height) + 0.5)[:, None] / height
    x = (torch.arange(width) + 0.5 - width / 2)[None, :] / height
    shade = 0.7 + 0.3 * torch.sin(2 * math.pi * (x + 0.5 * y) + phase)
    frame = torch.tensor(colour, dtype=torch.float32) * shade[..., None]
    return frame.round().to(torch.uint8).expand(batch, height, width, 3).clone()


def frames_input(frames: torch.Tensor, camera: str = "front") -> RewardInput:
    return RewardInput(state=torch.zeros(len(frames), STATE_DIM), images={camera: frames})


class Recorder(RewardModel):
    """Records the frames forward() receives; reward 0."""

    def __init__(self, image_size: tuple[int, int] | None, cameras=("front",)):
        super().__init__()
        self.cameras, self.image_size = tuple(cameras), image_size
        self.seen: dict[str, torch.Tensor] = {}

    def forward(self, inputs: RewardInput) -> RewardOutput:
        self.seen = dict(inputs.images)
        return RewardOutput(reward=torch.zeros(len(inputs)))


# --- fit_frames ---------------------------------------------------------------------------------
def test_frames_of_the_model_size_pass_untouched():
    frames = scene(32, 32)
    assert fit_frames(frames, (32, 32)) is frames


def test_a_flat_frame_resizes_to_the_same_flat_frame():
    flat = torch.full((3, 240, 320, 3), 77, dtype=torch.uint8)
    for size in ((128, 128), (64, 96), (480, 480)):
        out = fit_frames(flat, size)
        assert out.dtype == torch.uint8 and out.shape == (3, *size, 3)
        assert bool((out == 77).all())


def test_another_aspect_ratio_keeps_the_centre_instead_of_squashing():
    # a wide frame: the centre square is red, 16 columns on each side green
    wide = torch.tensor(GREEN, dtype=torch.uint8).expand(1, 64, 96, 3).clone()
    wide[:, :, 16:80] = torch.tensor(RED, dtype=torch.uint8)
    assert bool((fit_frames(wide, (32, 32)) == torch.tensor(RED, dtype=torch.uint8)).all())
    # a tall one, the same turned: rows are cropped
    tall = wide.transpose(1, 2)
    assert bool((fit_frames(tall, (16, 16)) == torch.tensor(RED, dtype=torch.uint8)).all())
    # exactly the centre window when no resampling is needed
    assert torch.equal(fit_frames(scene(32, 48), (32, 32)), scene(32, 48)[:, :, 8:40])


def test_downscaling_is_antialiased():
    # 1-pixel stripes average to grey; sampling without a filter would keep one stripe colour
    stripes = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    stripes[:, :, ::2] = 255
    inside = fit_frames(stripes, (16, 16))[:, :, 1:-1].float()  # the edge columns see one neighbour stripe
    assert bool(((inside - 127.5).abs() <= 1).all())


# --- through RewardModel.score ------------------------------------------------------------------
def test_a_classifier_scores_frames_of_another_camera_size_as_frames_at_its_size():
    torch.manual_seed(0)
    config = SuccessClassifierConfig(
        cameras=["front"], image_size=[32, 32], cnn_channels=[8, 16], image_feature_dim=8, hidden_dims=[16]
    )
    model = SuccessClassifierReward(config).eval()

    @torch.no_grad()
    def logits(frames: torch.Tensor) -> torch.Tensor:
        return torch.logit(model.score(frames_input(frames)).success_prob.double())

    native, other_scene = logits(scene(32, 32)), logits(scene(32, 32, GREEN))
    tolerance = 0.02 * float((native - other_scene).abs().max())  # 2% of what a different scene moves it
    for height, width in ((128, 128), (64, 64), (256, 256), (32, 48), (64, 96), (24, 24)):
        torch.testing.assert_close(logits(scene(height, width)), native, atol=tolerance, rtol=0.0)


def test_a_perceptual_reward_scores_frames_of_another_camera_size_as_frames_at_its_size():
    # four stages of different colour, each demo frame shaded a little differently
    colours = [RED, GREEN, (40, 40, 200), (220, 220, 220)]
    demos = [
        torch.cat([scene(16, 16, colour, phase=0.3 * (t + demo), batch=1) for colour in colours for t in range(5)])
        for demo in range(3)
    ]
    model, _ = fit_perceptual_reward(
        PerceptualRewardConfig(cameras=["front"], image_size=[16, 16], row_bands=8, num_steps=4),
        [d.numpy() for d in demos],
    )
    for colour in colours:
        native = model.score(frames_input(scene(16, 16, colour, phase=0.5))).reward
        for height, width in ((64, 64), (48, 72)):
            resized = model.score(frames_input(scene(height, width, colour, phase=0.5))).reward
            torch.testing.assert_close(resized, native, atol=0.02, rtol=0.0)


def test_models_without_an_image_size_get_the_frames_as_they_come():
    # CLIP has none (it resizes in its own preprocessing), nor do the terms that read no camera
    frames = scene(37, 53)
    recorder = Recorder(image_size=None)
    recorder.score(frames_input(frames))
    assert recorder.seen["front"] is frames
    assert ContactForcePenalty().image_size is None and InterventionReward().image_size is None


def test_score_leaves_the_callers_frames_and_each_composite_source_fits_the_original():
    frames = scene(64, 96)
    inputs = frames_input(frames)
    small, large = Recorder((16, 16)), Recorder((48, 48))
    weights = CompositeRewardConfig(weights={"small": 1.0, "large": 1.0})
    CompositeReward({"small": small, "large": large}, weights).score(inputs)
    assert inputs.images["front"] is frames
    assert torch.equal(small.seen["front"], fit_frames(frames, (16, 16)))
    assert torch.equal(large.seen["front"], fit_frames(frames, (48, 48)))  # not upsampled from the 16x16 one


def test_conversions_still_apply_before_the_resize():
    recorder = Recorder((16, 16))
    grey_float = torch.full((2, 32, 32, 1), 0.5)
    recorder.score(frames_input(grey_float))
    assert recorder.seen["front"].shape == (2, 16, 16, 3) and bool((recorder.seen["front"] == 128).all())
    rgba = np.full((2, 8, 8, 4), 200, np.uint8)
    recorder.score(frames_input(torch.from_numpy(rgba)))
    assert recorder.seen["front"].shape == (2, 16, 16, 3)


@pytest.mark.parametrize(
    "frames, message",
    [
        (torch.zeros(2, 32, 32, 2, dtype=torch.uint8), r"^wrist: expected 1, 3 or 4 channels"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), r"^wrist: expected 1, 3 or 4 channels"),  # CHW
        (torch.zeros(2, 1, 32, 32, 3, dtype=torch.uint8), r"^wrist: expected images \[B, H, W, C\]"),
        (torch.full((2, 32, 32, 3), 2.0), r"^wrist: float images must be in \[0, 1\]"),
        (torch.zeros(2, 0, 32, 3, dtype=torch.uint8), r"^wrist: empty frames"),
    ],
)
def test_bad_frames_are_rejected_naming_the_camera(frames, message):
    with pytest.raises(ValueError, match=message):
        Recorder((16, 16), cameras=["wrist"]).score(frames_input(frames, "wrist"))
