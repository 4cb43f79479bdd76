"""The spacemouse node: a 3Dconnexion SpaceMouse read over HID (hardware/spacemouse.py), published
as the spacenav node publishes it, for machines without spacenavd. The teleop node reads it
unchanged (configs/teleop/spacemouse.yaml: spacenav/joy; spacenav_twist.yaml: spacenav/twist).

Parameters
  vendor_id, product_id   the device (0: any known model; the first connected is taken)
  path                    or a hidapi path (/dev/hidrawN on Linux) instead of the ids ("")
  full_scale              counts read as a full deflection (350; the spacenav node divides by 512)
  rate_hz                 Joy and Twist are published at this rate (50)
  reconnect_period_s      a missing or unplugged device is opened again this often (1.0)
  deflection_timeout_s    a deflection not reported again for this long reads as rest (0.25)
  linear_scale, angular_scale  Twist = the axes times these (1.0, as spacenav)
  frame_id                of the Joy header ("spacemouse")
Topics (relative names, as spacenav's; RELIABLE depth 10, as spacenav publishes)
  spacenav/joy    sensor_msgs/Joy: axes x y z rx ry rz in [-1, 1] (ROS convention: x away from the
                  operator, y left, z up), buttons 0/1 (0 left, 1 right on two-button models);
                  header.frame_id = frame_id
  spacenav/twist  geometry_msgs/Twist: the same axes times linear_scale / angular_scale (1 by
                  default, as spacenav)
Both at rate_hz, whether or not the device is there: at rest (zeros, no button) while it is not,
so the operator's command ends with the cable. Unlike spacenav, which sends only on device events,
this node repeats the state: a subscriber's timeout then means this node is gone, not the puck at
rest.

A thread reads the device (HID reads block) and reopens it every reconnect_period_s when it is
missing or unplugged; disconnects and reconnects are logged, failed opens at most every LOG_PERIOD,
and the node keeps running. hidapi missing or ids of no known model fail at start.
"""

from __future__ import annotations

from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Joy

from hardware.spacemouse import (
    CONNECTED,
    DEFAULT_FULL_SCALE,
    DISCONNECTED,
    OPEN_FAILED,
    DeviceOpener,
    SpaceMouseReader,
    hid_opener,
)
from ros_nodes import convert
from ros_nodes.node_process import declare, spin_node_process

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LOG_PERIOD = 10.0  # s between two log lines about failed opens or malformed reports


class SpaceMouseNode(Node):
    def __init__(self, open_device: DeviceOpener | None = None, **kwargs):
        """`open_device`: how to open the device (a test passes a fake); by default hidapi with the
        vendor_id / product_id / path parameters."""
        super().__init__("spacemouse", **kwargs)
        vendor_id = declare(self, "vendor_id", 0, "USB vendor id (0: any known; 3Dconnexion 0x256f, older 0x046d)")
        product_id = declare(self, "product_id", 0, "USB product id (0: the first known SpaceMouse connected)")
        path = declare(self, "path", "", "hidapi device path (/dev/hidrawN on Linux) instead of the ids")
        full_scale = declare(self, "full_scale", DEFAULT_FULL_SCALE, "counts read as a full deflection (spacenav: 512)")
        rate_hz = declare(self, "rate_hz", 50.0, "Joy and Twist are published at this rate")
        reconnect_period_s = declare(self, "reconnect_period_s", 1.0, "s between two tries to open a missing device")
        deflection_timeout_s = declare(
            self, "deflection_timeout_s", 0.25, "a deflection not reported again for this long reads as rest"
        )
        self.linear_scale = declare(self, "linear_scale", 1.0, "Twist.linear = translation axes times this")
        self.angular_scale = declare(self, "angular_scale", 1.0, "Twist.angular = rotation axes times this")
        self.frame_id = declare(self, "frame_id", "spacemouse", "Joy.header.frame_id")
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        if open_device is None:
            open_device = hid_opener(vendor_id, product_id, path)
        self.reader = SpaceMouseReader(
            open_device,
            full_scale=full_scale,
            reconnect_period_s=reconnect_period_s,
            deflection_timeout_s=deflection_timeout_s,
            on_status=self._on_status,
        )
        self._logged_malformed = 0
        self.joy_publisher = self.create_publisher(Joy, "spacenav/joy", QOS)
        self.twist_publisher = self.create_publisher(Twist, "spacenav/twist", QOS)
        self.create_timer(1.0 / rate_hz, self._publish)
        self.reader.start()

    def _publish(self) -> None:
        state = self.reader.state
        header = convert.header(self.get_clock().now().nanoseconds, self.frame_id)
        self.joy_publisher.publish(Joy(header=header, axes=list(state.axes), buttons=list(state.buttons)))
        twist = Twist()
        twist.linear.x, twist.linear.y, twist.linear.z = (a * self.linear_scale for a in state.axes[:3])
        twist.angular.x, twist.angular.y, twist.angular.z = (a * self.angular_scale for a in state.axes[3:])
        self.twist_publisher.publish(twist)
        if state.malformed_reports > self._logged_malformed:
            self._logged_malformed = state.malformed_reports
            self.get_logger().warning(
                f"SpaceMouse: {state.malformed_reports} malformed HID reports dropped so far",
                throttle_duration_sec=LOG_PERIOD,
            )

    def _on_status(self, event: str, message: str) -> None:  # on the reader's thread
        logger = self.get_logger()
        if event == CONNECTED:
            logger.info(message)
        elif event == DISCONNECTED:
            logger.warning(message)
        elif event == OPEN_FAILED:
            logger.warning(message, throttle_duration_sec=LOG_PERIOD)
        else:
            logger.error(message)

    def destroy_node(self) -> None:
        self.reader.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`robot-rl-spacemouse` (or `python -m hardware.spacemouse_node`), e.g. with `--ros-args -p
    product_id:=50741` (0xc635, a SpaceMouse Compact); inside a loopback-only network namespace unless
    the machine's DDS is meant to be reachable."""
    spin_node_process(SpaceMouseNode, args)


if __name__ == "__main__":
    main()
