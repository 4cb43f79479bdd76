"""The simulated human: when it takes over (deviation, stuck, stalled), for how long, on what budget, with
what noise; its config errors; and on the twin, that an expert policy is left alone, a still one is
taken over, and the human's corrections make a random policy reach its goal."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from robot_rl.hil.simulated_human import EpisodeStats, HumanDecision, SimulatedHuman, SimulatedHumanConfig
from robot_rl.sim.config import ConfigError, SimConfig
from robot_rl.sim.env import SimTwinEnv
from robot_rl.sim.experts import make_expert

EXPERT_ACTION = np.array([0.5, -0.5, 0.2, 0.0, 0.0, 0.0, -1.0], np.float32)
DEVIATING = -EXPERT_ACTION  # heading 180 degrees off the expert's, gripper closing where it opens


class FakeExpert:
    """Always the same action; counts its calls and resets."""

    def __init__(self, action: np.ndarray = EXPERT_ACTION):
        self.action = np.array(action, np.float32)  # a copy: a test may change it mid-run
        self.calls = self.resets = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        self.calls += 1
        return self.action.copy()

    def reset(self) -> None:
        self.resets += 1


def fake_obs(step: int, moving: bool) -> dict:
    x = 0.4 + (0.01 * step if moving else 0.0)  # 1 cm per step: never stuck
    return {"state": {"tcp_pose": np.array([x, 0.0, 0.2, 0.0, 1.0, 0.0, 0.0], np.float32)}}


def make_human(expert: FakeExpert | None = None, **fields) -> SimulatedHuman:
    fields = {"noise_std": 0.0, "budget_steps_per_episode": 1000, **fields}
    return SimulatedHuman(SimulatedHumanConfig(**fields), expert or FakeExpert())


def run(
    human: SimulatedHuman, policy: np.ndarray, steps: int, moving: bool = True, success: bool = False
) -> list[HumanDecision]:
    return [human.step(fake_obs(i, moving), {"success": success}, policy) for i in range(steps)]


def intervening(decisions: list[HumanDecision]) -> list[bool]:
    return [d.intervening for d in decisions]


# deviation, hand-back, patience --------------------------------------------------------------------
def test_a_policy_equal_to_the_expert_is_never_taken_over():
    expert = FakeExpert()
    decisions = run(make_human(expert), EXPERT_ACTION, 100)
    assert not any(intervening(decisions))
    assert expert.calls == 100


@pytest.mark.parametrize(("patience", "delay", "takeover"), [(2, 1, 8), (1, 0, 1), (3, 2, 5)])
def test_a_deviating_policy_is_taken_over_after_patience_and_delay_for_takeover_steps(patience, delay, takeover):
    expert = FakeExpert()
    human = make_human(expert, patience_steps=patience, reaction_delay_steps=delay, takeover_steps=takeover)
    cycle = patience + delay + takeover  # policy steps, then the human's, then handed back: again
    decisions = run(human, DEVIATING, 3 * cycle)

    assert intervening(decisions) == [i % cycle >= patience + delay for i in range(3 * cycle)]
    assert [d.started for d in decisions] == [i % cycle == patience + delay for i in range(3 * cycle)]
    for d in decisions:
        assert d.reason == ("deviation" if d.intervening else "")
        if d.intervening:
            np.testing.assert_array_equal(d.action, EXPERT_ACTION)  # noise_std 0
        else:
            assert d.action is None
    assert decisions[-1].interventions == 3
    assert decisions[-1].episode_intervened_steps == decisions[-1].total_intervened_steps == 3 * takeover
    assert expert.calls == 3 * cycle  # asked every step, intervening or not


@pytest.mark.parametrize(
    ("policy", "wrong"),
    [
        ([1.0, -1.0, 0.4, 0.9, -0.9, 0.5, -1.0], False),  # the expert's heading at full speed, rotating: its own style
        ([0.05, 0.0, 0.0, 0, 0, 0, -1.0], False),  # hardly moving: no heading (the stuck trigger's case)
        ([0.5, 0.5, 0.2, 0, 0, 0, -1.0], False),  # 86 degrees off
        ([0.0, 0.5, 0.0, 0, 0, 0, -1.0], True),  # 133 degrees off
        ([0.5, -0.5, 0.2, 0, 0, 0, 0.0], False),  # gripper "stay" while the expert opens
        ([0.5, -0.5, 0.2, 0, 0, 0, 0.9], True),  # gripper closing where the expert opens
    ],
)
def test_a_policy_heading_the_wrong_way_or_against_the_gripper_is_taken_over(policy, wrong):
    decisions = run(make_human(patience_steps=1, reaction_delay_steps=0), np.array(policy, np.float32), 3)
    assert decisions[1].intervening == wrong


def steps_with_progress(human: SimulatedHuman, progress: list[float]) -> list[HumanDecision]:
    """The deviating policy's steps, the twin's dense progress as given."""
    return [
        human.step(fake_obs(i, True), {"success": False, "oracle_dense_reward": p}, DEVIATING)
        for i, p in enumerate(progress)
    ]


def test_a_deviating_policy_that_makes_progress_is_left_alone():
    human = make_human(patience_steps=2, reaction_delay_steps=0)
    assert not any(intervening(steps_with_progress(human, [0.02 * i for i in range(20)])))
    # the same policy once the progress stalls: taken over after patience_steps
    assert intervening(steps_with_progress(human, [0.4] * 4)) == [False, False, True, True]
    # below min_progress a step's progress does not excuse it
    slow = make_human(patience_steps=2, reaction_delay_steps=0, min_progress=0.05)
    assert intervening(steps_with_progress(slow, [0.0, 0.02, 0.04])) == [False, False, True]


def test_deviating_steps_must_be_consecutive():
    human = make_human(patience_steps=2)
    decisions = [
        human.step(fake_obs(i, True), {"success": False}, (DEVIATING, EXPERT_ACTION)[i % 2]) for i in range(50)
    ]
    assert not any(intervening(decisions))


def test_a_wrong_policy_action_shape_is_refused():
    with pytest.raises(ValueError, match=r"policy_action must have shape \(7,\)"):
        make_human().step(fake_obs(0, True), {"success": False}, np.zeros(6))


# stuck ----------------------------------------------------------------------------------------------
def test_a_still_tcp_is_taken_over_after_stuck_steps_and_delay():
    decisions = run(
        make_human(stuck_steps=4, reaction_delay_steps=1, takeover_steps=3), EXPERT_ACTION, 12, moving=False
    )
    # decided at step 4 (5 observations, 4 steps apart, all in one place), one step of delay
    assert intervening(decisions) == [False] * 6 + [True] * 3 + [False] * 3
    assert decisions[6].started and decisions[6].reason == "stuck"


@pytest.mark.parametrize(("stuck_steps", "stall_steps", "success"), [(0, 0, False), (4, 6, True)])
def test_no_stuck_or_stalled_takeover_when_disabled_or_the_task_is_done(stuck_steps, stall_steps, success):
    human = make_human(stuck_steps=stuck_steps, stall_steps=stall_steps)
    assert not any(intervening(run(human, EXPERT_ACTION, 30, moving=False, success=success)))


FINE = np.array([0.05, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0], np.float32)  # the expert lining a peg up: below min_motion


def test_a_still_tcp_is_not_stuck_while_the_expert_holds_still_too():
    human = make_human(FakeExpert(FINE), stuck_steps=4, stall_steps=0)
    assert not any(intervening(run(human, EXPERT_ACTION, 30, moving=False)))
    # one slow expert step in the window is enough: stuck needs the expert moving on all of them
    human = make_human(FakeExpert(), stuck_steps=4, stall_steps=0)
    human.expert.action[:3] = 0.05
    assert not human.step(fake_obs(0, False), {"success": False}, EXPERT_ACTION).intervening
    human.expert.action[:3] = EXPERT_ACTION[:3]
    decisions = run(human, EXPERT_ACTION, 8, moving=False)
    assert intervening(decisions).index(True) == 6  # the window slid past the slow step at 4


# stalled --------------------------------------------------------------------------------------------
def run_with_progress(human: SimulatedHuman, progress: list[float], moving: bool = False) -> list[HumanDecision]:
    return [
        human.step(fake_obs(i, moving), {"success": False, "oracle_dense_reward": p}, EXPERT_ACTION)
        for i, p in enumerate(progress)
    ]


def test_a_still_tcp_without_progress_is_taken_over_as_stalled_even_where_the_expert_holds_still():
    human = make_human(FakeExpert(FINE), stuck_steps=4, stall_steps=6, reaction_delay_steps=1, takeover_steps=3)
    decisions = run_with_progress(human, [0.5] * 12)
    # decided at step 6 (7 observations, 6 steps apart, no progress), one step of delay
    assert intervening(decisions) == [False] * 8 + [True] * 3 + [False]
    assert decisions[8].started and decisions[8].reason == "stalled"


def test_progress_or_motion_is_not_stalled():
    human = make_human(FakeExpert(FINE), stall_steps=6, min_progress=0.01)
    # lining up: 0.002 a step, 0.012 over the window
    assert not any(intervening(run_with_progress(human, [0.5 + 0.002 * i for i in range(30)])))
    human.reset()
    assert not any(intervening(run_with_progress(human, [0.5] * 30, moving=True)))
    human.reset()
    # progress that came and went is none: the window's lowest is where it is now
    decisions = run_with_progress(human, [0.5, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert intervening(decisions).index(True) == 8


@pytest.fixture
def make_env() -> Iterator[Callable[[str], SimTwinEnv]]:
    envs: list[SimTwinEnv] = []

    def factory(task: str) -> SimTwinEnv:
        envs.append(SimTwinEnv(task, sim=SimConfig(cameras=[])))  # state-only: cheap
        return envs[-1]

    yield factory
    for env in envs:
        env.close()


@pytest.mark.parametrize("task", ["reach", "pick_cube"])
def test_a_still_policy_on_the_twin_is_taken_over_as_stuck(make_env, task):
    env = make_env(task)
    config = SimulatedHumanConfig(
        max_heading_error_deg=math.inf, watch_gripper=False, stuck_steps=5, reaction_delay_steps=1
    )
    human = SimulatedHuman(config, make_expert(env))
    obs, info = env.reset(seed=3)
    start = obs["state"]["tcp_pose"][:3].copy()
    decisions = []
    for _ in range(5 + 1 + 1 + config.takeover_steps):
        decisions.append(human.step(obs, info, np.zeros(7, np.float32)))
        obs, _, terminated, _, info = env.step(decisions[-1].action if decisions[-1].intervening else np.zeros(7))
        if terminated:
            break
    assert intervening(decisions)[:8] == [False] * 7 + [True]
    assert decisions[7].reason == "stuck" and decisions[7].started
    assert np.linalg.norm(obs["state"]["tcp_pose"][:3] - start) > 0.05  # the human moved it


def run_noisy_expert(env: SimTwinEnv, noise_std: float, episodes: int) -> Iterator[tuple[HumanDecision, dict]]:
    """The scripted expert with Gaussian noise as the policy, watched by the simulated human; yields
    the human's decision and the info it saw, step by step; every episode must succeed."""
    human, policy = SimulatedHuman(SimulatedHumanConfig(), make_expert(env)), make_expert(env)
    rng = np.random.default_rng(0)
    for seed in range(episodes):
        obs, info = env.reset(seed=9000 + seed)
        human.reset()
        policy.reset()
        terminated = truncated = False
        while not (terminated or truncated):
            action = np.clip(policy.act(obs, info) + rng.normal(0.0, noise_std, 7), -1, 1).astype(np.float32)
            decision = human.step(obs, info, action)
            yield decision, info
            obs, _, terminated, truncated, info = env.step(action)  # the policy's action: a watching human
        assert info["success"]
        assert human.episode_stats.steps > 0


# peg_insert with a steady hand (noise 0.01): lining the peg up moves a fraction of a millimetre a
# step, and neither that nor the push into the hole is "stuck" (it was, 0.75 times an episode, before
# the stuck rule asked whether the expert itself would move) or "stalled"
@pytest.mark.parametrize(("task", "noise_std"), [("reach", 0.0), ("pick_cube", 0.0), ("peg_insert", 0.01)])
def test_an_expert_policy_on_the_twin_is_never_taken_over(make_env, task, noise_std):
    assert not any(decision.intervening for decision, _ in run_noisy_expert(make_env(task), noise_std, 4))


def test_a_shaky_expert_hovering_over_the_hole_is_taken_over_as_stalled_and_for_nothing_else(make_env):
    # with noise 0.02 (0.6 mm a step) the expert's lining up to within 0.4 mm can take 4 s: it
    # hovers over the hole not going in, which is what the stalled rule is for
    steps = run_noisy_expert(make_env("peg_insert"), 0.02, 4)
    starts = [(d.reason, info["task_state"]) for d, info in steps if d.started]
    assert starts
    for reason, task_state in starts:
        rim, tip = task_state[:3], task_state[5:8]
        assert reason == "stalled"
        assert np.linalg.norm(tip[:2] - rim[:2]) < 0.0015 and 0.0 < tip[2] - rim[2] < 0.01


# noise and seeding ----------------------------------------------------------------------------------
def intervened_actions(seed: int) -> np.ndarray:
    expert = FakeExpert(np.array([1.0, -1.0, 1.0, -1.0, 0.99, -0.99, 0.0], np.float32))
    decisions = run(make_human(expert, noise_std=0.5, seed=seed), DEVIATING, 60)
    return np.array([d.action for d in decisions if d.intervening])


def test_noise_is_clipped_and_seeded():
    actions = intervened_actions(seed=7)
    assert len(actions) > 20 and actions.dtype == np.float32
    assert actions.min() >= -1.0 and actions.max() <= 1.0
    assert np.any(actions == 1.0) and np.any(actions == -1.0)  # clipped, not rescaled
    assert 0.3 < np.std(actions[:, 6]) < 0.7  # the noise is there (std 0.5 around 0)
    np.testing.assert_array_equal(actions, intervened_actions(seed=7))
    assert not np.array_equal(actions, intervened_actions(seed=8))


# budgets and episodes -------------------------------------------------------------------------------
def test_the_per_episode_budget_cuts_an_intervention_short_and_renews_at_reset():
    human = make_human(budget_steps_per_episode=5, takeover_steps=8)
    for _ in range(2):
        decisions = run(human, DEVIATING, 40)
        assert intervening(decisions) == [False] * 3 + [True] * 5 + [False] * 32
        assert human.episode_stats == EpisodeStats(steps=40, intervened_steps=5, interventions=1)
        human.reset()
    assert human.total_intervened_steps == 10


def test_the_total_budget_holds_over_episodes():
    human = make_human(budget_steps_per_episode=5, budget_total=12)
    per_episode = []
    for _ in range(4):
        human.reset()
        per_episode.append(sum(intervening(run(human, DEVIATING, 30))))
    assert per_episode == [5, 5, 2, 0]
    assert human.total_intervened_steps == 12 and human.interventions == 3


def test_an_unlimited_episode_budget_keeps_intervening():
    human = make_human(budget_steps_per_episode=None, takeover_steps=8)
    decisions = run(human, DEVIATING, 100)
    # deviating throughout: 3 steps to decide and react, 8 taken over, again and again
    assert intervening(decisions) == ([False] * 3 + [True] * 8) * 9 + [False]
    assert human.episode_stats == EpisodeStats(steps=100, intervened_steps=72, interventions=9)


@pytest.mark.parametrize("fields", [{"budget_steps_per_episode": 0}, {"budget_total": 0}])
def test_no_budget_or_disabled_never_intervenes(fields):
    assert not any(intervening(run(make_human(**fields), DEVIATING, 30, moving=False)))


def test_reset_ends_an_intervention_and_a_pending_decision():
    expert = FakeExpert()
    # no stuck detection: each run() below starts the fake TCP over, where it was 10 steps before
    human = make_human(expert, patience_steps=2, reaction_delay_steps=1, stuck_steps=0)
    assert intervening(run(human, DEVIATING, 4)) == [False, False, False, True]
    human.reset()
    assert expert.resets == 2  # at construction and now
    assert human.episode_stats == EpisodeStats(0, 0, 0)
    assert not any(intervening(run(human, EXPERT_ACTION, 10)))  # the intervention did not carry over
    assert intervening(run(human, DEVIATING, 3)) == [False, False, False]  # decided at step 1, due at 3
    human.reset()
    assert not any(intervening(run(human, EXPERT_ACTION, 10)))  # nor did the decision
    human.reset()
    decisions = run(human, DEVIATING, 4)
    assert intervening(decisions) == [False, False, False, True] and decisions[3].started
    assert decisions[3].episode_intervened_steps == 1 and decisions[3].total_intervened_steps == 2


def test_episode_stats():
    human = make_human(patience_steps=2, reaction_delay_steps=1, takeover_steps=8)
    run(human, DEVIATING, 22)  # steps 3-10 and 14-21 intervened
    stats = human.episode_stats
    assert stats == EpisodeStats(steps=22, intervened_steps=16, interventions=2)
    assert stats.intervention_rate == pytest.approx(16 / 22) and stats.mean_intervention_length == pytest.approx(8.0)
    assert EpisodeStats(0, 0, 0).intervention_rate == 0.0 and EpisodeStats(0, 0, 0).mean_intervention_length == 0.0


# config ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_heading_error_deg", 0.0),
        ("max_heading_error_deg", 181.0),
        ("max_heading_error_deg", math.nan),
        ("min_motion", 0.0),
        ("min_progress", 0.0),
        ("min_progress", math.nan),
        ("min_motion", 1.5),
        ("patience_steps", 0),
        ("patience_steps", 1.5),
        ("stuck_steps", -1),
        ("stuck_distance", -0.001),
        ("stall_steps", -1),
        ("reaction_delay_steps", -1),
        ("takeover_steps", 0),
        ("noise_std", math.nan),
        ("budget_steps_per_episode", -1),
        ("budget_total", -1),
        ("seed", -1),
    ],
)
def test_config_errors_name_the_key(field, value):
    config = SimulatedHumanConfig(**{field: value})
    with pytest.raises(ConfigError, match=rf"^hil\.human\.{field}: "):
        config.validate()
    with pytest.raises(ConfigError, match=rf"^train\.hil\.{field}: "):
        config.validate("train.hil")
    with pytest.raises(ConfigError, match=rf"\.{field}: "):
        SimulatedHuman(config, FakeExpert())


def test_the_default_config_is_valid_and_off():
    config = SimulatedHumanConfig()
    config.validate()
    assert (config.max_heading_error_deg, config.watch_gripper) == (90.0, True)


# end to end -----------------------------------------------------------------------------------------
def reach_with_random_policy(env: SimTwinEnv, human: SimulatedHuman) -> tuple[int, float]:
    """Successes and mean final distance to the goal over 4 episodes of a seeded random policy."""
    rng = np.random.default_rng(0)
    successes, distances = 0, []
    for episode in range(4):
        obs, info = env.reset(seed=episode)
        human.reset()
        terminated = truncated = False
        while not (terminated or truncated):
            action = rng.uniform(-1.0, 1.0, 7).astype(np.float32)
            decision = human.step(obs, info, action)
            obs, _, terminated, truncated, info = env.step(decision.action if decision.intervening else action)
        successes += info["success"]
        distances.append(np.linalg.norm(obs["state"]["tcp_pose"][:3] - info["task_state"][:3]))
    return successes, float(np.mean(distances))


def test_the_human_drives_a_random_policy_to_the_goal_on_reach(make_env):
    env = make_env("reach")
    alone = SimulatedHuman(SimulatedHumanConfig(budget_steps_per_episode=0), make_expert(env))
    helped = SimulatedHuman(SimulatedHumanConfig(seed=0), make_expert(env))
    successes_alone, distance_alone = reach_with_random_policy(env, alone)
    successes_helped, distance_helped = reach_with_random_policy(env, helped)
    assert alone.interventions == 0 and helped.interventions >= 4
    assert successes_helped >= 3 > successes_alone
    assert distance_helped < 0.5 * distance_alone
