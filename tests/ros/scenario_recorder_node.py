"""The recorder node fed StepMessage blobs over ROS 2 by a client node in the same process (one
MultiThreadedExecutor), as the actor and the operator would: an episode recorded to its terminal step,
a garbage blob and a tree that is not a step dropped with the node still recording, an open bag read
while it is being written, the operator's success mark, an episode cut short by the next one, and the
open bag closed cleanly at shutdown; every bag is then read back. Runs only inside a loopback-only
network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import threading

import numpy as np
import rclpy
from client import TIMEOUT, ClientNode, wait_until
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Empty, UInt8MultiArray

from robot_rl.data.bags import EmptyBagError, RecorderConfig, read_episode_bag
from robot_rl.robot.messages import StepMessage
from ros_nodes import convert
from ros_nodes.recorder_node import RecorderNode

PERIOD = 100_000_000  # ns between steps
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def observation(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    state = {
        "tcp_pose": rng.standard_normal(7).astype(np.float32),
        "tcp_vel": rng.standard_normal(6).astype(np.float32),
        "gripper": rng.uniform(0, 1, 1).astype(np.float32),
        "wrench": rng.standard_normal(12).astype(np.float32),
    }
    return {"images": {"front": rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)}, "state": state}


def episode_steps(name: str, steps: int, seed: int, terminal: bool, first_stamp: int) -> list[StepMessage]:
    """The steps the actor would publish, success labelled on the last one when `terminal`."""
    rng = np.random.default_rng(seed)
    obs = [observation(100 * seed + t) for t in range(steps + 1)]
    last = steps - 1
    return [
        StepMessage(
            episode=name,
            step=t,
            stamp_ns=first_stamp + t * PERIOD,
            obs=obs[t],
            action=rng.uniform(-1, 1, 7).astype(np.float32),
            policy_action=rng.uniform(-1, 1, 7).astype(np.float32),
            intervened=t == 1,
            reward=float(t == last and terminal),
            next_obs=obs[t + 1],
            terminated=terminal and t == last,
            truncated=False,
            success=terminal and t == last,
        )
        for t in range(steps)
    ]


class Client(ClientNode):
    """The actor (steps) and the operator (teleop/success), plus the recorder's log lines."""

    def __init__(self):
        super().__init__("recorder_client", log_of="recorder")
        self.steps = self.create_publisher(UInt8MultiArray, "steps", RELIABLE)
        self.success = self.create_publisher(Empty, "teleop/success", 10)

    def publish(self, steps: list[StepMessage]) -> None:
        for step in steps:
            self.steps.publish(convert.tree_to_blob(step.to_tree()))

    def wait_matched(self) -> None:
        wait_until(
            lambda: self.steps.get_subscription_count() >= 1 and self.success.get_subscription_count() >= 1,
            "the recorder's subscriptions never matched",
        )


def wait_for_steps(bag, steps: int) -> None:
    """Until the open bag holds `steps` steps: each is in the file once the node has recorded it. The
    writer makes the bag's folder before its .mcap file, so a folder alone is not yet a bag to read."""

    def holds_them() -> bool:
        try:
            return any(bag.glob("*.mcap")) and len(read_episode_bag(bag)) >= steps
        except EmptyBagError:
            return False

    wait_until(holds_them, f"{bag} never held {steps} steps", poll_s=0.02)


def assert_recorded(got, steps: list[StepMessage], successes: list[bool]) -> None:
    assert len(got) == len(steps)
    for t, step in enumerate(steps):
        assert np.array_equal(got.observations[t + 1]["images"]["front"], step.next_obs["images"]["front"])
        assert np.array_equal(got.observations[t + 1]["state"]["wrench"], step.next_obs["state"]["wrench"])
        assert np.array_equal(got.actions[t], step.action) and np.array_equal(got.policy_actions[t], step.policy_action)
        assert got.rewards[t] == step.reward and got.intervened[t] == step.intervened
    assert np.array_equal(got.observations[0]["state"]["tcp_pose"], steps[0].obs["state"]["tcp_pose"])
    assert got.successes.tolist() == successes


def test_recorder_node_writes_one_bag_per_episode_and_survives_bad_input(tmp_path):
    rclpy.init()
    recorder = RecorderNode(RecorderConfig(directory=str(tmp_path)))
    client = Client()
    executor = MultiThreadedExecutor(num_threads=4)
    for node in (recorder, client):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        client.wait_matched()
        client.success.publish(Empty())  # nothing is being recorded yet
        client.wait_log("teleop/success: no episode is being recorded; ignored")

        first = episode_steps("episode_000000", 3, seed=1, terminal=True, first_stamp=PERIOD)
        client.publish(first)
        client.wait_log("episode episode_000000: 3 steps, ended, success")

        client.steps.publish(UInt8MultiArray(data=b"not a tree at all"))
        client.steps.publish(convert.tree_to_blob({"episode": "episode_000001"}))  # a tree, but no step
        assert len(client.wait_log("steps: message dropped", count=2)) == 2

        second = episode_steps("episode_000001", 4, seed=2, terminal=True, first_stamp=10 * PERIOD)
        client.publish(second[:2])
        wait_for_steps(tmp_path / "episode_000001", 2)  # an open bag reads back what it holds so far
        client.success.publish(Empty())
        client.wait_log("teleop/success: episode episode_000001 marked a success")
        client.publish(second[2:3])
        wait_for_steps(tmp_path / "episode_000001", 3)

        third = episode_steps("episode_000002", 2, seed=3, terminal=False, first_stamp=20 * PERIOD)
        client.publish(third[:1])  # before episode 1 ended: it is cut short
        [cut] = client.wait_log("episode episode_000001: 3 steps, cut short")
        assert "a step of episode 'episode_000002' arrived before it ended), success ->" in cut
        wait_for_steps(tmp_path / "episode_000002", 1)
        assert recorder.dropped == 2
    finally:
        executor.shutdown()
        spinner.join(timeout=TIMEOUT)
        client.destroy_node()
        recorder.destroy_node()  # closes the open bag of episode 2
        rclpy.try_shutdown()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_000000", "episode_000001", "episode_000002"]
    for bag in tmp_path.iterdir():
        assert (bag / "metadata.yaml").is_file()  # every bag closed cleanly

    got = read_episode_bag(tmp_path / "episode_000000")
    assert_recorded(got, first, [False, False, True])
    assert (got.terminated, got.truncated, got.success, got.ended) == (True, False, True, True)

    got = read_episode_bag(tmp_path / "episode_000001")
    assert_recorded(got, second[:3], [False, False, True])  # marked a success after its second step
    assert (got.terminated, got.truncated, got.success, got.ended) == (False, True, True, False)

    got = read_episode_bag(tmp_path / "episode_000002")
    assert_recorded(got, third[:1], [False])
    assert (got.terminated, got.truncated, got.success, got.ended) == (False, True, False, False)
