"""`robot-rl demos hil.operator.graph=true`: demos recorded through the graph (the twin in lockstep,
the teleop node, the recorder, an actor holding still unless the operator drives). A client plays
the SpaceMouse driver (spacenav/joy): it lifts the arm, then presses the success button. Runs only
inside a loopback-only network namespace (test_scenarios.py; see conftest.py)."""

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
from ros_nodes.graph import demos_on_graph

OVERRIDES = [
    "sim=state",
    "task=reach",
    "task.max_episode_steps=200",
    "teleop=spacemouse",
    "teleop.success_button=2",
    "episodes=1",
    "video_episodes=0",
]


def test_an_operators_episode_through_the_graph_becomes_a_demo_bag(ros, tmp_path):
    config = load_config(OVERRIDES)
    result: dict = {}
    session = threading.Thread(target=lambda: result.update(demos_on_graph(config, tmp_path, OVERRIDES)), daemon=True)
    session.start()
    driver = Node("spacenav")
    joy = driver.create_publisher(Joy, config.teleop.joy_topic, 10)
    steps = []  # the actor's executed steps: the episode runs (an intervention begun during a reset is ignored)
    driver.create_subscription(UInt8MultiArray, "steps", steps.append, 100)
    executor = SingleThreadedExecutor()
    executor.add_node(driver)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        wait_until(lambda: len(steps) >= 3, "the actor never stepped", timeout=30.0)  # holding still
        for _ in range(20):  # the puck pushed up (+z, full scale) for a second
            joy.publish(Joy(axes=[0.0, 0.0, 1.0, 0.0, 0.0, 0.0], buttons=[0, 0, 0]))
            time.sleep(0.05)
        for buttons in ([0, 0, 0], [0, 0, 1], [0, 0, 0]):  # at rest, then the success button's press
            joy.publish(Joy(axes=[0.0] * 6, buttons=buttons))
            time.sleep(0.1)
        session.join(timeout=30.0)
        assert not session.is_alive(), "the session did not end after the success button"
    finally:
        executor.shutdown()
        driver.destroy_node()

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
