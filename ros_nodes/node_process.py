"""What every node of the graph shares: declaring a parameter (the Hydra overrides above all) and
running as a process of its own, as ros2 launch and the robot-rl-* executables start them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter

from robot_rl.config import Config, load_config


def declare(node: Node, name: str, default: Any, description: str) -> Any:
    """Declare a parameter and return its value."""
    descriptor = ParameterDescriptor(description=description)
    if default == []:  # rclpy types an empty list as a byte array: declare the type, no value
        parameter = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor)
        return parameter.value if parameter.type_ != Parameter.Type.NOT_SET else []
    return node.declare_parameter(name, default, descriptor).value


def composed_config(node: Node) -> Config:
    """The config composed from the node's `config_overrides` parameter (Hydra overrides, the same
    list for every node of a graph: robot_rl/robot/graph.py)."""
    overrides = declare(node, "config_overrides", [], "Hydra overrides, e.g. [task=pick_cube, ros.record=true]")
    return load_config(list(overrides))


def spin_node_process(make_node: Callable[[], Node], args: list[str] | None = None) -> None:
    """A node's main(): one node, single-threaded (rclpy's MultiThreadedExecutor polls a busy
    callback group in a hot loop that holds the GIL), until Ctrl-C or ros2 launch's SIGTERM. Run it
    inside a loopback-only network namespace unless the machine's DDS is meant to be reachable."""
    rclpy.init(args=args)
    node = make_node()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
