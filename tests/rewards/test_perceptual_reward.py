"""The perceptual reward: segmentation against brute force and known splits, feature selection on
synthetic data, the fixed feature extractors, a reward that climbs along staged frames, the input
and config checks, and checkpoints."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.perceptual.config import PerceptualRewardConfig
from robot_rl.rewards.perceptual.model import (
    ImageStatsFeatures,
    PerceptualReward,
    fit_perceptual_reward,
    load_perceptual_reward,
    save_perceptual_reward,
    segment_costs,
    segment_demo,
    select_step_features,
    step_labels,
)
from robot_rl.sim.config import ConfigError

SIZE = 16
# red -> green -> blue -> white: one colour per step of a synthetic task
STAGE_COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [230, 230, 230]])
# dark to light grey: one brightness per step
STAGE_GREYS = np.array([[40, 40, 40], [100, 100, 100], [160, 160, 160], [220, 220, 220]])


def small_config(**overrides) -> PerceptualRewardConfig:
    return PerceptualRewardConfig(**{"image_size": [SIZE, SIZE], "row_bands": 8, "num_steps": 4, **overrides})


def staged_demo(stage_lengths: list[int], seed: int, stage_colours: np.ndarray = STAGE_COLOURS) -> np.ndarray:
    """uint8 [T, SIZE, SIZE, 3]: frames of one flat colour per stage, plus pixel noise."""
    rng = np.random.default_rng(seed)
    colours = np.repeat(stage_colours[: len(stage_lengths)], stage_lengths, axis=0)  # [T, 3]
    frames = colours[:, None, None, :] + rng.normal(0.0, 4.0, (len(colours), SIZE, SIZE, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def staged_demos(stage_colours: np.ndarray = STAGE_COLOURS) -> list[np.ndarray]:
    stage_lengths = [[5, 7, 6, 6], [7, 5, 8, 4], [6, 6, 5, 7]]
    return [staged_demo(lengths, seed, stage_colours) for seed, lengths in enumerate(stage_lengths)]


def score(model: PerceptualReward, frames: np.ndarray, camera: str = "front"):
    return model.score(RewardInput(torch.zeros(len(frames), 0), {camera: torch.from_numpy(frames)}))


# --- segmentation -------------------------------------------------------------------------------
def scatter(x: np.ndarray) -> float:
    return float(((x - x.mean(axis=0)) ** 2).sum())


def test_segment_costs_are_the_within_segment_scatter():
    x = np.random.default_rng(0).normal(size=(9, 4))
    cost = segment_costs(x)
    for i, j in itertools.combinations(range(10), 2):
        assert cost[i, j] == pytest.approx(scatter(x[i:j]), abs=1e-9)
    assert np.isinf(cost[3, 3]) and np.isinf(cost[5, 2])  # empty / backwards segments are not allowed


def test_segmentation_is_the_brute_force_optimum():
    rng = np.random.default_rng(1)
    for n_frames, num_steps in [(10, 3), (8, 4), (7, 2)]:
        x = rng.normal(size=(n_frames, 3))
        best = min(
            sum(scatter(x[a:b]) for a, b in itertools.pairwise([0, *splits, n_frames]))
            for splits in itertools.combinations(range(1, n_frames), num_steps - 1)
        )
        boundaries = segment_demo(x, num_steps)
        assert boundaries[0] == 0 and boundaries[-1] == n_frames and np.all(np.diff(boundaries) >= 1)
        assert sum(scatter(x[a:b]) for a, b in itertools.pairwise(boundaries)) == pytest.approx(best)


def test_segmentation_recovers_known_split_points():
    rng = np.random.default_rng(2)
    true_boundaries = np.array([0, 7, 19, 30, 42])
    levels = rng.normal(0.0, 1.0, (4, 12))  # a constant feature vector per step
    x = np.repeat(levels, np.diff(true_boundaries), axis=0) + rng.normal(0.0, 0.05, (42, 12))
    np.testing.assert_array_equal(segment_demo(x, 4), true_boundaries)
    np.testing.assert_array_equal(step_labels(true_boundaries), np.repeat(np.arange(4), [7, 12, 11, 12]))


def test_segmentation_needs_a_frame_per_step():
    assert segment_demo(np.zeros((3, 2)), 3).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="cannot split 2 frames into 3"):
        segment_demo(np.zeros((2, 2)), 3)


# --- feature selection -----------------------------------------------------------------------------
def test_feature_selection_picks_the_informative_features():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 100)
    x = rng.normal(0.0, 1.0, (300, 20))
    x[labels == 0, 4] += 4.0  # step 0 alone is told apart by feature 4,
    x[labels == 1, 11] -= 4.0  # step 1 by feature 11,
    x[labels == 2, 15] += 3.0  # step 2 by feature 15 (and less well by 7)
    x[labels == 2, 7] += 1.5
    gaussians = select_step_features(x, labels, num_steps=3, per_step=2)
    assert gaussians.features[:, 0].tolist() == [4, 11, 15]
    assert gaussians.features[2].tolist() == [15, 7]
    assert gaussians.features.shape == gaussians.in_mean.shape == gaussians.out_std.shape == (3, 2)
    assert gaussians.in_mean[1, 0] == pytest.approx(-4.0, abs=0.3)
    assert np.all(gaussians.separation[:, 0] > 1.5)
    # the runner-up of steps 0 and 1 is another step's feature: it is off its mean outside the step, too
    assert set(gaussians.features[:2, 1].tolist()) <= {4, 7, 11, 15}


# --- feature extractors ------------------------------------------------------------------------------
def test_image_stats_are_row_profiles_and_strip_histograms():
    frame = np.zeros((1, 4, 6, 3), np.uint8)
    frame[:, :2] = [255, 0, 0]  # top half red
    frame[:, 2:] = [0, 0, 255]  # bottom half blue
    frame[:, 3, :3] = [255, 255, 255]  # half of the last row white
    features = ImageStatsFeatures(row_bands=2, histogram_strips=2, histogram_levels=2)(torch.from_numpy(frame))[0]
    profile, histograms = features[:6].view(3, 2).T, features[6:].view(2, 8)  # [band, RGB], [strip, bin]
    torch.testing.assert_close(profile, torch.tensor([[1.0, 0.0, 0.0], [0.25, 0.25, 1.0]]))
    # bins are (r, g, b) in {0, 1}^3 -> 4 r + 2 g + b: red is bin 4, blue 1, white 7
    torch.testing.assert_close(histograms[0], torch.eye(8)[4])
    torch.testing.assert_close(histograms[1], 0.75 * torch.eye(8)[1] + 0.25 * torch.eye(8)[7])


def test_image_stats_do_not_move_when_the_scene_shifts_sideways():
    frames = np.random.default_rng(4).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    extractor = ImageStatsFeatures(row_bands=8, histogram_strips=4, histogram_levels=4)
    shifted = np.roll(frames, 5, axis=2)
    torch.testing.assert_close(extractor(torch.from_numpy(frames)), extractor(torch.from_numpy(shifted)))


# --- the reward ------------------------------------------------------------------------------------
# Grid cell means with hues: red and green frames are both "no blue", so one-vs-rest selection
# picks the blue channel for both steps and cannot tell them apart (see select_step_features).
# The colour histograms of "image_stats" give each hue a bin of its own.
@pytest.mark.parametrize(("extractor", "colours"), [("image_stats", STAGE_COLOURS), ("pixels", STAGE_GREYS)])
def test_reward_climbs_along_a_staged_sequence(extractor, colours):
    config = small_config(feature_extractor=extractor, pixel_grid=4, features_per_step=8)
    model, report = fit_perceptual_reward(config, staged_demos(colours))
    assert report["boundaries"] == [[0, 5, 12, 18, 24], [0, 7, 12, 20, 24], [0, 6, 12, 17, 24]]
    lengths = [4, 6, 3, 5]
    out = score(model, staged_demo(lengths, 99, colours))  # a demo the fit never saw, other step lengths
    reward, success_prob = out.reward.numpy(), out.success_prob.numpy()
    assert np.all(np.diff(reward) > -1e-3)  # never goes down along the task
    stage_means = [r.mean() for r in np.split(reward, np.cumsum(lengths)[:-1])]
    np.testing.assert_allclose(stage_means, [0.0, 1 / 3, 2 / 3, 1.0], atol=0.05)
    assert np.all(success_prob[-5:] > 0.9) and np.all(success_prob[:-5] < 0.1)


def test_reward_is_finite_and_bounded_far_from_the_demos():
    model, _ = fit_perceptual_reward(small_config(), staged_demos())
    odd = np.stack([np.zeros((SIZE, SIZE, 3), np.uint8), np.full((SIZE, SIZE, 3), 255, np.uint8)])
    odd = np.concatenate([odd, np.random.default_rng(5).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)])
    out = score(model, odd)
    assert torch.isfinite(out.reward).all() and out.reward.min() >= 0.0 and out.reward.max() <= 1.0
    assert out.reward.dtype == torch.float32 and out.success_prob.shape == (6,)
    assert score(model, odd[:0]).reward.shape == (0,)  # an empty batch is no error


def test_a_broken_model_raises_instead_of_returning_nan():
    model, _ = fit_perceptual_reward(small_config(), staged_demos())
    model.in_mean.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite reward"):
        score(model, staged_demo([2, 2], seed=6))


def test_two_cameras_and_float_frames():
    config = small_config(cameras=["front", "wrist"])
    demos = [{"front": d, "wrist": d[:, ::-1].copy()} for d in staged_demos()]
    model, _ = fit_perceptual_reward(config, demos)
    assert model.feature_mean.shape == (config.feature_dim,) == (2 * (3 * 8 + 4 * 64),)
    frames = staged_demo([3, 3, 3, 3], seed=7)
    inputs = RewardInput(torch.zeros(12, 0), {"front": torch.from_numpy(frames), "wrist": torch.from_numpy(frames)})
    uint8_reward = model.score(inputs).reward
    inputs.images = {
        cam: torch.from_numpy(frames[:, ::-1].copy() if cam == "wrist" else frames) for cam in inputs.images
    }
    inputs.images = {cam: x.float() / 255.0 for cam, x in inputs.images.items()}  # score() converts floats
    assert torch.isfinite(model.score(inputs).reward).all() and uint8_reward.shape == (12,)
    with pytest.raises(KeyError, match="wrist"):
        score(model, frames)


def test_resnet_features_from_a_local_weights_file(tmp_path):
    from torchvision.models.resnet import BasicBlock, ResNet

    torch.manual_seed(0)
    weights = tmp_path / "resnet10.pt"
    torch.save(ResNet(BasicBlock, [1, 1, 1, 1]).state_dict(), weights)
    config = small_config(image_size=[32, 32], feature_extractor="resnet10", extractor_weights=str(weights))
    demos = [np.kron(d, np.ones((1, 2, 2, 1), np.uint8)) for d in staged_demos()]  # 32x32
    model, _ = fit_perceptual_reward(config, demos)
    assert config.feature_dim == 2048
    path = save_perceptual_reward(model, tmp_path / "resnet_reward.safetensors")
    assert path.stat().st_size < 100_000  # the trunk's weights stay in their own file
    loaded, _ = load_perceptual_reward(path)
    torch.testing.assert_close(score(loaded, demos[0]).reward, score(model, demos[0]).reward, rtol=0, atol=0)


# --- checks and errors ----------------------------------------------------------------------------
def test_fit_rejects_bad_demos():
    config = small_config()
    demos = staged_demos()
    with pytest.raises(ValueError, match="at least 1 demo"):
        fit_perceptual_reward(config, [])
    with pytest.raises(ValueError, match="demo 1 has 3 frames, fewer than reward.num_steps=4"):
        fit_perceptual_reward(config, [demos[0], demos[1][:3]])
    with pytest.raises(ValueError, match=r"demo 0 camera 'front': frames are 8x8 \(HxW\).*\[16, 16\]"):
        fit_perceptual_reward(config, [demos[0][:, :8, :8]])
    with pytest.raises(ValueError, match="expected uint8"):
        fit_perceptual_reward(config, [demos[0].astype(np.float32)])
    with pytest.raises(KeyError, match="camera 'front'"):
        fit_perceptual_reward(config, [{"wrist": demos[0]}])


def test_features_reject_frames_of_the_wrong_size():
    # score() resizes frames to reward.image_size (tests/rewards/test_reward_resize.py); the feature
    # extractor, which fitting calls directly, must never see another size
    model, _ = fit_perceptual_reward(small_config(), staged_demos())
    with pytest.raises(ValueError, match=r"camera 'front': images are 8x16 \(HxW\).*16x16"):
        model.features({"front": torch.zeros((2, 8, SIZE, 3), dtype=torch.uint8)})


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"name": "clip"}, "reward.name"),
        ({"num_steps": 1}, "reward.num_steps"),
        ({"features_per_step": 0}, "reward.features_per_step"),
        ({"features_per_step": 3 * 8 + 4 * 64 + 1}, "reward.features_per_step"),  # more than there are
        ({"cameras": []}, "reward.cameras"),
        ({"cameras": ["front", "front"]}, "reward.cameras"),
        ({"image_size": [16]}, "reward.image_size"),
        ({"feature_extractor": "cnn_random"}, "reward.feature_extractor"),
        ({"feature_extractor": "resnet18"}, "reward.extractor_weights"),  # no weights: random features
        ({"extractor_weights": "/w.pt"}, "reward.extractor_weights"),  # image_stats loads none
        ({"row_bands": 17}, "reward.row_bands"),
        ({"histogram_levels": 1}, "reward.histogram_levels"),
        ({"feature_extractor": "pixels", "pixel_grid": 0}, "reward.pixel_grid"),
        ({"batch_size": 0}, "reward.batch_size"),
    ],
)
def test_config_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        small_config(**overrides).validate()


def test_config_is_a_reward_config():
    from robot_rl.rewards.config import RewardConfig

    config = PerceptualRewardConfig()
    config.validate()
    assert isinstance(config, RewardConfig) and config.name == "perceptual" and not config.is_oracle
    with pytest.raises(ConfigError, match=r"sweep\.num_steps"):
        PerceptualRewardConfig(num_steps=1).validate(key="sweep")


# --- checkpoints ---------------------------------------------------------------------------------------
def test_save_load_round_trip_is_identical(tmp_path):
    model, report = fit_perceptual_reward(small_config(), staged_demos())
    path = save_perceptual_reward(model, tmp_path / "reward" / "perceptual.safetensors", report)
    loaded, loaded_report = load_perceptual_reward(path)
    assert loaded_report == report and loaded.config == model.config
    frames = np.concatenate([staged_demo([3, 4, 2, 5], seed=8), np.zeros((1, SIZE, SIZE, 3), np.uint8)])
    before, after = score(model, frames), score(loaded, frames)
    assert torch.equal(before.reward, after.reward) and torch.equal(before.success_prob, after.success_prob)
    for name, value in model.fitted_state().items():
        assert torch.equal(value, loaded.fitted_state()[name]), name
    again, _ = load_perceptual_reward(path, config=small_config(checkpoint=str(path)))  # the run's matching config
    assert torch.equal(score(again, frames).reward, before.reward)


def test_load_refuses_what_does_not_fit(tmp_path):
    model, _ = fit_perceptual_reward(small_config(), staged_demos())
    path = save_perceptual_reward(model, tmp_path / "perceptual.safetensors")
    with pytest.raises(ConfigError, match=r"num_steps: checkpoint 4, config 5"):
        load_perceptual_reward(path, config=small_config(num_steps=5))
    with pytest.raises(ConfigError, match=r"row_bands: checkpoint 8, config 4"):
        load_perceptual_reward(path, config=small_config(row_bands=4))
    loaded, _ = load_perceptual_reward(path, config=small_config(batch_size=7, pixel_grid=2))  # not feature fields
    assert loaded.config.batch_size == 7
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_perceptual_reward(tmp_path / "missing.safetensors")
    from robot_rl.data.tree import save_tree

    save_tree(tmp_path / "other.safetensors", {"format": "something/1", "state_dict": {}})
    with pytest.raises(ValueError, match="not a perceptual reward checkpoint"):
        load_perceptual_reward(tmp_path / "other.safetensors")
