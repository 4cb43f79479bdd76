"""The success classifier reward: the metrics against hand computations, training on a separable
synthetic set, the gate, the input checks, checkpoints, and frames collected on the twin."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.classifier.config import SuccessClassifierConfig
from robot_rl.rewards.classifier.model import (
    SuccessClassifierReward,
    choose_threshold,
    collect_labelled_frames,
    load_success_classifier,
    roc_curve,
    save_success_classifier,
    train_success_classifier,
)
from robot_rl.rewards.fidelity import roc_auc
from robot_rl.sim.config import ConfigError

SIZE = 32
TINY = {"image_size": [SIZE, SIZE], "cnn_channels": [4, 8], "image_feature_dim": 8, "hidden_dims": [16]}
STATE_DIM = 26  # spec.flatten_state without task state


def tiny_config(**overrides) -> SuccessClassifierConfig:
    return SuccessClassifierConfig(**{**TINY, "cameras": ["front"], "steps": 150, "batch_size": 32, **overrides})


def squares(n: int, positive_every: int = 4, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Noisy grey frames with an 8x8 square somewhere: bright for a success, dark otherwise.
    One positive in every `positive_every` frames; episodes of 4 frames."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % positive_every == 0
    frames = rng.integers(90, 160, (n, SIZE, SIZE, 3), dtype=np.uint8)
    for i, positive in enumerate(labels):
        y, x = rng.integers(0, SIZE - 8, 2)
        frames[i, y : y + 8, x : x + 8] = 250 if positive else 10
    return {"front": frames}, labels, np.arange(n) // 4


def reward_input(images: dict[str, np.ndarray], state: np.ndarray | None = None) -> RewardInput:
    n = len(next(iter(images.values())))
    state = np.zeros((n, STATE_DIM), np.float32) if state is None else state
    return RewardInput(torch.from_numpy(state), {k: torch.from_numpy(v.copy()) for k, v in images.items()})


# --- metrics ------------------------------------------------------------------------------------
def test_roc_auc_matches_hand_computation():
    # pairs (positive, negative) ordered right: 0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4 -> 3 of 4
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # a tie counts one half: (0.5 vs 0.5) 0.5 + (0.5 vs 0.2) 1 + (0.9 vs both) 2 -> 3.5 of 4
    assert roc_auc([0.5, 0.5, 0.2, 0.9], [0, 1, 0, 1]) == pytest.approx(0.875)
    assert roc_auc([1.0, 2.0], [1, 0]) == 0.0
    # gated-out frames score -inf: below every finite score
    assert roc_auc([-math.inf, 0.3, 0.2], [0, 1, 0]) == 1.0
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])


def test_roc_auc_equals_the_area_under_roc_curve():
    rng = np.random.default_rng(0)
    labels = rng.random(200) < 0.3
    scores = np.round(rng.normal(labels * 1.0, 1.0), 1)  # rounded: plenty of ties
    fpr, tpr = roc_curve(scores, labels)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids: ties are diagonal steps
    assert roc_auc(scores, labels) == pytest.approx(area)


#   score   0.9 0.8 0.7 0.6 0.5 0.4 0.3 0.2 0.1
#   label    +   +   -   +   +   -   -   +   -
# predicting success for score >= t gives, per t: precision 1, 1, 2/3, 3/4, 4/5, 4/6, 4/7, 5/8, 5/9
#                                                 recall    1/5 2/5 2/5 3/5 4/5 4/5 4/5  1   1
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
LABELS = [1, 1, 0, 1, 1, 0, 0, 1, 0]


@pytest.mark.parametrize(
    ("target", "threshold", "precision", "recall"),
    [
        (1.0, 0.8, 1.0, 0.4),  # the highest recall at precision 1; 0.9 has the same precision, less recall
        (0.81, 0.8, 1.0, 0.4),
        (0.8, 0.5, 0.8, 0.8),  # exactly 4/5 counts as reaching 0.8
        (0.75, 0.5, 0.8, 0.8),
        (0.6, 0.2, 0.625, 1.0),
        (0.5, 0.2, 0.625, 1.0),  # recall 1 at 0.2 and at 0.1: the higher threshold
    ],
)
def test_choose_threshold_takes_the_highest_recall_reaching_the_target(target, threshold, precision, recall):
    choice = choose_threshold(SCORES, LABELS, target)
    assert choice.target_reached
    assert (choice.threshold, choice.precision, choice.recall) == pytest.approx((threshold, precision, recall))
    predicted = np.array(SCORES) >= choice.threshold
    assert (predicted & np.array(LABELS, bool)).sum() / predicted.sum() >= target - 1e-12


def test_choose_threshold_reports_an_unreachable_target_and_never_splits_ties():
    # a negative ties the best positive: precision 1/2 at 0.5, 2/3 at 0.3, never more
    choice = choose_threshold([0.5, 0.5, 0.3], [0, 1, 1], 0.7)
    assert not choice.target_reached
    assert (choice.threshold, choice.precision, choice.recall) == pytest.approx((0.3, 2 / 3, 1.0))
    # a gated positive (-inf) is never predicted, so it only costs recall
    choice = choose_threshold([-math.inf, 0.9, 0.1], [1, 1, 0], 0.95)
    assert choice.target_reached and (choice.threshold, choice.recall) == pytest.approx((0.9, 0.5))


# --- training -----------------------------------------------------------------------------------
def test_training_on_separable_squares_reaches_high_auc_and_the_target_precision():
    images, labels, episodes = squares(320)
    model, report = train_success_classifier(tiny_config(), images, labels, episode_ids=episodes)
    assert report["roc_auc"] >= 0.98 and report["train_roc_auc"] >= 0.98
    assert report["target_reached"] and report["precision"] >= 0.95
    assert report["recall"] >= 0.8
    # whole episodes are held out: 20% of the 80 episodes of 4 frames
    assert report["heldout"]["episodes"] == 16 and report["heldout"]["frames"] == 64
    assert report["train"]["frames"] + report["heldout"]["frames"] == 320
    assert 0 < report["threshold"] < 1 and report["threshold"] == pytest.approx(model.threshold)

    test_images, test_labels, _ = squares(200, seed=1)  # unseen frames
    out = model.score(reward_input(test_images))
    assert set(out.reward.unique().tolist()) <= {0.0, 1.0}
    accuracy = (out.reward.bool().numpy() == test_labels).mean()
    assert accuracy >= 0.9
    # the reward is the thresholded probability
    torch.testing.assert_close(out.reward, (out.success_prob >= model.threshold - 1e-6).float())


def test_training_accepts_a_separate_heldout_set():
    from robot_rl.data.labels import LabelledFrames

    images, labels, _ = squares(160)
    held_images, held_labels, held_episodes = squares(80, seed=2)
    heldout = LabelledFrames(held_images, np.zeros((80, 0), np.float32), held_labels, held_episodes)
    _, report = train_success_classifier(tiny_config(steps=20), images, labels, heldout=heldout)
    assert report["heldout"]["frames"] == 80 and report["train"]["frames"] == 160


def test_training_refuses_bad_data_before_it_starts():
    images, labels, _ = squares(40)
    with pytest.raises(ValueError, match="all negative"):
        train_success_classifier(tiny_config(), images, np.zeros(40, bool))
    with pytest.raises(ValueError, match="all positive"):
        train_success_classifier(tiny_config(), images, np.ones(40, bool))
    with pytest.raises(ValueError, match="has 40 frames but there are 39 labels"):
        train_success_classifier(tiny_config(), images, labels[:39])
    with pytest.raises(ValueError, match=r"are 32x32 \(HxW\); the config's reward.image_size is \[64, 64\]"):
        train_success_classifier(tiny_config(image_size=[64, 64]), images, labels)
    with pytest.raises(KeyError, match="wrist"):
        train_success_classifier(tiny_config(cameras=["front", "wrist"]), images, labels)
    with pytest.raises(ValueError, match="states are needed"):
        train_success_classifier(tiny_config(gate_state_index=2, gate_min=0.05), images, labels)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"^reward\.target_precision:"):
        tiny_config(target_precision=1.5).validate()
    with pytest.raises(ConfigError, match=r"^reward\.encoder:"):
        tiny_config(encoder="vit").validate()
    with pytest.raises(ConfigError, match=r"^reward\.gate_min:"):
        tiny_config(gate_state_index=2).validate()
    with pytest.raises(ConfigError, match=r"^reward\.gate_max:"):
        tiny_config(gate_state_index=2, gate_min=0.3, gate_max=0.1).validate()


# --- the model ----------------------------------------------------------------------------------
def test_the_proprio_gate_forces_success_to_zero():
    model = SuccessClassifierReward(tiny_config(gate_state_index=2, gate_min=0.05, gate_max=0.4))
    model.logit_threshold.fill_(-1e6)  # every frame a success, were it not for the gate
    images, _, _ = squares(4)
    state = np.zeros((4, STATE_DIM), np.float32)
    state[:, 2] = [0.01, 0.05, 0.2, 0.5]  # below, on the edge, inside, above
    out = model.score(reward_input(images, state))
    assert out.reward.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert out.success_prob[0] == 0.0 and out.success_prob[3] == 0.0 and bool((out.success_prob[1:3] > 0).all())
    with pytest.raises(ValueError, match="gate_state_index=2"):
        model.score(reward_input(images, np.zeros((4, 2), np.float32)))


def test_no_nan_ever_comes_out():
    model = SuccessClassifierReward(tiny_config())
    images = {"front": np.stack([np.zeros((SIZE, SIZE, 3), np.uint8), np.full((SIZE, SIZE, 3), 255, np.uint8)])}
    out = model.score(reward_input(images))
    assert bool(torch.isfinite(out.reward).all()) and bool(torch.isfinite(out.success_prob).all())
    assert bool(((out.success_prob >= 0) & (out.success_prob <= 1)).all())
    # a broken network raises instead of returning NaN, or a 0 reward that hides it
    with torch.no_grad():
        next(model.head.parameters()).fill_(math.nan)
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.score(reward_input(images))


def test_the_network_refuses_images_of_the_wrong_size():
    # score() resizes frames to the model's size (tests/rewards/test_reward_resize.py); the network
    # itself, which training calls directly, must never see another size
    model = SuccessClassifierReward(tiny_config())
    with pytest.raises(ValueError, match=r"camera 'front': images are 16x16 \(HxW\).*32x32"):
        model.logits({"front": torch.zeros((2, 16, 16, 3), dtype=torch.uint8)})


def test_a_pretrained_backbone_stays_frozen_while_the_head_trains():
    # no weights can be downloaded here: a random ResNet-10 stands in for the pretrained one
    images, labels, episodes = squares(80)
    model, _ = train_success_classifier(tiny_config(encoder="resnet10", steps=3), images, labels, episode_ids=episodes)
    backbone = model.encoders["front"].backbone
    assert not any(p.requires_grad for p in backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    out = model.score(reward_input(images))
    assert bool(torch.isfinite(out.success_prob).all())


# --- checkpoints --------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    config = tiny_config(cameras=["front", "wrist"])
    torch.manual_seed(0)
    model = SuccessClassifierReward(config).eval()
    model.logit_threshold.fill_(0.123)
    path = save_success_classifier(model, tmp_path / "classifier.safetensors", {"roc_auc": 0.99})
    loaded, report = load_success_classifier(path)
    assert report == {"roc_auc": 0.99}
    assert loaded.config == config and loaded.threshold == pytest.approx(model.threshold)
    rng = np.random.default_rng(0)
    images = {cam: rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8) for cam in ("front", "wrist")}
    with torch.no_grad():
        a, b = model.score(reward_input(images)), loaded.score(reward_input(images))
    assert torch.equal(a.reward, b.reward) and torch.equal(a.success_prob, b.success_prob)
    # the run's config may bring its own gate; the threshold stays the checkpoint's
    gated, _ = load_success_classifier(path, tiny_config(cameras=["front", "wrist"], gate_state_index=2, gate_min=1.0))
    assert gated.score(reward_input(images)).reward.sum() == 0.0
    assert gated.threshold == pytest.approx(model.threshold)


def test_loading_into_a_config_with_other_camera_sizes_fails_naming_them(tmp_path):
    path = save_success_classifier(SuccessClassifierReward(tiny_config()), tmp_path / "c.safetensors")
    with pytest.raises(ConfigError, match=r"camera 'front' image size \(HxW\): checkpoint 32x32, config 64x64"):
        load_success_classifier(path, tiny_config(image_size=[64, 64]))
    with pytest.raises(ConfigError, match=r"cameras: checkpoint \['front'\], config \['wrist'\]"):
        load_success_classifier(path, tiny_config(cameras=["wrist"]))
    with pytest.raises(ConfigError, match="hidden_dims: checkpoint"):
        load_success_classifier(path, tiny_config(hidden_dims=[32]))
    with pytest.raises(FileNotFoundError):
        load_success_classifier(tmp_path / "missing.safetensors")


# --- frames from the twin -----------------------------------------------------------------------
def test_collect_labelled_frames_on_the_twin_labels_by_ground_truth():
    from robot_rl.sim.config import CameraConfig, SimConfig
    from robot_rl.sim.env import SimTwinEnv

    rig = CameraConfig(width=SIZE, height=SIZE)
    env = SimTwinEnv("pick_cube", sim=SimConfig(cameras=["front"], camera_rigs={"front": rig}))
    try:
        data = collect_labelled_frames(env, 2, kind_fractions={"expert": 1.0}, success_hold_steps=3, release_steps=3)
    finally:
        env.close()
    assert data.images["front"].shape == (len(data), SIZE, SIZE, 3) and data.images["front"].dtype == np.uint8
    assert data.states.shape == (len(data), STATE_DIM)
    assert sorted(set(data.episode_ids.tolist())) == [0, 1]
    # the expert succeeds in both: positives from its first success for the hold, negatives before and after
    for episode in (0, 1):
        labels = data.labels[data.episode_ids == episode]
        assert not labels[0] and labels.sum() >= 4
    assert (~data.labels).sum() > data.labels.sum()


def test_miss_episodes_do_the_task_in_the_wrong_place():
    """The peg_insert expert aiming 7 cm beside the hole (clear of the fixture, whose walls end
    4.6 cm from the hole's axis, peg included) pushes the peg down there: frames that look like an
    insertion to a classifier that never saw one, all labelled failures."""
    from robot_rl.sim.config import CameraConfig, SimConfig
    from robot_rl.sim.env import SimTwinEnv

    rig = CameraConfig(width=16, height=16)
    sim = SimConfig(cameras=["front"], camera_rigs={"front": rig}, privileged_state=True)
    env = SimTwinEnv("peg_insert", sim=sim)
    try:
        data = collect_labelled_frames(env, 2, kind_fractions={"miss": 1.0}, miss_distance=(0.07, 0.07), max_steps=40)
    finally:
        env.close()
    assert not data.labels.any() and set(data.episode_kinds.tolist()) == {"miss"}
    for episode in (0, 1):
        task = data.states[data.episode_ids == episode][-1, STATE_DIM:]
        rim, tip = task[:3], task[5:8]
        assert tip[2] < rim[2] - 0.02, "the peg never went down"
        assert np.linalg.norm(tip[:2] - rim[:2]) > 0.045, "the peg went down at the hole"
