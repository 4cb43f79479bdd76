"""The MuJoCo twin as a ROS 2 node: it publishes what the real robot's drivers publish and consumes
the command that the real Cartesian impedance controller consumes, so the robot_rl graph runs
unchanged against it.

Topics (relative names, so a namespace per robot works), every message stamped with sim time:
  published
    cameras/<camera>/image_raw  sensor_msgs/Image, rgb8, frame_id <camera>_camera
    ft_sensor/wrench            geometry_msgs/WrenchStamped, frame_id `ft_frame` (the spec's
                                sensor frame, z along the fingers): the mean over the control period
    joint_states                sensor_msgs/JointState, <prefix>joint1..7 and <prefix>finger_joint1..2
                                (position, velocity, effort), as franka_ros2 names them
    tcp/pose                    geometry_msgs/PoseStamped, frame_id `base_frame`
    tcp/twist                   geometry_msgs/TwistStamped, frame_id `base_frame`
    /clock                      rosgraph_msgs/Clock: sim time, for nodes with use_sim_time
  subscribed (RELIABLE)
    command/target_pose         geometry_msgs/PoseStamped in `base_frame`: the impedance target
    command/gripper             std_msgs/Float64: the spec's gripper command (> 0.5 close,
                                < -0.5 open, in between keep the last one)
  service
    ~/reset                     std_srvs/Trigger: start a new episode, publish its first observation

The command is the target pose, not a twist: the twin's controller, like the Franka's Cartesian
impedance controller, tracks a target pose, and the spec's action only moves that target from the
measured pose. The node turns the target back into the action from the measured pose
(convert.target_pose_to_action), so a target further than one control step is clipped per axis
as any action is, then to the workspace box.

Lockstep mode (the only mode so far): one env step per command, a command being one target pose
and one gripper command, paired in arrival order (each topic is reliable and in order, and the
7-D action has both every tick). The observation that results is published stamped one control
period later in sim time, and /clock follows. Observations go out RELIABLE + TRANSIENT_LOCAL,
depth 1: in lockstep one lost observation would stall the actor, a subscriber that joins late
still gets the latest one, and sensor-data (best effort, volatile) subscribers are compatible.
A malformed command (NaN, not a unit quaternion, another frame) is logged and dropped, with no
step. Episodes do not end by themselves: whoever drives the twin calls ~/reset.

Not here yet: the real-time mode (wall-clock timers: cameras at 30 Hz, the wrench at ~1 kHz)
needs SimTwinEnv to step the physics in parts of a control period and to hand out the F/T
sensor's per-physics-step samples; so the wrench is one mean per control period, and no TF.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from robot_rl import spec
from robot_rl.config import load_config
from robot_rl.rollout import make_env
from ros_nodes import convert

JOINTS = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]  # the twin's MJCF names
MAX_PENDING = 10  # commands waiting for their other half before the oldest is dropped
OBSERVATION_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
COMMAND_QOS = QoSProfile(depth=MAX_PENDING, reliability=ReliabilityPolicy.RELIABLE)


class TwinNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_twin", **kwargs)
        overrides = self._parameter(
            "config_overrides", [], "Hydra overrides of the twin's config, e.g. [task=reach, sim.cameras=[front]]"
        )
        seed = self._parameter("seed", -1, "seed of the first episode; -1: the config's seed")
        mode = self._parameter("mode", "lockstep", "lockstep: one env step per command (the only mode so far)")
        self.base_frame = self._parameter("base_frame", "panda_link0", "frame of the TCP pose, twist and commands")
        self.ft_frame = self._parameter("ft_frame", "panda_ft_sensor", "frame of the wrench")
        joint_prefix = self._parameter("joint_prefix", "panda_", "prefix of the published joint names")
        if mode != "lockstep":
            raise ValueError(f"parameter mode: {mode!r} is not implemented; valid: lockstep")

        config = load_config(list(overrides))
        self.env = make_env(config)
        self.robot_cfg = config.robot
        self.period_ns = round(1e9 / config.sim.control_hz)
        self.time_ns = 0  # sim time of the latest observation; never goes back, across episodes too
        self.joint_names = [joint_prefix + name for name in JOINTS]
        joints = [self.env.model.joint(name) for name in JOINTS]
        self._qpos = [j.qposadr[0] for j in joints]
        self._dofs = [j.dofadr[0] for j in joints]
        self._tcp = self.env.model.site("tcp").id
        self.rejected_commands = 0
        # The env's cameras render through an EGL context that is current on one thread only, and a
        # MultiThreadedExecutor runs callbacks on any of its threads: every env call goes here.
        self._sim_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim_twin")

        self._images = {
            cam: self.create_publisher(Image, f"cameras/{cam}/image_raw", OBSERVATION_QOS) for cam in config.sim.cameras
        }
        self._wrench = self.create_publisher(WrenchStamped, "ft_sensor/wrench", OBSERVATION_QOS)
        self._joint_state = self.create_publisher(JointState, "joint_states", OBSERVATION_QOS)
        self._pose = self.create_publisher(PoseStamped, "tcp/pose", OBSERVATION_QOS)
        self._twist = self.create_publisher(TwistStamped, "tcp/twist", OBSERVATION_QOS)
        self._clock = self.create_publisher(Clock, "/clock", OBSERVATION_QOS)
        self._targets: deque[PoseStamped] = deque()
        self._grippers: deque[Float64] = deque()
        self.create_subscription(PoseStamped, "command/target_pose", self._on_target, COMMAND_QOS)
        self.create_subscription(Float64, "command/gripper", self._on_gripper, COMMAND_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.reset(config.seed if seed < 0 else seed)

    def _parameter(self, name: str, default, description: str):
        descriptor = ParameterDescriptor(description=description)
        if default == []:  # rclpy types an empty list as a byte array: declare the type, no value
            parameter = self.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor)
            return parameter.value if parameter.type_ != Parameter.Type.NOT_SET else []
        return self.declare_parameter(name, default, descriptor).value

    # episodes and steps --------------------------------------------------------------------
    def _in_sim_thread(self, fn, *args):
        return self._sim_thread.submit(fn, *args).result()

    def reset(self, seed: int | None = None) -> None:
        self._in_sim_thread(self._reset, seed)

    def _reset(self, seed: int | None) -> None:
        obs, _ = self.env.reset(seed=seed)
        self._publish(obs)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._targets.clear()
        self._grippers.clear()
        self.reset()
        response.success, response.message = True, f"new episode, first observation at {self.time_ns} ns"
        return response

    def _on_target(self, msg: PoseStamped) -> None:
        self._queue(self._targets, msg, "command/target_pose")

    def _on_gripper(self, msg: Float64) -> None:
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
            self.rejected_commands += 1
            self.get_logger().warning(f"command rejected, no step: {error}")
            return
        obs, _, terminated, truncated, _ = self.env.step(action)
        self._publish(obs)
        if terminated or truncated:
            self.get_logger().info("episode over (terminated or truncated): call ~/reset to start the next")

    def _action(self, target: PoseStamped, gripper: Float64) -> np.ndarray:
        r = self.robot_cfg
        target_pose = convert.pose_to_tcp_pose(target, frame_id=self.base_frame)
        motion = convert.target_pose_to_action(
            target_pose, self.tcp_pose(), r.max_translation_step, r.max_rotation_step
        )
        return np.append(motion, convert.gripper_command(gripper.data))

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

    def _publish(self, obs: dict) -> None:
        self.time_ns += self.period_ns
        t, d = self.time_ns, self.env.data
        for cam, publisher in self._images.items():
            publisher.publish(convert.rgb_to_image(obs["images"][cam], t, f"{cam}_camera"))
        self._wrench.publish(convert.array_to_wrench(obs["state"]["wrench"][:6], t, self.ft_frame))
        effort = d.qfrc_actuator[self._dofs] + d.qfrc_applied[self._dofs]
        self._joint_state.publish(
            convert.arrays_to_joint_state(self.joint_names, d.qpos[self._qpos], d.qvel[self._dofs], effort, t)
        )
        self._pose.publish(convert.tcp_pose_to_pose(self.tcp_pose(), t, self.base_frame))
        self._twist.publish(convert.tcp_vel_to_twist(self._tcp_vel(), t, self.base_frame))
        self._clock.publish(Clock(clock=convert.time_msg(t)))

    def destroy_node(self) -> None:
        self._in_sim_thread(self.env.close)
        self._sim_thread.shutdown()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`python -m ros_nodes.twin_node --ros-args -p 'config_overrides:=[task=reach, "sim.cameras=[front]"]'`
    (an override holding brackets is quoted: the value is YAML), inside a loopback-only network
    namespace unless the machine's DDS is meant to be reachable."""
    rclpy.init(args=args)
    node = TwinNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C, or SIGTERM from ros2 launch
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
