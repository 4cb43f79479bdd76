"""The whole graph in one process, as `robot-rl train train.transport=ros` runs it: the twin in
lockstep, aggregator, safety, actor and recorder, and the learner (RosActors) training on the steps
the actor publishes and pushing weights back. Runs only inside a loopback-only network namespace
(test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.node import Node
from std_srvs.srv import Trigger

from robot_rl.config import load_config
from robot_rl.data.bags import read_episode_bags
from robot_rl.rollout import make_env
from robot_rl.train.learner import Trainer
from ros_nodes.graph import running_graph
from ros_nodes.learner_node import RosActors

STEPS = 60
MAX_EPISODE_STEPS = 25


class RecordingActors(RosActors):
    """RosActors that keeps every step it hands to the trainer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received = []

    def get(self):
        step = super().get()
        if step is not None:
            self.received.append(step)
        return step


def test_training_through_the_graph_stores_every_step_pushes_weights_and_records_bags(ros, tmp_path):
    overrides = [
        "sim=state",
        "task=reach",
        f"task.max_episode_steps={MAX_EPISODE_STEPS}",
        f"train.env_steps={STEPS}",
        "train.learning_starts=20",
        "train.eval_every=1000",
        "train.eval_episodes=1",
        "train.video_episodes=0",
        "train.demo_episodes=1",
        "train.checkpoint_every=1000",
        "train.weight_push_every=5",
        "train.transport=ros",
        "agent.batch_size=8",
        "agent.hidden_dims=[16,16]",
        "agent.num_critics=2",
        "ros.record=true",
        f"ros.recorder.directory={tmp_path / 'bags'}",
    ]
    config = load_config(overrides)
    trainer = Trainer(config, tmp_path / "run")
    actors = RecordingActors(config.agent, list(config.ros.namespaces))
    with running_graph(config, overrides, extra_nodes=(actors,)) as nodes:
        trainer.train(actors)
        actor_node = next(n for n in nodes if type(n).__name__ == "ActorNode")
        weight_version = actor_node.actor.counters.weight_version
        safety_node = next(n for n in nodes if type(n).__name__ == "SafetyNode")
        safety_status = safety_node.filter.status

    steps = actors.received
    assert len(steps) == STEPS and actors.bad_steps == 0
    assert int(trainer.online.has_next.sum()) == STEPS
    # consecutive steps of an episode chain: one's next observation is the next one's observation
    for previous, step in zip(steps, steps[1:], strict=False):
        if step.episode == previous.episode:
            assert step.step == previous.step + 1
            np.testing.assert_array_equal(step.obs["state"]["tcp_pose"], previous.next_obs["state"]["tcp_pose"])
            assert step.stamp_ns > previous.stamp_ns
    # the task's step limit ends episodes (reach on a random-then-untrained policy rarely succeeds)
    ends = [s for s in steps if s.terminated or s.truncated]
    assert ends and all(s.terminated or s.step == MAX_EPISODE_STEPS - 1 for s in ends)
    # the executed action is what the twin did: the reward is the twin's oracle, in [0, 1] (sparse)
    assert all(s.reward in (0.0, 1.0) for s in steps)
    assert weight_version > 0, "the actor never loaded weights pushed by the learner"
    assert safety_status.startswith("RUNNING"), safety_status

    # The recorder took the same steps (and the ones the actor made while the learner evaluated
    # and saved at the end): in episode order, their actions start with the learner's.
    episodes = read_episode_bags(tmp_path / "bags")
    assert any(e.terminated or e.truncated for e in episodes), "no finished episode was recorded"
    recorded = np.concatenate([e.actions for e in episodes])
    assert len(recorded) >= STEPS
    np.testing.assert_array_equal(recorded[:STEPS], np.stack([s.action for s in steps]))


def test_the_steps_through_the_graph_are_the_twins_own_transitions(ros):
    """What the learner receives over ROS (twin -> aggregator -> actor -> step message) is what the
    in-process twin gives for the same actions, episode after episode: no stale observation, no
    action paired with the wrong step, the same rewards and episode ends. pick_cube with its cube
    state (sim=state) and the gripper; uniform random actions (before learning_starts)."""
    overrides = ["sim=state", "task=pick_cube", f"task.max_episode_steps={MAX_EPISODE_STEPS}", "train.transport=ros"]
    config = load_config(overrides)
    learner = RecordingActors(config.agent, list(config.ros.namespaces))
    with running_graph(config, overrides, extra_nodes=(learner,)):
        while len(learner.received) < 2 * MAX_EPISODE_STEPS + 10:
            assert learner.get() is not None
    episodes: dict[str, list] = {}
    for step in learner.received:
        episodes.setdefault(step.episode, []).append(step)
    assert len(episodes) == 3

    # The twin resets with the config's seed as it starts and the actor starts the first episode
    # with a reset of its own: the in-process twin follows the same sequence.
    env = make_env(config)
    env.reset(seed=config.seed)
    tolerance = {"tcp_pose": 1e-6, "tcp_vel": 1e-5, "gripper": 1e-6, "wrench": 1e-3, "task": 1e-4}

    def assert_same_state(ros_obs: dict, env_obs: dict) -> None:
        for key, atol in tolerance.items():
            np.testing.assert_allclose(ros_obs["state"][key], env_obs["state"][key], atol=atol, err_msg=key)

    for name, steps in episodes.items():
        obs, _ = env.reset()
        for step in steps:
            assert_same_state(step.obs, obs)
            obs, reward, terminated, truncated, _ = env.step(step.action)
            assert_same_state(step.next_obs, obs)
            assert (step.reward, step.terminated, step.truncated) == (reward, terminated, truncated), name
    env.close()


def test_in_lockstep_the_actor_keeps_within_max_actor_lead_of_a_slow_learner(ros):
    lead = 5
    overrides = ["sim=state", "task=reach", "train.transport=ros", f"train.max_actor_lead={lead}"]
    config = load_config(overrides)
    learner = RosActors(config.agent, list(config.ros.namespaces))
    with running_graph(config, overrides, extra_nodes=(learner,)) as nodes:
        actor = next(n for n in nodes if type(n).__name__ == "ActorNode").actor
        taken, leads = 0, []
        for _ in range(60):  # a learner taking a step every 20 ms, slower than the twin steps
            assert learner.get() is not None
            taken += 1
            leads.append(actor.counters.steps - taken)
            time.sleep(0.02)
        time.sleep(0.5)  # a learner that takes nothing: the actor runs up to the limit, then waits
        stalled = actor.counters.steps
        time.sleep(0.5)
        assert actor.counters.steps == stalled
    # the steps sent before the learner first said what it took drain first; then the lead holds
    assert max(leads[-20:]) <= lead + 1, leads
    assert stalled - taken <= lead + 1


def call(node: Node, service: str) -> str:
    client = node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=10.0), f"no {service}"
    future = client.call_async(Trigger.Request())
    deadline = time.monotonic() + 10.0
    while not future.done():
        assert time.monotonic() < deadline, f"{service} did not answer"
        time.sleep(0.01)
    return future.result().message


def test_a_safety_hold_while_the_actor_waits_for_the_learner_does_not_stall_the_graph(ros):
    """While the safety node holds, its holds step the lockstep twin on (sim time runs) with no
    step of the actor's: a lead counted in sim time never came back under the limit."""
    overrides = ["sim=state", "task=reach", "train.transport=ros", "train.max_actor_lead=5"]
    config = load_config(overrides)
    learner = RosActors(config.agent, list(config.ros.namespaces))
    operator = Node("operator")
    with running_graph(config, overrides, extra_nodes=(learner, operator)) as nodes:
        actor = next(n for n in nodes if type(n).__name__ == "ActorNode").actor
        for _ in range(10):
            assert learner.get() is not None
        call(operator, "safety/stop")  # the arm held: the twin steps on the safety node's holds
        time.sleep(1.0)  # ... while the actor waits for a learner that takes nothing
        call(operator, "safety/reset")
        call(operator, "safety/resume")
        before = actor.counters.steps
        taken: list = []
        taker = threading.Thread(target=lambda: taken.extend(learner.get() for _ in range(30)), daemon=True)
        taker.start()
        taker.join(timeout=20.0)
        assert len(taken) == 30, f"the graph stalled: {len(taken)} of 30 steps after the hold"
        assert actor.counters.steps > before


def test_a_safety_hold_ends_the_episode_and_on_the_twin_the_next_one_starts_after_its_reset(ros):
    """Steps after a hold would record the policy's actions while the safety node's holds moved the
    arm: the episode ends there; the twin's reset clears the hold (the actor resets and resumes the
    safety node) and training goes on."""
    overrides = ["sim=state", "task=reach", "train.transport=ros"]
    config = load_config(overrides)
    learner = RosActors(config.agent, list(config.ros.namespaces))
    operator = Node("operator")
    with running_graph(config, overrides, extra_nodes=(learner, operator)) as nodes:
        safety = next(n for n in nodes if type(n).__name__ == "SafetyNode")
        first = [learner.get() for _ in range(5)]
        call(operator, "safety/stop")
        later = [learner.get() for _ in range(20)]
        status = safety.filter.status
    assert all(s.episode == first[0].episode for s in first)
    ended = [s for s in later if s.episode == first[0].episode]
    assert ended and ended[-1].truncated and not ended[-1].terminated  # the hold ended it
    assert len(ended) <= 2  # the step under way, at most: none of the held ones
    resumed = [s for s in later if s.episode != first[0].episode]
    assert resumed and resumed[0].step == 0, "no new episode after the hold"
    assert status.startswith("RUNNING"), status
