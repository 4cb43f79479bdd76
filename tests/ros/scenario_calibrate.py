"""The calibration tools (ros_nodes/calibrate.py) against a fake robot cell in the same process: a
fake driver node publishes what a real cell's drivers would (two cameras, the F/T wrench with a
tare service, the TCP pose and twist, joint states) at set rates on its own executor thread, while
each tool runs as the command it is (its own rclpy context and node). The doctor names exactly the
stream left out and the one published with the wrong type; record_workspace writes the box around
the corners a scripted operator moved the arm to; tare zeroes the fake's bias; pick_crops writes
crops from given rectangles, or saves grid images without a display. Runs only inside a
loopback-only network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pytest
from client import wait_until
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from omegaconf import OmegaConf
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from robot_rl.config import load_config
from robot_rl.robot import calibration as cal
from ros_nodes import calibrate, convert

TICK_HZ = 200.0  # the wrench's rate; the state every 4th tick (50 Hz), images every 8th (25 Hz)
BIAS = np.array([5.0, -3.0, 12.0, 0.1, -0.05, 0.02])  # N, Nm: what the fake sensor reads untared
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
FRAME_W, FRAME_H = 160, 120


class FakeCell(Node):
    """A robot cell's drivers in one node: sensor-data QoS, the config's frames. `leave_out`:
    topics it does not publish; `wrong_type`: topics it publishes as std_msgs/String instead."""

    def __init__(self, namespace: str, leave_out=(), wrong_type=(), tare_works: bool = True):
        super().__init__("fake_cell", namespace=namespace)
        self.position = np.array([0.5, 0.0, 0.2])
        self.offset = np.zeros(6)  # the tare's
        self.tare_works = tare_works
        self.pose_count = 0
        self.rng = np.random.default_rng(0)
        self.frame = np.random.default_rng(1).integers(0, 255, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
        kinds = {
            "cameras/front/image_raw": Image,
            "cameras/wrist/image_raw": Image,
            "ft_sensor/wrench": WrenchStamped,
            "tcp/pose": PoseStamped,
            "tcp/twist": TwistStamped,
            "joint_states": JointState,
        }
        self.out = {
            topic: self.create_publisher(String if topic in wrong_type else kind, topic, qos_profile_sensor_data)
            for topic, kind in kinds.items()
            if topic not in leave_out
        }
        self.create_service(Trigger, "ft_sensor/tare", self._on_tare)
        self.ticks = 0
        self.create_timer(1.0 / TICK_HZ, self._tick)

    def _on_tare(self, request, response):
        if self.tare_works:
            self.offset = BIAS.copy()
        response.success, response.message = True, "biased"
        return response

    def _publish(self, topic: str, make) -> None:
        publisher = self.out.get(topic)
        if publisher is None:
            return
        publisher.publish(String(data="not this type") if publisher.msg_type is String else make())

    def _tick(self) -> None:
        self.ticks += 1
        now = self.get_clock().now().nanoseconds
        wrench = BIAS - self.offset + np.r_[self.rng.normal(0, 0.05, 3), self.rng.normal(0, 0.002, 3)]
        self._publish("ft_sensor/wrench", lambda: convert.array_to_wrench(wrench, now, "panda_ft_sensor"))
        if self.ticks % 4 == 0:
            pose = np.r_[self.position, [0.0, 1.0, 0.0, 0.0]]
            self._publish("tcp/pose", lambda: convert.tcp_pose_to_pose(pose, now, "panda_link0"))
            self.pose_count += 1
            self._publish("tcp/twist", lambda: convert.tcp_vel_to_twist(np.zeros(6), now, "panda_link0"))
            self._publish("joint_states", lambda: convert.arrays_to_joint_state(FINGERS, [0.02, 0.02], stamp_ns=now))
        if self.ticks % 8 == 0:
            for cam in ("front", "wrist"):
                image = convert.rgb_to_image(self.frame, now, f"{cam}_camera")
                self._publish(f"cameras/{cam}/image_raw", lambda image=image: image)

    def move_to(self, position) -> None:
        """Put the TCP at `position` and wait until it has gone out in 10 poses."""
        self.position = np.array(position, dtype=float)
        published = self.pose_count
        wait_until(lambda: self.pose_count >= published + 10, "the fake cell stopped publishing poses")


@pytest.fixture
def cell(ros):
    """cell(namespace, **fake_options): a FakeCell spinning on its own thread until the test ends."""
    running = []

    def start(namespace: str, **options) -> FakeCell:
        node = FakeCell(namespace, **options)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        running.append((executor, thread, node))
        return node

    yield start
    for executor, thread, node in running:
        executor.shutdown()
        thread.join(timeout=5)
        node.destroy_node()


@functools.cache  # composing takes ~0.3 s; the tools only read the config
def config_for(namespace: str):
    """A robot (not the twin) in `namespace`, its F/T driver at 100 Hz (the fake runs at 200)."""
    return load_config(["ros.twin=false", "ros.aggregator.wrench_hz=100", f"ros.namespaces=[{namespace}]"])


def table(output: str) -> dict[str, str]:
    """{topic: status} from the doctor's printed table."""
    rows = {}
    for line in output.splitlines():
        for status in (cal.WRONG_TYPE, cal.TOO_SLOW, cal.MISSING, cal.BAD, cal.OK):
            if line.startswith(status + " "):
                rows[line[len(status) :].split()[0]] = status
    return rows


def test_the_doctor_names_the_missing_stream_and_the_wrong_type(cell, capsys):
    cell("/bad", leave_out=["tcp/twist"], wrong_type=["joint_states"])
    assert calibrate.doctor(config_for("/bad"), seconds=1.5) == 1
    output = capsys.readouterr().out
    assert table(output) == {
        "/bad/cameras/front/image_raw": cal.OK,
        "/bad/cameras/wrist/image_raw": cal.OK,
        "/bad/ft_sensor/wrench": cal.OK,
        "/bad/tcp/pose": cal.OK,
        "/bad/tcp/twist": cal.MISSING,
        "/bad/joint_states": cal.WRONG_TYPE,
    }, output
    assert "published as std_msgs/msg/String" in output and "2 of 6 streams need attention" in output


def test_the_doctor_passes_a_sound_cell(cell, capsys):
    cell("/ok")
    assert calibrate.doctor(config_for("/ok"), seconds=1.5) == 0, capsys.readouterr().out
    output = capsys.readouterr().out
    assert set(table(output).values()) == {cal.OK} and "all 6 streams OK" in output


def test_record_workspace_writes_the_box_around_the_corners(cell, tmp_path):
    fake = cell("/ws")
    output = tmp_path / "cell" / "local.yaml"
    cal.update_cell_file(output, {"ros": {"aggregator": {"cameras": {"front": {"crop": [0, 0, 64, 64]}}}}})
    corners = [[0.3, -0.2, 0.05], [0.7, 0.25, 0.4], [0.5, 0.0, 0.2]]
    script = iter(["", "", "", "q"])
    prompts = []

    def operator(prompt: str) -> str:
        prompts.append(prompt)
        if corners:
            fake.move_to(corners.pop(0))
        return next(script)

    assert calibrate.record_workspace(config_for("/ws"), output, margin=0.01, input_fn=operator) == 0
    assert len(prompts) == 4
    saved = OmegaConf.to_container(OmegaConf.load(output))
    assert saved["robot"]["workspace_low"] == pytest.approx([0.31, -0.19, 0.06])
    assert saved["robot"]["workspace_high"] == pytest.approx([0.69, 0.24, 0.39])
    assert saved["ros"]["aggregator"]["cameras"]["front"]["crop"] == [0, 0, 64, 64]  # kept


def test_record_workspace_refuses_one_corner_twice_and_writes_nothing(cell, tmp_path, capsys):
    cell("/ws2")
    output = tmp_path / "local.yaml"
    script = iter(["", "", "q"])
    assert calibrate.record_workspace(config_for("/ws2"), output, input_fn=lambda _: next(script)) == 1
    assert "at least 2 distinct positions, got 1" in capsys.readouterr().out and not output.exists()


def test_tare_zeroes_the_force(cell, capsys):
    cell("/ft")
    assert calibrate.tare(config_for("/ft"), seconds=0.5) == 0, capsys.readouterr().out
    assert "tare OK" in capsys.readouterr().out


def test_tare_notices_a_bias_that_stays(cell, capsys):
    cell("/ft2", tare_works=False)
    assert calibrate.tare(config_for("/ft2"), seconds=0.5) == 1
    assert "tare FAILED" in capsys.readouterr().out


def test_tare_without_the_service_fails_clearly(cell, capsys):
    cell("/ft3")
    started = time.monotonic()
    assert calibrate.tare(config_for("/ft3"), service="no_such/tare", service_timeout_s=1.0) == 1
    assert time.monotonic() - started < 5.0
    assert "no service /ft3/no_such/tare within 1 s" in capsys.readouterr().out


def test_pick_crops_with_rectangles_writes_the_crops(cell, tmp_path):
    cell("/cams")
    output = tmp_path / "local.yaml"
    cal.update_cell_file(output, {"robot": {"workspace_low": [0.3, -0.2, 0.05]}})
    assert calibrate.pick_crops(config_for("/cams"), output, rectangles={"front": [10, 20, 70, 60]}) == 0
    saved = OmegaConf.to_container(OmegaConf.load(output))
    # 60x40 grown to the 128x128 observation's square about its centre, in the 160x120 frame
    assert saved["ros"]["aggregator"]["cameras"] == {"front": {"crop": [10, 10, 70, 70]}}
    assert saved["robot"]["workspace_low"] == [0.3, -0.2, 0.05]


def test_pick_crops_without_a_display_saves_grids_and_writes_nothing(cell, tmp_path, monkeypatch, capsys):
    cell("/cams2")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    output = tmp_path / "local.yaml"
    assert calibrate.pick_crops(config_for("/cams2"), output, frames_dir=tmp_path / "frames") == 1
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["front.png", "wrist.png"]
    assert not output.exists() and "re-run" in capsys.readouterr().out


def test_the_crop_window_returns_the_rectangle_dragged_on_each_camera():
    """The window a person draws in, driven by mouse events (on the Agg canvas: no display here)."""
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import MouseEvent

    frames = {"front": np.zeros((120, 160, 3), np.uint8), "wrist": np.zeros((60, 80, 3), np.uint8)}
    drags = {"front": ((10.0, 20.0), (70.0, 60.0))}  # pixels; nothing drawn on the wrist camera

    def person_drags():
        figure = plt.gcf()
        figure.canvas.draw()  # the selectors' blitting needs a rendered background
        for ax in figure.axes:
            camera = ax.get_title().split()[0]
            if camera not in drags:
                continue
            (x0, y0), (x1, y1) = drags[camera]
            for event, (x, y) in (
                ("button_press_event", (x0, y0)),
                ("motion_notify_event", (x1, y1)),
                ("button_release_event", (x1, y1)),
            ):
                px, py = ax.transData.transform((x, y))
                MouseEvent(event, figure.canvas, px, py, button=1)._process()

    rectangles = calibrate._draw_rectangles(frames, show=person_drags)
    assert rectangles.keys() == {"front"}
    assert rectangles["front"] == pytest.approx([10, 20, 70, 60], abs=0.01)
    assert not plt.get_fignums()  # the window is closed


def test_pick_crops_refuses_an_unknown_camera(tmp_path, capsys):
    assert calibrate.pick_crops(config_for("/none"), tmp_path / "x.yaml", rectangles={"side": [0, 0, 9, 9]}) == 1
    assert "no camera ['side']" in capsys.readouterr().out


def test_the_doctor_knows_every_encoding_the_aggregator_reads():
    assert set(cal.IMAGE_ENCODINGS) == set(convert.COLOR_ENCODINGS)
