"""EpisodeActor (robot_rl/robot/actor.py), the actor node's decisions without ROS: which action is
executed and stored, interventions and where they start (what the reward server is asked), the
reward and episode ends; and the reward request/reply messages the actor and server exchange."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.data.tree import tree_from_bytes, tree_to_bytes
from robot_rl.robot.actor import EpisodeActor, StepReward, operator_reward, oracle_reward
from robot_rl.robot.messages import ObservationMessage, RewardReplyMessage, RewardRequestMessage

POLICY_ACTION = np.full(7, 0.25, np.float32)


def observation(stamp_ns: int, reward: float = 0.0, success: bool = False, truncated: bool = False):
    state = {
        "tcp_pose": np.array([0.5, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0], np.float32),
        "tcp_vel": np.zeros(6, np.float32),
        "gripper": np.ones(1, np.float32),
        "wrench": np.full(12, stamp_ns / 1e9, np.float32),
    }
    privileged = {"task_state": np.zeros(0, np.float32), "success": success, "reward": reward, "truncated": truncated}
    return ObservationMessage(stamp_ns, {"state": state, "images": {}}, {}, privileged)


def make_actor(**kwargs) -> EpisodeActor:
    options = dict(max_episode_steps=10, terminate_on_success=True)
    options.update(kwargs)
    return EpisodeActor(policy=lambda obs: POLICY_ACTION, reward_fn=oracle_reward, **options)


def test_first_observation_opens_no_step_then_each_closes_one():
    actor = make_actor()
    assert actor.start_episode() == "episode_000000"
    assert actor.open_step() is None
    action, step = actor.on_observation(observation(1))
    assert step is None and np.array_equal(action, POLICY_ACTION)
    assert actor.open_step()[0] is action
    action, step = actor.on_observation(observation(2, reward=0.5))
    assert step.step == 0 and step.reward == 0.5 and step.stamp_ns == 2
    assert np.array_equal(step.action, POLICY_ACTION) and not step.intervened
    assert step.obs["state"]["wrench"][0] == pytest.approx(1e-9) and step.next_obs["state"]["wrench"][0] == 2e-9


def test_the_operators_action_is_executed_and_stored_and_its_start_is_marked():
    actor = make_actor()
    actor.start_episode()
    human = np.full(7, -0.5, np.float32)
    actor.on_observation(observation(1))
    assert actor.open_step()[2] is False  # the policy acted
    action, _ = actor.on_observation(observation(2), human)
    assert np.array_equal(action, human)
    assert actor.open_step()[2] is True  # RLIF: the intervention starts with this action
    _, step = actor.on_observation(observation(3), human)
    assert step.intervened and np.array_equal(step.action, human) and np.array_equal(step.policy_action, POLICY_ACTION)
    assert actor.open_step()[2] is False  # still intervening: it started one step earlier
    actor.on_observation(observation(4))
    actor.on_observation(observation(5), human)
    assert actor.open_step()[2] is True  # a second intervention
    assert actor.counters.intervened_steps == 2


def test_a_step_that_starts_an_intervention_carries_the_policys_penalised_reward():
    """RLIF over ROS: the reward server scores the executed (human's) action and, where the
    intervention starts, the policy's with the start; the step carries both to the learner."""
    asked = []

    def served(message, action):
        asked.append(action)
        return StepReward(0.5, False, start_reward=-1.0)

    actor = EpisodeActor(lambda obs: POLICY_ACTION, served, max_episode_steps=10, terminate_on_success=True)
    actor.start_episode()
    human = np.full(7, -0.5, np.float32)
    actor.on_observation(observation(1), human)
    executed, policy, started = actor.open_step()
    assert np.array_equal(executed, human) and np.array_equal(policy, POLICY_ACTION) and started
    _, first = actor.on_observation(observation(2), human)
    _, second = actor.on_observation(observation(3))
    assert first.intervention_start and first.reward == 0.5 and first.start_reward == -1.0
    assert np.array_equal(first.action, human) and np.array_equal(first.policy_action, POLICY_ACTION)
    # the intervention's later steps and the policy's own carry no start and no penalty
    assert not second.intervention_start and np.isnan(second.start_reward)
    assert np.array_equal(asked[0], human)


def test_random_steps_first_then_the_policy():
    actor = make_actor(random_steps=2, seed=3)
    actor.start_episode()
    actions = [actor.on_observation(observation(t))[0] for t in range(1, 5)]
    assert not np.array_equal(actions[0], POLICY_ACTION) and np.all(np.abs(actions[0]) <= 1)
    # the policy takes over once two steps were executed
    assert np.array_equal(actions[3], POLICY_ACTION)


def test_success_terminates_and_the_step_limit_truncates():
    actor = make_actor(max_episode_steps=3)
    actor.start_episode()
    actor.on_observation(observation(1))
    action, step = actor.on_observation(observation(2, reward=1.0, success=True))
    assert action is None and step.terminated and step.success and not actor.in_episode

    actor.start_episode()
    ends = [actor.on_observation(observation(t))[1] for t in range(10, 14)]
    assert ends[-1].truncated and not ends[-1].terminated and ends[-1].step == 2
    assert not actor.in_episode and actor.open_step() is None


def test_the_operators_end_and_success_keys():
    actor = make_actor(terminate_on_success=False)
    actor.start_episode()
    actor.on_observation(observation(1))
    actor.mark_success()
    action, step = actor.on_observation(observation(2))
    assert action is None and step.truncated and step.success


def test_a_reward_function_that_cannot_answer_stops_the_tick():
    def unanswered(message, action):
        raise RuntimeError("no reward")

    actor = EpisodeActor(lambda obs: POLICY_ACTION, unanswered, max_episode_steps=5, terminate_on_success=True)
    actor.start_episode()
    actor.on_observation(observation(1))
    with pytest.raises(RuntimeError, match="no reward"):
        actor.on_observation(observation(2))


def test_oracle_reward_needs_the_twins_ground_truth():
    message = observation(1)
    message.privileged = {}
    with pytest.raises(ValueError, match="no privileged ground truth"):
        oracle_reward(message, POLICY_ACTION)


def test_an_operators_reward_is_the_twins_truth_where_there_is_one_else_none():
    assert operator_reward(observation(1, reward=1.0, success=True), POLICY_ACTION) == StepReward(1.0, True)
    on_a_robot = observation(2, reward=1.0, success=True)
    on_a_robot.privileged = {}
    assert operator_reward(on_a_robot, POLICY_ACTION) == StepReward(0.0, False)


# --- reward request / reply -------------------------------------------------------------------
def round_trip(message):
    return type(message).from_tree(tree_from_bytes(tree_to_bytes(message.to_tree())))


def test_reward_messages_round_trip():
    obs = observation(7).obs
    human = np.full(7, -0.5, np.float32)
    request = round_trip(RewardRequestMessage(7, obs, human, POLICY_ACTION, True))
    assert request.stamp_ns == 7 and request.intervention_start is True
    assert np.array_equal(request.action, human) and np.array_equal(request.policy_action, POLICY_ACTION)
    assert np.array_equal(request.obs["state"]["wrench"], obs["state"]["wrench"])
    reply = round_trip(RewardReplyMessage(7, -0.25, True, start_reward=-1.25))
    assert (reply.stamp_ns, reply.reward, reply.success, reply.start_reward, reply.error) == (7, -0.25, True, -1.25, "")
    failed = round_trip(RewardReplyMessage(8, float("nan"), False, error="model failed: boom"))
    assert np.isnan(failed.reward) and np.isnan(failed.start_reward) and failed.error == "model failed: boom"


def test_bad_reward_messages_name_the_field():
    obs = observation(7).obs
    with pytest.raises(ValueError, match="reward request.action"):
        RewardRequestMessage.from_tree(
            {
                "stamp_ns": 1,
                "obs": obs,
                "action": [0.0] * 6,
                "policy_action": POLICY_ACTION,
                "intervention_start": False,
            }
        )
    with pytest.raises(ValueError, match="reward request.policy_action"):
        RewardRequestMessage.from_tree(
            {"stamp_ns": 1, "obs": obs, "action": POLICY_ACTION, "policy_action": [np.nan] * 7, "intervention_start": 0}
        )
    with pytest.raises(ValueError, match="no field 'obs'"):
        RewardRequestMessage.from_tree(
            {"stamp_ns": 1, "action": POLICY_ACTION, "policy_action": POLICY_ACTION, "intervention_start": False}
        )
    with pytest.raises(ValueError, match="reward not finite"):
        RewardReplyMessage.from_tree(
            {"stamp_ns": 1, "reward": float("inf"), "success": False, "start_reward": np.nan, "error": ""}
        )


def test_an_intervention_begun_during_the_reset_is_ignored_until_released():
    actor = make_actor()
    human = np.full(7, -0.5, np.float32)
    assert not actor.set_intervening(True)  # between episodes: the robot is resetting
    actor.start_episode()
    action, _ = actor.on_observation(observation(1), human)
    assert np.array_equal(action, POLICY_ACTION) and actor.open_step()[2] is False
    assert actor.set_intervening(False) and actor.set_intervening(True)  # released, pressed again
    action, step = actor.on_observation(observation(2), human)
    assert np.array_equal(action, human) and not step.intervened and actor.open_step()[2] is True
