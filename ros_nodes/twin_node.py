"""The MuJoCo twin as a ROS 2 node: it publishes what the real robot's drivers publish and consumes
the command that the real Cartesian impedance controller consumes, so the robot_rl graph runs
unchanged against it.

Topics (relative names, so a namespace per robot works):
  published
    cameras/<camera>/image_raw  sensor_msgs/Image, rgb8, frame_id <camera>_camera
    ft_sensor/wrench            geometry_msgs/WrenchStamped, frame_id `ft_frame` (the spec's
                                sensor frame, z along the fingers)
    joint_states                sensor_msgs/JointState, <prefix>joint1..7 and <prefix>finger_joint1..2
                                (position, velocity, effort), as franka_ros2 names them
    tcp/pose                    geometry_msgs/PoseStamped, frame_id `base_frame`
    tcp/twist                   geometry_msgs/TwistStamped, frame_id `base_frame`
    sim/privileged              std_msgs/UInt8MultiArray: the ground truth only a simulator has, stamped
                                like the state (robot_rl/robot/messages.py): task state (when
                                sim.privileged_state), success, the oracle's reward, truncated
                                (physics diverged; in lockstep also the task's step limit)
    /clock                      rosgraph_msgs/Clock: sim time, for nodes with use_sim_time (lockstep only)
    sim/wrench_period           std_msgs/UInt8MultiArray (lockstep only): every F/T sample of the period,
                                {"stamp_ns": the observation's, "dt_ns": physics step, "samples": float32[n, 6]}
  subscribed (RELIABLE)
    command/target_pose         geometry_msgs/PoseStamped in `base_frame`: the impedance target
    command/gripper             std_msgs/Float64: the spec's gripper command (> 0.5 close,
                                < -0.5 open, in between keep the last one)
  service
    ~/reset                     std_srvs/Trigger: start a new episode, publish its first observation

The command is the target pose, not a twist: the twin's controller, like the Franka's Cartesian
impedance controller, tracks a target pose, and the spec's action only moves that target from the
measured pose. The node turns the target back into the action from the measured pose
(spec.target_pose_to_action), so a target further than one control step is clipped per axis
as any action is, then to the workspace box. A malformed command (NaN, not a unit quaternion,
another frame) is logged, counted and dropped. Episodes do not end by themselves, in either mode:
whoever drives the twin calls ~/reset (a real robot has no episodes either). No TF is published:
poses carry their frame (`base_frame`), and the wrench is in `ft_frame`.

Parameter `mode`:

lockstep (default): one env step per command, a command being one target pose and one gripper
command, paired in arrival order (each topic is reliable and in order, and the 7-D action has both
every tick). The observation that results is published stamped one control period later in sim
time, and /clock follows; the wrench is one message per period, the period's mean, and all the
period's samples go in one message on sim/wrench_period, from which the aggregator computes the
in-process twin's statistic exactly (mean and max-abs over every physics step; a WrenchStamped per
physics step, 50 reliable messages a period, stalled a one-process lockstep graph). Observations go
out RELIABLE + TRANSIENT_LOCAL, depth 1: in lockstep one lost observation would stall the actor, a
subscriber that joins late still gets the latest one, and sensor-data (best effort, volatile)
subscribers are compatible.

realtime: the physics runs against the wall clock, as the real cell does, to test the graph's
timing. One loop on the sim thread advances the physics to the wall clock (SimTwinEnv.advance) in
slices of the physics steps that are due, sleeping in between (woken at once by a command or a
reset), and publishes what those steps produced:
  ft_sensor/wrench  every F/T sample of the sensor model, each its own message stamped with its own
                    time, decimated to `ros.realtime.wrench_hz`. The twin has one sample per physics
                    step, so the effective rate is (1 / sim.physics_dt) / k with k the whole
                    decimation nearest to the asked rate, at most the physics rate: 500 Hz with the
                    default sim.physics_dt = 0.002 even when 1 kHz is asked (set sim.physics_dt=0.001
                    for 1 kHz). The node logs the effective rates at start.
  cameras           rendered at `ros.realtime.camera_hz` (default 30) of sim time
  joint_states, tcp/pose, tcp/twist, sim/privileged  at `ros.realtime.state_hz` (default 100)
Stamps are node-clock (wall) time: sample k of an episode is stamped episode start + k physics
steps, i.e. the time the sample stands for, never in the future. When the loop is late (the CPU
is busy) it catches up in one batch and the batch's samples go out at once with their own, past,
stamps; a lag beyond `ros.realtime.max_lag_s` is not caught up but skipped (the stamps jump forward),
so a CPU that cannot keep up gives gaps, not an ever-growing delay. Late ticks (over LATE_NS
behind) and skipped sim time are counted (`realtime_stats`) and logged at most once a second.
Commands: the latest target pose and the latest gripper command win; each is applied once, when
the loop picks it up (the env's set_command: the target moves from the measured pose), and the
target then holds until the next one. A gripper command alone keeps the current target. /clock
is not published and use_sim_time must be false: every node runs on wall time. Publishers are
RELIABLE + VOLATILE (a stream, like a driver's: a late joiner wants the next sample, not old
ones), KEEP_LAST deep enough for a catch-up burst of wrench samples; best-effort subscribers match.

Every env call runs on one thread (the EGL context of the cameras is current on one thread only):
lockstep steps and resets, and in realtime the loop's ticks, which re-queue themselves on that
thread so that a reset queued between two ticks runs between them.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import mujoco
import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, UInt8MultiArray
from std_srvs.srv import Trigger

from robot_rl import spec
from robot_rl.robot.config import RealtimeConfig
from robot_rl.rollout import make_env
from ros_nodes import convert
from ros_nodes.node_process import composed_config, declare, spin_node_process

MODES = ("lockstep", "realtime")
JOINTS = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]  # the twin's MJCF names
MAX_PENDING = 10  # commands waiting for their other half before the oldest is dropped
OBSERVATION_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
COMMAND_QOS = QoSProfile(depth=MAX_PENDING, reliability=ReliabilityPolicy.RELIABLE)
STREAM_DEPTH = 5  # realtime cameras and state: only the newest matters
LATE_NS = 5_000_000  # realtime: physics this far behind the wall clock makes a visible burst of samples
REPORT_INTERVAL_NS = 1_000_000_000  # realtime: at most one overrun warning a second


@dataclass
class RealtimeStats:
    """What the real-time loop did, for tests and benchmarks (read while it runs: a snapshot)."""

    physics_steps: int = 0
    wrench_msgs: int = 0
    state_msgs: int = 0  # each one joint_states + tcp/pose + tcp/twist
    camera_frames: int = 0  # each one image per camera
    late_ticks: int = 0  # ticks that found the physics over LATE_NS behind the wall clock
    worst_lag_ns: int = 0
    skipped_ns: int = 0  # sim time dropped because the lag passed realtime.max_lag_s


class _Every:
    """Events every `hz` in sim time, each on the first physics step at or after its time."""

    def __init__(self, hz: float, dt_ns: int):
        self.period_ns, self.dt_ns = 1e9 / hz, dt_ns
        self.next_ns = 0.0

    def restart(self) -> None:
        """An event happened at step 0 (an episode's first observation)."""
        self.next_ns = self.period_ns

    def steps_until(self, step: int) -> int:
        return max(1, self._event_step() - step)

    def due(self, step: int) -> bool:
        if step < self._event_step():
            return False
        while self._event_step() <= step:  # once, unless events were faster than the physics steps
            self.next_ns += self.period_ns
        return True

    def _event_step(self) -> int:
        return math.ceil(self.next_ns / self.dt_ns - 1e-6)  # a period of whole steps lands on its step


class TwinNode(Node):
    def __init__(self, realtime: RealtimeConfig | None = None, **kwargs):
        """`realtime`: the real-time mode's rates (default: the composed config's ros.realtime)."""
        super().__init__("sim_twin", **kwargs)
        seed = declare(self, "seed", -1, "seed of the first episode; -1: the config's seed")
        mode = declare(self, "mode", "lockstep", "lockstep: one env step per command; realtime: wall clock")
        self.base_frame = declare(self, "base_frame", "panda_link0", "frame of the TCP pose, twist and commands")
        self.ft_frame = declare(self, "ft_frame", "panda_ft_sensor", "frame of the wrench")
        joint_prefix = declare(self, "joint_prefix", "panda_", "prefix of the published joint names")
        config = composed_config(self)
        self.realtime_cfg = realtime if realtime is not None else config.ros.realtime
        if mode not in MODES:
            raise ValueError(f"parameter mode: {mode!r} is not a mode; valid: {', '.join(MODES)}")
        self.realtime = mode == "realtime"
        if self.realtime:
            self.realtime_cfg.validate("ros.realtime")
            if self.get_parameter("use_sim_time").value:
                raise ValueError("parameter use_sim_time: the realtime mode runs on the wall clock; set it false")

        self.env = make_env(config)
        self.robot_cfg = config.robot
        self.period_ns = round(1e9 / config.sim.control_hz)
        self.dt_ns = round(1e9 * config.sim.physics_dt)
        self.time_ns = 0  # stamp of the latest observation / state; never goes back, across episodes too
        self.joint_names = [joint_prefix + name for name in JOINTS]
        joints = [self.env.model.joint(name) for name in JOINTS]
        self._qpos = [j.qposadr[0] for j in joints]
        self._dofs = [j.dofadr[0] for j in joints]
        self._tcp = self.env.model.site("tcp").id
        self._target_mocap = self.env.model.body("target").mocapid[0]
        self.rejected_commands = 0
        # The env's cameras render through an EGL context that is current on one thread only, and a
        # MultiThreadedExecutor runs callbacks on any of its threads: every env call goes here.
        self._sim_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim_twin")

        if self.realtime:
            wrench_qos, state_qos = self._realtime_setup(config.sim.physics_dt)
        else:
            wrench_qos = state_qos = OBSERVATION_QOS
            self._wrench_period = self.create_publisher(UInt8MultiArray, "sim/wrench_period", OBSERVATION_QOS)
            self._physics_dt_ns = round(config.sim.physics_dt * 1e9)
            self._clock = self.create_publisher(Clock, "/clock", OBSERVATION_QOS)
        self._images = {
            cam: self.create_publisher(Image, f"cameras/{cam}/image_raw", state_qos) for cam in config.sim.cameras
        }
        self._wrench = self.create_publisher(WrenchStamped, "ft_sensor/wrench", wrench_qos)
        self._joint_state = self.create_publisher(JointState, "joint_states", state_qos)
        self._pose = self.create_publisher(PoseStamped, "tcp/pose", state_qos)
        self._twist = self.create_publisher(TwistStamped, "tcp/twist", state_qos)
        self._privileged = self.create_publisher(UInt8MultiArray, "sim/privileged", state_qos)
        self._task_state = config.sim.privileged_state  # the object state goes into the observation
        self._targets: deque[PoseStamped] = deque()
        self._grippers: deque[Float64] = deque()
        self.create_subscription(PoseStamped, "command/target_pose", self._on_target, COMMAND_QOS)
        self.create_subscription(Float64, "command/gripper", self._on_gripper, COMMAND_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.reset(config.seed if seed < 0 else seed)
        if self.realtime:
            self._sim_thread.submit(self._tick)

    def _realtime_setup(self, physics_dt: float) -> tuple[QoSProfile, QoSProfile]:
        """The loop's state, and the QoS of its streams (wrench, then cameras and state)."""
        cfg = self.realtime_cfg
        physics_hz = 1.0 / physics_dt
        self.wrench_every = max(1, round(physics_hz / cfg.wrench_hz))  # publish every k-th physics step's sample
        self.max_lag_ns = round(cfg.max_lag_s * 1e9)
        self.realtime_stats = RealtimeStats()
        self._camera_events = _Every(cfg.camera_hz, self.dt_ns)
        self._state_events = _Every(cfg.state_hz, self.dt_ns)
        self._origin_ns = 0  # monotonic time of the episode's step 0, moved on by skipped sim time
        self._stamp_offset_ns = 0  # node clock - monotonic clock at the episode's start
        self._steps = 0  # physics steps since the episode's start
        self._stopping = False
        self._wake = threading.Event()
        self._command_lock = threading.Lock()
        self._latest_target: PoseStamped | None = None
        self._latest_gripper: Float64 | None = None
        self._diverged_logged = False
        self._reported = (0, 0, time.monotonic_ns())  # late ticks, skipped ns, when: at the last warning
        self.get_logger().info(
            f"realtime: physics at {physics_hz:g} Hz, wrench at {physics_hz / self.wrench_every:g} Hz "
            f"(asked {cfg.wrench_hz:g}), cameras at {cfg.camera_hz:g} Hz, state at {cfg.state_hz:g} Hz"
        )
        burst = math.ceil(cfg.max_lag_s * physics_hz / self.wrench_every) + 1  # the most samples one tick sends
        wrench_qos = QoSProfile(depth=max(100, 2 * burst), reliability=ReliabilityPolicy.RELIABLE)
        return wrench_qos, QoSProfile(depth=STREAM_DEPTH, reliability=ReliabilityPolicy.RELIABLE)

    # episodes and steps --------------------------------------------------------------------
    def _in_sim_thread(self, fn, *args):
        if self.realtime:
            self._wake.set()  # the loop's tick stops waiting, so the job runs now
        return self._sim_thread.submit(fn, *args).result()

    def reset(self, seed: int | None = None) -> int:
        """Start a new episode; returns the stamp of its first observation (published)."""
        return self._in_sim_thread(self._reset, seed)

    def _reset(self, seed: int | None) -> int:
        obs, _ = self.env.reset(seed=seed)
        if not self.realtime:
            self._publish(obs, *self.env.ground_truth(), truncated=False)
            return self.time_ns
        with self._command_lock:  # a command for the last episode, or sent while this reset ran, is void
            self._latest_target = self._latest_gripper = None
        now_ns = time.monotonic_ns()
        start_ns = max(self.get_clock().now().nanoseconds, self.time_ns + self.dt_ns)
        self._origin_ns, self._stamp_offset_ns, self._steps = now_ns, start_ns - now_ns, 0
        self._camera_events.restart()
        self._state_events.restart()
        self._diverged_logged = False
        self._publish_images(obs.get("images", {}), start_ns)
        self._publish_state(start_ns)
        self._publish_privileged(start_ns, *self.env.ground_truth(), truncated=False)
        return start_ns

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._targets.clear()
        self._grippers.clear()
        stamp = self.reset()
        response.success, response.message = True, f"new episode, first observation at {stamp} ns"
        return response

    def _on_target(self, msg: PoseStamped) -> None:
        if self.realtime:
            with self._command_lock:
                self._latest_target = msg
            self._wake.set()
        else:
            self._queue(self._targets, msg, "command/target_pose")

    def _on_gripper(self, msg: Float64) -> None:
        if self.realtime:
            with self._command_lock:
                self._latest_gripper = msg
            self._wake.set()
        else:
            self._queue(self._grippers, msg, "command/gripper")

    def _queue(self, queue: deque, msg, topic: str) -> None:
        queue.append(msg)
        if len(queue) > MAX_PENDING:
            queue.popleft()
            self.get_logger().warning(f"{topic}: {MAX_PENDING} commands wait for their other half; oldest dropped")
        while self._targets and self._grippers:
            self._in_sim_thread(self._step, self._targets.popleft(), self._grippers.popleft())

    def _step(self, target: PoseStamped, gripper: Float64) -> None:
        try:
            action = self._action(target, gripper)
        except ValueError as error:
            self._reject(error, "no step")
            return
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._publish(obs, info["success"], reward, truncated)
        if terminated or truncated:
            self.get_logger().info("episode over (terminated or truncated): call ~/reset to start the next")

    def _reject(self, error: ValueError, consequence: str) -> None:
        self.rejected_commands += 1
        self.get_logger().warning(f"command rejected, {consequence}: {error}")

    def _action(self, target: PoseStamped | None, gripper: Float64 | None) -> np.ndarray:
        """The spec's action for a target pose (None: the current impedance target) and a gripper
        command (None: keep), from the measured pose."""
        r = self.robot_cfg
        if target is None:
            d = self.env.data
            target_pose = np.concatenate([d.mocap_pos[self._target_mocap], d.mocap_quat[self._target_mocap]])
        else:
            target_pose = convert.pose_to_tcp_pose(target, frame_id=self.base_frame)
        motion = spec.target_pose_to_action(target_pose, self.tcp_pose(), r.max_translation_step, r.max_rotation_step)
        return np.append(motion, 0.0 if gripper is None else convert.gripper_command(gripper.data))

    # the real-time loop (on the sim thread) --------------------------------------------------
    def _tick(self) -> None:
        """Advance the physics to the wall clock, publishing what it produced; wait for the next
        physics step (or a command, or a job); queue the next tick."""
        if self._stopping:
            return
        try:
            self._catch_up()
        except Exception:  # the loop must say why it stopped: a silent twin looks like a stall
            self.get_logger().fatal(f"realtime loop stopped:\n{traceback.format_exc()}")
            return
        wait_ns = self._origin_ns + (self._steps + 1) * self.dt_ns - time.monotonic_ns()
        if wait_ns > 0:
            self._wake.wait(wait_ns / 1e9)
        self._wake.clear()
        self._sim_thread.submit(self._tick)

    def _catch_up(self) -> None:
        stats = self.realtime_stats
        self._apply_latest_command()
        lag_ns = time.monotonic_ns() - (self._origin_ns + self._steps * self.dt_ns)
        stats.worst_lag_ns = max(stats.worst_lag_ns, lag_ns)
        stats.late_ticks += lag_ns > LATE_NS
        if lag_ns > self.max_lag_ns:  # give up on the excess: shift the episode's clock instead
            skipped_ns = (lag_ns - self.max_lag_ns) // self.dt_ns * self.dt_ns
            self._origin_ns += skipped_ns
            stats.skipped_ns += skipped_ns
            lag_ns -= skipped_ns
        due = self._steps + lag_ns // self.dt_ns
        while self._steps < due:
            # up to the next camera or state event, so each happens at its own sim time in a batch too
            n = min(due - self._steps, self._camera_events.steps_until(self._steps))
            n = min(n, self._state_events.steps_until(self._steps))
            self._publish_wrench(self.env.advance(n), self._steps)
            self._steps += n
            stats.physics_steps += n
            stamp = self._stamp(self._steps)
            if self._state_events.due(self._steps):
                self._publish_state(stamp)
                self._publish_privileged(stamp, *self.env.ground_truth(), truncated=self._check_divergence())
            if self._camera_events.due(self._steps) and self._images:
                self._publish_images(self.env.render_cameras(), stamp)
            self._apply_latest_command()
        self._report_overruns()

    def _stamp(self, step: int) -> int:
        return self._origin_ns + self._stamp_offset_ns + step * self.dt_ns

    def _apply_latest_command(self) -> None:
        with self._command_lock:
            target, gripper = self._latest_target, self._latest_gripper
            self._latest_target = self._latest_gripper = None
        if target is None and gripper is None:
            return
        try:
            self.env.set_command(self._action(target, gripper))
        except ValueError as error:
            self._reject(error, "the target holds")

    def _check_divergence(self) -> bool:
        diverged = self.env.physics_diverged()
        if diverged and not self._diverged_logged:
            self._diverged_logged = True
            self.get_logger().warning("physics diverged (an object flung away): call ~/reset to start a new episode")
        return diverged

    def _report_overruns(self) -> None:
        stats, now_ns = self.realtime_stats, time.monotonic_ns()
        late, skipped, since_ns = self._reported
        if now_ns - since_ns < REPORT_INTERVAL_NS or (stats.late_ticks, stats.skipped_ns) == (late, skipped):
            return
        skipped_ms = (stats.skipped_ns - skipped) / 1e6
        verdict = "the CPU does not keep up" if skipped_ms else "samples went out in bursts"
        self.get_logger().warning(
            f"realtime: in the last {(now_ns - since_ns) / 1e9:.1f} s, {stats.late_ticks - late} ticks over "
            f"{LATE_NS / 1e6:g} ms late and {skipped_ms:g} ms of sim time skipped (over realtime.max_lag_s) "
            f"(worst lag so far {stats.worst_lag_ns / 1e6:.1f} ms): {verdict}"
        )
        self._reported = (stats.late_ticks, stats.skipped_ns, now_ns)

    # what the drivers would publish ----------------------------------------------------------
    def tcp_pose(self) -> np.ndarray:
        """The measured TCP pose in the spec's layout, float64 as a robot reports it."""
        d = self.env.data
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        return np.concatenate([d.site_xpos[self._tcp], spec.canonical_quat(quat)])

    def _tcp_vel(self) -> np.ndarray:
        velocity = np.zeros(6)  # [angular, linear] in the world frame
        mujoco.mj_objectVelocity(self.env.model, self.env.data, mujoco.mjtObj.mjOBJ_SITE, self._tcp, velocity, 0)
        return np.concatenate([velocity[3:], velocity[:3]])

    def _publish(self, obs: dict, success: bool, reward: float, truncated: bool) -> None:
        """Lockstep: one observation, one control period after the last, its ground truth, and /clock."""
        t = self.time_ns + self.period_ns
        self._publish_images(obs.get("images", {}), t)
        self._wrench.publish(convert.array_to_wrench(obs["state"]["wrench"][:6], t, self.ft_frame))
        period = {"stamp_ns": t, "dt_ns": self._physics_dt_ns, "samples": self.env.recent_wrench.astype(np.float32)}
        self._wrench_period.publish(convert.tree_to_blob(period))
        self._publish_state(t)
        self._publish_privileged(t, success, reward, truncated)
        self._clock.publish(Clock(clock=convert.time_msg(t)))

    def _publish_privileged(self, t: int, success: bool, reward: float, truncated: bool) -> None:
        """sim/privileged (robot_rl/robot/messages.py): what only a simulator knows, for oracle rewards."""
        task_state = self.env.task.state().astype(np.float32) if self._task_state else np.zeros(0, np.float32)
        truth = {"stamp_ns": t, "task_state": task_state, "success": bool(success), "reward": float(reward)}
        self._privileged.publish(convert.tree_to_blob(truth | {"truncated": bool(truncated)}))

    def _publish_wrench(self, samples: np.ndarray, steps_before: int) -> None:
        """Realtime: samples[i] is the sensor's output after physics step steps_before + 1 + i."""
        first = -(steps_before + 1) % self.wrench_every  # the first sample of a step that is a multiple
        for i in range(first, len(samples), self.wrench_every):
            stamp = self._stamp(steps_before + 1 + i)
            self._wrench.publish(convert.array_to_wrench(samples[i], stamp, self.ft_frame))
            self.realtime_stats.wrench_msgs += 1

    def _publish_images(self, images: dict[str, np.ndarray], t: int) -> None:
        for cam, publisher in self._images.items():
            publisher.publish(convert.rgb_to_image(images[cam], t, f"{cam}_camera"))
        if self.realtime and images:
            self.realtime_stats.camera_frames += 1

    def _publish_state(self, t: int) -> None:
        d = self.env.data
        effort = d.qfrc_actuator[self._dofs] + d.qfrc_applied[self._dofs]
        self._joint_state.publish(
            convert.arrays_to_joint_state(self.joint_names, d.qpos[self._qpos], d.qvel[self._dofs], effort, t)
        )
        self._pose.publish(convert.tcp_pose_to_pose(self.tcp_pose(), t, self.base_frame))
        self._twist.publish(convert.tcp_vel_to_twist(self._tcp_vel(), t, self.base_frame))
        self.time_ns = t
        if self.realtime:
            self.realtime_stats.state_msgs += 1

    def destroy_node(self) -> None:
        if self.realtime:
            self._stopping = True  # before the close job is queued: a tick after it returns at once
        self._in_sim_thread(self.env.close)
        self._sim_thread.shutdown()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`python -m ros_nodes.twin_node --ros-args -p 'config_overrides:=[task=reach, "sim.cameras=[front]"]'`
    (an override holding brackets is quoted: the value is YAML; add `-p mode:=realtime` for the wall
    clock), inside a loopback-only network namespace unless the machine's DDS is meant to be reachable."""
    spin_node_process(TwinNode, args)


if __name__ == "__main__":
    main()
