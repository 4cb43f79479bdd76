"""The VLM labeller of the preference reward (reward.label_source=vlm): a zero-shot CLIP model's
VLM-RM score decides which of two segments is preferred. Tiny random-init CLIP architectures
(tiny_clip.py): the labels mean nothing about the scene, so the tests check the decision rule against
the same model's scores, the config plumbing, and train-reward with VLM labels end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_clip import TINY, register_tiny_models

from robot_rl.cli import main
from robot_rl.config import load_config
from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.preference.model import (
    EQUAL,
    PREFER_FIRST,
    PREFER_SECOND,
    Segment,
    VLMLabeller,
    load_preference_reward,
    make_labeller,
)

VLM = [
    "reward=preference",
    "reward.label_source=vlm",
    f"reward.vlm.model={TINY}",
    "reward.vlm.random_init=true",
    "reward.vlm.goal_prompts=[a red cube lifted above the table]",
    "reward.vlm.baseline_prompts=[a red cube on a table]",
    "reward.vlm.camera=front",
]


@pytest.fixture(scope="module", autouse=True)
def tiny_models(tmp_path_factory):
    register_tiny_models(tmp_path_factory.mktemp("open_clip_configs"))


def segment(seed: int, length: int = 6) -> Segment:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (length, 40, 40, 3), dtype=np.uint8)
    return Segment(np.zeros((length, 4), np.float32), images={"front": frames})


def test_the_segment_whose_frames_score_higher_is_preferred():
    torch.manual_seed(0)
    labeller = make_labeller(load_config(VLM).reward)
    assert isinstance(labeller, VLMLabeller) and not labeller.is_oracle
    segments = [segment(seed) for seed in range(6)]
    # the model's own mean VLM-RM reward over each segment's frames, computed directly
    means = [
        float(
            labeller.vlm.score(
                RewardInput(torch.zeros(6, 4), {"front": torch.from_numpy(s.images["front"])})
            ).reward.mean()
        )
        for s in segments
    ]
    assert len(set(np.round(means, 6))) == 6  # distinct scores: every pair has a strict preference
    for i in range(6):
        for j in range(i + 1, 6):
            expected = PREFER_FIRST if means[i] > means[j] else PREFER_SECOND
            assert labeller(segments[i], segments[j]) == expected
            assert labeller(segments[j], segments[i]) == 1.0 - expected
    margin = VLMLabeller(labeller.vlm, equal_margin=abs(means[0] - means[1]) + 1e-6)
    assert margin(segments[0], segments[1]) == EQUAL


def test_a_segment_without_the_vlms_camera_is_refused():
    labeller = make_labeller(load_config(VLM).reward)
    wrist_only = Segment(np.zeros((3, 4), np.float32), images={"wrist": np.zeros((3, 8, 8, 3), np.uint8)})
    with pytest.raises(ValueError, match="the segment has no 'front' frames"):
        labeller(wrist_only, segment(0))


def test_a_vlm_label_source_needs_the_vlms_weights():
    with pytest.raises(Exception, match="reward.vlm.checkpoint: no CLIP weights"):
        load_config(["reward=preference", "reward.label_source=vlm"])


def test_train_reward_labels_preferences_with_the_vlm(tmp_path):
    overrides = [
        *VLM,
        "task=reach",
        "sim=state",
        "episodes=2",
        "reward.segment_length=10",
        "reward.ensemble_size=2",
        "reward.steps_per_label_batch=5",
        "reward.hidden_dims=[16,16]",
        f"run_dir={tmp_path}",
    ]
    assert main(["train-reward", *overrides]) == 0
    report = json.loads((tmp_path / "reward_report.json").read_text())
    assert report["labeller"] == f"VLM ({TINY})"
    model, _ = load_preference_reward(tmp_path / "preference.safetensors")
    # every round's pairs were labelled by the VLM (none skipped) and saved with the model
    assert len(model.dataset) == report["label_rounds"][-1]["reward/labels"] == 400
    assert model.config.label_source == "vlm" and model.config.vlm.model == TINY
