"""The reward server over ROS 2: two robots' graphs (twins in lockstep, aggregators, safety, actors)
rewarded by one reward server node with a learned reward (a composite of a small success
classifier and the contact-force penalty, whose reward varies with every wrench), and the server
alone fed by a client that plays two actors at once. Runs only inside a loopback-only network
namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time

import numpy as np
import pytest
import torch
from client import ClientNode
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8MultiArray

from robot_rl.config import load_config
from robot_rl.rewards import make_reward_model
from robot_rl.rewards.base import RewardInput
from robot_rl.rewards.classifier.config import SuccessClassifierConfig
from robot_rl.rewards.classifier.model import SuccessClassifierReward, save_success_classifier
from robot_rl.robot.messages import RewardReplyMessage, RewardRequestMessage
from ros_nodes import convert
from ros_nodes.graph import running_graph
from ros_nodes.learner_node import RosActors
from ros_nodes.reward_server_node import RewardServerNode

ROBOTS = ["/robot_a", "/robot_b"]
STEPS_PER_ROBOT = 12
TIMEOUT = 60.0  # s for the steps to arrive (two twins rendering on a shared 2-core machine)
REPLY_TIMEOUT = TIMEOUT / 4  # s for the server alone (no graph) to match and to answer
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TINY = {"image_size": [32, 32], "cnn_channels": [4, 8], "image_feature_dim": 8, "hidden_dims": [16]}


def graph_overrides(tmp_path, robots: list[str]) -> list[str]:
    """Two twins with one 32x32 camera, a state-based policy acting at random, and the composite
    reward: a classifier that never declares success (so episodes run to their step limit) minus
    a force penalty from 0 N (so every step's reward differs)."""
    torch.manual_seed(0)
    classifier = SuccessClassifierReward(SuccessClassifierConfig(cameras=["front"], **TINY))
    classifier.logit_threshold.fill_(1e6)
    checkpoint = save_success_classifier(classifier, tmp_path / "classifier.safetensors")
    source = "reward.sources.classifier"
    return [
        "task=reach",
        "task.max_episode_steps=5",
        "sim.cameras=[front]",
        "sim.camera_rigs.front.width=32",
        "sim.camera_rigs.front.height=32",
        "agent.cameras=[]",
        "agent.hidden_dims=[16,16]",
        "train.learning_starts=100000",
        "reward=composite",
        f"{source}.checkpoint={checkpoint}",
        f"{source}.cameras=[front]",
        *(f"{source}.{key}={value}".replace(" ", "") for key, value in TINY.items()),
        "reward.sources.force_penalty.force_threshold=0.0",
        f"ros.namespaces=[{','.join(robots)}]",
    ]


@pytest.fixture
def overrides(tmp_path) -> list[str]:
    return graph_overrides(tmp_path, ROBOTS)


class Steps(RosActors):
    """The learner's side without the learning: collects the actors' steps."""

    def take(self, count: int) -> list:
        steps, deadline = [], time.monotonic() + TIMEOUT
        while len(steps) < count and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                steps.append(self.steps.get(timeout=0.5)[1])  # (namespace, step)
        return steps


def test_two_robots_steps_carry_the_servers_rewards_for_their_observations(ros, overrides):
    config = load_config(overrides)
    collector = Steps(config.agent, ROBOTS)
    with running_graph(config, overrides, extra_nodes=(collector,)) as nodes:
        steps = collector.take(2 * STEPS_PER_ROBOT)
        server = next(n for n in nodes if isinstance(n, RewardServerNode))
        stats = server.server.stats()
        bad_requests = server.bad_requests
        actors = [n for n in nodes if type(n).__name__ == "ActorNode"]
        bad_messages = [actor.bad_messages for actor in actors]

    assert len(steps) == 2 * STEPS_PER_ROBOT, f"only {len(steps)} steps arrived"
    assert {step.episode.split("/")[0] for step in steps} == {"robot_a", "robot_b"}
    assert bad_requests == 0 and bad_messages == [0, 0]
    assert stats.failed_batches == 0 and stats.observations >= len(steps)

    # every step's reward is the model's for the observation the step led to, scored here
    model = make_reward_model(config.reward, "cpu")
    for step in steps:
        inputs = RewardInput.from_observation(step.next_obs, model.cameras, step.action)
        expected = model.score(inputs).reward.item()
        assert step.reward == pytest.approx(expected, rel=1e-5, abs=1e-6), step.episode
    rewards = np.array([step.reward for step in steps])
    # each robot its own episodes (seeds per namespace), and the penalty varies with every wrench
    assert np.all(rewards < 0) and len(np.unique(rewards)) == len(rewards), rewards
    # the classifier never declares success: episodes end at the step limit only
    ends = [step for step in steps if step.terminated or step.truncated]
    summary = [(step.episode, step.step, step.stamp_ns, step.terminated, step.truncated) for step in steps]
    assert ends and all(step.truncated and not step.success and step.step == 4 for step in ends), summary


class TwoActors(ClientNode):
    """Plays both robots' actors towards the server, and reads its log."""

    def __init__(self):
        super().__init__("reward_client", log_of="reward_server")
        self.requests = {ns: self.create_publisher(UInt8MultiArray, f"{ns}/reward/request", RELIABLE) for ns in ROBOTS}
        self.replies: dict[str, list[RewardReplyMessage]] = {ns: [] for ns in ROBOTS}
        for ns in ROBOTS:
            self.create_subscription(UInt8MultiArray, f"{ns}/reward/reply", lambda m, ns=ns: self._on_reply(m, ns), 10)

    def _on_reply(self, msg: UInt8MultiArray, namespace: str) -> None:
        self.add(self.replies[namespace], RewardReplyMessage.from_tree(convert.blob_to_tree(msg)))


def request(stamp_ns: int, seed: int, images: bool = True, intervention_start: bool = False) -> UInt8MultiArray:
    rng = np.random.default_rng(seed)
    state = {
        "tcp_pose": np.array([0.5, 0, 0.2, 1, 0, 0, 0], np.float32),
        "tcp_vel": np.zeros(6, np.float32),
        "gripper": np.ones(1, np.float32),
        "wrench": rng.uniform(-30, 30, 12).astype(np.float32),
    }
    obs = {"state": state, "images": {"front": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)} if images else {}}
    human, policy = np.full(7, -0.5, np.float32), np.full(7, 0.5, np.float32)
    message = RewardRequestMessage(stamp_ns, obs, human, policy, intervention_start)
    return convert.tree_to_blob(message.to_tree())


def test_the_server_batches_two_robots_and_answers_what_it_cannot_score(ros, overrides):
    # a wait long enough that the two robots' requests always share a model call; hil=both adds
    # RLIF's intervention penalty (weight 1) to the composite
    config = load_config([*overrides, "hil=both", "ros.reward_server.max_wait_s=0.5"])
    server, client = RewardServerNode(config), TwoActors()
    executors = []
    for node in (server, client):
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        executors.append(executor)
    try:
        deadline = time.monotonic() + REPLY_TIMEOUT
        while not all(p.get_subscription_count() for p in client.requests.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        client.requests["/robot_a"].publish(request(1000, seed=1))
        client.requests["/robot_b"].publish(request(2000, seed=2))
        client.wait_for(lambda: all(client.replies.values()), "replies to both robots", REPLY_TIMEOUT)
        stats = server.server.stats()
        assert stats.batches == 1 and dict(stats.batch_sizes) == {2: 1}, stats
        a, b = client.replies["/robot_a"][0], client.replies["/robot_b"][0]
        assert (a.stamp_ns, b.stamp_ns) == (1000, 2000) and not a.error and not b.error
        assert a.reward != b.reward  # each robot got its own observation's reward back
        assert np.isnan(a.start_reward) and np.isnan(b.start_reward)  # no intervention started

        # an intervention starts: the executed action scored as any, the policy's with the -1
        client.requests["/robot_b"].publish(request(2500, seed=2, intervention_start=True))
        client.wait_for(lambda: len(client.replies["/robot_b"]) == 2, "the intervention's reply", REPLY_TIMEOUT)
        started = client.replies["/robot_b"].pop()
        assert started.stamp_ns == 2500 and not started.error
        assert started.reward == pytest.approx(b.reward) and started.start_reward == pytest.approx(b.reward - 1.0)

        # an observation without the camera the model reads: answered with the reason at once
        client.requests["/robot_a"].publish(request(3000, seed=3, images=False))
        client.wait_for(lambda: len(client.replies["/robot_a"]) == 2, "the refusal", REPLY_TIMEOUT)
        refused = client.replies["/robot_a"][1]
        assert refused.stamp_ns == 3000 and "front" in refused.error and np.isnan(refused.reward)
        # a blob that is no request: logged and dropped, and the server keeps serving
        client.requests["/robot_b"].publish(UInt8MultiArray(data=b"not a request"))
        client.wait_log("reward/request dropped", timeout=REPLY_TIMEOUT)
        client.requests["/robot_b"].publish(request(4000, seed=4))
        client.wait_for(lambda: len(client.replies["/robot_b"]) == 2, "the reply after the bad blob", REPLY_TIMEOUT)
        assert client.replies["/robot_b"][1].stamp_ns == 4000 and not client.replies["/robot_b"][1].error
        assert server.bad_requests == 2
    finally:
        for executor in executors:
            executor.shutdown()
        server.destroy_node()
        client.destroy_node()


def test_actors_wait_for_a_late_server_and_say_so(ros, tmp_path):
    # robots of their own: rclpy throttles a log line per logger name, and the first test's actors
    # may have said the same when their server went first at shutdown
    robots = ["/robot_c", "/robot_d"]
    overrides = [
        *graph_overrides(tmp_path, robots),
        "ros.reward_server.in_graph=false",
        "ros.reward_server.timeout_s=0.5",
    ]
    config = load_config(overrides)
    collector = Steps(config.agent, robots)
    listener = ClientNode("log_listener", log_of="actor")  # both robots' actors
    with running_graph(config, overrides, extra_nodes=(collector, listener)):
        listener.wait_log("no reward from the reward server", timeout=TIMEOUT)
        assert collector.steps.empty(), "a step went out without its reward"
        # the server comes up late: the actors' next request is answered and steps flow
        late_server = RewardServerNode(config)
        executor = SingleThreadedExecutor()
        executor.add_node(late_server)
        threading.Thread(target=executor.spin, daemon=True).start()
        try:
            steps = collector.take(4)
        finally:
            executor.shutdown()
            late_server.destroy_node()
    listener.destroy_node()
    assert len(steps) == 4
