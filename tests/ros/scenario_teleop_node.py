"""The teleop node driven over ROS 2 by a small client node in the same process (one
MultiThreadedExecutor): the client plays the device's driver (spacenav's Joy or Twist), the actor
(reading teleop/*) and the clock: the node runs on sim time that the client publishes, so its
timeouts see exact ages and nothing depends on the machine's speed. The keyboard goes through a
pty. Runs only inside a loopback-only network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import numpy as np
import pytest
from client import ROSOUT_LATCHED, TIMEOUT, ClientNode, wait_until
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool, Empty, Float32MultiArray

from robot_rl.robot.teleop import TeleopConfig
from ros_nodes import convert
from ros_nodes.teleop_node import TeleopNode

S = 1_000_000_000  # ns per s
T0 = S  # sim time of the first input
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
REST = [0.0] * 6
# a gamepad-like mapping: hold button 4 to intervene; 0 closes, 1 opens, 2 success, 3 ends the episode
DEADMAN_JOY = TeleopConfig(deadband=0.0, deadman_button=4, success_button=2, end_episode_button=3)


class Client(ClientNode):
    def __init__(self, config: TeleopConfig):
        super().__init__("teleop_client", log_of="teleop", log_qos=ROSOUT_LATCHED)
        self.actions: list[np.ndarray] = []
        self.intervening: list[bool] = []
        self.events: list[str] = []
        self.create_subscription(Float32MultiArray, "teleop/action", self._on_action, RELIABLE)
        self.create_subscription(Bool, "teleop/intervening", lambda m: self.add(self.intervening, m.data), LATCHED)
        self.create_subscription(Empty, "teleop/success", lambda _: self.add(self.events, "success"), RELIABLE)
        self.create_subscription(Empty, "teleop/end_episode", lambda _: self.add(self.events, "end"), RELIABLE)
        self.clock = self.create_publisher(Clock, "/clock", RELIABLE)
        # the device's driver (one type per topic and node: Twist or TwistStamped)
        self.device = None
        if config.device == "joy":
            self.device = self.create_publisher(Joy, config.joy_topic, RELIABLE)
        elif config.device == "twist":
            kind = TwistStamped if config.twist_stamped else Twist
            self.device = self.create_publisher(kind, config.twist_topic, RELIABLE)

    def _on_action(self, msg: Float32MultiArray) -> None:
        self.add(self.actions, np.array(msg.data, np.float32))

    def set_time(self, teleop: TeleopNode, t: int) -> None:
        self.clock.publish(Clock(clock=convert.time_msg(t)))
        self.wait_for(lambda: teleop.get_clock().now().nanoseconds >= t, f"the node's clock at {t} ns")

    def wait_action(self, expected, after: int) -> None:
        """An action equal to `expected` among those published after index `after`."""
        self.wait_for(
            lambda: any(np.allclose(a, expected, atol=1e-6) for a in self.actions[after:]),
            f"the action {expected} (have {self.actions[after:]})",
        )

    def wait_intervening(self, value: bool) -> None:
        self.wait_for(lambda: self.intervening and self.intervening[-1] == value, f"intervening {value}")

    def send_joy(self, axes, buttons, expected_action=None) -> None:
        """Publish a Joy; with `expected_action`, wait until the node has published that action."""
        after = len(self.actions)
        self.device.publish(Joy(axes=[float(a) for a in axes], buttons=list(buttons)))
        if expected_action is not None:
            self.wait_action(expected_action, after)


@pytest.fixture
def start(ros):
    """start(config, keyboard_fd=None): the teleop node on sim time and the client on one
    MultiThreadedExecutor spinning in a thread, matched, the clock at T0."""
    running = []

    def start(config: TeleopConfig, keyboard_fd: int | None = None) -> tuple[TeleopNode, Client]:
        teleop = TeleopNode(config, keyboard_fd, parameter_overrides=[Parameter("use_sim_time", value=True)])
        client = Client(config)
        executor = MultiThreadedExecutor(num_threads=2)
        executor.add_node(teleop)
        executor.add_node(client)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        running.append((executor, spinner, teleop, client))
        publishers = [client.clock] + ([client.device] if client.device is not None else [])
        node_publishers = [
            teleop.action_publisher,
            teleop.intervening_publisher,
            teleop.success_publisher,
            teleop.end_episode_publisher,
        ]
        wait_until(
            lambda: all(p.get_subscription_count() >= 1 for p in publishers + node_publishers),
            "the client and the teleop node never matched",
        )
        client.wait_intervening(False)  # latched at start
        client.set_time(teleop, T0)
        return teleop, client

    yield start
    for executor, spinner, teleop, client in running:
        executor.shutdown()
        spinner.join(timeout=TIMEOUT)
        client.destroy_node()
        teleop.destroy_node()


def test_joy_deadman_intervention_gripper_and_events(start):
    teleop, client = start(DEADMAN_JOY)
    client.send_joy([0.5, 0, 0, 0, 0, -0.25], [0, 0, 0, 0, 0], expected_action=[0.5, 0, 0, 0, 0, -0.25, 0])
    assert client.intervening == [False]  # moving without the deadman does not take over

    client.send_joy([0.5, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1], expected_action=[0.5, 0, 0, 0, 0, 0, 0])
    client.wait_intervening(True)
    client.send_joy([0, 0, -1.0, 0, 0, 0], [1, 0, 0, 0, 1], expected_action=[0, 0, -1, 0, 0, 0, 1])  # close

    client.send_joy(REST, [0, 0, 1, 0, 1])  # success pressed
    client.wait_for(lambda: client.events == ["success"], "one success")
    client.send_joy(REST, [0, 0, 0, 1, 1])  # end of episode pressed
    client.wait_for(lambda: client.events == ["success", "end"], "one end of episode")
    assert client.wait_log("operator: success") and client.wait_log("operator: end of episode")

    client.send_joy(REST, [0, 0, 0, 0, 0])  # deadman released
    client.wait_intervening(False)
    assert client.wait_log("intervention ended")
    types = dict(client.get_topic_names_and_types())
    assert types["/teleop/action"] == ["std_msgs/msg/Float32MultiArray"]
    assert types["/teleop/intervening"] == ["std_msgs/msg/Bool"]


def test_intervening_is_republished_at_the_control_rate(start):
    teleop, client = start(DEADMAN_JOY)
    client.send_joy([0.2, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1], expected_action=[0.2, 0, 0, 0, 0, 0, 0])
    client.wait_intervening(True)
    for k in range(1, 4):  # every tick while intervening: the flag and the action again
        n_flags, n_actions = len(client.intervening), len(client.actions)
        client.set_time(teleop, T0 + k * S // 10)
        client.wait_for(lambda n=n_flags: len(client.intervening) > n, f"the flag at tick {k}")
        client.wait_action([0.2, 0, 0, 0, 0, 0, 0], n_actions)
    assert all(client.intervening[1:])


def test_a_silent_device_ends_the_intervention(start):
    teleop, client = start(TeleopConfig(deadband=0.0, device_timeout_s=0.5))  # the SpaceMouse default: no deadman
    client.send_joy([0, 0.8, 0, 0, 0, 0], [0, 0], expected_action=[0, 0.8, 0, 0, 0, 0, 0])
    client.wait_intervening(True)
    client.set_time(teleop, T0 + S // 2)  # 0.5 s: not yet
    client.set_time(teleop, T0 + 6 * S // 10)  # the driver died mid-motion: nothing since T0
    client.wait_intervening(False)
    assert client.wait_log("teleop device silent for 0.60 s: intervention ended")
    # it comes back
    client.send_joy([0, 0.8, 0, 0, 0, 0], [0, 0], expected_action=[0, 0.8, 0, 0, 0, 0, 0])
    client.wait_intervening(True)


def test_bad_input_is_logged_and_the_node_keeps_running(start):
    teleop, client = start(replace(DEADMAN_JOY, axes=[0, 1, 2, 3, 4, 6]))
    client.send_joy([float("nan"), 0.5, 0, 0, 0, 0, float("inf")], [], expected_action=[0, 0.5, 0, 0, 0, 0, 0])
    assert client.wait_log("teleop input: non-finite Joy.axes[0], Joy.axes[6] read as 0")
    assert teleop.nonfinite_values == 2

    client.send_joy([1e30, 0, 0, 0, 0, 0, -7.0], [], expected_action=[1, 0, 0, 0, 0, -1, 0])
    assert client.wait_log("teleop input beyond full scale, clipped: Joy.axes[0]=1e+30, Joy.axes[6]=-7")

    client.send_joy([0.1] * 6, [])  # one axis short of the mapping
    assert client.wait_log("spacenav/joy: message dropped (1 so far): Joy.axes has 6 entries; teleop.axes reads axis 6")
    assert teleop.bad_messages["spacenav/joy"] == 1

    client.send_joy([0.3, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1], expected_action=[0.3, 0, 0, 0, 0, 0, 0])
    client.wait_intervening(True)  # still running, still taking over


@pytest.mark.parametrize("stamped", [False, True], ids=["Twist", "TwistStamped"])
def test_twist_input(start, stamped):
    config = TeleopConfig(device="twist", twist_stamped=stamped, deadband=0.0, idle_release_s=0.2)
    teleop, client = start(config)
    twist = Twist()
    twist.linear.x, twist.angular.z = 0.15, -0.75  # half the default full scale (0.3 m/s, 1.5 rad/s)
    after = len(client.actions)
    client.device.publish(TwistStamped(twist=twist) if stamped else twist)
    client.wait_action([0.5, 0, 0, 0, 0, -0.5, 0], after)
    client.wait_intervening(True)

    after = len(client.actions)
    client.device.publish(TwistStamped() if stamped else Twist())
    client.wait_action([0.0] * 7, after)
    client.set_time(teleop, T0 + S // 10)
    client.set_time(teleop, T0 + 3 * S // 10)  # at rest for 0.2 s: control goes back to the policy
    client.wait_intervening(False)


@pytest.fixture
def pty():
    """A pseudo-terminal (master, slave), closed after the node that reads it is gone: a test asks
    for it before `start`, so it is torn down after it."""
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def test_keyboard_through_a_pty(pty, start):
    master, slave = pty
    teleop, client = start(TeleopConfig(device="keyboard"), keyboard_fd=slave)
    assert client.wait_log("keyboard teleop (w: +x, s: -x, a: +y")  # the key map, for the operator
    os.write(master, b"t")
    client.wait_intervening(True)
    after = len(client.actions)
    os.write(master, b"w")
    client.wait_action([1, 0, 0, 0, 0, 0, 0], after)
    client.set_time(teleop, T0 + S // 2)  # w's motion has run out (0.4 s); the intervention has not
    after = len(client.actions)
    os.write(master, b"\x1b[D")  # left arrow: +y
    client.wait_action([0, 1, 0, 0, 0, 0, 0], after)
    os.write(master, b"\r")
    client.wait_for(lambda: client.events == ["success"], "a success from Enter")
    os.write(master, b"t")
    client.wait_intervening(False)
