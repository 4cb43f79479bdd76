"""The safety node: the actor's commands reach the robot's controller only through it. It forwards
actor/* to command/* clipped to the workspace box and the speed limits, and holds the arm (the
measured pose as the target, or a zero twist; the gripper stays) when it cannot act safely: a
force over its limit, a stale or broken sensor stream, a garbage command, time going backwards,
or an operator's stop. The decisions are robot_rl/robot/safety.py's SafetyFilter (its docstring
has the state machine); this node only moves messages.

Topics (relative names: one namespace per robot)
  subscribed
    tcp/pose                    geometry_msgs/PoseStamped in `base_frame`, sensor-data QoS
    ft_sensor/wrench            geometry_msgs/WrenchStamped, best effort, depth 100 (up to 1 kHz:
                                the callback checks the sample's force and torque, nothing more)
    cameras/<cam>/image_raw     sensor_msgs/Image, sensor-data QoS, for each of config.cameras:
                                only the stamp is read, to notice a camera that stops
                                (parameter lockstep, the twin in lockstep: all three RELIABLE +
                                TRANSIENT_LOCAL depth 1, so a late joiner gets the twin's latest)
    actor/target_pose           geometry_msgs/PoseStamped (config.command_interface "pose"), or
    actor/twist                 geometry_msgs/TwistStamped ("twist"), RELIABLE depth 10
    actor/gripper               std_msgs/Float64, the spec's gripper command, RELIABLE depth 10
  published
    command/target_pose or command/twist, and command/gripper: RELIABLE depth 10, stamped now
    safety/status               std_msgs/String, RELIABLE + TRANSIENT_LOCAL depth 1 (a late
                                subscriber gets the current one), on every change: "RUNNING",
                                "WAITING: <why>" or "HOLDING: <why>"
  services (std_srvs/Trigger)
    safety/stop                 hold, latched ("stopped by request")
    safety/reset                clear the latched fault if its condition is gone, else say why not
    safety/resume               move again, after a reset, if every sensor stream is fresh

Every actor message yields exactly one command message (the filtered command, or the hold in
its place, gripper 0.0), so a controller that pairs target and gripper in arrival order (the
twin in lockstep) stays paired. A watchdog timer at config.control_hz, on the node's clock (sim
time with use_sim_time), checks the streams' ages and, while holding, sends the hold again; the
hold also goes out at once when a running arm starts to hold. (With the twin in lockstep each
hold is a step, so a holding graph runs on at the twin's pace, the arm held still.) Until every
sensor stream has delivered once nothing goes out on command/*: the controller keeps the pose
it started with. A message that cannot be read (NaN, another frame, not a unit quaternion) is
counted in `bad_messages`, logged (sensor ones at most once a second per topic) and latches a
hold; the node keeps running. All callbacks share the node's default (mutually exclusive)
callback group, so the filter is never called from two threads at once.
"""

from __future__ import annotations

import time
from collections import Counter
from functools import partial

from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from robot_rl.robot.safety import RUNNING, WAITING, Command, SafetyConfig, SafetyFilter
from ros_nodes import convert
from ros_nodes.node_process import composed_config, declare, spin_node_process

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
WRENCH_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)  # a 1 kHz stream: keep a backlog
SENSOR_LOG_PERIOD = 1.0  # s between two log lines about bad sensor messages


class SafetyNode(Node):
    def __init__(self, config: SafetyConfig | None = None, **kwargs):
        super().__init__("safety", **kwargs)
        self.base_frame = declare(self, "base_frame", "panda_link0", "frame of the TCP pose and the commands")
        if config is None:
            config = composed_config(self).ros.safety
        self.filter = SafetyFilter(config)
        self.messages: Counter[str] = Counter()  # received, per topic
        self.bad_messages: Counter[str] = Counter()  # unreadable, per topic
        self.clipped_commands = 0
        self._status: str | None = None
        self._last_bad_log: dict[str, float] = {}  # topic -> time.monotonic() of its last log line

        self.status_publisher = self.create_publisher(String, "safety/status", LATCHED)
        self.interface = config.command_interface
        if self.interface == "pose":
            self.motion_publisher = self.create_publisher(PoseStamped, "command/target_pose", COMMAND_QOS)
            self.create_subscription(PoseStamped, "actor/target_pose", self._on_target, COMMAND_QOS)
        else:
            self.motion_publisher = self.create_publisher(TwistStamped, "command/twist", COMMAND_QOS)
            self.create_subscription(TwistStamped, "actor/twist", self._on_twist, COMMAND_QOS)
        self.gripper_publisher = self.create_publisher(Float64, "command/gripper", COMMAND_QOS)
        self.create_subscription(Float64, "actor/gripper", self._on_gripper, COMMAND_QOS)
        # The twin in lockstep latches its messages (transient local), which only a transient-local
        # subscriber gets when it joins late; drivers publish volatile, which such a subscriber
        # would not match.
        lockstep = declare(self, "lockstep", False, "the sensors are the twin in lockstep (latched topics)")
        sensor_qos = LATCHED if lockstep else qos_profile_sensor_data
        self.create_subscription(PoseStamped, "tcp/pose", self._on_pose, sensor_qos)
        self.create_subscription(
            WrenchStamped, "ft_sensor/wrench", self._on_wrench, LATCHED if lockstep else WRENCH_QOS
        )
        for cam in config.cameras:
            topic = f"cameras/{cam}/image_raw"
            self.create_subscription(Image, topic, partial(self._on_camera, cam, topic), sensor_qos)
        self.create_timer(1.0 / config.control_hz, self._on_tick)
        self.create_service(Trigger, "safety/stop", self._on_stop)
        self.create_service(Trigger, "safety/reset", self._on_reset)
        self.create_service(Trigger, "safety/resume", self._on_resume)
        self._report()

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    # sensors --------------------------------------------------------------------------------
    def _on_pose(self, msg: PoseStamped) -> None:
        self.messages["tcp/pose"] += 1
        try:
            pose = convert.pose_to_tcp_pose(msg, frame_id=self.base_frame)
        except ValueError as error:
            self._bad_measurement("tcp/pose", "pose", error)
        else:
            self.filter.measure_pose(pose, convert.time_ns(msg.header.stamp))
        self._after_event()

    def _on_wrench(self, msg: WrenchStamped) -> None:
        self.messages["ft_sensor/wrench"] += 1
        try:
            wrench = convert.wrench_to_array(msg)
        except ValueError as error:
            self._bad_measurement("ft_sensor/wrench", "wrench", error)
        else:
            self.filter.measure_wrench(wrench, convert.time_ns(msg.header.stamp))
        self._after_event()

    def _on_camera(self, cam: str, topic: str, msg: Image) -> None:
        self.messages[topic] += 1
        self.filter.measure_camera(cam, convert.time_ns(msg.header.stamp))
        self._after_event()

    def _bad_measurement(self, topic: str, stream: str, error: ValueError) -> None:
        self.bad_messages[topic] += 1
        self.filter.bad_measurement(stream, f"{topic}: {error}")
        now = time.monotonic()  # a broken 1 kHz stream must not flood the log: once a second per topic
        if now - self._last_bad_log.get(topic, -SENSOR_LOG_PERIOD) >= SENSOR_LOG_PERIOD:
            self._last_bad_log[topic] = now
            self.get_logger().warning(f"{topic}: message dropped ({self.bad_messages[topic]} so far): {error}")

    # commands -------------------------------------------------------------------------------
    def _on_target(self, msg: PoseStamped) -> None:
        now = self._now()
        self.messages["actor/target_pose"] += 1
        try:
            target = convert.pose_to_tcp_pose(msg, frame_id=self.base_frame)
        except ValueError as error:
            command = self._bad_command("actor/target_pose", error, now)
        else:
            command = self.filter.filter_pose(target, now)
        self._send_motion(command, now)
        self._report()

    def _on_twist(self, msg: TwistStamped) -> None:
        now = self._now()
        self.messages["actor/twist"] += 1
        try:
            twist = convert.twist_to_tcp_vel(msg, frame_id=self.base_frame)
        except ValueError as error:
            command = self._bad_command("actor/twist", error, now)
        else:
            command = self.filter.filter_twist(twist, now)
        self._send_motion(command, now)
        self._report()

    def _on_gripper(self, msg: Float64) -> None:
        now = self._now()
        self.messages["actor/gripper"] += 1
        try:
            gripper = self.filter.filter_gripper(convert.gripper_command(msg.data), now)
        except ValueError as error:
            gripper = 0.0  # the hold's: stay
            self._bad_command("actor/gripper", error, now)
        if self.filter.started:  # as the motion command: nothing before every sensor stream has started
            self.gripper_publisher.publish(Float64(data=gripper))
        self._report()

    def _bad_command(self, topic: str, error: ValueError, now: int) -> Command:
        self.bad_messages[topic] += 1
        self.get_logger().warning(f"{topic}: command dropped, holding instead: {error}")
        return self.filter.reject_command(f"{topic}: {error}", now)

    def _send_motion(self, command: Command, now: int) -> None:
        if command.value is None:
            return
        if command.clipped:
            self.clipped_commands += 1
            self.get_logger().debug(f"command clipped: {command.note}", throttle_duration_sec=SENSOR_LOG_PERIOD)
        if self.interface == "pose":
            self.motion_publisher.publish(convert.tcp_pose_to_pose(command.value, now, self.base_frame))
        else:
            self.motion_publisher.publish(convert.tcp_vel_to_twist(command.value, now, self.base_frame))

    def _send_hold(self, command: Command, now: int) -> None:
        if command.value is not None:
            self._send_motion(command, now)
            self.gripper_publisher.publish(Float64(data=0.0))

    # watchdog, status, services ---------------------------------------------------------------
    def _on_tick(self) -> None:
        now = self._now()
        hold = self.filter.tick(now)
        self._report()
        if hold is not None:
            self._send_hold(hold, now)

    def _report(self) -> bool:
        """Publish and log the status if it changed; whether it did."""
        status = self.filter.status
        if status == self._status:
            return False
        self._status = status
        self.status_publisher.publish(String(data=status))
        if self.filter.state == RUNNING:
            self.get_logger().info(f"safety: {status}")
        elif self.filter.state == WAITING:
            self.get_logger().warning(f"safety: {status}")
        else:
            self.get_logger().error(f"safety: {status}")
        return True

    def _after_event(self) -> None:
        """After a measurement or a service call: a hold that stops a running arm goes out now, not
        at the next tick."""
        was_running = self._status == RUNNING
        if self._report() and was_running and self.filter.holding:
            self._send_hold(self.filter.hold_command(), self._now())

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = True, self.filter.stop()
        self._after_event()
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.filter.reset(self._now())
        self._after_event()
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.filter.resume(self._now())
        self._after_event()
        return response


def main(args: list[str] | None = None) -> None:
    """`python -m ros_nodes.safety_node --ros-args -p 'config_overrides:=[robot=panda]' -p use_sim_time:=true`,
    inside a loopback-only network namespace unless the machine's DDS is meant to be reachable."""
    spin_node_process(SafetyNode, args)


if __name__ == "__main__":
    main()
