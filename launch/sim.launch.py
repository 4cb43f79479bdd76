"""The robot_rl graph on the MuJoCo twin: one process per node, the node set of `robot-rl graph`
(robot_rl/robot/graph.py).

    ros2 launch launch/sim.launch.py
    ros2 launch launch/sim.launch.py overrides:='task=pick_cube ros.namespaces=[/robot_a,/robot_b]'
    ros2 launch launch/sim.launch.py overrides:='ros.twin_mode=realtime ros.teleop=true teleop=keyboard'

`overrides` are Hydra overrides (space-separated), composed into the config every node loads.
Needs a ROS 2 workstation (Jazzy/Kilted, launch_ros) with robot_rl installed in the Python that
ROS uses, so that the robot-rl-* executables are on PATH.
"""

from ros_nodes.launch_description import graph_launch_description


def generate_launch_description():
    return graph_launch_description(fixed_overrides=("ros.twin=true",))
