"""Robot-side logic of the ROS graph: pure Python, no rclpy."""
