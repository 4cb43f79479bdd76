"""The gripper bridge node: the position backend over real DDS to a client standing in for a
ros2_control forward controller; the franka and gripper_action backends with fake action types and
a fake action client (franka_msgs and control_msgs are not installable here), their commands fed
to the node's callback directly. Runs only inside a loopback-only network namespace
(test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace

import pytest
from action_msgs.msg import GoalStatus
from client import TIMEOUT, ClientNode, wait_until
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from std_msgs.msg import Float64, Float64MultiArray

from hardware.gripper_bridge_node import ACTION_TYPES, GripperBridgeNode

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def bridge(backend: str, **parameters) -> list[Parameter]:
    return [Parameter(name, value=value) for name, value in {"backend": backend, **parameters}.items()]


# the position backend, over DDS ------------------------------------------------------------------
class Controller(ClientNode):
    """Publishes the stack's gripper commands and keeps what the bridge sends the controller."""

    def __init__(self):
        super().__init__("controller")
        self.commands: list[list[float]] = []
        self.gripper = self.create_publisher(Float64, "command/gripper", RELIABLE)
        self.create_subscription(
            Float64MultiArray, "/gripper_controller/commands", lambda m: self.add(self.commands, list(m.data)), RELIABLE
        )


def test_position_backend_sends_each_change_once_per_joint(ros):
    node = GripperBridgeNode(parameter_overrides=bridge("position", open_position=0.025, closed_position=0.0, joints=2))
    controller = Controller()
    executor = SingleThreadedExecutor()
    for n in (node, controller):
        executor.add_node(n)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        wait_until(lambda: controller.gripper.get_subscription_count() >= 1, "the bridge never subscribed")
        wait_until(lambda: node.publisher.get_subscription_count() >= 1, "the controller never subscribed")
        # keep (nothing commanded yet), close, close again, keep, NaN, open, keep, close
        for value in (0.0, 0.9, 1.0, 0.3, math.nan, -0.8, -0.2, 0.6):
            controller.gripper.publish(Float64(data=value))
        controller.wait_for(lambda: len(controller.commands) >= 3, "three controller commands")
        wait_until(lambda: node.dropped == 1, "the NaN command was never dropped")
        assert controller.commands == [[0.0, 0.0], [0.025, 0.025], [0.0, 0.0]]
        assert node.closed is True
    finally:
        executor.shutdown()
        spinner.join(timeout=TIMEOUT)
        node.destroy_node()
        controller.destroy_node()


# the action backends, with fakes ----------------------------------------------------------------
def goal_type(**fields):
    """A fake action type whose Goal() has `fields` (nested ones as SimpleNamespace)."""

    class Goal(SimpleNamespace):
        def __init__(self):
            super().__init__(**{k: SimpleNamespace(**v) if isinstance(v, dict) else v for k, v in fields.items()})

    return SimpleNamespace(Goal=Goal)


FRANKA = SimpleNamespace(
    Grasp=goal_type(width=0.0, speed=0.0, force=0.0, epsilon={"inner": 0.005, "outer": 0.005}),
    Move=goal_type(width=0.0, speed=0.0),
)
CONTROL = SimpleNamespace(GripperCommand=goal_type(command={"position": 0.0, "max_effort": 0.0}))


class FakeGoalHandle:
    def __init__(self, accepted: bool):
        self.accepted = accepted
        self.result_future = Future()
        self.cancelled = False

    def get_result_async(self) -> Future:
        return self.result_future

    def cancel_goal_async(self) -> Future:
        self.cancelled = True
        return Future()

    def finish(self, status: int, **result) -> None:
        self.result_future.set_result(SimpleNamespace(status=status, result=SimpleNamespace(**result)))


class FakeActionClient:
    """Keeps the goals sent (goal, its response future) per action name, in `clients`."""

    clients: dict[str, FakeActionClient] = {}

    def __init__(self, node, action_type, name: str):
        self.action_type, self.name, self.ready = action_type, name, True
        self.goals: list[tuple[object, Future]] = []
        FakeActionClient.clients[name] = self

    def server_is_ready(self) -> bool:
        return self.ready

    def send_goal_async(self, goal) -> Future:
        future = Future()
        self.goals.append((goal, future))
        return future

    def answer(self, accepted: bool = True) -> FakeGoalHandle:
        """The server's answer to the latest goal."""
        handle = FakeGoalHandle(accepted)
        self.goals[-1][1].set_result(handle)
        return handle


@pytest.fixture
def fake_clients():
    FakeActionClient.clients = {}
    yield FakeActionClient.clients


def command(node: GripperBridgeNode, *values: float) -> None:
    for value in values:
        node._on_command(Float64(data=value))


def test_franka_backend_grasps_and_moves_cancels_and_resends_after_a_failure(ros, fake_clients):
    node = GripperBridgeNode(FRANKA, FakeActionClient, parameter_overrides=bridge("franka", force=40.0))
    try:
        grasp, move = fake_clients["/fr3_gripper/grasp"], fake_clients["/fr3_gripper/move"]
        assert (grasp.action_type, move.action_type) == (FRANKA.Grasp, FRANKA.Move)

        command(node, 0.1, 0.7, 0.9, 0.0)  # keep, close, close, keep: one grasp
        assert len(grasp.goals) == 1 and not move.goals
        goal = grasp.goals[0][0]
        assert (goal.width, goal.speed, goal.force) == (0.0, 0.1, 40.0)
        assert (goal.epsilon.inner, goal.epsilon.outer) == (0.0, 0.08)  # holds whatever it closes on
        running = grasp.answer()

        command(node, -0.9)  # open while the grasp runs: cancelled, then a move to the full opening
        assert running.cancelled and len(move.goals) == 1
        assert (move.goals[0][0].width, move.goals[0][0].speed) == (0.08, 0.1)
        running.finish(GoalStatus.STATUS_CANCELED, success=False, error="")
        move.answer().finish(GoalStatus.STATUS_SUCCEEDED, success=True, error="")
        assert node.failures == 0 and node.closed is False

        command(node, 0.8)  # the driver aborts this grasp: the next close goes out again
        grasp.answer().finish(GoalStatus.STATUS_ABORTED, success=False, error="libfranka: grasp failed")
        assert node.failures == 1 and node.closed is None
        command(node, 0.0)  # keep: nothing
        assert len(grasp.goals) == 2
        command(node, 0.8)
        assert len(grasp.goals) == 3
        grasp.answer(accepted=False)  # rejected: likewise
        assert node.failures == 2 and node.closed is None

        grasp.ready = False  # no franka_gripper node: logged, nothing sent, tried again next time
        command(node, 0.8)
        assert len(grasp.goals) == 3 and node.failures == 3 and node.closed is None
    finally:
        node.destroy_node()


def test_gripper_action_backend_counts_a_stall_as_holding(ros, fake_clients):
    parameters = bridge("gripper_action", open_position=0.0, closed_position=0.8, force=20.0)
    node = GripperBridgeNode(CONTROL, FakeActionClient, parameter_overrides=parameters)
    try:
        action = fake_clients["/robotiq_gripper_controller/gripper_cmd"]
        command(node, 0.9)
        goal = action.goals[-1][0]
        assert (goal.command.position, goal.command.max_effort) == (0.8, 20.0)
        stalled = {"position": 0.41, "effort": 20.0, "stalled": True, "reached_goal": False}
        action.answer().finish(GoalStatus.STATUS_SUCCEEDED, **stalled)  # closed on the object
        assert node.failures == 0 and node.closed is True
        command(node, -0.9)
        assert action.goals[-1][0].command.position == 0.0
        action.answer().finish(GoalStatus.STATUS_ABORTED, position=0.41, effort=0.0, stalled=False, reached_goal=False)
        assert node.failures == 1 and node.closed is None
    finally:
        node.destroy_node()


def test_bad_parameters_and_a_missing_driver_package_say_what_to_do(ros, monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of"):
        GripperBridgeNode(parameter_overrides=bridge("robotiq"))
    with pytest.raises(ValueError, match="set open_position and closed_position"):
        GripperBridgeNode(parameter_overrides=bridge("position"))
    # a package name no install has (franka_msgs itself may be there, on a workstation)
    monkeypatch.setitem(ACTION_TYPES, "franka", ("no_such_msgs.action", ("Grasp", "Move")))
    with pytest.raises(RuntimeError, match="needs the no_such_msgs package: source the ROS 2 workspace"):
        GripperBridgeNode(parameter_overrides=bridge("franka"))
