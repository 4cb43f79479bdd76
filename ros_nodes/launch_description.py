"""The graph's description (robot_rl/robot/graph.py) as a ros2 launch description: one launch_ros
Node per node, each running the robot-rl-* executable of pyproject.toml. launch/sim.launch.py and
launch/real.launch.py are this with their fixed overrides. Imports launch_ros: only a workstation
with ROS 2 has it (`robot-rl graph` starts the same nodes without it)."""

from __future__ import annotations

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from robot_rl.config import load_config
from robot_rl.robot.graph import graph_nodes


def graph_launch_description(fixed_overrides: tuple[str, ...] = ()) -> LaunchDescription:
    """Launch argument `overrides`: Hydra overrides, space-separated, after `fixed_overrides`."""

    def launch_nodes(context, *args, **kwargs) -> list[Node]:
        overrides = [*fixed_overrides, *LaunchConfiguration("overrides").perform(context).split()]
        config = load_config(overrides)
        return [
            Node(
                executable=spec.node.executable,
                namespace=spec.namespace or None,
                # launch_ros writes parameters to a YAML file, where an empty list has no type
                parameters=[{name: value for name, value in spec.parameters.items() if value != []}],
                remappings=list(spec.remappings.items()),
                output="screen",
            )
            for spec in graph_nodes(config, overrides)
        ]

    return LaunchDescription(
        [
            DeclareLaunchArgument("overrides", default_value="", description="Hydra overrides, space-separated"),
            OpaqueFunction(function=launch_nodes),
        ]
    )
