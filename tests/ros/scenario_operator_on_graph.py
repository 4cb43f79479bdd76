"""`robot-rl demos|label hil.operator.graph=true`: demos and success labels recorded through the graph
(the twin in lockstep at the wall clock's pace, the teleop node, an actor holding still unless the
operator drives; the recorder for demos, the label collector for labels). A client plays the
SpaceMouse driver (spacenav/joy). Runs only inside a loopback-only network namespace
(test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
from client import wait_until
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import UInt8MultiArray

from robot_rl.config import load_config
from robot_rl.data.demos import read_demo_bags
from robot_rl.data.labels import load_labelled_frames
from ros_nodes.graph import demos_on_graph, labels_on_graph

OVERRIDES = [
    "sim=state",
    "task=reach",
    "task.max_episode_steps=200",
    "teleop=spacemouse",
    "teleop.success_button=2",
    "episodes=1",
    "video_episodes=0",
]


class Driver:
    """The SpaceMouse's driver on an executor thread of its own; it also collects the actor's executed
    steps (an episode runs: an intervention begun during a reset would be ignored)."""

    def __init__(self, joy_topic: str):
        self.node = Node("spacenav")
        self.joy = self.node.create_publisher(Joy, joy_topic, 10)
        self.steps = []
        self.node.create_subscription(UInt8MultiArray, "steps", self.steps.append, 100)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def publish(self, axes: list[float], buttons: list[int], seconds: float, period: float = 0.05) -> None:
        for _ in range(max(1, round(seconds / period))):
            self.joy.publish(Joy(axes=[float(a) for a in axes], buttons=list(buttons)))
            time.sleep(period)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def in_background(session, *args) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(session(*args)), daemon=True)
    thread.start()
    return thread, result


def test_an_operators_episode_through_the_graph_becomes_a_demo_bag(ros, tmp_path):
    config = load_config(OVERRIDES)
    session, result = in_background(demos_on_graph, config, tmp_path, OVERRIDES)
    driver = Driver(config.teleop.joy_topic)
    try:
        wait_until(lambda: len(driver.steps) >= 3, "the actor never stepped", timeout=30.0)  # holding still
        driver.publish([0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [0, 0, 0], seconds=1.0)  # the puck pushed up (+z)
        for buttons in ([0, 0, 0], [0, 0, 1], [0, 0, 0]):  # at rest, then the success button's press
            driver.publish([0.0] * 6, buttons, seconds=0.1)
        session.join(timeout=30.0)
        assert not session.is_alive(), "the session did not end after the success button"
    finally:
        driver.close()

    assert (result["episodes"], result["successes"]) == (1, 1)
    (demo,) = read_demo_bags(tmp_path / "demos")  # the next episode, begun, is closed as cut short on shutdown
    # the operator's mark is the success label; the reward, and whether it terminates, stay the reward's
    # (here the twin's oracle: lifting the arm does not reach the goal)
    assert demo.success and demo.truncated and not demo.rewards.any()
    lifted = demo.actions[:, 2] > 0.5
    # the operator's action was executed and stored while he drove; the actor held still otherwise
    assert lifted.any() and demo.intervened[lifted].all()
    assert np.all(demo.actions[~demo.intervened][:, :6] == 0.0)
    heights = [obs["state"]["tcp_pose"][2] for obs in demo.observations]
    assert max(heights) > heights[0] + 0.05


def test_frames_through_the_graph_are_labelled_by_the_held_success_button(ros, tmp_path):
    overrides = [
        *OVERRIDES,
        "sim=fast",
        "sim.cameras=[front]",
        "reward=classifier",
        "reward.cameras=[front]",
        "hil.operator.positives=5",
        "hil.operator.negatives_per_positive=2",
    ]
    config = load_config(overrides)
    session, result = in_background(labels_on_graph, config, tmp_path, overrides)
    driver = Driver(config.teleop.joy_topic)
    try:
        wait_until(lambda: len(driver.steps) >= 3, "the actor never stepped", timeout=30.0)
        driver.publish([0.0] * 6, [0, 0, 1], seconds=1.0)  # the success button held for a second
        driver.publish([0.0] * 6, [0, 0, 0], seconds=3.0)  # released: failures until the quota is met
        session.join(timeout=30.0)
        assert not session.is_alive(), "the label session did not end at its quota"
    finally:
        driver.close()

    assert result["positives"] >= 5 and result["negatives"] >= 2 * result["positives"]
    frames, truth = load_labelled_frames(tmp_path / "labels")
    assert truth is None  # on the graph the twin's ground truth is not in the steps
    assert (
        frames.images["front"].shape[1:] == (128, 128, 3) and len(frames) == result["positives"] + result["negatives"]
    )
    # the held second is one run of successes among failures, in the order the frames came
    positives = np.flatnonzero(frames.labels)
    assert len(positives) == result["positives"] and np.all(np.diff(positives) == 1)
    assert frames.labels[0] == False and frames.labels[-1] == False  # noqa: E712 (numpy bools)
