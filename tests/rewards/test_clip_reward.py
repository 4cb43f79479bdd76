"""CLIPReward (VLM-RM): the reward formula against numpy, its alpha = 0 / alpha = 1 limits, the
zero-shot goal probability, batching, preprocessing against open_clip's own PIL transform, weight
loading from a local file, and the named config errors.

No weights can be downloaded here: every test uses tiny random-init open_clip architectures
registered from JSON (a 2-layer ViT and text transformer, 64 wide), so nothing depends on what a
trained CLIP sees in an image, only on the math and the plumbing.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image
from tiny_clip import TINY, TINY_64, register_tiny_models, tiny_model_config

from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.clip.config import CLIPRewardConfig
from robot_rl.rewards.clip.model import (
    ClipImagePreprocess,
    CLIPReward,
    goal_baseline_projection,
    goal_probability,
    vlm_rm_reward,
)
from robot_rl.sim.config import ConfigError


@pytest.fixture(scope="session", autouse=True)
def tiny_models(tmp_path_factory):
    register_tiny_models(tmp_path_factory.mktemp("open_clip_configs"))


def clip_config(**overrides) -> CLIPRewardConfig:
    values = dict(
        model=TINY,
        random_init=True,
        goal_prompts=["a robot gripper holding a red cube", "a red cube lifted above the table"],
        baseline_prompts=["a robot gripper and a red cube on a table"],
        camera="front",
        alpha=0.5,
    )
    values.update(overrides)
    return CLIPRewardConfig(**values)


def make_reward(seed: int = 0, **overrides) -> CLIPReward:
    torch.manual_seed(seed)  # random init: the seed fixes the weights
    return CLIPReward(clip_config(**overrides))


def frames(n: int, height: int = 48, width: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, height, width, 3), dtype=torch.uint8, generator=g)


def inputs(images: torch.Tensor, camera: str = "front") -> RewardInput:
    return RewardInput(state=torch.zeros(images.shape[0], 4), images={camera: images})


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ---- the formula ---------------------------------------------------------------------------------


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 16))  # not normalised: vlm_rm_reward normalises
    goal, baseline = unit(rng.normal(size=16)), unit(rng.normal(size=16))
    return x, goal, baseline


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_reward_matches_a_numpy_hand_computation(embeddings, alpha):
    x, g, b = embeddings
    d = g - b
    projection = alpha * np.outer(d, d) / (d @ d) + (1 - alpha) * np.eye(16)
    expected = 1 - 0.5 * np.sum(((unit(x) - g) @ projection) ** 2, axis=-1)
    got = vlm_rm_reward(*(torch.tensor(a, dtype=torch.float64) for a in (x, g, b)), alpha)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_alpha_zero_is_cosine_similarity(embeddings):
    x, g, b = embeddings
    got = vlm_rm_reward(torch.tensor(x), torch.tensor(g), torch.tensor(b), alpha=0.0)
    cosine = (x @ g) / np.linalg.norm(x, axis=-1)  # g is a unit vector
    np.testing.assert_allclose(got.numpy(), cosine, atol=1e-6)


def test_alpha_one_keeps_only_the_goal_baseline_direction(embeddings):
    x, g, b = embeddings
    direction = unit(g - b)
    got = vlm_rm_reward(torch.tensor(x), torch.tensor(g), torch.tensor(b), alpha=1.0)
    np.testing.assert_allclose(got.numpy(), 1 - 0.5 * ((unit(x) - g) @ direction) ** 2, atol=1e-6)
    # A unit frame embedding that differs from g only orthogonally to d: g = a d + u with u orthogonal
    # to d; x = a d + w, with w another vector of u's length orthogonal to d. alpha = 1 cannot tell x from g.
    a = g @ direction
    w = np.random.default_rng(1).normal(size=16)
    w = unit(w - (w @ direction) * direction) * np.linalg.norm(g - a * direction)
    x_off = torch.tensor(a * direction + w)[None]
    assert vlm_rm_reward(x_off, torch.tensor(g), torch.tensor(b), alpha=1.0).item() == pytest.approx(1.0)
    assert vlm_rm_reward(x_off, torch.tensor(g), torch.tensor(b), alpha=0.0).item() < 0.9


@pytest.mark.parametrize("alpha", [0.0, 0.25, 1.0])
def test_projection_keeps_d_and_shrinks_what_is_orthogonal(embeddings, alpha):
    _, g, b = (torch.tensor(a) for a in embeddings)
    projection = goal_baseline_projection(g, b, alpha)
    d = g - b
    v = torch.randn(16, dtype=torch.float64)
    v_orthogonal = v - (v @ d) / (d @ d) * d
    torch.testing.assert_close(projection, projection.T)
    torch.testing.assert_close(d @ projection, d)
    torch.testing.assert_close(v_orthogonal @ projection, (1 - alpha) * v_orthogonal)
    assert vlm_rm_reward(g[None], g, b, alpha).item() == pytest.approx(1.0)  # the goal itself scores 1


def test_identical_goal_and_baseline_is_an_error(embeddings):
    _, g, _ = (torch.tensor(a) for a in embeddings)
    with pytest.raises(ValueError, match="same vector"):
        goal_baseline_projection(g, g.clone(), 0.5)
    goal_baseline_projection(g, g.clone(), 0.0)  # alpha = 0 never uses d


def test_goal_probability_is_the_two_way_softmax(embeddings):
    x, g, b = (torch.tensor(a) for a in embeddings)
    scale = 14.3
    logits = scale * F.normalize(x, dim=-1) @ torch.stack([g, b]).T
    torch.testing.assert_close(goal_probability(x, g, b, scale), logits.softmax(dim=-1)[:, 0].float())


# ---- the model ------------------------------------------------------------------------------------


def test_prompt_embeddings_are_the_normalised_mean_of_unit_embeddings():
    reward = make_reward()
    tokens = open_clip.get_tokenizer(TINY)(reward.config.goal_prompts)
    each = F.normalize(reward.clip.encode_text(tokens), dim=-1)
    torch.testing.assert_close(reward.goal, F.normalize(each.mean(dim=0), dim=0))
    assert reward.goal.norm().item() == pytest.approx(1.0) and reward.baseline.norm().item() == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["projection", "success_prob"])
def test_rewards_follow_the_embeddings(mode):
    reward = make_reward(alpha=0.0, mode=mode)
    images = frames(5)
    out = reward.score(inputs(images))
    x = reward.embed_images(images)
    probability = (reward.logit_scale * x @ torch.stack([reward.goal, reward.baseline]).T).softmax(dim=-1)[:, 0]
    expected = x @ reward.goal if mode == "projection" else probability  # alpha = 0: cosine similarity
    assert out.reward.dtype == torch.float32 and out.reward.shape == (5,)
    torch.testing.assert_close(out.reward, expected)
    torch.testing.assert_close(out.success_prob, probability)
    assert bool(((out.success_prob >= 0) & (out.success_prob <= 1)).all())


@pytest.mark.parametrize("batch_size", [64, 2])
def test_a_batch_scores_like_frames_one_by_one(batch_size):
    reward = make_reward(batch_size=batch_size)
    images = frames(7)
    together = reward.score(inputs(images.clone()))
    alone = [reward.score(inputs(images[i : i + 1].clone())) for i in range(7)]
    torch.testing.assert_close(together.reward, torch.cat([o.reward for o in alone]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together.success_prob, torch.cat([o.success_prob for o in alone]), atol=1e-5, rtol=1e-5)


def test_crop_is_applied_before_preprocessing():
    reward = make_reward(crop=[4, 6, 30, 28])
    plain = make_reward()
    images = frames(3)
    torch.testing.assert_close(
        reward.score(inputs(images.clone())).reward, plain.score(inputs(images[:, 4:34, 6:34].clone())).reward
    )
    with pytest.raises(ValueError, match="front: crop .* does not fit 20x40"):
        reward.score(inputs(frames(1, height=20)))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_checkpoint_file_round_trip(tmp_path, suffix):
    original = make_reward(seed=1)
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".pt":
        torch.save(original.clip.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in original.clip.state_dict().items()}, str(path))
    loaded = make_reward(seed=2, random_init=False, checkpoint=str(path))
    other = make_reward(seed=2)
    images = frames(4)
    torch.testing.assert_close(loaded.score(inputs(images.clone())).reward, original.score(inputs(images)).reward)
    torch.testing.assert_close(loaded.goal, original.goal)
    assert not torch.allclose(other.goal, original.goal)  # the seed-2 weights really were replaced


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "ViT-B-32.pt"
    with pytest.raises(FileNotFoundError, match="reward.checkpoint: no CLIP weights file at .*nowhere"):
        CLIPReward(clip_config(random_init=False, checkpoint=str(missing)))


def test_local_dir_model_brings_weights_and_preprocessing(tmp_path):
    """model='local-dir:/path' (open_clip_config.json + weights, as a Hugging Face snapshot has)."""
    original = make_reward(seed=3)
    (tmp_path / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": tiny_model_config(32), "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.25] * 3}})
    )
    torch.save(original.clip.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    loaded = make_reward(seed=4, model=f"local-dir:{tmp_path}", random_init=False)
    torch.testing.assert_close(loaded.goal, original.goal)
    assert loaded.preprocess.mean.flatten().tolist() == [0.5] * 3
    assert loaded.preprocess.std.flatten().tolist() == [0.25] * 3


def test_checkpoint_with_a_tag_takes_the_tags_preprocessing_and_activation(tmp_path, monkeypatch):
    original = make_reward(seed=5)
    path = tmp_path / "tiny.pt"
    torch.save(original.clip.state_dict(), path)
    tag = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "resize_mode": "squash", "quick_gelu": True}
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda model, name: tag if name == "some_tag" else {})
    loaded = make_reward(random_init=False, checkpoint=str(path), pretrained="some_tag")
    assert loaded.preprocess.resize_mode == "squash" and loaded.preprocess.mean.flatten().tolist() == [0.5] * 3
    assert isinstance(loaded.clip.visual.transformer.resblocks[0].mlp.gelu, open_clip.model.QuickGELU)
    with pytest.raises(ConfigError, match="reward.pretrained: 'other' is not an open_clip tag"):
        make_reward(random_init=False, checkpoint=str(path), pretrained="other")


# ---- preprocessing --------------------------------------------------------------------------------


def test_preprocessing_comes_from_the_model():
    small, large = make_reward(model=TINY), make_reward(model=TINY_64)
    assert small.preprocess.size == (32, 32) and large.preprocess.size == (64, 64)
    assert small.preprocess(frames(2)).shape == (2, 3, 32, 32)
    assert large.preprocess(frames(2)).shape == (2, 3, 64, 64)
    mean = torch.tensor(open_clip.get_model_preprocess_cfg(small.clip)["mean"]).view(1, 3, 1, 1)
    torch.testing.assert_close(small.preprocess.mean, mean.float())


@pytest.mark.parametrize(
    "resize_mode, size, interpolation",
    [("shortest", 32, "bicubic"), ("shortest", 64, "bicubic"), ("squash", (48, 40), "bicubic"),
     ("longest", 32, "bilinear"), ("shortest", (40, 48), "bicubic")],
)  # fmt: skip
@pytest.mark.parametrize("height, width", [(128, 128), (96, 160), (20, 30)])
def test_tensor_preprocessing_matches_open_clips_pil_transform(resize_mode, size, interpolation, height, width):
    cfg = dict(open_clip.get_model_preprocess_cfg(make_reward().clip))
    cfg.update(size=size, resize_mode=resize_mode, interpolation=interpolation, fill_color=40)
    reference = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
    ours = ClipImagePreprocess(cfg)
    images = frames(3, height, width, seed=height + width)  # white noise: the hardest case for a resize
    expected = torch.stack([reference(Image.fromarray(img.numpy())) for img in images])
    got = ours(images)
    assert got.shape == expected.shape
    one_grey_level = 1.0 / 255.0 / min(cfg["std"])
    assert (got - expected).abs().max().item() <= 2.01 * one_grey_level  # PIL's 8-bit rounding
    assert (got - expected).abs().mean().item() <= 0.1 * one_grey_level


# ---- inputs and errors ----------------------------------------------------------------------------


def test_score_converts_frames_with_one_meaning_and_rejects_others():
    reward = make_reward()
    images = frames(2)
    expected = reward.score(inputs(images.clone())).reward
    as_float = images.float() / 255.0
    rgba = torch.cat([images, torch.full_like(images[..., :1], 255)], dim=-1)
    torch.testing.assert_close(reward.score(inputs(as_float)).reward, expected)
    torch.testing.assert_close(reward.score(inputs(rgba)).reward, expected)
    single = RewardInput(state=torch.zeros(1, 4), images={"front": images[0].numpy()})  # one HWC numpy frame
    torch.testing.assert_close(reward.score(single).reward, expected[:1])
    with pytest.raises(ValueError, match="front: expected 1, 3 or 4 channels"):
        reward.score(inputs(images[..., :2]))
    with pytest.raises(ValueError, match="front: images must be uint8 or float"):
        reward.score(inputs(images.to(torch.int32)))
    with pytest.raises(KeyError, match="reads camera 'front'"):
        reward.score(inputs(images, camera="wrist"))


def test_nan_rewards_never_leave_score():
    reward = make_reward()
    with torch.no_grad():
        reward.clip.visual.proj.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite reward"):
        reward.score(inputs(frames(2)))


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"goal_prompts": []}, "reward.goal_prompts"),
        ({"baseline_prompts": []}, "reward.baseline_prompts"),
        ({"goal_prompts": ["  "]}, "reward.goal_prompts"),
        ({"random_init": False}, "reward.checkpoint"),
        ({"checkpoint": "/some/file.pt"}, "reward.random_init"),
        ({"alpha": 1.5}, "reward.alpha"),
        ({"mode": "cosine"}, "reward.mode"),
        ({"precision": "int8"}, "reward.precision"),
        ({"crop": [0, 0, 10]}, "reward.crop"),
        ({"batch_size": 0}, "reward.batch_size"),
        ({"name": "classifier"}, "reward.name"),
        ({"model": "ViT-B-33"}, "reward.model"),
        ({"model": "local-dir:/models/clip", "random_init": False, "pretrained": "openai"}, "reward.pretrained"),
    ],
)
def test_bad_config_values_name_their_key(overrides, key):
    config = clip_config(**overrides)
    with pytest.raises(ConfigError, match=f"^{key}:"):
        config.validate()
    with pytest.raises(ConfigError, match=f"^{key}:"):
        CLIPReward(config)  # construction validates too: fails before any model is built


def test_config_is_a_hydra_structured_config():
    merged = OmegaConf.merge(
        OmegaConf.structured(CLIPRewardConfig),
        OmegaConf.from_dotlist(["goal_prompts=[a cube in the gripper]", "baseline_prompts=[a cube]", "alpha=0.25"]),
    )
    config = OmegaConf.to_object(merged)
    assert isinstance(config, CLIPRewardConfig)
    assert config.alpha == 0.25 and config.goal_prompts == ["a cube in the gripper"]
    with pytest.raises(ConfigError, match="^reward.checkpoint: no CLIP weights"):  # caught before building anything
        config.validate()
    dataclasses.replace(config, checkpoint="/models/ViT-B-32.pt").validate()
