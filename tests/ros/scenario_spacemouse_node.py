"""The spacemouse node with a fake HID device that plays recorded reports, beside a small client
node in one MultiThreadedExecutor: what the teleop node would read on spacenav/joy and
spacenav/twist, through an unplug and a replug, and on through the teleop mapping to the spec's
action. Runs only inside a loopback-only network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
import pytest
from client import ROSOUT_LATCHED, TIMEOUT, ClientNode, wait_until
from geometry_msgs.msg import Twist
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Joy

from hardware.spacemouse import find_model
from hardware.spacemouse_node import SpaceMouseNode
from robot_rl.robot.teleop import TeleopConfig, TeleopMapper

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
SPACE_NAVIGATOR = find_model(0x046D, 0xC626)
# A SpaceNavigator's reports (hex: report id, then little-endian int16 counts; full scale 350)
TRANSLATION = "01 4600 51ff a2fe"  # HID x 70, y -175, z -350 -> ROS x 0.5, y -0.2, z 1.0
ROTATION = "02 2300 0000 97ff"  # HID rx 35, ry 0, rz -105 -> ROS rx 0.0, ry -0.1, rz 0.3
LEFT_BUTTON = "03 01 00"
AXES = [0.5, -0.2, 1.0, 0.0, -0.1, 0.3]
REST = [0.0] * 6


class FakeDevice:
    """Plays the reports it is given, blocking in read() as hidapi does; OSError once unplugged."""

    def __init__(self):
        self._reports: deque[bytes] = deque()
        self._changed = threading.Condition()
        self._unplugged = False

    def play(self, *reports: str) -> None:
        with self._changed:
            self._reports.extend(bytes.fromhex(text) for text in reports)
            self._changed.notify_all()

    def unplug(self) -> None:
        with self._changed:
            self._unplugged = True
            self._changed.notify_all()

    def read(self, size: int, timeout_ms: int) -> list[int]:
        with self._changed:
            self._changed.wait_for(lambda: self._reports or self._unplugged, timeout_ms / 1000)
            if self._unplugged:
                raise OSError("read error")
            return list(self._reports.popleft())[:size] if self._reports else []

    def close(self) -> None:
        pass


class FakePort:
    """The node's device opener: whatever device is plugged in."""

    def __init__(self):
        self.device: FakeDevice | None = None

    def __call__(self):
        device = self.device
        if device is None:
            raise FileNotFoundError("no known SpaceMouse connected")
        return device, SPACE_NAVIGATOR

    def plug(self) -> FakeDevice:
        self.device = FakeDevice()
        return self.device

    def unplug(self) -> None:
        device, self.device = self.device, None
        device.unplug()


class Client(ClientNode):
    """The teleop node's view: spacenav/joy, spacenav/twist, and the spacemouse node's log."""

    def __init__(self):
        super().__init__("spacemouse_client", log_of="spacemouse", log_qos=ROSOUT_LATCHED)
        self.joys: list[Joy] = []
        self.twists: list[Twist] = []
        self.create_subscription(Joy, "spacenav/joy", lambda m: self.add(self.joys, m), RELIABLE)
        self.create_subscription(Twist, "spacenav/twist", lambda m: self.add(self.twists, m), RELIABLE)

    def wait_joy(self, axes, buttons, after: int = 0) -> Joy:
        """The first Joy after index `after` with these axes and buttons."""

        def match():
            return next(
                (
                    m
                    for m in self.joys[after:]
                    if np.allclose(m.axes, axes, atol=1e-6) and list(m.buttons) == list(buttons)
                ),
                None,
            )

        return self.wait_for(match, f"a Joy with axes {axes}, buttons {buttons}")

    def wait_twist(self, axes, after: int = 0) -> Twist:
        def match():
            return next((m for m in self.twists[after:] if np.allclose(twist_values(m), axes, atol=1e-6)), None)

        return self.wait_for(match, f"a Twist of {axes}")


def twist_values(msg: Twist) -> list[float]:
    v, w = msg.linear, msg.angular
    return [v.x, v.y, v.z, w.x, w.y, w.z]


@pytest.fixture
def running(ros):
    """The spacemouse node (100 Hz, reopening every 50 ms) with a SpaceNavigator plugged into its
    fake port, and the client, spinning on one executor, matched."""
    port = FakePort()
    port.plug()
    parameters = [
        Parameter("rate_hz", value=100.0),
        Parameter("reconnect_period_s", value=0.05),
        Parameter("deflection_timeout_s", value=60.0),  # the fake does not repeat reports as a held puck does
    ]
    node = SpaceMouseNode(open_device=port, parameter_overrides=parameters)
    client = Client()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    executor.add_node(client)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    wait_until(
        lambda: node.joy_publisher.get_subscription_count() >= 1 and node.twist_publisher.get_subscription_count() >= 1,
        "the client and the spacemouse node never matched",
    )
    yield node, client, port
    executor.shutdown()
    spinner.join(timeout=TIMEOUT)
    client.destroy_node()
    node.destroy_node()


def test_reports_become_joy_and_twist_and_the_teleop_action(running):
    node, client, port = running
    assert client.wait_log("SpaceNavigator (046d:c626) connected")
    client.wait_joy(REST, [0, 0])  # at rest before any report
    port.device.play(TRANSLATION, ROTATION, LEFT_BUTTON)
    joy = client.wait_joy(AXES, [1, 0])
    client.wait_twist(AXES)
    assert joy.header.frame_id == "spacemouse"
    types = dict(client.get_topic_names_and_types())
    assert types["/spacenav/joy"] == ["sensor_msgs/msg/Joy"] and types["/spacenav/twist"] == ["geometry_msgs/msg/Twist"]

    # the teleop node's mapping, configured as configs/teleop/spacemouse.yaml sets it (the schema's
    # defaults: deadband 0.05, left button closes the gripper)
    mapper = TeleopMapper(TeleopConfig(device="joy", joy_topic="spacenav/joy"))
    output = mapper.on_joy(joy.axes, joy.buttons, now=1_000_000_000)
    deflected = [(0.5 - 0.05) / 0.95, -(0.2 - 0.05) / 0.95, 1.0, 0.0, -(0.1 - 0.05) / 0.95, (0.3 - 0.05) / 0.95]
    np.testing.assert_allclose(output.action, [*deflected, 1.0], atol=1e-6)  # moving, gripper closing
    assert output.intervening


def test_unplug_publishes_rest_and_replug_resumes(running):
    node, client, port = running
    port.device.play(TRANSLATION, ROTATION, LEFT_BUTTON)
    client.wait_joy(AXES, [1, 0])

    port.unplug()
    assert client.wait_log("SpaceNavigator disconnected (read error): at rest")
    after = len(client.joys)
    client.wait_joy(REST, [0, 0], after)
    client.wait_twist(REST, len(client.twists))
    after = len(client.joys)
    client.wait_for(lambda: len(client.joys) >= after + 10, "the node to go on publishing while unplugged")
    assert all(list(m.axes) == REST and list(m.buttons) == [0, 0] for m in client.joys[after:])
    assert not node.reader.connected
    assert client.wait_log("no SpaceMouse opened (no known SpaceMouse connected)")  # the first retry

    device = port.plug()
    assert client.wait_log("SpaceNavigator (046d:c626) connected", count=2)
    device.play(ROTATION, LEFT_BUTTON)
    after = len(client.joys)
    client.wait_joy([0, 0, 0, 0.0, -0.1, 0.3], [1, 0], after)
    client.wait_twist([0, 0, 0, 0.0, -0.1, 0.3], len(client.twists))
    assert (node.reader.connects, node.reader.disconnects) == (2, 1)
