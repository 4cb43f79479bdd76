"""The sensor aggregator: camera frames, the F/T wrench and the robot state in, one spec observation
per control tick out. The logic (crop/resize, the wrench ring buffer and its statistic, staleness,
the two tick modes, the counters) is robot_rl/robot/aggregator.py's; this node subscribes,
converts (ros_nodes/convert.py), feeds it and publishes what it returns.

Topics (relative names: one namespace per robot)
  subscribed
    cameras/<cam>/image_raw              sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8, any
                                         row stride), or with the camera's `compressed`:
    cameras/<cam>/image_raw/compressed   sensor_msgs/CompressedImage (jpeg, png)
    ft_sensor/wrench                     geometry_msgs/WrenchStamped, up to ~1 kHz; with the twin in
                                         lockstep (`wrench_periods`) sim/wrench_period instead: the
                                         period's samples in one std_msgs/UInt8MultiArray tree
    tcp/pose                             geometry_msgs/PoseStamped
    tcp/twist                            geometry_msgs/TwistStamped (not with `twist_from_pose`)
    joint_states                         sensor_msgs/JointState: the two finger joints -> gripper
    sim/privileged                       std_msgs/UInt8MultiArray, the twin's ground truth (a tree,
                                         robot_rl/robot/messages.py), only with `privileged`
  published
    observation                          std_msgs/UInt8MultiArray, an ObservationMessage,
                                         RELIABLE + TRANSIENT_LOCAL depth 1 (what the actor takes)
    aggregator/stats                     std_msgs/String, the counters as JSON, every stats_period_s
                                         (steady clock)

QoS of the subscriptions, by tick mode:
  timer    sensor data: BEST_EFFORT + VOLATILE, KEEP_LAST depth 100 for the wrench (a 1 kHz burst
           while a callback is slow is kept, not lost), 2 for images (only the newest matters), 10
           for the state. A best-effort volatile subscriber matches any publisher, the drivers'
           and the twin's RELIABLE + TRANSIENT_LOCAL ones alike.
  stamped  RELIABLE + TRANSIENT_LOCAL depth 10, for the twin in lockstep: one lost message would
           stall the loop (the next stamp exists only after the actor's command, which needs this
           observation), and the twin's first observation is published at its start-up, usually
           before this node has matched: transient local hands it over late. This requests what
           only a TRANSIENT_LOCAL publisher offers: use it with the twin, not with real drivers.

Timer mode ticks on a node-clock timer (use_sim_time works: it follows /clock), moved earlier now
and then to come just after the cameras' frames are ready (robot_rl/robot/tick_alignment.py; the
move is one shorter period, then periodic ticks again), and a sample's age is the tick's time minus
its header stamp: the drivers' clocks must agree with this node's (one machine, or PTP/chrony
between machines), or every stream looks stale or young. Stamped mode emits
from the subscription callbacks as soon as a stamp's set is complete. Callbacks run in mutually
exclusive callback groups, one per camera, one for the wrench, one for the robot state: a stream's
samples stay in order, and on a multi-threaded executor a camera's decode and resize (OpenCV lets
go of the GIL) run beside the 1 kHz wrench; the aggregator locks its own state.

Configuration: an AggregatorConfig passed to the constructor, or else the graph's config composed
from the `config_overrides` parameter (RosConfig.aggregator_for: cameras and rate from the sim
config, the rest from ros.aggregator).

Bad input (wrong encoding or size, truncated data, NaN/inf, another frame, stamps going back, a
damaged blob) is dropped and counted, and logged with the topic and the reason; a tick that yields
no observation (a stale or missing stream, with its age; a late timer; an incomplete stamp) is
logged with why. Log lines repeat at most once per LOG_INTERVAL_S for the same stream and the same
kind of reason (numbers aside), saying how many were held back.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String, UInt8MultiArray

from robot_rl.robot.aggregator import (
    JOINTS,
    POSE,
    PRIVILEGED,
    TWIST,
    WRENCH,
    AggregatorConfig,
    ObservationAggregator,
    StaleStream,
    camera_stream,
)
from robot_rl.robot.messages import ObservationMessage
from robot_rl.robot.tick_alignment import TickAligner
from ros_nodes import convert
from ros_nodes.node_process import composed_config, spin_node_process

LOG_INTERVAL_S = 1.0
OBSERVATION_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
LOCKSTEP_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def sensor_qos(depth: int) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


class AggregatorNode(Node):
    def __init__(self, config: AggregatorConfig | None = None, **kwargs):
        super().__init__("aggregator", **kwargs)
        if config is None:
            composed = composed_config(self)
            config = composed.ros.aggregator_for(composed.sim)
        self.config = config
        self.stamped = config.tick == "stamped"
        self._log_lock = threading.Lock()
        self._logged: dict[str, tuple[float, int]] = {}  # log key -> (when last logged, held back since)
        self._emit_lock = threading.Lock()  # stamped: observations go out in stamp order
        self.aggregator = ObservationAggregator(config, on_missed=lambda key, text: self._warn(key, text))

        self._observation = self.create_publisher(UInt8MultiArray, "observation", OBSERVATION_QOS)
        self._stats = self.create_publisher(String, "aggregator/stats", 10)
        agg, base, ft = self.aggregator, config.base_frame or None, config.ft_frame or None

        def stamp(msg) -> int:
            return convert.time_ns(msg.header.stamp)

        for cam, cam_cfg in config.cameras.items():
            if cam_cfg.compressed:
                kind, topic, to_rgb = CompressedImage, f"cameras/{cam}/image_raw/compressed", convert.compressed_to_rgb
            else:
                kind, topic, to_rgb = Image, f"cameras/{cam}/image_raw", convert.image_to_rgb
            self._subscribe(kind, topic, camera_stream(cam), lambda m, c=cam, f=to_rgb: self._add_frame(c, m, f), 2)
        if config.wrench_periods:  # the twin in lockstep
            self._subscribe(UInt8MultiArray, "sim/wrench_period", WRENCH, self._read_wrench_period, 10)
        else:
            self._subscribe(
                WrenchStamped,
                "ft_sensor/wrench",
                WRENCH,
                lambda m: agg.add_wrench(stamp(m), convert.wrench_to_array(m, ft)),
                100,
            )
        state_group = MutuallyExclusiveCallbackGroup()
        self._subscribe(
            PoseStamped,
            "tcp/pose",
            POSE,
            lambda m: agg.add_pose(stamp(m), convert.pose_to_tcp_pose(m, base)),
            10,
            state_group,
        )
        if not config.twist_from_pose:
            self._subscribe(
                TwistStamped,
                "tcp/twist",
                TWIST,
                lambda m: agg.add_twist(stamp(m), convert.twist_to_tcp_vel(m, base)),
                10,
                state_group,
            )
        self._subscribe(JointState, "joint_states", JOINTS, self._read_joint_state, 10, state_group)
        if config.privileged:
            self._subscribe(UInt8MultiArray, "sim/privileged", PRIVILEGED, self._read_privileged, 10, state_group)

        # stamped mode has no timer to move: the aligner is off (and says so in the stats)
        alignment = replace(config.tick_alignment, enabled=False) if self.stamped else config.tick_alignment
        self.aligner = TickAligner(alignment, list(config.cameras), config.period_ns)
        if not self.stamped:
            self._tick_group = MutuallyExclusiveCallbackGroup()
            self._tick_timer = self.create_timer(1.0 / config.control_hz, self._tick, self._tick_group)
            self._retired_timers: list = []
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(config.stats_period_s, self._publish_stats, MutuallyExclusiveCallbackGroup(), clock=steady)
        cams = ", ".join(f"{c} {cfg.width}x{cfg.height}" for c, cfg in config.cameras.items()) or "none"
        self.get_logger().info(f"{config.tick} ticks at {config.control_hz} Hz; cameras: {cams}")

    def _subscribe(self, kind, topic: str, stream: str, read, depth: int, group=None) -> None:
        """`read(msg)` converts and adds a message; a ValueError drops it (counted, logged)."""

        def on_message(msg) -> None:
            try:
                read(msg)
            except ValueError as error:
                self.aggregator.reject(stream)
                self._warn(stream, f"{topic}: message dropped: {error}")
                return
            if self.stamped:
                self._emit_ready()

        qos = LOCKSTEP_QOS if self.stamped else sensor_qos(depth)
        self.create_subscription(kind, topic, on_message, qos, callback_group=group or MutuallyExclusiveCallbackGroup())

    def _read_joint_state(self, msg: JointState) -> None:
        fingers = convert.joint_state_field(msg, self.config.gripper_joints)
        opening = convert.gripper_opening(fingers, self.config.max_finger_opening)
        self.aggregator.add_gripper(convert.time_ns(msg.header.stamp), opening)

    def _read_wrench_period(self, msg: UInt8MultiArray) -> None:
        """The twin's samples of one control period, each stamped at its physics step (the last at
        the observation's stamp), as a streaming sensor would have sent them."""
        tree = convert.blob_to_tree(msg)
        samples = tree.get("samples") if isinstance(tree, dict) else None
        if not isinstance(samples, np.ndarray) or samples.ndim != 2 or samples.shape[1] != 6:
            raise ValueError("not a tree with 'samples' float32[n, 6]")
        last, dt = int(tree["stamp_ns"]), int(tree["dt_ns"])
        for i, sample in enumerate(samples):
            self.aggregator.add_wrench(last - (len(samples) - 1 - i) * dt, sample)

    def _read_privileged(self, msg: UInt8MultiArray) -> None:
        tree = convert.blob_to_tree(msg)
        if not isinstance(tree, dict) or not isinstance(tree.get("stamp_ns"), int):
            raise ValueError("not a tree with an integer 'stamp_ns'")
        self.aggregator.add_privileged(tree["stamp_ns"], tree)

    def _add_frame(self, cam: str, msg, to_rgb) -> None:
        stamp = convert.time_ns(msg.header.stamp)
        self.aggregator.add_image(cam, stamp, to_rgb(msg))
        self.aligner.frame_ready(cam, stamp, self.get_clock().now().nanoseconds)

    # observations out ----------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.get_clock().now().nanoseconds
        try:
            self._publish(self.aggregator.observe(now))
        except StaleStream:
            pass  # counted and logged through on_missed
        # when the timer fires next: its schedule, not this callback's time plus a period (a
        # callback the executor ran late would look like a tick out of phase)
        clock_now = self.get_clock().now().nanoseconds
        next_tick = clock_now + (self._tick_timer.time_until_next_call() or self.config.period_ns)
        earlier_ns = self.aligner.after_tick(now, next_tick)
        if earlier_ns and next_tick - earlier_ns > clock_now:
            self._replace_tick_timer((next_tick - earlier_ns - clock_now) / 1e9, self._shifted_tick)

    def _shifted_tick(self) -> None:
        """The one-shot tick that moves the phase: from here on, periodic ticks again."""
        self._replace_tick_timer(1.0 / self.config.control_hz, self._tick)
        self._tick()

    def _replace_tick_timer(self, period_s: float, callback) -> None:
        # The running timer is cancelled, and destroyed at the next replacement: not from its own callback.
        for timer in self._retired_timers:
            self.destroy_timer(timer)
        self._tick_timer.cancel()
        self._retired_timers = [self._tick_timer]
        self._tick_timer = self.create_timer(period_s, callback, self._tick_group)

    def _emit_ready(self) -> None:
        with self._emit_lock:
            for message in self.aggregator.pop_ready():
                self._publish(message)

    def _publish(self, message: ObservationMessage) -> None:
        self._observation.publish(convert.tree_to_blob(message.to_tree()))

    def _publish_stats(self) -> None:
        stats = self.aggregator.stats() | {"tick_alignment": self.aligner.stats()}
        self._stats.publish(String(data=json.dumps(stats, sort_keys=True)))

    def _warn(self, stream: str, text: str) -> None:
        """Log `text` unless the same stream said the same kind of thing (numbers aside) within
        LOG_INTERVAL_S; then say how many were held back."""
        key = f"{stream}|{re.sub(r'[-+]?[0-9][0-9.e+-]*', '#', text)}"
        now = time.monotonic()
        with self._log_lock:
            last, held = self._logged.get(key, (-LOG_INTERVAL_S, 0))
            if now - last < LOG_INTERVAL_S:
                self._logged[key] = (last, held + 1)
                return
            self._logged[key] = (now, 0)
        suffix = f" ({held} more like it held back)" if held else ""
        self.get_logger().warning(text + suffix)


def main(args: list[str] | None = None) -> None:
    """`python -m ros_nodes.aggregator_node --ros-args -p 'config_overrides:=[ros.twin=false]'`, inside
    a loopback-only network namespace unless the machine's DDS is meant to be reachable.

    In a process of its own the node spins single-threaded: its callbacks never block, and rclpy's
    MultiThreadedExecutor costs about twice the CPU per message (measured here with a 1 kHz wrench:
    ~0.35 ms per message single-threaded, ~0.6 ms multi-threaded, almost all of it the executor's)."""
    spin_node_process(AggregatorNode, args)


if __name__ == "__main__":
    main()
