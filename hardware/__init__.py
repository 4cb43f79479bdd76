"""Device drivers and robot adapters that no maintained ROS 2 package already covers."""
