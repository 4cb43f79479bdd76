"""How faithful is a reward model? Metrics against ground truth (the twin's oracle, human labels).

- roc_auc, precision_recall: a success detector's scores / decisions against success labels.
- spearman: does a dense reward order observations as the oracle does?
- epic_distance: do two reward functions differ in more than what changes no policy ordering
  (a positive scale, potential shaping, a constant)? EPIC (Gleave et al. 2021, "Quantifying
  Differences in Reward Functions"), which compares rewards without training a policy on them.

Pure numpy (scipy for ranks); convert tensors before calling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.stats

# A reward function on a batch of transitions: (states [N, S], actions [N, A], next_states [N, S]) -> rewards [N].
# robot_rl's RewardModels score the observation after the action, r = R(s'): wrap one as
# `lambda s, a, s_next: model.score(RewardInput(torch.as_tensor(s_next, dtype=torch.float32), {})).reward.numpy()`.
RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _as_1d(values, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} has {int((~np.isfinite(x)).sum())} non-finite value(s)")
    return x


def _as_labels(labels, n: int, name: str = "labels") -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} entries for {n} scores")
    if y.dtype != np.bool_:
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{name} must be bool or 0/1, got values {np.unique(y)[:5]}")
        y = y.astype(bool)
    return y


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, a tie counting 1/2 (the Mann-Whitney U statistic, normalised):

        AUC = (sum_{i positive} rank_i - P (P + 1) / 2) / (P N)

    with rank_i in 1..P+N the rank of score i among all scores, tied scores sharing the average of
    their ranks, P and N the numbers of positives and negatives. Threshold-free, so it rates a
    classifier's ordering whatever its calibration. A score of -inf (e.g. a gated-out frame) ranks
    lowest. Raises ValueError when only one class is present, or on NaN / +inf scores.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if np.isnan(s).any() or np.isposinf(s).any():
        raise ValueError("scores has NaN or +inf values")
    y = _as_labels(labels, len(s))
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs both classes; labels has {n_pos} positive(s) and {n_neg} negative(s)")
    ranks = scipy.stats.rankdata(s, method="average")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class PrecisionRecall(NamedTuple):
    precision: float  # TP / (TP + FP); NaN when nothing is predicted positive
    recall: float  # TP / (TP + FN); NaN when there is no positive label


def precision_recall(pred, labels) -> PrecisionRecall:
    """Precision = TP / (TP + FP) (how often a detected success is one: false positives are what a
    policy learns to exploit), recall = TP / (TP + FN) (how many successes are detected). `pred`
    and `labels` are bool or 0/1. An undefined ratio (0/0) is NaN rather than a made-up 0 or 1."""
    p = _as_labels(pred, np.asarray(pred).size, "pred")
    y = _as_labels(labels, len(p))
    tp = int((p & y).sum())
    predicted, actual = int(p.sum()), int(y.sum())
    return PrecisionRecall(
        precision=tp / predicted if predicted else float("nan"),
        recall=tp / actual if actual else float("nan"),
    )


def spearman(x, y) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks (ties share average
    ranks), in [-1, 1]; 1 when y is any increasing function of x. Rewards that order observations
    alike give the same greedy choices, whatever their scales. Raises ValueError on constant input."""
    a, b = _as_1d(x, "x"), _as_1d(y, "y")
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"spearman needs two sequences of one length >= 2, got {len(a)} and {len(b)}")
    for name, v in (("x", a), ("y", b)):
        if np.all(v == v[0]):
            raise ValueError(f"spearman: {name} is constant, its rank correlation is undefined")
    return float(scipy.stats.spearmanr(a, b).statistic)


class Transitions(NamedTuple):
    states: np.ndarray  # [N, S]
    actions: np.ndarray  # [N, A]
    next_states: np.ndarray  # [N, S]


def _rewards(reward_fn: RewardFn, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray) -> np.ndarray:
    r = np.asarray(reward_fn(states, actions, next_states), dtype=np.float64)
    if r.shape != (len(states),):
        raise ValueError(
            f"reward function returned shape {r.shape} for {len(states)} transitions, not ({len(states)},)"
        )
    if not np.isfinite(r).all():
        raise ValueError("reward function returned non-finite rewards")
    return r


def _mean_reward_from(
    reward_fn: RewardFn, from_states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, max_batch: int
) -> np.ndarray:
    """mean_i R(x, actions[i], next_states[i]) for every x in from_states: [L]. Evaluated in
    chunks of at most max_batch transitions, so that L * M rows never sit in memory at once."""
    m = len(actions)
    rows_per_chunk = max(1, max_batch // m)
    means = []
    for start in range(0, len(from_states), rows_per_chunk):
        chunk = from_states[start : start + rows_per_chunk]
        r = _rewards(
            reward_fn,
            np.repeat(chunk, m, axis=0),
            np.tile(actions, (len(chunk), 1)),
            np.tile(next_states, (len(chunk), 1)),
        )
        means.append(r.reshape(len(chunk), m).mean(axis=1))
    return np.concatenate(means)


def _canonicalize(
    reward_fn: RewardFn,
    transitions: Transitions,
    coverage_states: np.ndarray,
    coverage_actions: np.ndarray,
    discount: float,
    seed: int,
    max_batch: int,
) -> tuple[np.ndarray, float]:
    """The canonical rewards, and the magnitude of the terms summed (for a round-off tolerance)."""
    s, a, s_next = (np.asarray(x, dtype=np.float64) for x in transitions)
    cov_s = np.asarray(coverage_states, dtype=np.float64)
    cov_a = np.asarray(coverage_actions, dtype=np.float64)
    n, m = len(s), len(cov_s)
    if not (len(a) == len(s_next) == n >= 2):
        raise ValueError(f"transitions need >= 2 rows and one length, got {len(s)}, {len(a)}, {len(s_next)}")
    if m < 1 or len(cov_a) != m:
        raise ValueError(f"coverage needs as many actions as states (>= 1), got {len(cov_a)} and {m}")
    # Independent S, A, S' from D_S x D_A x D_S: action i is paired with states from two random
    # permutations of the coverage states, which also breaks any link between a coverage action and
    # the state it was recorded in.
    rng = np.random.default_rng(seed)
    pair_next = cov_s[rng.permutation(m)]  # S' beside A_i
    pair_prev = cov_s[rng.permutation(m)]  # S beside A_i, in the constant term
    # E_{A,S'}[R(x, A, S')] for x = s and x = s' of every transition, in one pass
    from_x = _mean_reward_from(reward_fn, np.concatenate([s, s_next]), cov_a, pair_next, max_batch)
    from_s, from_next = from_x[:n], from_x[n:]
    mean_all = _rewards(reward_fn, pair_prev, cov_a, pair_next).mean()  # E[R(S, A, S')]
    r = _rewards(reward_fn, s, a, s_next)
    canonical = r + discount * from_next - from_s - discount * mean_all
    scale = max(np.abs(r).max(), np.abs(from_x).max(), abs(mean_all))
    return canonical, float(scale)


def epic_canonicalize(
    reward_fn: RewardFn,
    transitions: Transitions,
    coverage_states: np.ndarray,
    coverage_actions: np.ndarray,
    *,
    discount: float,
    seed: int = 0,
    max_batch: int = 65536,
) -> np.ndarray:
    """EPIC's canonically shaped reward on each transition (s, a, s'):

        C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S') - R(s, A, S') - gamma R(S, A, S')]

    S, S' ~ D_S and A ~ D_A independent (the coverage distributions). C(R) is the same for R and
    for R + gamma Phi(s') - Phi(s) + c, for any potential Phi and constant c.

    Sampling: D_S is the M coverage_states [M, S] and D_A the M coverage_actions [M, A] (e.g. replay
    states and actions drawn uniformly from the action box). The expectations are Monte-Carlo means
    over M (A, S') pairs (not all M^2), and every S- or S'-mean runs over exactly the M coverage
    states (permuted, not resampled), so a potential's terms cancel exactly for any M, not only in
    expectation. Cost: 2 N M + M + N reward evaluations for N transitions.
    """
    canonical, _ = _canonicalize(reward_fn, transitions, coverage_states, coverage_actions, discount, seed, max_batch)
    return canonical


def pearson_distance(x, y) -> float:
    """D_rho = sqrt((1 - rho) / 2), rho the Pearson correlation of x and y: 0 when y = a x + b with
    a > 0, 1 when a < 0, 1/sqrt(2) for uncorrelated x and y; a metric on standardised vectors."""
    a, b = _as_1d(x, "x"), _as_1d(y, "y")
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"pearson_distance needs two sequences of one length >= 2, got {len(a)} and {len(b)}")
    a, b = a - a.mean(), b - b.mean()
    rho = float(a @ b / np.sqrt((a @ a) * (b @ b)))
    return float(np.sqrt((1.0 - np.clip(rho, -1.0, 1.0)) / 2.0))


def epic_distance(
    reward_a: RewardFn,
    reward_b: RewardFn,
    transitions: Transitions,
    coverage_states: np.ndarray,
    coverage_actions: np.ndarray,
    *,
    discount: float,
    seed: int = 0,
    max_batch: int = 65536,
) -> float:
    """EPIC pseudometric (Gleave et al. 2021): the Pearson distance between the two canonicalised
    rewards over the transitions (the evaluation distribution D, weighted uniformly),

        D_EPIC(R_A, R_B) = sqrt((1 - rho(C(R_A), C(R_B))) / 2)  in [0, 1],

    0 exactly when R_B = a R_A + potential shaping + constant with a > 0 (on the samples), 1 for
    R_B = -R_A. `discount` must be the discount the policy is trained with (shaping is only
    invariant at that gamma). Both rewards are canonicalised with the same seed, thus the same
    coverage samples. See epic_canonicalize for the sampling. Raises ValueError when a reward is
    constant after canonicalisation (a constant or a pure shaping term): its distance is undefined.
    """
    canonical = []
    for name, reward_fn in (("reward_a", reward_a), ("reward_b", reward_b)):
        c, scale = _canonicalize(reward_fn, transitions, coverage_states, coverage_actions, discount, seed, max_batch)
        # Round-off in the four summed terms leaves ~1e-16 * scale of noise on a constant: not a signal.
        if c.std() <= 1e-9 * max(scale, 1e-300):
            raise ValueError(
                f"{name} is constant after canonicalisation (a constant or pure potential shaping on these "
                "samples): EPIC distance is undefined"
            )
        canonical.append(c)
    return pearson_distance(*canonical)
