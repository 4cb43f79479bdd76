"""The learner with the simulated human (hil.mode): which action is executed and stored, RLIF's
reward placement, routing of intervened steps to the demo buffer, the intervention statistics,
and the config checks. Short seeded runs on reach, state-only."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.config import ConfigError, load_config
from robot_rl.train.learner import Trainer

# a policy that acts at random for the whole run deviates from the expert: the human steps in often
HUMAN = [
    "hil.human.max_heading_error_deg=60",
    "hil.human.noise_std=0.0",
    "hil.human.takeover_steps=5",
    "hil.human.budget_steps_per_episode=20",
]


def run(tmp_path, tiny, *overrides) -> Trainer:
    config = load_config([*tiny, "train.learning_starts=1000", "train.demo_episodes=1", *HUMAN, *overrides])
    trainer = Trainer(config, tmp_path)
    trainer.train()
    return trainer


def stored(buffer) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(buffer.has_next)
    return buffer.action[rows], buffer.reward[rows]


def test_hil_serl_stores_the_humans_actions_online_and_as_demos(tmp_path, tiny):
    trainer = run(tmp_path, tiny, "hil=hil_serl")
    human = trainer.human
    assert human.interventions > 0 and all(e.intervened_steps <= 20 for e in trainer.intervention_stats)
    # the demo buffer: the one expert episode, then every step the human drove, in order
    demo_actions, _ = stored(trainer.demos)
    expert_steps = len(demo_actions) - human.total_intervened_steps
    assert 0 < expert_steps <= trainer.config.task.max_episode_steps
    # each of those was executed and stored online too (the human's noiseless expert actions)
    online_actions, _ = stored(trainer.online)
    online = {a.tobytes() for a in online_actions}
    assert all(a.tobytes() in online for a in demo_actions[expert_steps:])
    # ... and the random policy's actions were not: none of them equals a human's
    assert sum(a.tobytes() in {d.tobytes() for d in demo_actions} for a in online_actions) >= (
        human.total_intervened_steps
    )
    rates = [r for r in trainer.curve.intervention_rate if r is not None]
    assert rates and all(0.0 < r <= 1.0 for r in rates)


def test_rlif_rewards_minus_one_exactly_where_interventions_start(tmp_path, tiny):
    trainer = run(tmp_path, tiny, "hil=rlif")
    actions, rewards = stored(trainer.online)
    assert trainer.human.interventions > 0
    assert set(np.unique(rewards)) <= {-1.0, 0.0}
    penalised = np.flatnonzero(rewards == -1.0)
    assert len(penalised) == trainer.human.interventions
    # each penalty is a terminal transition of the policy's action, right after the human's
    # unpenalised correction from the same state
    rows = np.flatnonzero(trainer.online.has_next)
    assert trainer.online.terminated[rows[penalised]].all()
    assert (rewards[penalised - 1] == 0.0).all()
    np.testing.assert_array_equal(trainer.online.state[rows[penalised]], trainer.online.state[rows[penalised - 1]])
    assert not any(np.array_equal(actions[i], actions[i - 1]) for i in penalised)
    # the human's corrections are in the intervention (demo) buffer too, unpenalised
    demo_actions, demo_rewards = stored(trainer.demos)
    expert_steps = len(demo_actions) - trainer.human.total_intervened_steps
    assert 0 < expert_steps <= trainer.config.task.max_episode_steps
    assert (demo_rewards == 0.0).all()


def test_without_the_human_nothing_is_intervened(tmp_path, tiny):
    trainer = run(tmp_path, tiny)
    assert trainer.human is None and trainer.intervention_stats == []
    assert all(r is None for r in trainer.curve.intervention_rate)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["hil=rlif", "reward=oracle_sparse"], "hil.mode=rlif: the reward is the intervention penalty alone"),
        (["hil=hil_serl", "train.mode=async"], "the simulated human acts on the in-process twin"),
        (["hil=hil_serl", "agent=bc"], "interventions need agent=sac"),
        (["hil=hil_serl", "hil.human.takeover_steps=0"], "hil.human.takeover_steps"),
        (["hil.mode=both"], "hil.mode=both: the reward is the task's plus the intervention penalty"),
    ],
)
def test_bad_hil_configs_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides)
