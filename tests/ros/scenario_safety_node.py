"""The safety node driven over ROS 2 by a small client node in the same process (one
MultiThreadedExecutor): the client plays the robot's drivers (pose, wrench, a camera), the actor
(actor/*), the operator (the services) and the clock: the node runs on sim time that the client
publishes, so every age the watchdog sees is exact and nothing depends on the machine's speed.
Runs only inside a loopback-only network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from client import TIMEOUT, ClientNode, wait_until
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from robot_rl.robot.safety import SafetyConfig
from ros_nodes import convert
from ros_nodes.safety_node import SafetyNode
from ros_nodes.twin_node import TwinNode

BASE = "panda_link0"
HOME = np.array([0.5, 0.0, 0.2, 0.0, 1.0, 0.0, 0.0])  # TCP pointing down, inside the default box
REST = np.zeros(6)
T0 = 1_000_000_000  # ns: sim time of the first measurements
PERIOD = 100_000_000  # ns: the node's control period (10 Hz)
SENSORS = ("tcp/pose", "ft_sensor/wrench", "cameras/front/image_raw")
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Client(ClientNode):
    def __init__(self, interface: str):
        super().__init__("safety_client", log_of="safety")
        self.interface = interface
        pose = interface == "pose"
        self.motion_type, motion_topic = (PoseStamped, "target_pose") if pose else (TwistStamped, "twist")
        self.statuses: list[str] = []
        self.motions: list[np.ndarray] = []  # command/target_pose or command/twist, as arrays
        self.grippers: list[float] = []
        self.create_subscription(String, "safety/status", lambda m: self.add(self.statuses, m.data), LATCHED)
        self.create_subscription(self.motion_type, f"command/{motion_topic}", self._on_motion, RELIABLE)
        self.create_subscription(Float64, "command/gripper", lambda m: self.add(self.grippers, m.data), RELIABLE)
        self.clock = self.create_publisher(Clock, "/clock", RELIABLE)
        self.sensors = {
            "tcp/pose": self.create_publisher(PoseStamped, "tcp/pose", RELIABLE),
            "ft_sensor/wrench": self.create_publisher(WrenchStamped, "ft_sensor/wrench", RELIABLE),
            "cameras/front/image_raw": self.create_publisher(Image, "cameras/front/image_raw", RELIABLE),
        }
        self.actor = self.create_publisher(self.motion_type, f"actor/{motion_topic}", RELIABLE)
        self.actor_gripper = self.create_publisher(Float64, "actor/gripper", RELIABLE)
        self.operator = {name: self.create_client(Trigger, f"safety/{name}") for name in ("stop", "reset", "resume")}

    def _on_motion(self, msg) -> None:
        read = convert.pose_to_tcp_pose if self.interface == "pose" else convert.twist_to_tcp_vel
        self.add(self.motions, read(msg, frame_id=BASE))

    def wait_status(self, status: str) -> None:
        last_is = lambda: self.statuses and self.statuses[-1] == status  # noqa: E731
        self.wait_for(last_is, f"status {status!r} (have {self.statuses})")

    # the drivers and the clock ------------------------------------------------------------------
    def feed(self, safety: SafetyNode, t: int, pose=HOME, wrench=REST, sensors=SENSORS) -> None:
        """Publish the sensors stamped `t`, wait until the node has them, then move its clock to `t`
        (so its watchdog never sees a measurement still on the way as stale)."""
        before = {topic: safety.messages[topic] for topic in sensors}
        for topic in sensors:
            if topic == "tcp/pose":
                msg = convert.tcp_pose_to_pose(pose, t, BASE)
            elif topic == "ft_sensor/wrench":
                msg = convert.array_to_wrench(wrench, t, "panda_ft_sensor")
            else:
                msg = convert.rgb_to_image(np.zeros((2, 2, 3), np.uint8), t, "front_camera")
            self.sensors[topic].publish(msg)
        self.wait_for(lambda: all(safety.messages[k] > n for k, n in before.items()), f"the node to get {sensors}")
        self.clock.publish(Clock(clock=convert.time_msg(t)))
        self.wait_for(lambda: safety.get_clock().now().nanoseconds >= t, f"the node's clock at {t} ns")

    # the actor and the operator -------------------------------------------------------------------
    def command(self, motion: np.ndarray, gripper: float, t: int, expect: tuple | None = None) -> None:
        """Send a command as the actor does, and wait for the command/* pair it must turn into:
        `expect` (motion, gripper), by default the command itself. Matched by value, so a hold
        the watchdog sends meanwhile cannot be mistaken for it."""
        expect_motion, expect_gripper = expect if expect is not None else (motion, gripper)
        n_motions, n_grippers = len(self.motions), len(self.grippers)
        if self.interface == "pose":
            self.actor.publish(convert.tcp_pose_to_pose(motion, t, BASE))
        else:
            self.actor.publish(convert.tcp_vel_to_twist(motion, t, BASE))
        self.actor_gripper.publish(Float64(data=gripper))
        self.wait_for(
            lambda: (
                any(np.allclose(m, expect_motion, rtol=0, atol=1e-9) for m in self.motions[n_motions:])
                and expect_gripper in self.grippers[n_grippers:]
            ),
            f"the command {expect_motion}, gripper {expect_gripper} (sent since: {self.motions[n_motions:]}, "
            f"{self.grippers[n_grippers:]})",
        )

    def call(self, service: str) -> Trigger.Response:
        client = self.operator[service]
        assert client.wait_for_service(timeout_sec=TIMEOUT), f"safety/{service} is not there"
        future = client.call_async(Trigger.Request())
        self.wait_for(future.done, f"the safety/{service} response")
        return future.result()

    def wait_hold(self, after: int, expected: np.ndarray) -> None:
        """A hold command pair (motion `expected`, gripper stay) among those sent after index `after`."""
        self.wait_for(
            lambda: any(np.allclose(m, expected) for m in self.motions[after:]) and 0.0 in self.grippers[after:],
            f"the hold {expected}",
        )


@pytest.fixture
def interface() -> str:
    return "pose"


@pytest.fixture
def graph(ros, interface):
    """The safety node on sim time and the client on one MultiThreadedExecutor, spinning in a
    thread; every stream delivered at T0 and the node RUNNING."""
    config = SafetyConfig(command_interface=interface, cameras=["front"])
    safety = SafetyNode(config, parameter_overrides=[Parameter("use_sim_time", value=True)])
    client = Client(interface)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(safety)
    executor.add_node(client)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        publishers = [client.clock, client.actor, client.actor_gripper, *client.sensors.values()]
        node_publishers = [safety.motion_publisher, safety.gripper_publisher, safety.status_publisher]
        wait_until(
            lambda: all(p.get_subscription_count() >= 1 for p in publishers + node_publishers),
            "the client and the safety node never matched",
        )
        client.wait_status("WAITING: no pose, wrench, camera front received yet")
        client.feed(safety, T0)
        client.wait_status("RUNNING")
        yield safety, client
    finally:
        executor.shutdown()
        spinner.join(timeout=TIMEOUT)
        client.destroy_node()
        safety.destroy_node()


def test_commands_are_forwarded_and_clipped(graph):
    safety, client = graph
    client.command(HOME + [0.02, -0.01, 0.01, 0, 0, 0, 0], 1.0, T0)
    under_the_table = HOME - [0, 0, 0.5, 0, 0, 0, 0]
    clipped = HOME - [0, 0, 0.06, 0, 0, 0, 0]  # to the box, then at 0.6 m/s for 0.1 s
    client.command(under_the_table, -1.0, T0, expect=(clipped, -1.0))
    assert safety.clipped_commands == 1 and client.statuses[-1] == "RUNNING"
    types = dict(client.get_topic_names_and_types())
    assert types["/command/target_pose"] == ["geometry_msgs/msg/PoseStamped"]
    assert types["/safety/status"] == ["std_msgs/msg/String"]


def test_force_over_the_limit_holds_until_reset_and_resume(graph):
    safety, client = graph
    sent = len(client.motions)
    client.feed(safety, T0 + PERIOD, wrench=[0.0, 0.0, 85.2, 0.0, 0.0, 0.0])
    client.wait_status("HOLDING: wrench force 85.2 N > 60.0 N")
    client.wait_hold(sent, HOME)
    client.wait_for(lambda: "safety: HOLDING: wrench force 85.2 N > 60.0 N" in client.log, "the log line")
    moved = HOME + [0.03, 0, 0, 0, 0, 0, 0]
    client.command(moved, 1.0, T0 + PERIOD, expect=(HOME, 0.0))  # the actor's command: replaced by the hold

    response = client.call("resume")
    assert not response.success and response.message.startswith("reset first")
    response = client.call("reset")
    assert not response.success and "wrench force 85.2 N > 60.0 N" in response.message
    client.feed(safety, T0 + 2 * PERIOD)
    assert client.call("reset").success
    client.wait_status("HOLDING: reset; waiting for resume")
    assert client.call("resume").success
    client.wait_status("RUNNING")
    assert not any(np.allclose(m, moved) for m in client.motions), "a command went through while holding"
    client.command(moved, 1.0, T0 + 2 * PERIOD)


def test_stale_pose_holds_at_the_last_measured_pose(graph):
    safety, client = graph
    sent = len(client.motions)
    for step in (1, 2, 3):
        client.feed(safety, T0 + step * PERIOD, sensors=SENSORS[1:])  # the wrench and the camera go on
    client.wait_status("HOLDING: pose stale: 0.300 s old > 0.250 s")
    client.wait_hold(sent, HOME)
    response = client.call("reset")
    assert not response.success and "pose stale" in response.message
    client.feed(safety, T0 + 4 * PERIOD)
    assert client.call("reset").success and client.call("resume").success
    client.wait_status("RUNNING")


def test_stop_reset_resume_services(graph):
    safety, client = graph
    response = client.call("stop")
    assert response.success and response.message == "HOLDING: stopped by request"
    client.wait_status("HOLDING: stopped by request")
    moved = HOME + [0, 0.03, 0, 0, 0, 0, 0]
    client.command(moved, -1.0, T0, expect=(HOME, 0.0))
    assert client.call("resume").message == "reset first: HOLDING: stopped by request"
    assert client.call("reset").success
    client.wait_status("HOLDING: reset; waiting for resume")
    response = client.call("resume")
    assert response.success and response.message == "RUNNING"
    client.wait_status("RUNNING")
    assert not any(np.allclose(m, moved) for m in client.motions), "a command went through while holding"
    client.command(moved, -1.0, T0)


def test_garbage_is_dropped_logged_and_held_and_the_node_goes_on(graph):
    safety, client = graph
    client.command(np.array([np.nan, *HOME[1:]]), 1.0, T0, expect=(HOME, 0.0))  # the hold in its place
    reason = "actor/target_pose: PoseStamped.pose.position.x is nan"
    client.wait_status(f"HOLDING: {reason}")
    client.wait_for(lambda: any("command dropped, holding instead" in line for line in client.log), "the log")
    assert safety.bad_messages["actor/target_pose"] == 1
    assert client.call("reset").success and client.call("resume").success

    # a NaN wrench and a pose in another frame: counted, logged, held
    wrench = convert.array_to_wrench(REST, T0, "panda_ft_sensor")
    wrench.wrench.force.y = float("nan")
    client.sensors["ft_sensor/wrench"].publish(wrench)
    client.wait_status("HOLDING: ft_sensor/wrench: WrenchStamped.wrench.force.y is nan")
    client.sensors["tcp/pose"].publish(convert.tcp_pose_to_pose(HOME, T0, "world"))
    client.wait_for(lambda: safety.bad_messages["tcp/pose"] == 1, "the bad pose counted")
    client.wait_for(lambda: any(line.startswith("tcp/pose: message dropped") for line in client.log), "its log")
    assert safety.bad_messages["ft_sensor/wrench"] == 1
    dropped = "ft_sensor/wrench: message dropped (1 so far): WrenchStamped.wrench.force.y is nan"
    client.wait_for(lambda: dropped in client.log, "the log line")
    response = client.call("reset")
    assert not response.success and "frame_id is 'world'" in response.message, response.message

    client.feed(safety, T0 + PERIOD)
    assert client.call("reset").success and client.call("resume").success
    client.command(HOME + [0, 0, 0.02, 0, 0, 0, 0], 0.0, T0 + PERIOD)


@pytest.mark.parametrize("interface", ["twist"])
def test_twist_interface_clips_and_holds_with_zero_twist(graph):
    safety, client = graph
    client.command(np.array([0.1, 0, 0, 0, 0, 0.5]), 1.0, T0)
    client.command(np.array([2.0, 0, 0, 0, 0, 0]), 1.0, T0, expect=(np.array([0.6, 0, 0, 0, 0, 0]), 1.0))
    sent = len(client.motions)
    client.feed(safety, T0 + PERIOD, wrench=[0.0, 0.0, 0.0, 0.0, 0.0, 9.0])
    client.wait_status("HOLDING: wrench torque 9.00 Nm > 6.00 Nm")
    client.wait_hold(sent, np.zeros(6))
    types = dict(client.get_topic_names_and_types())
    assert types["/command/twist"] == ["geometry_msgs/msg/TwistStamped"] and "/command/target_pose" not in types


# with the twin in lockstep ---------------------------------------------------------------------
class TwinActor(ClientNode):
    """The actor's side against the real twin node: target poses and gripper commands on actor/*,
    the twin's TCP pose and the safety status back."""

    def __init__(self):
        super().__init__("twin_actor")
        self.poses: list[tuple[int, np.ndarray]] = []  # (stamp, tcp pose)
        self.statuses: list[str] = []
        self.create_subscription(PoseStamped, "tcp/pose", self._on_pose, LATCHED)
        self.create_subscription(String, "safety/status", lambda m: self.add(self.statuses, m.data), LATCHED)
        self.target = self.create_publisher(PoseStamped, "actor/target_pose", RELIABLE)
        self.gripper = self.create_publisher(Float64, "actor/gripper", RELIABLE)
        self.reset_twin = self.create_client(Trigger, "sim_twin/reset")

    def _on_pose(self, msg: PoseStamped) -> None:
        self.add(self.poses, (convert.time_ns(msg.header.stamp), convert.pose_to_tcp_pose(msg, frame_id=BASE)))

    def act(self, target: np.ndarray) -> np.ndarray:
        """Send a target as the actor does; the twin's next TCP pose."""
        stamp = self.poses[-1][0]
        self.target.publish(convert.tcp_pose_to_pose(target, stamp, BASE))
        self.gripper.publish(Float64(data=0.0))
        self.wait_for(lambda: self.poses[-1][0] > stamp, "the twin's next pose")
        return self.poses[-1][1]


def test_with_the_twin_in_lockstep(ros):
    """The graph's own wiring: actor -> safety -> twin. Commands step the twin through the safety
    node one for one; driving the hand into the table holds it there, the twin still paired."""
    twin = TwinNode(
        parameter_overrides=[
            Parameter("config_overrides", value=["task=reach", "sim=state"]),
            Parameter("seed", value=0),
        ]
    )
    safety = SafetyNode(SafetyConfig(max_force=20.0), parameter_overrides=[Parameter("use_sim_time", value=True)])
    actor = TwinActor()
    executor = MultiThreadedExecutor(num_threads=3)
    for node in (twin, safety, actor):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        publishers = [actor.target, actor.gripper, safety.motion_publisher, safety.gripper_publisher]
        sensors = [sub for sub in safety.subscriptions if sub.topic_name in ("/tcp/pose", "/ft_sensor/wrench")]
        wait_until(
            lambda: (
                all(p.get_subscription_count() >= 1 for p in publishers)
                and all(sub.get_publisher_count() >= 1 for sub in sensors)
            ),
            "the twin, the safety node and the actor never matched",
        )
        # the twin's start-up observation went out before the safety node listened: a reset
        # publishes the next one, as the actor's first reset does in the graph
        assert actor.reset_twin.wait_for_service(timeout_sec=TIMEOUT)
        actor.wait_for(actor.reset_twin.call_async(Trigger.Request()).done, "the twin's reset")
        actor.wait_for(lambda: actor.statuses and actor.statuses[-1] == "RUNNING", "RUNNING")

        start = actor.poses[-1][1]
        pose = actor.act(start + [0.02, 0, 0, 0, 0, 0, 0])
        assert pose[0] > start[0] + 0.005, "the command went through the safety node to the twin"
        for _ in range(30):
            pose = actor.act(pose - [0, 0, 0.03, 0, 0, 0, 0])
            if actor.statuses[-1] != "RUNNING":
                break
        actor.wait_for(lambda: actor.statuses[-1].startswith("HOLDING: wrench force"), "the hold on the table")
        held = actor.poses[-1][0]
        actor.wait_for(lambda: actor.poses[-1][0] >= held + 5 * PERIOD, "the twin stepping on the holds")
        assert abs(actor.poses[-1][1][2] - pose[2]) < 0.005, "held at the table"
        assert twin.rejected_commands == 0
    finally:
        executor.shutdown()
        spinner.join(timeout=TIMEOUT)
        for node in (actor, safety, twin):
            node.destroy_node()
