"""The robot_rl graph on a real robot: the drivers (cameras, F/T sensor, the arm's controller) run
from their own packages, their topics mapped onto the graph's names by ros.remappings, and the node
set of `robot-rl graph` (robot_rl/robot/graph.py) starts without the twin, one process per node.

    ros2 launch launch/real.launch.py overrides:='ros.reset_service=/franka/reset \
        ros.remappings=["tcp/pose:=/franka/ee_pose","ft_sensor/wrench:=/netft/wrench"]'

`overrides` are Hydra overrides (space-separated), after the fixed ros.twin=false.
"""

from ros_nodes.launch_description import graph_launch_description


def generate_launch_description():
    return graph_launch_description(fixed_overrides=("ros.twin=false",))
