"""rclpy nodes: the ROS 2 face of robot_rl (subscribe, convert, call robot_rl, publish)."""
