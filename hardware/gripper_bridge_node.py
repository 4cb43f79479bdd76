"""The gripper bridge node: the stack's gripper command (command/gripper, std_msgs/Float64: the
spec's above +0.5 close, below -0.5 open, in between keep) turned into what a real gripper's driver
takes. The twin reads command/gripper itself; a robot's gripper driver does not, so a robot config
(configs/robot/franka.yaml, ur5e.yaml) runs this node beside the graph.

Parameter `backend`, the driver it talks to:
  franka          franka_ros2's franka_gripper actions (franka_msgs): close = Grasp (width 0, force
                  `force`, speed `speed`, any final width within `max_width` counts: the grasp
                  holds whatever is between the fingers), open = Move to `max_width`.
                  `target`: the franka_gripper node ("/fr3_gripper": <target>/grasp, <target>/move).
  gripper_action  a control_msgs/action/GripperCommand server (ros2_control's
                  GripperActionController, e.g. a Robotiq 2F or Hand-E): position `closed_position`
                  or `open_position`, max_effort `force`. `target`: the action
                  ("/robotiq_gripper_controller/gripper_cmd").
  position        a ros2_control forward position controller: std_msgs/Float64MultiArray with
                  `closed_position` or `open_position` once per gripper joint (`joints`).
                  `target`: its command topic ("/gripper_controller/commands").
franka_msgs and control_msgs come with the robot workstation's ROS 2 install (franka_ros2,
ros2_control); they are imported only by the backend that needs them.

Only a change goes out: the policy sends a command every control tick, and re-sending a goal ten
times a second would preempt the gripper's own motion. A goal still running when the opposite
command comes is cancelled first. A goal the driver rejects or aborts, or no action server at all,
is logged (at most every LOG_PERIOD_S) and forgotten, so the next close or open command is sent
again. A NaN or infinite command is logged and dropped.

Parameters: backend, target, max_width (m, franka: 0.08), speed (m/s, franka: 0.1), force (N: 70,
the Franka Hand's continuous force), open_position, closed_position (gripper_action, position: the
driver's units, e.g. m per finger), joints (position: 1).
Topics: subscribed command/gripper (std_msgs/Float64, RELIABLE depth 10, as the safety node
publishes it).
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64, Float64MultiArray

from robot_rl import spec
from ros_nodes import convert
from ros_nodes.node_process import declare, spin_node_process

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LOG_PERIOD_S = 2.0
BACKENDS = {  # backend: its default target
    "franka": "/fr3_gripper",
    "gripper_action": "/robotiq_gripper_controller/gripper_cmd",
    "position": "/gripper_controller/commands",
}
ACTION_TYPES = {  # backend: the module its action types come from, and their names
    "franka": ("franka_msgs.action", ("Grasp", "Move")),
    "gripper_action": ("control_msgs.action", ("GripperCommand",)),
}


def import_action_types(backend: str) -> SimpleNamespace:
    """The backend's action types, from the workstation's ROS 2 install."""
    module_name, names = ACTION_TYPES[backend]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        package = module_name.split(".")[0]
        raise RuntimeError(
            f"backend {backend} needs the {package} package: source the ROS 2 workspace that has it "
            f"(franka_ros2 for franka_msgs, ros2_control's control_msgs) ({error})"
        ) from error
    return SimpleNamespace(**{name: getattr(module, name) for name in names})


class GripperBridgeNode(Node):
    def __init__(self, action_types: SimpleNamespace | None = None, action_client=ActionClient, **kwargs):
        """`action_types` and `action_client`: the backend's action types (default: imported from
        its ROS package) and the client class (a test passes fakes of both)."""
        super().__init__("gripper_bridge", **kwargs)
        self.backend = declare(self, "backend", "franka", f"the gripper's driver: one of {sorted(BACKENDS)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {self.backend!r}")
        self.target = declare(self, "target", BACKENDS[self.backend], "the driver's action, node or topic")
        self.max_width = declare(self, "max_width", 0.08, "franka: the opening to open to [m]")
        self.speed = declare(self, "speed", 0.1, "franka: finger speed [m/s]")
        self.force = declare(self, "force", 70.0, "grasp force (franka) or max effort (gripper_action) [N]")
        self.open_position = declare(self, "open_position", 0.0, "gripper_action, position: open, driver's units")
        self.closed_position = declare(self, "closed_position", 0.0, "gripper_action, position: closed")
        joints = declare(self, "joints", 1, "position: joints of the forward controller")
        for name in ("max_width", "speed", "force"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.backend != "franka" and self.open_position == self.closed_position:
            raise ValueError(f"backend {self.backend}: set open_position and closed_position (the driver's units)")

        self.closed: bool | None = None  # the last command sent; None: none yet, or it failed
        self.sent = 0  # goals sent: a goal's callbacks act only while it is the latest
        self.active = None  # the latest goal's handle while it runs
        self.failures = 0
        self.dropped = 0
        if self.backend == "position":
            self.publisher = self.create_publisher(Float64MultiArray, self.target, COMMAND_QOS)
            self.joints = joints
        else:
            types = action_types or import_action_types(self.backend)
            if self.backend == "franka":
                self.grasp_type, self.move_type = types.Grasp, types.Move
                self.grasp = action_client(self, types.Grasp, f"{self.target}/grasp")
                self.move = action_client(self, types.Move, f"{self.target}/move")
            else:
                self.command_type = types.GripperCommand
                self.gripper_command = action_client(self, types.GripperCommand, self.target)
        self.create_subscription(Float64, "command/gripper", self._on_command, COMMAND_QOS)
        self.get_logger().info(f"gripper commands -> {self.backend} at {self.target}")

    def _on_command(self, msg: Float64) -> None:
        try:
            value = convert.gripper_command(msg.data)
        except ValueError as error:
            self.dropped += 1
            self.get_logger().warning(f"command/gripper: dropped: {error}", throttle_duration_sec=LOG_PERIOD_S)
            return
        if self.closed is None and abs(value) <= spec.GRIPPER_DEADBAND:
            return  # "keep" with nothing commanded yet (or the last goal failed): the gripper stays
        closed = spec.gripper_closed_after(value, bool(self.closed))
        if closed != self.closed:
            self.closed = closed
            self._send(closed)

    def _send(self, closed: bool) -> None:
        self.sent += 1
        if self.backend == "position":
            position = self.closed_position if closed else self.open_position
            self.publisher.publish(Float64MultiArray(data=[float(position)] * self.joints))
            return
        if self.active is not None:  # the opposite motion is still running
            self.active.cancel_goal_async()
            self.active = None
        if self.backend == "franka":
            if closed:
                client, name, goal = self.grasp, f"{self.target}/grasp", self.grasp_type.Goal()
                goal.width, goal.speed, goal.force = 0.0, self.speed, self.force
                goal.epsilon.inner, goal.epsilon.outer = 0.0, self.max_width  # any width it stops at
            else:
                client, name, goal = self.move, f"{self.target}/move", self.move_type.Goal()
                goal.width, goal.speed = self.max_width, self.speed
        else:
            client, name, goal = self.gripper_command, self.target, self.command_type.Goal()
            goal.command.position = float(self.closed_position if closed else self.open_position)
            goal.command.max_effort = self.force
        what = "close" if closed else "open"
        if not client.server_is_ready():
            self._failed(self.sent, f"{what}: no action server on {name}")
            return
        client.send_goal_async(goal).add_done_callback(lambda future, n=self.sent: self._on_response(future, n, what))

    def _on_response(self, future, number: int, what: str) -> None:
        handle = future.result()
        if not handle.accepted:
            self._failed(number, f"{what}: the goal was rejected")
        elif number == self.sent:
            self.active = handle
            handle.get_result_async().add_done_callback(lambda done: self._on_result(done, number, what))
        else:  # a newer command came while this goal was on its way
            handle.cancel_goal_async()

    def _on_result(self, future, number: int, what: str) -> None:
        response = future.result()
        if response.status == GoalStatus.STATUS_CANCELED:
            return  # by a newer command
        result = response.result
        if self.backend == "franka":
            done, why = result.success, result.error
        else:  # stalled: holding something short of the position
            done, why = result.reached_goal or result.stalled, f"position {result.position:.4f}"
        ok = response.status == GoalStatus.STATUS_SUCCEEDED and done
        if number == self.sent:
            self.active = None
        if not ok:
            self._failed(number, f"{what}: the driver reports failure (status {response.status}): {why}")

    def _failed(self, number: int, why: str) -> None:
        self.failures += 1
        self.get_logger().error(f"gripper {why}", throttle_duration_sec=LOG_PERIOD_S)
        if number == self.sent:  # forget it: the next close or open command is sent again
            self.closed = None


def main(args: list[str] | None = None) -> None:
    """`robot-rl-gripper-bridge --ros-args -p backend:=franka -p target:=/fr3_gripper`, in the
    robot's namespace (remap command/gripper as the graph's remappings do)."""
    spin_node_process(GripperBridgeNode, args)


if __name__ == "__main__":
    main()
