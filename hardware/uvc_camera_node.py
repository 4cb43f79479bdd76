"""The UVC camera node: a USB camera (or a looping video file standing in for one) as ROS 2 camera
topics, for the sensor aggregator. The driver, with what it granted, losing the camera and getting it
back, is hardware/uvc_camera.py's UvcCamera; this node declares parameters, reads a frame on a timer
at `fps` and publishes it.

The aggregator subscribes to cameras/<cam>/image_raw (or .../compressed) in its robot's namespace,
so start one of these per camera in the namespace cameras/<cam>, e.g. for the camera "front":
    robot-rl-uvc-camera --ros-args -r __ns:=/cameras/front \\
        -p device:=/dev/v4l/by-id/usb-...-video-index0 -p frame_id:=front_camera -p fourcc:=MJPG

Topics (relative names), all with the sensor-data QoS (best effort, keep last 5), one stamp (the
node's clock when the frame was read) and `frame_id` for the three messages of a frame
  image_raw             sensor_msgs/Image, rgb8, at the size the device granted (logged at open)
  image_raw/compressed  sensor_msgs/CompressedImage, jpeg, only with publish_compressed
  camera_info           sensor_msgs/CameraInfo: `k` and `d` under `distortion_model`; without `k`,
                        uncalibrated: k, r, p zeros, d empty, distortion_model ""

Parameters: device (a /dev path, an index such as "0", or a video file), width, height, fps,
exposure (unset: auto), fourcc ("": the device's default), reconnect_period_s, frame_id (the
UvcCameraConfig fields), publish_compressed, k (9 numbers, row-major), d, distortion_model.

A camera missing at start or lost later is logged (lost, then still lost at most every
RETRY_LOG_PERIOD_S, then back after how long) and retried every reconnect_period_s; the node keeps
running and publishes nothing meanwhile.
"""

from __future__ import annotations

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from hardware.uvc_camera import CameraIntrinsics, CameraUnavailable, UvcCamera, UvcCameraConfig
from ros_nodes import convert
from ros_nodes.node_process import declare, spin_node_process

LOG_PERIOD_S = 1.0  # s between two log lines of one kind: a flapping cable must not flood the log
RETRY_LOG_PERIOD_S = 10.0  # s between two "still lost" lines
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _declare_unset(node: Node, name: str, kind: Parameter.Type, description: str) -> object | None:
    """A parameter without a default: its value, or None when not given."""
    parameter = node.declare_parameter(name, kind, ParameterDescriptor(description=description))
    return None if parameter.type_ == Parameter.Type.NOT_SET else parameter.value


class UvcCameraNode(Node):
    def __init__(self, **kwargs):
        super().__init__("uvc_camera", **kwargs)
        default = UvcCameraConfig()
        config = UvcCameraConfig(
            device=declare(self, "device", str(default.device), "/dev/videoN, /dev/v4l/by-id/..., an index, a file"),
            width=declare(self, "width", default.width, "frame width asked of the device, pixels"),
            height=declare(self, "height", default.height, "frame height asked of the device, pixels"),
            fps=declare(self, "fps", default.fps, "frames per second asked of the device, and the publish rate"),
            exposure=_declare_unset(
                self, "exposure", Parameter.Type.DOUBLE, "manual exposure (device units); unset: auto"
            ),
            fourcc=declare(self, "fourcc", default.fourcc, 'pixel format, e.g. "MJPG"; "": the device default'),
            reconnect_period_s=declare(
                self, "reconnect_period_s", default.reconnect_period_s, "s between reopen tries"
            ),
            frame_id=declare(self, "frame_id", default.frame_id, "the camera's optical frame, e.g. front_camera"),
        )
        self.publish_compressed = declare(self, "publish_compressed", False, "also publish image_raw/compressed (jpeg)")
        k = _declare_unset(self, "k", Parameter.Type.DOUBLE_ARRAY, "camera matrix, row-major; unset: uncalibrated")
        d = _declare_unset(self, "d", Parameter.Type.DOUBLE_ARRAY, "distortion coefficients; unset: none")
        model = declare(self, "distortion_model", "plumb_bob", "d's model: plumb_bob, rational_polynomial, equidistant")
        self.intrinsics = CameraIntrinsics(k=tuple(k or ()), d=tuple(d or ()), distortion_model=model)
        self.intrinsics.validate()
        self.camera = UvcCamera(config, on_event=self._on_camera_event)

        self.image_publisher = self.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.compressed_publisher = (
            self.create_publisher(CompressedImage, "image_raw/compressed", qos_profile_sensor_data)
            if self.publish_compressed
            else None
        )
        self.info_publisher = self.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
        try:
            self.camera.open()
        except CameraUnavailable as error:
            self.get_logger().error(f"{error}; retrying every {config.reconnect_period_s:g} s")
        # the steady clock paces the device whatever the node's clock is (sim time has no cameras)
        self.create_timer(1.0 / config.fps, self._on_tick, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _on_tick(self) -> None:
        frame = self.camera.read()
        if frame is None:
            return
        stamp = self.get_clock().now().nanoseconds
        frame_id = self.camera.config.frame_id
        self.image_publisher.publish(convert.rgb_to_image(frame, stamp, frame_id))
        if self.compressed_publisher is not None:
            self.compressed_publisher.publish(convert.rgb_to_compressed(frame, "jpeg", stamp, frame_id))
        self.info_publisher.publish(self._camera_info(frame, stamp, frame_id))

    def _camera_info(self, frame: np.ndarray, stamp: int, frame_id: str) -> CameraInfo:
        calibrated = bool(self.intrinsics.k)
        return CameraInfo(
            header=convert.header(stamp, frame_id),
            height=frame.shape[0],
            width=frame.shape[1],
            distortion_model=self.intrinsics.distortion_model if calibrated else "",
            d=list(self.intrinsics.d),
            k=list(self.intrinsics.k) if calibrated else [0.0] * 9,
            r=list(IDENTITY) if calibrated else [0.0] * 9,
            p=list(self.intrinsics.projection()),
        )

    def _on_camera_event(self, kind: str, message: str) -> None:
        # one call site per kind: rclpy throttles per call site
        logger = self.get_logger()
        if kind == "lost":
            logger.warning(message, throttle_duration_sec=LOG_PERIOD_S)
        elif kind == "back":
            logger.info(message, throttle_duration_sec=LOG_PERIOD_S)
        elif kind == "retry_failed":
            lost_for = self.camera.lost_for_s or 0.0
            logger.warning(f"{message}: still lost after {lost_for:.0f} s", throttle_duration_sec=RETRY_LOG_PERIOD_S)
        elif kind == "mismatch":
            logger.warning(message, throttle_duration_sec=LOG_PERIOD_S)
        else:
            logger.info(message, throttle_duration_sec=LOG_PERIOD_S)

    def destroy_node(self) -> None:
        self.camera.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`robot-rl-uvc-camera --ros-args -r __ns:=/cameras/<cam> -p device:=/dev/video0 ...` (see the
    module's docstring), inside a loopback-only network namespace unless the machine's DDS is meant
    to be reachable."""
    spin_node_process(UvcCameraNode, args)


if __name__ == "__main__":
    main()
