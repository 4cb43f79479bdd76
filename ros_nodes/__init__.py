"""rclpy nodes: the ROS 2 face of robot_rl (subscribe, convert, call robot_rl, publish)."""

import os

# Headless rendering for the twin's cameras, as robot_rl.sim.env sets it, but here before any node
# module imports mujoco itself (mujoco picks its OpenGL platform when it is imported).
if os.name == "posix" and "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl"
