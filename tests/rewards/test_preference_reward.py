"""The preference reward: Bradley-Terry against a hand computation, the oracle labeller (ties, noise),
learning a known linear reward from oracle labels, ensemble uncertainty, query selection, images,
checkpoints and the input checks. Synthetic data only: fast, no simulator."""

from __future__ import annotations

import math

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from robot_rl.data.tree import load_tree
from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.fidelity import spearman
from robot_rl.rewards.preference.config import PreferenceRewardConfig
from robot_rl.rewards.preference.model import (
    EQUAL,
    PREFER_FIRST,
    PREFER_SECOND,
    OracleLabeller,
    PersonLabeller,
    PreferenceDataset,
    PreferenceReward,
    Segment,
    add_labels,
    load_preference_reward,
    make_labeller,
    preference_loss,
    preference_probability,
    save_preference_reward,
    select_queries,
)
from robot_rl.sim.config import ConfigError

STATE_DIM, T = 4, 10
TRUE_WEIGHTS = np.array([1.0, -0.5, 0.3, 2.0])  # the synthetic ground truth: r(s) = w . s


def small_config(**overrides) -> PreferenceRewardConfig:
    values = {"hidden_dims": [32, 32], "ensemble_size": 3, "segment_length": T, "batch_size": 32}
    return PreferenceRewardConfig(**{**values, "steps_per_label_batch": 300, **overrides})


def linear_segment(rng: np.random.Generator, mask: np.ndarray | None = None) -> Segment:
    """A random walk of T states around a random centre; masked dimensions stay at 0."""
    mask = np.ones(STATE_DIM) if mask is None else mask
    states = ((rng.normal(0, 1, STATE_DIM) + rng.normal(0, 0.3, (T, STATE_DIM))) * mask).astype(np.float32)
    return Segment(states, oracle_dense_reward=states @ TRUE_WEIGHTS, success=np.zeros(T, bool))


def constant_segment(value: float, dense: float, length: int = T) -> Segment:
    states = np.full((length, STATE_DIM), value, np.float32)
    return Segment(states, oracle_dense_reward=np.full(length, dense), success=np.zeros(length, bool))


def score(model: PreferenceReward, states: np.ndarray):
    return model.score(RewardInput(torch.from_numpy(np.asarray(states, np.float32)), {}))


# --- Bradley-Terry --------------------------------------------------------------------------------
def test_bradley_terry_probability_and_loss_match_hand_computation():
    r1, r2 = torch.tensor([2.0, -1.0, 0.3]), torch.tensor([0.5, 1.0, 0.3])
    by_hand = [math.exp(2.0) / (math.exp(2.0) + math.exp(0.5)), math.exp(-1.0) / (math.exp(-1.0) + math.e), 0.5]
    assert preference_probability(r1, r2).tolist() == pytest.approx(by_hand, rel=1e-6)

    labels = torch.tensor([PREFER_FIRST, PREFER_SECOND, EQUAL])
    p = by_hand
    cross_entropy = [-math.log(p[0]), -math.log(1 - p[1]), -(0.5 * math.log(p[2]) + 0.5 * math.log(1 - p[2]))]
    assert preference_loss(r1, r2, labels).item() == pytest.approx(np.mean(cross_entropy), rel=1e-6)
    # returns far apart: no overflow, the loss of the right side is ~0 and of the wrong side ~|R1 - R2|
    big = preference_loss(torch.tensor([1000.0, 1000.0]), torch.tensor([-1000.0, -1000.0]), torch.tensor([1.0, 0.0]))
    assert big.item() == pytest.approx(1000.0)


def test_model_segment_returns_are_sums_of_member_rewards():
    model = PreferenceReward(small_config(), STATE_DIM)
    rng = np.random.default_rng(0)
    first, second = linear_segment(rng), linear_segment(rng)
    with torch.no_grad():
        r1 = model.member_rewards(torch.from_numpy(first.states), {}).sum(dim=1).double()
        r2 = model.member_rewards(torch.from_numpy(second.states), {}).sum(dim=1).double()
    probabilities = model.pair_probabilities([(first, second)])[:, 0]
    by_hand = (torch.exp(r1) / (torch.exp(r1) + torch.exp(r2))).numpy()
    np.testing.assert_allclose(probabilities, by_hand, rtol=1e-5)


# --- labels ---------------------------------------------------------------------------------------
def test_ties_give_half_targets_and_a_zero_gradient_at_equal_returns():
    labeller = OracleLabeller()
    a, b = constant_segment(0.1, dense=0.4), constant_segment(0.9, dense=0.4)
    assert labeller(a, b) == EQUAL == 0.5
    dataset = PreferenceDataset(T, STATE_DIM)
    add_labels(dataset, [(a, b)], labeller)
    assert dataset.labels[:1].tolist() == [0.5]
    # with a 0.5 target the loss is log 2 at equal returns, and that is its minimum
    r1 = torch.tensor([0.7], requires_grad=True)
    loss = preference_loss(r1, torch.tensor([0.7]), torch.tensor([EQUAL]))
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2.0))
    assert r1.grad.item() == pytest.approx(0.0, abs=1e-7)
    # returns within equal_margin count as equal too
    assert OracleLabeller(equal_margin=0.5)(constant_segment(0, 0.40), constant_segment(0, 0.42)) == EQUAL


def test_oracle_labeller_prefers_the_higher_ground_truth_return():
    low, high = constant_segment(0.0, dense=0.1), constant_segment(0.0, dense=0.3)
    assert OracleLabeller()(high, low) == PREFER_FIRST
    assert OracleLabeller()(low, high) == PREFER_SECOND
    assert OracleLabeller.is_oracle
    # "success" counts the steps at success, whatever the dense reward says
    succeeded = constant_segment(0.0, dense=0.0)
    succeeded.success[-3:] = True
    assert OracleLabeller("success")(succeeded, high) == PREFER_FIRST
    # label noise: mistake_prob flips strict preferences, about that often
    noisy = OracleLabeller(mistake_prob=0.3, seed=1)
    flipped = np.mean([noisy(high, low) == PREFER_SECOND for _ in range(2000)])
    assert 0.25 < flipped < 0.35
    with pytest.raises(ValueError, match="no oracle_dense_reward"):
        OracleLabeller()(Segment(np.zeros((T, STATE_DIM), np.float32)), low)
    assert isinstance(make_labeller(small_config()), OracleLabeller)


def test_a_person_watches_each_pairs_clips_and_answers(tmp_path):
    rng = np.random.default_rng(0)

    def clip_segment() -> Segment:
        return Segment(
            np.zeros((T, STATE_DIM), np.float32), images={"front": rng.integers(0, 255, (T, 32, 32, 3), np.uint8)}
        )

    answers = iter(["2", "maybe", "1", "=", "s"])  # "maybe" is asked again
    prompts = []
    person = PersonLabeller("front", tmp_path / "clips", ask=lambda prompt: prompts.append(prompt) or next(answers))
    labels = [person(clip_segment(), clip_segment()) for _ in range(4)]
    assert labels == [PREFER_SECOND, PREFER_FIRST, EQUAL, None]
    assert "answer 1 (the first), 2" in prompts[2]  # after the unreadable answer
    clips = sorted((tmp_path / "clips").glob("*.mp4"))
    assert [c.name for c in clips[:2]] == ["pair_00001_1.mp4", "pair_00001_2.mp4"] and len(clips) == 8
    assert imageio.get_reader(clips[0]).count_frames() == T  # every frame of the segment is in its clip
    assert isinstance(make_labeller(small_config(label_source="human", human_clips_dir=str(tmp_path))), PersonLabeller)
    with pytest.raises(ValueError, match="no 'front' frames"):
        person(Segment(np.zeros((T, STATE_DIM), np.float32)), clip_segment())


def test_skipped_pairs_are_not_stored_and_the_dataset_grows():
    rng = np.random.default_rng(0)
    dataset = PreferenceDataset(T, STATE_DIM, ensemble_size=4, seed=0)
    answers = iter([None, PREFER_FIRST] * 50)
    stored = add_labels(
        dataset, [(linear_segment(rng), linear_segment(rng)) for _ in range(100)], lambda a, b: next(answers)
    )
    assert stored == len(dataset) == 50
    more = add_labels(dataset, [(linear_segment(rng), linear_segment(rng)) for _ in range(30)], OracleLabeller())
    assert more == 30 and len(dataset) == 80  # past the first capacity (64)
    # online bootstrap: one Poisson(1) weight per pair and member
    weights = dataset.weights[: len(dataset)]
    assert weights.shape == (80, 4) and np.all(weights == np.round(weights)) and 0.7 < weights.mean() < 1.3
    assert np.all(PreferenceDataset(T, STATE_DIM, ensemble_size=2, bootstrap=False).weights == 1.0)


# --- learning -------------------------------------------------------------------------------------
def test_learns_a_linear_reward_from_oracle_labels():
    rng = np.random.default_rng(0)
    model = PreferenceReward(small_config(), STATE_DIM)
    # two label batches, as they would arrive online
    for _ in range(2):
        add_labels(model.dataset, [(linear_segment(rng), linear_segment(rng)) for _ in range(100)], OracleLabeller())
        stats = model.update()
    assert stats["reward/labels"] == 200 and stats["reward/preference_accuracy"] > 0.85
    test_states = rng.normal(0, 1.2, (2000, STATE_DIM)).astype(np.float32)
    out = score(model, test_states)
    assert spearman(out.reward.numpy(), test_states @ TRUE_WEIGHTS) > 0.9
    assert torch.isfinite(out.reward).all() and torch.isfinite(out.uncertainty).all()
    if model.config.normalize:  # standardised over the labelled observations
        rewards = model.normalized_member_rewards(torch.from_numpy(model.dataset.observations()[0]), {})
        assert rewards.mean(dim=1).abs().max().item() < 1e-3
        assert rewards.std(dim=1, correction=0).tolist() == pytest.approx([1.0] * 3, abs=1e-3)


def test_ensemble_uncertainty_shrinks_where_there_are_labels():
    rng = np.random.default_rng(0)
    labelled_dims = np.array([1, 1, 0, 0])  # the labels only ever show states with s2 = s3 = 0
    model = PreferenceReward(small_config(ensemble_size=5), STATE_DIM)
    add_labels(
        model.dataset,
        [(linear_segment(rng, labelled_dims), linear_segment(rng, labelled_dims)) for _ in range(100)],
        OracleLabeller(),
    )
    inside = np.concatenate([linear_segment(rng, labelled_dims).states for _ in range(50)])
    outside = np.concatenate([linear_segment(rng).states for _ in range(50)])
    # untrained members, standardised over the same observations: they disagree everywhere
    model.fit_state_normalization(model.dataset.observations()[0])
    model.refresh_reward_normalization()
    before = score(model, inside).uncertainty.mean().item()
    model.update()
    after_inside = score(model, inside).uncertainty.mean().item()
    after_outside = score(model, outside).uncertainty.mean().item()
    assert after_inside < 0.5 * before
    assert after_inside < after_outside


def test_query_selection():
    rng = np.random.default_rng(0)
    model = PreferenceReward(small_config(), STATE_DIM)
    candidates = [(linear_segment(rng), linear_segment(rng)) for _ in range(40)]
    disagreement = model.pair_probabilities(candidates).std(axis=0)
    chosen = select_queries(model, candidates, 5)  # the config's default: disagreement
    assert sorted(chosen.tolist()) == sorted(np.argsort(-disagreement)[:5].tolist())
    assert disagreement[chosen].min() >= np.sort(disagreement)[-5]
    picked = select_queries(model, candidates, 10, method="random", rng=np.random.default_rng(0))
    assert len(set(picked.tolist())) == 10 and picked.max() < 40
    assert len(select_queries(model, candidates[:3], 10)) == 3
    single = PreferenceReward(small_config(ensemble_size=1, query_selection="random"), STATE_DIM)
    with pytest.raises(ValueError, match="ensemble"):
        select_queries(single, candidates, 5, method="disagreement")


def test_image_inputs_train_and_score():
    rng = np.random.default_rng(0)
    for use_state in (True, False):
        config = small_config(
            cameras=["front"],
            image_size=[16, 16],
            cnn_channels=[4, 8],
            image_feature_dim=8,
            hidden_dims=[16],
            use_state=use_state,
            batch_size=4,
        )
        model = PreferenceReward(config, STATE_DIM)
        for _ in range(6):
            first, second = linear_segment(rng), linear_segment(rng)
            for seg in (first, second):
                seg.images = {"front": rng.integers(0, 255, (T, 16, 16, 3), dtype=np.uint8)}
            model.dataset.add(first, second, PREFER_FIRST)
        stats = model.update(n_steps=3)
        assert math.isfinite(stats["loss/preference"])
        frames = torch.from_numpy(rng.integers(0, 255, (5, 16, 16, 3), dtype=np.uint8))
        out = model.score(RewardInput(torch.zeros(5, STATE_DIM), {"front": frames}))
        assert out.reward.shape == (5,) and torch.isfinite(out.reward).all()
        with pytest.raises(KeyError, match="front"):
            model.score(RewardInput(torch.zeros(5, STATE_DIM), {}))
        with pytest.raises(KeyError, match="front"):
            model.dataset.add(linear_segment(rng), linear_segment(rng), PREFER_FIRST)


# --- checkpoints ----------------------------------------------------------------------------------
def test_save_load_round_trip_is_identical(tmp_path):
    rng = np.random.default_rng(0)
    model = PreferenceReward(small_config(steps_per_label_batch=20), STATE_DIM)
    add_labels(model.dataset, [(linear_segment(rng), linear_segment(rng)) for _ in range(30)], OracleLabeller())
    model.update()
    path = save_preference_reward(
        model, tmp_path / "preference.safetensors", report={"note": "test"}, with_dataset=True
    )
    loaded, report = load_preference_reward(path, small_config(steps_per_label_batch=20))
    assert report == {"note": "test"}
    states = rng.normal(0, 2, (64, STATE_DIM)).astype(np.float32)
    a, b = score(model, states), score(loaded, states)
    assert torch.equal(a.reward, b.reward) and torch.equal(a.uncertainty, b.uncertainty)
    for name in ("state_mean", "state_std", "reward_mean", "reward_std", "state_normalization_fitted"):
        assert torch.equal(getattr(model, name), getattr(loaded, name))
    assert len(loaded.dataset) == 30 and np.array_equal(loaded.dataset.labels, model.dataset.labels[:30])
    # the normalisation statistics are readable metadata, not only tensors
    metadata = load_tree(path)["normalization"]
    assert metadata["reward_std"] == pytest.approx(model.reward_std.tolist())
    assert metadata["state_fitted"] is True
    # a loaded model goes on training
    assert math.isfinite(loaded.update(n_steps=2)["loss/preference"])
    # without the dataset, and into a config of another shape
    bare, _ = load_preference_reward(save_preference_reward(model, tmp_path / "bare.safetensors"))
    assert len(bare.dataset) == 0 and torch.equal(score(bare, states).reward, a.reward)
    with pytest.raises(ConfigError, match="hidden_dims"):
        load_preference_reward(path, small_config(hidden_dims=[8]))
    with pytest.raises(FileNotFoundError):
        load_preference_reward(tmp_path / "missing.safetensors")


# --- errors and finiteness ------------------------------------------------------------------------
def test_clear_errors():
    rng = np.random.default_rng(0)
    model = PreferenceReward(small_config(), STATE_DIM)
    with pytest.raises(ValueError, match="different lengths"):
        model.dataset.add(constant_segment(0, 0, length=T), constant_segment(0, 0, length=T - 1), PREFER_FIRST)
    with pytest.raises(ValueError, match="segment_length"):
        model.dataset.add(constant_segment(0, 0, length=T + 2), constant_segment(0, 0, length=T + 2), PREFER_FIRST)
    with pytest.raises(ValueError, match="no labelled pairs"):
        model.update()
    with pytest.raises(ValueError, match=r"state must be \[B, 4\]"):
        score(model, np.zeros((3, STATE_DIM + 1)))
    wide = Segment(np.zeros((T, STATE_DIM + 2), np.float32))
    with pytest.raises(ValueError, match=r"\[T, 4\]"):
        model.dataset.add(wide, wide, PREFER_FIRST)
    with pytest.raises(ValueError, match="probability"):
        model.dataset.add(linear_segment(rng), linear_segment(rng), 2.0)
    with pytest.raises(ValueError, match="NaN"):
        model.dataset.add(constant_segment(math.nan, 0), constant_segment(0, 0), PREFER_FIRST)
    with pytest.raises(ValueError, match="state_dim"):
        PreferenceReward(small_config(), 0)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"ensemble_size": 0}, "reward.ensemble_size"),
        ({"segment_length": 0}, "reward.segment_length"),
        ({"label_source": "crowd"}, "reward.label_source"),
        ({"query_selection": "uncertainty"}, "reward.query_selection"),
        ({"ensemble_size": 1}, "reward.query_selection"),  # disagreement needs >= 2 members
        ({"use_state": False}, "reward.use_state"),  # reads nothing
        ({"oracle_mistake_prob": 0.7}, "reward.oracle_mistake_prob"),
        ({"name": "classifier"}, "reward.name"),
        ({"lr": 0.0}, "reward.lr"),
    ],
)
def test_config_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        small_config(**overrides).validate()


def test_never_returns_nan():
    rng = np.random.default_rng(0)
    model = PreferenceReward(
        small_config(ensemble_size=1, query_selection="random", steps_per_label_batch=5), STATE_DIM
    )
    # all labels equal, identical segments: nothing to learn, still finite
    same = constant_segment(0.5, dense=0.0)
    for _ in range(4):
        model.dataset.add(same, same, EQUAL)
    model.update()
    out = score(model, rng.normal(0, 1, (16, STATE_DIM)))
    assert torch.isfinite(out.reward).all()
    assert torch.equal(out.uncertainty, torch.zeros(16))  # one member: no spread, not NaN
    # a NaN observation is refused, not passed on
    bad = np.zeros((2, STATE_DIM), np.float32)
    bad[1, 0] = math.nan
    with pytest.raises(FloatingPointError):
        score(model, bad)
