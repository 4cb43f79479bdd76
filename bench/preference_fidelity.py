"""Preference reward fidelity on the twin's pick_cube (state-based) as ORACLE labels arrive.

    OMP_NUM_THREADS=1 .venv/bin/python bench/preference_fidelity.py          # ~3-4 min on 1 busy core
    .venv/bin/python bench/preference_fidelity.py --labels 50 100 200 400 --query-selection random

What is measured
  Episodes on SimTwinEnv from the Hydra config `task=pick_cube sim=state` (no cameras, the cube's
  pose in the state) with task.terminate_on_success=false, so every episode lasts the full 100 steps:
  a learned reward is only defined up to a constant, and an episode return compares across episodes
  only when the lengths are equal. Episode kinds, for variety: the scripted expert; the expert with
  Gaussian action noise (std drawn per episode in [0.2, 1.0]); the expert for a random number of
  steps, then a random walk; a smoothed random walk with random gripper commands.

  Labels: pairs of segments (--segment-length observations, windows at random places of the
  training episodes) labelled by robot_rl.rewards.preference.model.OracleLabeller: the segment with the
  higher sum of info["oracle_dense_reward"] is preferred (a SIMULATED teacher: the twin's ground
  truth, no label noise). Labels arrive in rounds (--labels, cumulative counts); each round's
  queries are picked among 10x as many random candidate pairs, by --query-selection (the first
  round uniformly: an untrained ensemble's disagreement means nothing), then the model trains
  --steps gradient steps (PreferenceReward.update) on all labels so far.

  After each round, on --eval-episodes held-out episodes (other seeds):
  - EPIC distance (robot_rl.rewards.fidelity.epic_distance; Gleave et al. 2021) between the learned
    reward and the oracle dense reward, both as functions of (s, a, s') reading s'; coverage
    distribution: states and actions of the training episodes' transitions. 0 = the same reward up
    to scale, shaping and a constant; 0.71 = uncorrelated. For rewards of s' alone the canonical
    reward is r(s') minus a constant, so EPIC equals the Pearson distance of r(s') over the held-out
    transitions (recorded too, as a check).
  - Spearman of per-episode return (learned vs oracle dense), and of the per-transition reward.
  - Held-out preference accuracy: on random held-out segment pairs with a strict oracle preference,
    how often the ensemble's mean P[first > second] falls on the oracle's side.
  Round 0 is the untrained model. The oracle dense reward depends on contacts (grasped), which the
  state does not show, so it is tabulated at the recorded observations (exact, looked up by the
  state vector) rather than recomputed from a state.

Writes bench/results/preference_fidelity.json and .png (EPIC distance and Spearman vs labels).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # no rendering here, but keep mujoco's GL choice consistent

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from robot_rl import spec  # noqa: E402
from robot_rl.agents.sac.config import SACConfig  # noqa: E402
from robot_rl.config import load_config  # noqa: E402
from robot_rl.rewards.base import RewardInput  # noqa: E402
from robot_rl.rewards.fidelity import Transitions, epic_distance, pearson_distance, spearman  # noqa: E402
from robot_rl.rewards.preference.config import PreferenceRewardConfig  # noqa: E402
from robot_rl.rewards.preference.model import (  # noqa: E402
    EQUAL,
    OracleLabeller,
    PreferenceReward,
    Segment,
    add_labels,
    select_queries,
)
from robot_rl.rollout import make_env  # noqa: E402
from robot_rl.sim.experts import make_expert  # noqa: E402

OVERRIDES = ["task=pick_cube", "sim=state", "task.terminate_on_success=false"]
EPISODE_KINDS = {"expert": 0.25, "noisy": 0.35, "partial": 0.2, "random": 0.2}
EVAL_SEED = 100_000
CANDIDATES_PER_QUERY = 10
DISCOUNT = SACConfig().discount  # EPIC's shaping invariance holds at the discount the policy trains with
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Episode:
    kind: str
    states: np.ndarray  # float32 [T + 1, S]: the reset's observation, then each step's
    actions: np.ndarray  # float32 [T, 7]
    dense: np.ndarray  # float64 [T + 1]: info["oracle_dense_reward"] of each observation
    success: np.ndarray  # bool [T + 1]

    def segment(self) -> Segment:
        """The observations after each action (r_t = R(o_{t+1})), with their ground truth."""
        return Segment(self.states[1:], oracle_dense_reward=self.dense[1:], success=self.success[1:])


def collect_episodes(env, n: int, seed: int, progress: bool = True) -> list[Episode]:
    """n episodes on seeds seed, seed + 1, ...; kinds drawn by EPISODE_KINDS."""
    expert = make_expert(env)
    rng = np.random.default_rng(seed)
    kinds = rng.choice(list(EPISODE_KINDS), size=n, p=list(EPISODE_KINDS.values()))
    episodes = []
    for i, kind in enumerate(tqdm(kinds, desc=f"episodes (seed {seed})", unit="ep", disable=not progress)):
        obs, info = env.reset(seed=seed + i)
        expert.reset()
        noise = rng.uniform(0.2, 1.0) if kind == "noisy" else 0.0
        expert_steps = {"expert": np.inf, "noisy": np.inf, "partial": rng.integers(5, 60), "random": 0}[kind]
        walk = np.zeros(spec.ACTION_DIM, dtype=np.float32)
        states, actions = [spec.flatten_state(obs["state"])], []
        dense, success = [info["oracle_dense_reward"]], [info["success"]]
        truncated, t = False, 0
        while not truncated:
            if t < expert_steps:
                action = expert.act(obs, info) + rng.normal(0.0, noise, spec.ACTION_DIM)
            else:  # a smoothed random walk: random actions that go somewhere instead of jittering in place
                walk = 0.7 * walk + rng.normal(0.0, 0.5, spec.ACTION_DIM)
                walk[6] = rng.choice([-1.0, 0.0, 1.0], p=[0.1, 0.8, 0.1])  # mostly "stay": few gripper toggles
                action = walk
            action = np.clip(action, -1.0, 1.0).astype(np.float32)
            obs, _, _, truncated, info = env.step(action)
            states.append(spec.flatten_state(obs["state"]))
            actions.append(action)
            dense.append(info["oracle_dense_reward"])
            success.append(info["success"])
            t += 1
        episodes.append(
            Episode(str(kind), np.stack(states), np.stack(actions), np.array(dense), np.array(success, dtype=bool))
        )
    return episodes


def random_segment_pairs(
    episodes: list[Episode], n: int, length: int, rng: np.random.Generator
) -> list[tuple[Segment, Segment]]:
    """n pairs of windows of `length` observations, each at a random place of a random episode."""

    def window() -> Segment:
        whole = episodes[rng.integers(len(episodes))].segment()
        return whole.window(int(rng.integers(len(whole) - length + 1)), length)

    return [(window(), window()) for _ in range(n)]


class StateTable:
    """Values known at recorded states, looked up by the exact state vector: a reward function that
    is exact where the twin was observed and refuses to guess anywhere else."""

    def __init__(self, states: np.ndarray, values: np.ndarray):
        states = np.ascontiguousarray(states, dtype=np.float32)
        # a 64-bit hash of the state's bits (sums wrap modulo 2**64), verified against the row itself
        self.multipliers = np.random.default_rng(0).integers(1, 2**63, states.shape[1], dtype=np.uint64) | np.uint64(1)
        keys = self._hash(states)
        order = np.argsort(keys, kind="stable")
        self.keys, self.states, self.values = keys[order], states[order], np.asarray(values, np.float64)[order]

    def _hash(self, states: np.ndarray) -> np.ndarray:
        return (states.view(np.uint32).astype(np.uint64) * self.multipliers).sum(axis=1)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        states = np.ascontiguousarray(states, dtype=np.float32)  # float64 from EPIC: exact round trip
        keys = self._hash(states)
        index = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = (self.keys[index] == keys) & (self.states[index] == states).all(axis=1)
        if not found.all():
            raise KeyError(f"{int((~found).sum())} of {len(states)} states were never recorded")
        return self.values[index]


def model_rewards(model: PreferenceReward, states: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """The model's reward (ensemble mean, normalised) of observations [N, S], float64 [N]."""
    out = [
        model.score(RewardInput(torch.from_numpy(states[i : i + chunk]), {})).reward.double().numpy()
        for i in range(0, len(states), chunk)
    ]
    return np.concatenate(out)


def evaluate(
    model: PreferenceReward,
    eval_episodes: list[Episode],
    table_states: np.ndarray,
    oracle: StateTable,
    coverage: Transitions,
    heldout_pairs: list[tuple[Segment, Segment]],
    heldout_labels: np.ndarray,
) -> dict:
    learned = StateTable(table_states, model_rewards(model, table_states))
    held = Transitions(
        np.concatenate([e.states[:-1] for e in eval_episodes]),
        np.concatenate([e.actions for e in eval_episodes]),
        np.concatenate([e.states[1:] for e in eval_episodes]),
    )
    epic = epic_distance(
        lambda s, a, s_next: learned(s_next),
        lambda s, a, s_next: oracle(s_next),
        held,
        coverage.states,
        coverage.actions,
        discount=DISCOUNT,
    )
    learned_reward, oracle_reward = learned(held.next_states), oracle(held.next_states)
    steps = len(eval_episodes[0].actions)
    probability = model.pair_probabilities(heldout_pairs).mean(axis=0)
    return {
        "epic_distance": epic,
        "pearson_distance_of_rewards": pearson_distance(learned_reward, oracle_reward),
        "spearman_episode_return": spearman(
            learned_reward.reshape(-1, steps).sum(axis=1), oracle_reward.reshape(-1, steps).sum(axis=1)
        ),
        "spearman_transition_reward": spearman(learned_reward, oracle_reward),
        "heldout_preference_accuracy": float(np.mean((probability > 0.5) == (heldout_labels > EQUAL))),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 100, 200, 400], help="cumulative label counts")
    parser.add_argument("--train-episodes", type=int, default=60)
    parser.add_argument("--eval-episodes", type=int, default=40)
    parser.add_argument("--segment-length", type=int, default=25)
    parser.add_argument("--steps", type=int, default=200, help="gradient steps per round")
    parser.add_argument("--ensemble-size", type=int, default=3)
    parser.add_argument("--query-selection", default="disagreement", choices=["random", "disagreement"])
    parser.add_argument("--coverage", type=int, default=1000, help="coverage samples (states, actions) for EPIC")
    parser.add_argument("--heldout-pairs", type=int, default=1000)
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    env = make_env(load_config(OVERRIDES))
    train_episodes = collect_episodes(env, args.train_episodes, seed=0)
    eval_episodes = collect_episodes(env, args.eval_episodes, seed=EVAL_SEED)
    env.close()
    collect_seconds = time.perf_counter() - t_start
    rng = np.random.default_rng(0)

    # the oracle dense reward at every recorded observation; coverage from the training transitions
    all_episodes = train_episodes + eval_episodes
    table_states = np.concatenate([e.states for e in all_episodes])
    oracle = StateTable(table_states, np.concatenate([e.dense for e in all_episodes]))
    sample = rng.choice(sum(len(e.actions) for e in train_episodes), args.coverage, replace=False)
    coverage = Transitions(
        np.concatenate([e.states[:-1] for e in train_episodes])[sample],
        np.concatenate([e.actions for e in train_episodes])[sample],
        np.concatenate([e.states[1:] for e in train_episodes])[sample],
    )
    labeller = OracleLabeller("dense")
    heldout_pairs, heldout_labels = [], []
    for first, second in random_segment_pairs(eval_episodes, 3 * args.heldout_pairs, args.segment_length, rng):
        label = labeller(first, second)
        if label != EQUAL and len(heldout_pairs) < args.heldout_pairs:
            heldout_pairs.append((first, second))
            heldout_labels.append(label)
    heldout_labels = np.array(heldout_labels)

    config = PreferenceRewardConfig(
        ensemble_size=args.ensemble_size,
        segment_length=args.segment_length,
        steps_per_label_batch=args.steps,
        query_selection=args.query_selection,
        label_source="oracle",
    )
    model = PreferenceReward(config, table_states.shape[1])
    eval_args = (eval_episodes, table_states, oracle, coverage, heldout_pairs, heldout_labels)
    rounds = [{"labels": 0, **evaluate(model, *eval_args)}]
    print(f"labels    0: EPIC {rounds[0]['epic_distance']:.3f} (untrained)")
    for target in args.labels:
        t = time.perf_counter()
        wanted = target - len(model.dataset)
        candidates = random_segment_pairs(train_episodes, CANDIDATES_PER_QUERY * wanted, args.segment_length, rng)
        method = "random" if len(model.dataset) == 0 else args.query_selection
        chosen = select_queries(model, candidates, wanted, method=method, rng=rng)
        add_labels(model.dataset, [candidates[i] for i in chosen], labeller)
        train_stats = model.update()
        metrics = evaluate(model, *eval_args)
        labels = model.dataset.labels[: len(model.dataset)]
        rounds.append(
            {
                "labels": len(model.dataset),
                **metrics,
                "query_selection": method,
                "equal_labels": int((labels == EQUAL).sum()),
                "train": train_stats,
                "seconds": round(time.perf_counter() - t, 1),
            }
        )
        print(
            f"labels {len(model.dataset):4d}: EPIC {metrics['epic_distance']:.3f}, Spearman episode return "
            f"{metrics['spearman_episode_return']:.3f}, held-out preference accuracy "
            f"{metrics['heldout_preference_accuracy']:.3f} ({rounds[-1]['seconds']} s)"
        )

    # context: how far the oracle's own sparse success reward is from its dense one
    success = StateTable(table_states, np.concatenate([e.success for e in all_episodes]).astype(np.float64))
    held_next = np.concatenate([e.states[1:] for e in eval_episodes])
    held = Transitions(np.concatenate([e.states[:-1] for e in eval_episodes]), np.zeros((len(held_next), 7)), held_next)
    sparse_epic = epic_distance(
        lambda s, a, s_next: success(s_next),
        lambda s, a, s_next: oracle(s_next),
        held,
        coverage.states,
        coverage.actions,
        discount=DISCOUNT,
    )

    def kinds(episodes: list[Episode]) -> dict:
        out = {}
        for kind in EPISODE_KINDS:
            succeeded = [bool(e.success.any()) for e in episodes if e.kind == kind]
            out[kind] = {"episodes": len(succeeded), "success_rate": float(np.mean(succeeded)) if succeeded else None}
        return out

    results = {
        "benchmark": "preference_fidelity",
        "task": "pick_cube",
        "config_overrides": OVERRIDES,
        "labeller": "OracleLabeller: SIMULATED teacher on the twin's dense oracle reward (no label noise)",
        "state_dim": int(table_states.shape[1]),
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "reward_config": asdict(config),
        "episodes": {
            "train": {
                "count": len(train_episodes),
                "seeds": [0, len(train_episodes) - 1],
                "kinds": kinds(train_episodes),
            },
            "eval": {
                "count": len(eval_episodes),
                "seeds": [EVAL_SEED, EVAL_SEED + len(eval_episodes) - 1],
                "kinds": kinds(eval_episodes),
            },
            "steps_per_episode": len(train_episodes[0].actions),
        },
        "epic": {"discount": DISCOUNT, "coverage_samples": args.coverage, "heldout_transitions": len(held_next)},
        "heldout_pairs": len(heldout_pairs),
        "rounds": rounds,
        "reference": {"epic_distance_sparse_success_vs_dense_oracle": sparse_epic},
        "seconds": {"collect": round(collect_seconds, 1), "total": round(time.perf_counter() - t_start, 1)},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preference_fidelity.json").write_text(json.dumps(results, indent=2))
    plot(results, RESULTS / "preference_fidelity.png")
    print(f"reference: EPIC(sparse success, dense oracle) = {sparse_epic:.3f}; total {results['seconds']['total']} s")
    return results


def plot(results: dict, path: Path) -> None:
    rounds = results["rounds"]
    labels = [r["labels"] for r in rounds]
    fig, (ax_epic, ax_rank) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_epic.plot(labels, [r["epic_distance"] for r in rounds], "o-", label="learned preference reward")
    ax_epic.axhline(
        results["reference"]["epic_distance_sparse_success_vs_dense_oracle"],
        color="grey",
        ls=":",
        label="sparse success reward (oracle)",
    )
    ax_epic.set(xlabel="oracle labels (segment pairs)", ylabel="EPIC distance to the dense oracle", ylim=(0, None))
    ax_epic.set_title("EPIC distance (lower is better)")
    ax_epic.legend()
    ax_rank.plot(labels, [r["spearman_episode_return"] for r in rounds], "o-", label="Spearman, episode return")
    ax_rank.plot(labels, [r["spearman_transition_reward"] for r in rounds], "s--", label="Spearman, per-step reward")
    ax_rank.plot(labels, [r["heldout_preference_accuracy"] for r in rounds], "^:", label="held-out preference accuracy")
    ax_rank.set(xlabel="oracle labels (segment pairs)", ylim=(None, 1.0), title="agreement with the oracle (held out)")
    ax_rank.legend(loc="lower right")
    c = results["reward_config"]
    fig.suptitle(
        f"preference reward, pick_cube sim=state, K={c['ensemble_size']}, segments of {c['segment_length']}, "
        f"{c['query_selection']} queries, simulated (oracle) labels"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
