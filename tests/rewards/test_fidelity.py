"""Fidelity metrics against hand computations, and EPIC's defining invariance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from robot_rl.rewards.fidelity import (
    Transitions,
    epic_canonicalize,
    epic_distance,
    pearson_distance,
    precision_recall,
    roc_auc,
    spearman,
)

GAMMA = 0.97
STATE_DIM, ACTION_DIM = 5, 3


def test_roc_auc_matches_a_hand_count_with_ties():
    scores = [0.1, 0.4, 0.4, 0.8, 0.4, 0.9]
    labels = [0, 0, 1, 1, 0, 1]
    # Pairs (positive, negative): 0.4 vs {0.1, 0.4, 0.4} -> 1 + 1/2 + 1/2; 0.8 and 0.9 beat all 3 -> 6
    assert roc_auc(scores, labels) == pytest.approx((2.0 + 6.0) / 9.0)


def test_roc_auc_equals_the_pairwise_definition_on_random_tied_data():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    labels = rng.random(40) < 0.4
    pos, neg = scores[labels], scores[~labels]
    by_pairs = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
    assert roc_auc(scores, labels) == pytest.approx(by_pairs)


def test_roc_auc_extremes_and_single_class_error():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="0/1"):
        roc_auc([0.1, 0.2], [0, 2])


def test_precision_recall_by_hand():
    pred = [1, 1, 0, 1, 0, 0]
    labels = [1, 0, 1, 1, 0, 1]
    precision, recall = precision_recall(pred, labels)  # TP 2, FP 1, FN 2
    assert precision == pytest.approx(2 / 3) and recall == pytest.approx(2 / 4)
    nothing_predicted = precision_recall([0, 0], [1, 0])
    assert np.isnan(nothing_predicted.precision) and nothing_predicted.recall == 0.0


def test_spearman_sanity():
    x = np.arange(10.0)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)  # any increasing function
    assert spearman(x, -(x**3)) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(1 - 6 * 2 / (4 * 15))  # 1 - 6 sum d^2 / (n(n^2-1))
    with pytest.raises(ValueError, match="constant"):
        spearman([1, 2, 3], [5, 5, 5])


def reward(s, a, s_next):
    """A nonlinear reward of the whole transition."""
    return np.tanh(s_next @ np.arange(1.0, STATE_DIM + 1)) - 0.3 * (a**2).sum(axis=1) + 0.5 * s[:, 0] * s_next[:, 1]


def potential(s):
    return np.sin(3 * s[:, 0]) + s[:, 1] ** 2 - 2 * s[:, 2]


def shaped(s, a, s_next):
    """A reward EPIC must not tell apart from `reward`: a > 0 scale, potential shaping, constant."""
    return 2.5 * reward(s, a, s_next) + GAMMA * potential(s_next) - potential(s) + 4.0


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    transitions = Transitions(
        states=rng.normal(size=(200, STATE_DIM)),
        actions=rng.uniform(-1, 1, (200, ACTION_DIM)),
        next_states=rng.normal(size=(200, STATE_DIM)),
    )
    coverage = {"coverage_states": rng.normal(size=(64, STATE_DIM)), "coverage_actions": rng.uniform(-1, 1, (64, 3))}
    return transitions, coverage


def test_epic_is_invariant_to_scale_shaping_and_constant(samples):
    transitions, coverage = samples
    assert epic_distance(reward, shaped, transitions, **coverage, discount=GAMMA) == pytest.approx(0.0, abs=1e-6)
    # ...which the canonicalisation is what provides: the raw rewards are far apart
    raw = [f(*transitions) for f in (reward, shaped)]
    assert pearson_distance(*raw) > 0.2


def test_epic_of_a_negated_reward_is_one_and_distances_lie_in_0_1(samples):
    transitions, coverage = samples
    assert epic_distance(reward, lambda s, a, sn: -reward(s, a, sn), transitions, **coverage, discount=GAMMA) == (
        pytest.approx(1.0, abs=1e-9)
    )

    def other(s, a, s_next):
        return np.cos(s_next[:, 3]) + a[:, 0]

    d = epic_distance(reward, other, transitions, **coverage, discount=GAMMA)
    assert 0.0 < d < 1.0
    assert d == pytest.approx(epic_distance(other, reward, transitions, **coverage, discount=GAMMA))


def test_epic_canonical_reward_of_a_next_state_reward_is_it_minus_its_mean(samples):
    """For r = R(s') (robot_rl's reward models), C(R) = R(s') - mean over the coverage states."""
    transitions, coverage = samples

    def next_state_reward(s, a, s_next):
        return s_next[:, 0] ** 2

    canonical = epic_canonicalize(next_state_reward, transitions, **coverage, discount=GAMMA)
    expected = transitions.next_states[:, 0] ** 2 - (coverage["coverage_states"][:, 0] ** 2).mean()
    np.testing.assert_allclose(canonical, expected, atol=1e-12)


def test_epic_refuses_a_reward_that_is_pure_shaping(samples):
    transitions, coverage = samples

    def pure_shaping(s, a, s_next):
        return GAMMA * potential(s_next) - potential(s) + 1.0

    with pytest.raises(ValueError, match="reward_b is constant"):
        epic_distance(reward, pure_shaping, transitions, **coverage, discount=GAMMA)


def test_epic_chunking_does_not_change_the_result(samples):
    transitions, coverage = samples
    whole = epic_canonicalize(reward, transitions, **coverage, discount=GAMMA)
    chunked = epic_canonicalize(reward, transitions, **coverage, discount=GAMMA, max_batch=100)
    np.testing.assert_allclose(whole, chunked, atol=1e-12)


def test_epic_rejects_a_reward_function_of_the_wrong_shape(samples):
    transitions, coverage = samples
    with pytest.raises(ValueError, match="shape"):
        epic_distance(reward, lambda s, a, sn: np.zeros((len(s), 1)), transitions, **coverage, discount=GAMMA)
