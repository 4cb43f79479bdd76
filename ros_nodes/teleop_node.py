"""The teleop node: an operator's SpaceMouse, gamepad or keyboard as the spec's action, the
intervention flag and the episode's success / end marks, for the actor (which executes the
operator's action while the flag is up) and the recorder. The mapping is robot_rl/robot/teleop.py's
TeleopMapper (its docstring has the rules: axes, deadband, deadman, gripper, timeouts, key map);
this node only moves messages.

Topics (relative names: one namespace per robot; remap the device's topic into it)
  subscribed, by config.device (RELIABLE depth 10, as joy_node and spacenav publish: a button
  press is not to be lost)
    joy        <config.joy_topic>    sensor_msgs/Joy (spacenav/joy by default; joy_node's joy)
    twist      <config.twist_topic>  geometry_msgs/Twist, or TwistStamped with config.twist_stamped
    keyboard   no topic: the terminal on stdin (KeyboardReader), which must be a TTY
  and always
    command/gripper      std_msgs/Float64, RELIABLE depth 10: the robot's gripper commands (the
                         policy's too), so the keyboard's gripper toggle flips the real one
  published
    teleop/action        std_msgs/Float32MultiArray, the 7-D action in [-1, 1], RELIABLE depth 10:
                         on every input, and at config.rate_hz while intervening
    teleop/intervening   std_msgs/Bool, RELIABLE + TRANSIENT_LOCAL depth 1 (a late subscriber
                         gets the current one): false at start, then on every change and at
                         config.rate_hz while intervening. When an input starts an intervention,
                         its action goes out before the flag, so the actor has it when it switches.
    teleop/success       std_msgs/Empty, RELIABLE depth 10, once per press
    teleop/end_episode   std_msgs/Empty, likewise
    teleop/success_held  std_msgs/Bool, RELIABLE depth 10, at config.rate_hz: the success button is
                         held (a key: pressed within key_motion_s), what labelling stores per frame

A timer at config.rate_hz on the node's clock (wall time, or sim time with use_sim_time) lets the
mapper's timeouts pass: a device silent for config.device_timeout_s while intervening ends the
intervention, logged as "teleop device silent for X s: intervention ended". A message the mapper
cannot read (too few Joy axes) is dropped, counted in `bad_messages` and logged; NaN/inf input
(read as 0) and input beyond full scale (clipped) are counted and logged; at most once a second
each, and the node keeps running. The keyboard's thread and the executor's share one lock.
"""

from __future__ import annotations

import threading
from collections import Counter

from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool, Empty, Float32MultiArray, Float64

from robot_rl.robot.teleop import KeyboardReader, TeleopConfig, TeleopMapper, TeleopOutput
from ros_nodes.node_process import composed_config, spin_node_process

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LOG_PERIOD = 1.0  # s between two log lines about bad device input


class TeleopNode(Node):
    def __init__(self, config: TeleopConfig | None = None, keyboard_fd: int | None = None, **kwargs):
        """`keyboard_fd`: the terminal the keyboard device reads (stdin by default)."""
        super().__init__("teleop", **kwargs)
        if config is None:
            config = composed_config(self).teleop
        self.config = config
        self.mapper = TeleopMapper(config)
        self.bad_messages: Counter[str] = Counter()  # dropped, per input
        self.nonfinite_values = 0  # NaN/inf axis values read as 0
        self.out_of_range_values = 0  # values beyond full scale, clipped
        self._lock = threading.Lock()  # the mapper and the flag: the executor's and the keyboard's threads
        self._published_intervening: bool | None = None

        self.action_publisher = self.create_publisher(Float32MultiArray, "teleop/action", COMMAND_QOS)
        self.intervening_publisher = self.create_publisher(Bool, "teleop/intervening", LATCHED)
        self.success_publisher = self.create_publisher(Empty, "teleop/success", COMMAND_QOS)
        self.end_episode_publisher = self.create_publisher(Empty, "teleop/end_episode", COMMAND_QOS)
        self.success_held_publisher = self.create_publisher(Bool, "teleop/success_held", COMMAND_QOS)
        self.create_subscription(Float64, "command/gripper", self._on_gripper_command, COMMAND_QOS)
        if config.device == "joy":
            self.create_subscription(Joy, config.joy_topic, self._on_joy, COMMAND_QOS)
        elif config.device == "twist":
            kind = TwistStamped if config.twist_stamped else Twist
            self.create_subscription(kind, config.twist_topic, self._on_twist, COMMAND_QOS)
        self.create_timer(1.0 / config.rate_hz, self._on_tick)
        self._publish_intervening(False)

        self.keyboard: KeyboardReader | None = None
        if config.device == "keyboard":
            self.keyboard = KeyboardReader(self._on_key, keyboard_fd, on_close=self._on_keyboard_closed)
            self.keyboard.start()
            bindings = ", ".join(f"{key}: {action}" for key, action in config.keys.items())
            self.get_logger().info(f"keyboard teleop ({bindings}); Ctrl-C quits")

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    # inputs ---------------------------------------------------------------------------------------
    def _on_joy(self, msg: Joy) -> None:
        with self._lock:
            try:
                output = self.mapper.on_joy(msg.axes, msg.buttons, self._now())
            except ValueError as error:
                self._drop(self.config.joy_topic, error)
                return
            self._publish(output, from_input=True)

    def _on_twist(self, msg: Twist | TwistStamped) -> None:
        twist = msg.twist if isinstance(msg, TwistStamped) else msg
        values = [twist.linear.x, twist.linear.y, twist.linear.z, twist.angular.x, twist.angular.y, twist.angular.z]
        with self._lock:
            self._publish(self.mapper.on_twist(values, self._now()), from_input=True)

    def _on_key(self, key: str) -> None:  # on the keyboard's thread
        if key not in self.config.keys:
            self.get_logger().debug(f"key {key!r} is not bound")
            return
        with self._lock:
            self._publish(self.mapper.on_key(key, self._now()), from_input=True)

    def _on_keyboard_closed(self) -> None:
        self.get_logger().error("keyboard teleop: the terminal closed; no more key presses")

    def _on_gripper_command(self, msg: Float64) -> None:
        with self._lock:
            self.mapper.observe_gripper_command(msg.data)

    def _on_tick(self) -> None:
        with self._lock:
            output = self.mapper.tick(self._now())
            self._publish(output, from_input=False)
            self.success_held_publisher.publish(Bool(data=output.success_held))

    def _drop(self, topic: str, error: ValueError) -> None:
        self.bad_messages[topic] += 1
        self.get_logger().warning(
            f"{topic}: message dropped ({self.bad_messages[topic]} so far): {error}", throttle_duration_sec=LOG_PERIOD
        )

    # outputs --------------------------------------------------------------------------------------
    def _publish(self, output: TeleopOutput, from_input: bool) -> None:
        self._log_input(output)
        if from_input or output.intervening:
            self.action_publisher.publish(Float32MultiArray(data=output.action.tolist()))
        if output.intervening or output.intervening != self._published_intervening:
            self._publish_intervening(output.intervening)
        if output.success:
            self.success_publisher.publish(Empty())
            self.get_logger().info("operator: success")
        if output.end_episode:
            self.end_episode_publisher.publish(Empty())
            self.get_logger().info("operator: end of episode")

    def _publish_intervening(self, intervening: bool) -> None:
        if self._published_intervening is not None and intervening != self._published_intervening:
            self.get_logger().info("intervention started" if intervening else "intervention ended")
        self._published_intervening = intervening
        self.intervening_publisher.publish(Bool(data=intervening))

    def _log_input(self, output: TeleopOutput) -> None:
        if output.nonfinite:
            self.nonfinite_values += len(output.nonfinite)
            self.get_logger().warning(
                f"teleop input: non-finite {', '.join(output.nonfinite)} read as 0 "
                f"({self.nonfinite_values} such values so far)",
                throttle_duration_sec=LOG_PERIOD,
            )
        if output.out_of_range:
            self.out_of_range_values += len(output.out_of_range)
            self.get_logger().warning(
                f"teleop input beyond full scale, clipped: {', '.join(output.out_of_range)} "
                f"({self.out_of_range_values} such values so far)",
                throttle_duration_sec=LOG_PERIOD,
            )
        if output.note:
            self.get_logger().warning(output.note)

    def destroy_node(self) -> None:
        if self.keyboard is not None:
            self.keyboard.stop()  # gives the terminal its mode back
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`python -m ros_nodes.teleop_node --ros-args -p 'config_overrides:=[teleop=keyboard]'` (default: a
    SpaceMouse on spacenav/joy), inside a loopback-only network namespace unless the machine's DDS is
    meant to be reachable."""
    spin_node_process(TeleopNode, args)


if __name__ == "__main__":
    main()
