"""The UVC camera node reading a generated MJPG video (the camera's stand-in) beside a small client
node in the same process (one executor): Image, CompressedImage and CameraInfo arrive at about the
fps with one stamp and frame_id per frame, rgb8 at the video's size and with its frames in order;
when the file goes away the node logs the loss, keeps running and publishes again once it is back.
Runs only inside a loopback-only network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from client import ROSOUT_LATCHED, TIMEOUT, ClientNode
from indexed_video import FPS, HEIGHT, WIDTH, IndexedVideo
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from hardware.uvc_camera_node import UvcCameraNode
from ros_nodes import convert

VIDEO = IndexedVideo(n_frames=10)
N_FRAMES = VIDEO.n_frames
NAMESPACE = "/cameras/front"  # where the aggregator looks for the camera "front"
FRAME_ID = "front_camera"
K = [100.0, 0.0, 40.0, 0.0, 100.0, 24.0, 0.0, 0.0, 1.0]
D = [0.1, -0.05, 0.0, 0.0, 0.01]


class Client(ClientNode):
    """What the aggregator sees of the camera, and the camera node's log lines."""

    def __init__(self):
        super().__init__("camera_client", log_of="uvc_camera", log_qos=ROSOUT_LATCHED)
        self.images: list[Image] = []
        self.compressed: list[CompressedImage] = []
        self.infos: list[CameraInfo] = []
        for kind, topic, into in (
            (Image, "image_raw", self.images),
            (CompressedImage, "image_raw/compressed", self.compressed),
            (CameraInfo, "camera_info", self.infos),
        ):
            self.create_subscription(
                kind, f"{NAMESPACE}/{topic}", lambda msg, into=into: self.add(into, msg), qos_profile_sensor_data
            )

    def wait_images(self, count: int) -> None:
        self.wait_for(lambda: len(self.images) >= count, f"{count} images (have {len(self.images)})")


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return VIDEO.write(tmp_path / "front.avi")


@pytest.fixture
def running(ros, video):
    """The camera node (in cameras/front, on the video) and the client, spinning, matched."""
    parameters = {
        "device": str(video),
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "frame_id": FRAME_ID,
        "reconnect_period_s": 0.2,
        "publish_compressed": True,
        "k": K,
        "d": D,
    }
    overrides = [Parameter(name, value=value) for name, value in parameters.items()]
    camera = UvcCameraNode(namespace=NAMESPACE, parameter_overrides=overrides)
    client = Client()
    executor = SingleThreadedExecutor()
    executor.add_node(camera)
    executor.add_node(client)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    yield camera, client
    executor.shutdown()
    spinner.join(timeout=TIMEOUT)
    client.destroy_node()
    camera.destroy_node()


def test_image_compressed_and_camera_info_at_the_fps(running):
    camera, client = running
    assert client.wait_log("open: 80x48 at 20 fps MJPG")
    client.wait_images(30)
    with client.changed:
        images, compressed, infos = list(client.images), list(client.compressed), list(client.infos)

    stamps = [convert.time_ns(msg.header.stamp) for msg in images]
    intervals_s = np.diff(stamps) / 1e9
    assert np.all(intervals_s > 0)
    assert 0.8 / FPS < np.median(intervals_s) < 1.2 / FPS, f"frame intervals {intervals_s}"
    assert 0.6 * FPS < (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9) < 1.3 * FPS

    for msg in images:
        assert (msg.encoding, msg.width, msg.height, msg.step, msg.header.frame_id) == (
            "rgb8",
            WIDTH,
            HEIGHT,
            240,
            FRAME_ID,
        )
    indices = [VIDEO.index(convert.image_to_rgb(msg)) for msg in images]
    steps = np.diff(indices) % N_FRAMES  # the video's order, looping
    assert np.mean(steps == 1) >= 0.9 and np.all(steps > 0), f"frame indices {indices}"

    # the three messages of a frame share its stamp (the last few may still be on their way)
    by_stamp_compressed = {convert.time_ns(msg.header.stamp): msg for msg in compressed}
    by_stamp_info = {convert.time_ns(msg.header.stamp): msg for msg in infos}
    checked = list(zip(stamps, indices, strict=True))[:-3]
    matched = [(s, i) for s, i in checked if s in by_stamp_compressed and s in by_stamp_info]
    assert len(matched) >= 0.9 * len(checked), f"{len(matched)} of {len(checked)} frames have all three messages"
    for stamp, index in matched:
        jpeg = by_stamp_compressed[stamp]
        assert jpeg.header.frame_id == FRAME_ID and "jpeg" in jpeg.format
        assert VIDEO.index(convert.compressed_to_rgb(jpeg)) == index
        info = by_stamp_info[stamp]
        assert (info.header.frame_id, info.width, info.height, info.distortion_model) == (
            FRAME_ID,
            WIDTH,
            HEIGHT,
            "plumb_bob",
        )
        assert list(info.k) == K and list(info.d) == D and list(info.r) == [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
        assert list(info.p) == [100.0, 0, 40.0, 0, 0, 100.0, 24.0, 0, 0, 0, 1.0, 0]

    types = dict(client.get_topic_names_and_types())
    assert types[f"{NAMESPACE}/image_raw"] == ["sensor_msgs/msg/Image"]
    assert types[f"{NAMESPACE}/image_raw/compressed"] == ["sensor_msgs/msg/CompressedImage"]
    assert types[f"{NAMESPACE}/camera_info"] == ["sensor_msgs/msg/CameraInfo"]
    assert camera.camera.counters.failed_reads == 0


def test_the_node_keeps_running_while_the_camera_is_lost(running, video, tmp_path):
    camera, client = running
    client.wait_images(3)
    away = video.rename(tmp_path / "unplugged.avi")
    client.wait_log(f"camera {video} lost (no frame from the device); retrying every 0.2 s")
    assert client.wait_log(f"camera {video}: no such video file: still lost after")
    time.sleep(0.1)  # frames published before the loss are through
    count = len(client.images)
    time.sleep(0.5)
    assert len(client.images) == count, "frames while the camera is lost"

    away.rename(video)
    assert client.wait_log(f"camera {video} back after")
    client.wait_images(count + 5)
    with client.changed:
        indices = [VIDEO.index(convert.image_to_rgb(msg)) for msg in client.images[count : count + 5]]
    # from the file's start again (best effort may have dropped one frame on the way)
    assert indices[0] <= 1 and np.all(np.isin(np.diff(indices), (1, 2))), f"indices {indices}"
    assert camera.camera.counters.reconnects == 1 and camera.camera.counters.failed_reads == 1
