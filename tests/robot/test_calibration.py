"""robot_rl.robot.calibration without ROS: the cell file merge, the workspace box and its refusals,
crops grown to the observation's aspect ratio, the streams the doctor expects from a composed
config (remappings, namespaces, the twin), each verdict of evaluate(), and the tare check."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from omegaconf import OmegaConf

from robot_rl.config import load_config
from robot_rl.robot import calibration as cal


@pytest.fixture(scope="module")
def twin_config():
    return load_config([])


@pytest.fixture(scope="module")
def robot_config():
    return load_config(["ros.twin=false"])


def with_ros(config, **changes):
    return replace(config, ros=replace(config.ros, **changes))


# cell file ----------------------------------------------------------------------------------------
def test_cell_file_is_created_with_the_package_header_and_a_history_line(tmp_path):
    path = tmp_path / "cell" / "local.yaml"
    cal.update_cell_file(path, {"robot": {"workspace_low": [0.1, -0.2, 0.0]}}, tool="robot-rl calibrate workspace")
    lines = path.read_text().splitlines()
    assert lines[0] == "# @package _global_"
    assert lines[1].startswith("# ") and lines[1].endswith("robot-rl calibrate workspace: robot.workspace_low")
    assert OmegaConf.to_container(OmegaConf.load(path)) == {"robot": {"workspace_low": [0.1, -0.2, 0.0]}}
    assert [p.name for p in path.parent.iterdir()] == ["local.yaml"]  # no temporary file left


def test_cell_file_merge_keeps_other_keys_replaces_lists_and_keeps_the_history(tmp_path):
    path = tmp_path / "local.yaml"
    cal.update_cell_file(path, {"robot": {"workspace_low": [0, 0, 0], "workspace_high": [1, 1, 1]}}, tool="first")
    cal.update_cell_file(
        path, {"ros": {"aggregator": {"cameras": {"front": {"crop": np.array([1, 2, 41, 42])}}}}}, tool="second"
    )
    cal.update_cell_file(path, {"robot": {"workspace_low": [np.float64(0.25), 0.5, 0.75]}}, tool="third")
    loaded = OmegaConf.to_container(OmegaConf.load(path))
    assert loaded == {
        "robot": {"workspace_low": [0.25, 0.5, 0.75], "workspace_high": [1, 1, 1]},
        "ros": {"aggregator": {"cameras": {"front": {"crop": [1, 2, 41, 42]}}}},
    }
    lines = path.read_text().splitlines()
    assert lines.count("# @package _global_") == 1 and lines[0] == "# @package _global_"
    history = [line for line in lines[1:] if line.startswith("#")]
    assert [line.split(" ", 2)[2] for line in history] == [  # "# <when> <tool>: <keys>"
        "first: robot.workspace_low, robot.workspace_high",
        "second: ros.aggregator.cameras.front.crop",
        "third: robot.workspace_low",
    ]


def test_cell_file_merges_into_the_composed_configs_schema(tmp_path, robot_config):
    """What Hydra does with a `# @package _global_` option: merge its keys into the composed config."""
    path = tmp_path / "local.yaml"
    cal.update_cell_file(path, {"robot": {"workspace_low": [0.3, -0.2, 0.02], "workspace_high": [0.6, 0.2, 0.3]}})
    cal.update_cell_file(path, {"ros": {"aggregator": {"cameras": {"front": {"crop": [10, 10, 70, 70]}}}}})
    merged = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(robot_config), OmegaConf.load(path)))
    merged.validate()
    assert merged.robot.workspace_high == [0.6, 0.2, 0.3]
    assert merged.ros.aggregator_for(merged.sim).cameras["front"].crop == [10, 10, 70, 70]


def test_cell_file_refuses_empty_updates_nan_and_a_list_file(tmp_path):
    path = tmp_path / "local.yaml"
    with pytest.raises(ValueError, match="non-empty mapping"):
        cal.update_cell_file(path, {})
    with pytest.raises(ValueError, match=r"robot\.workspace_low: nan"):
        cal.update_cell_file(path, {"robot": {"workspace_low": [0.1, float("nan"), 0.0]}})
    assert not path.exists()
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="holds a list"):
        cal.update_cell_file(path, {"robot": {"name": "panda"}})


# workspace ----------------------------------------------------------------------------------------
def test_workspace_box_is_the_recorded_extent_shrunk_by_the_margin():
    recorder = cal.WorkspaceRecorder()
    for point in ([0.3, -0.2, 0.05], [0.7, 0.25, 0.40], [0.5, 0.0, 0.2], [0.3, 0.25, 0.05]):
        recorder.add(point)
    low, high = recorder.box(margin=0.01)
    assert low == pytest.approx([0.31, -0.19, 0.06]) and high == pytest.approx([0.69, 0.24, 0.39])
    assert recorder.box(margin=0.0) == ([0.3, -0.2, 0.05], [0.7, 0.25, 0.4])
    assert all(isinstance(v, float) for v in low + high)


@pytest.mark.parametrize(
    ("points", "margin", "message"),
    [
        ([], 0.01, "at least 2 distinct positions, got 0"),
        ([[0.5, 0.0, 0.2], [0.5, 0.0, 0.2]], 0.01, "at least 2 distinct positions, got 1"),
        ([[0.3, -0.2, 0.1], [0.7, 0.2, 0.11]], 0.0, "only 1.0 cm along z"),
        ([[300.0, -200.0, 100.0], [700.0, 200.0, 400.0]], 0.0, r"span 400.00 m along x .*in mm"),
        ([[0.3, -0.2, 0.1], [0.7, 0.2, 0.15]], 0.02, "leaves 1.0 cm along z"),
        ([[0.3, -0.2, 0.1], [0.7, 0.2, 0.4]], -0.01, "margin: must be"),
    ],
)
def test_workspace_box_refuses_what_cannot_be_a_workspace(points, margin, message):
    recorder = cal.WorkspaceRecorder()
    for point in points:
        recorder.add(point)
    with pytest.raises(ValueError, match=message):
        recorder.box(margin)


def test_workspace_recorder_refuses_non_finite_or_misshaped_positions():
    recorder = cal.WorkspaceRecorder()
    with pytest.raises(ValueError, match="finite"):
        recorder.add([0.1, float("inf"), 0.2])
    with pytest.raises(ValueError, match="shape"):
        recorder.add([0.1, 0.2, 0.3, 1.0])
    assert recorder.points == []


# crops --------------------------------------------------------------------------------------------
def crop_aspect(crop):
    x0, y0, x1, y1 = crop
    return (x1 - x0) / (y1 - y0)


@pytest.mark.parametrize(
    ("rectangle", "aspect", "expected"),
    [
        ((10, 20, 70, 60), 1.0, [10, 10, 70, 70]),  # wide: grows taller about its centre
        ((100, 40, 140, 200), 1.0, [40, 40, 200, 200]),  # tall: grows wider
        ((0, 0, 64, 48), 4 / 3, [0, 0, 64, 48]),  # already the aspect ratio: unchanged
        ((70, 50, 10, 20), 1.0, [10, 5, 70, 65]),  # corners in any order
        ((-30, 100, 50, 140), 1.0, [0, 95, 50, 145]),  # clipped to the frame first, then grown
        ((600, 400, 640, 480), 2.0, [480, 400, 640, 480]),  # grown past the corner: shifted back inside
        ((10.4, 20.6, 69.5, 59.2), 1.0, [10, 10, 70, 70]),  # fractions widen to whole pixels
    ],
)
def test_crop_grows_to_the_observation_aspect_without_dropping_the_rectangle(rectangle, aspect, expected):
    crop = cal.crop_from_rectangle(*rectangle, 640, 480, aspect)
    assert crop == expected
    assert all(isinstance(v, int) for v in crop)
    assert crop_aspect(crop) == pytest.approx(aspect, rel=0.02)
    x0, y0, x1, y1 = crop
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    left, right = sorted(rectangle[0::2])
    top, bottom = sorted(rectangle[1::2])
    assert x0 <= max(left, 0) and x1 >= min(right, 640) and y0 <= max(top, 0) and y1 >= min(bottom, 480)


@pytest.mark.parametrize(
    ("rectangle", "message"),
    [
        ((10, 20, 10, 60), "is empty"),
        ((700, 20, 800, 60), "is empty within the 640x480 frame"),
        ((0, 100, 600, 120), r"needs 600x600 pixels, more than the 640x480 frame"),
        ((0, 0, float("nan"), 10), "finite"),
    ],
)
def test_crop_refuses_empty_or_oversized_rectangles(rectangle, message):
    with pytest.raises(ValueError, match=message):
        cal.crop_from_rectangle(*rectangle, 640, 480, 1.0)


def test_crop_refuses_a_bad_frame_or_aspect():
    with pytest.raises(ValueError, match="frame size"):
        cal.crop_from_rectangle(0, 0, 10, 10, 0, 480, 1.0)
    with pytest.raises(ValueError, match="target_aspect"):
        cal.crop_from_rectangle(0, 0, 10, 10, 640, 480, 0.0)


# expected streams ---------------------------------------------------------------------------------
def test_expected_streams_of_the_default_twin_config(twin_config):
    streams = {s.topic: s for s in cal.expected_streams(twin_config)}
    assert list(streams) == [
        "/cameras/front/image_raw",
        "/cameras/wrist/image_raw",
        "/ft_sensor/wrench",
        "/tcp/pose",
        "/tcp/twist",
        "/joint_states",
        "/sim/privileged",
    ]
    kinds = {topic: (s.message_type, s.lockstep, s.min_rate_hz) for topic, s in streams.items()}
    assert kinds["/cameras/front/image_raw"] == ("sensor_msgs/msg/Image", True, 0.0)  # lockstep: no rate
    assert kinds["/sim/privileged"] == ("std_msgs/msg/UInt8MultiArray", True, 0.0)
    assert streams["/ft_sensor/wrench"].frame_id == "panda_ft_sensor"
    assert streams["/tcp/pose"].frame_id == "panda_link0"
    assert streams["/tcp/pose"].workspace == ((0.25, -0.3, 0.005), (0.75, 0.3, 0.45))
    assert streams["/joint_states"].joint_names == ("panda_finger_joint1", "panda_finger_joint2")
    assert "rgb8" in streams["/cameras/front/image_raw"].encodings
    assert all("twin" in s.publisher for s in streams.values())


def test_expected_streams_of_a_robot_need_the_rates_the_aggregator_needs(robot_config):
    streams = {s.topic: s for s in cal.expected_streams(robot_config)}
    assert "/sim/privileged" not in streams
    rates = {topic: s.min_rate_hz for topic, s in streams.items()}
    # cameras: a frame within max_age.camera=0.1 s; state within 0.05 s; wrench at wrench_hz
    assert rates == {
        "/cameras/front/image_raw": 10.0,
        "/cameras/wrist/image_raw": 10.0,
        "/ft_sensor/wrench": 1000.0,
        "/tcp/pose": 20.0,
        "/tcp/twist": 20.0,
        "/joint_states": 20.0,
    }
    assert not any(s.lockstep for s in streams.values())
    assert "robot-rl-netft" in streams["/ft_sensor/wrench"].publisher
    assert "robot-rl-uvc-camera" in streams["/cameras/wrist/image_raw"].publisher
    assert streams["/ft_sensor/wrench"].depth == 100 and streams["/cameras/front/image_raw"].depth == 2


def test_expected_streams_with_remappings_and_two_namespaces(robot_config):
    config = with_ros(
        robot_config,
        namespaces=["/left", "/right"],
        remappings=["tcp/pose:=franka/ee_pose", "/right/joint_states:=/right/franka/joint_states"],
    )
    topics = [s.topic for s in cal.expected_streams(config)]
    for ns in ("/left", "/right"):
        assert f"{ns}/franka/ee_pose" in topics and f"{ns}/tcp/pose" not in topics
        assert f"{ns}/cameras/front/image_raw" in topics and f"{ns}/ft_sensor/wrench" in topics
    assert "/left/joint_states" in topics and "/right/franka/joint_states" in topics
    assert "/right/joint_states" not in topics
    assert len(topics) == 12
    assert {s.namespace for s in cal.expected_streams(config)} == {"/left", "/right"}


def test_expected_streams_follow_compressed_cameras_and_twist_from_pose(robot_config):
    aggregator = replace(
        robot_config.ros.aggregator,
        cameras={"front": replace(robot_config.ros.aggregator_for(robot_config.sim).cameras["front"], compressed=True)},
        twist_from_pose=True,
    )
    streams = {s.topic: s for s in cal.expected_streams(with_ros(robot_config, aggregator=aggregator))}
    assert streams["/cameras/front/image_raw/compressed"].kind == cal.COMPRESSED
    # the safety node still watches the raw topic for staleness: at its camera_timeout's rate
    assert streams["/cameras/front/image_raw"].min_rate_hz == pytest.approx(1 / robot_config.ros.safety.camera_timeout)
    assert "/tcp/twist" not in streams


def test_resolve_name_applies_rules_as_rcl_does():
    rules = ["__ns:=/elsewhere", "safety:tcp/pose:=/safety_pose", "tcp/pose:=/ee_pose", "tcp/pose:=/never"]
    assert cal.resolve_name("tcp/pose", "", rules) == "/ee_pose"  # first matching rule wins
    assert cal.resolve_name("tcp/pose", "/r1", rules, ["safety"]) == "/safety_pose"  # a node's own rule
    assert cal.resolve_name("tcp/twist", "/r1", rules) == "/r1/tcp/twist"
    assert cal.resolve_name("/abs/topic", "/r1", ["/abs/topic:=rel"]) == "/r1/rel"


# evaluate -----------------------------------------------------------------------------------------
def healthy_reports(expected, seconds=1.0):
    """A report per stream as a sound driver would give: twice the needed rate, right frames."""
    reports = {}
    for stream in expected:
        report = cal.StreamReport(stream.topic, published_types=[stream.message_type])
        count = max(3, int(2 * stream.min_rate_hz * seconds))
        for t in np.linspace(0.0, seconds, count):
            if stream.kind == cal.CAMERA:
                report.add_image(t, "front_camera", "rgb8", 640, 480)
            elif stream.kind == cal.WRENCH:
                report.add_wrench(t, stream.frame_id, [1.0, -2.0, 3.0, 0.1, 0.0, 0.0])
            elif stream.kind == cal.POSE:
                report.add_pose(t, stream.frame_id, [0.5, 0.0, 0.2], [0.0, 1.0, 0.0, 0.0])
            elif stream.kind == cal.TWIST:
                report.add_values(t, stream.frame_id, [0.0] * 6)
            elif stream.kind == cal.JOINTS:
                report.add_joint_state(t, "", ["panda_joint1", *stream.joint_names])
            else:
                report.add(t)
        reports[stream.topic] = report
    return reports


def verdicts(lines):
    """{topic: (status, details)} from evaluate()'s table."""
    found = {}
    for line in lines[1:-1]:
        for status in (cal.WRONG_TYPE, cal.TOO_SLOW, cal.MISSING, cal.BAD, cal.OK):
            if line.startswith(status + " "):
                topic = line[len(status) :].split()[0]
                found[topic] = (status, line)
    return found


def test_evaluate_all_ok(robot_config):
    expected = cal.expected_streams(robot_config)
    lines, ok = cal.evaluate(expected, healthy_reports(expected))
    assert ok and lines[-1] == "all 6 streams OK"
    assert lines[0].split()[:3] == ["STATUS", "TOPIC", "TYPE"]
    assert {status for status, _ in verdicts(lines).values()} == {cal.OK} and len(verdicts(lines)) == 6


def test_evaluate_the_twin_in_lockstep_checks_no_rate(twin_config):
    expected = cal.expected_streams(twin_config)
    reports = {s.topic: cal.StreamReport(s.topic, published_types=[s.message_type]) for s in expected}
    for s in expected:
        reports[s.topic].add(0.0, s.frame_id or None)
        reports[s.topic].joint_names.update(s.joint_names)
    lines, ok = cal.evaluate(expected, reports)
    assert ok, "\n".join(lines)


def broken(robot_config, topic, change):
    expected = cal.expected_streams(robot_config)
    reports = healthy_reports(expected)
    if change is None:
        del reports[topic]
    else:
        change(reports[topic])
    lines, ok = cal.evaluate(expected, reports)
    found = verdicts(lines)
    assert not ok and lines[-1] == "1 of 6 streams need attention"
    assert [t for t, (status, _) in found.items() if status != cal.OK] == [topic]
    return found[topic]


def test_evaluate_missing_says_who_publishes_it(robot_config):
    status, line = broken(robot_config, "/ft_sensor/wrench", None)
    assert status == cal.MISSING and "nothing published" in line and "robot-rl-netft" in line


def test_evaluate_missing_with_a_publisher_points_at_qos(robot_config):
    def no_messages(report):
        report.messages, report.first_s, report.last_s = 0, None, None

    status, line = broken(robot_config, "/tcp/pose", no_messages)
    assert status == cal.MISSING and "a publisher exists" in line and "best effort" in line


def test_evaluate_wrong_type(robot_config):
    def as_pose(report):
        report.published_types = ["geometry_msgs/msg/Pose"]

    status, line = broken(robot_config, "/tcp/pose", as_pose)
    assert status == cal.WRONG_TYPE and "published as geometry_msgs/msg/Pose" in line


def test_evaluate_too_slow(robot_config):
    def slow(report):
        report.messages, report.first_s, report.last_s = 8, 0.0, 1.0  # 7 Hz < 0.8 x 10 Hz

    status, line = broken(robot_config, "/cameras/wrist/image_raw", slow)
    assert status == cal.TOO_SLOW and "7.0 / 10" in line and "max_age.camera" in line


def test_evaluate_is_not_too_slow_at_80_percent(robot_config):
    expected = cal.expected_streams(robot_config)
    reports = healthy_reports(expected)
    reports["/cameras/wrist/image_raw"].messages = 9  # 8 Hz over 1 s: 80 % of 10 Hz
    assert cal.evaluate(expected, reports)[1]


@pytest.mark.parametrize(
    ("topic", "add", "message"),
    [
        ("/cameras/front/image_raw", lambda r: r.add_image(1.0, "cam", "yuv422", 640, 480), "encoding yuv422"),
        ("/tcp/pose", lambda r: r.add_pose(1.0, "world", [0.5, 0, 0.2], [1, 0, 0, 0]), "frame_id 'world'"),
        ("/tcp/pose", lambda r: r.add_pose(1.0, "panda_link0", [0.5, 0, 0.2], [0.5, 0, 0, 0]), "unit quaternion"),
        ("/tcp/pose", lambda r: r.add_pose(1.0, "panda_link0", [500, 0, 200], [1, 0, 0, 0]), "check frames/units"),
        ("/ft_sensor/wrench", lambda r: r.add_wrench(1.0, "panda_ft_sensor", [0, 0, 4e4, 0, 0, 0]), "counts not"),
        ("/ft_sensor/wrench", lambda r: r.add_wrench(1.0, "panda_ft_sensor", [float("nan")] * 6), "NaN/inf"),
        ("/joint_states", lambda r: r.joint_names.discard("panda_finger_joint2"), "no panda_finger_joint2"),
    ],
)
def test_evaluate_bad_content(robot_config, topic, add, message):
    status, line = broken(robot_config, topic, add)
    assert status == cal.BAD and message in line


def test_evaluate_bad_crop_outside_the_frame(robot_config):
    cameras = {
        "front": replace(robot_config.ros.aggregator_for(robot_config.sim).cameras["front"], crop=[0, 0, 700, 480])
    }
    config = with_ros(robot_config, aggregator=replace(robot_config.ros.aggregator, cameras=cameras))
    expected = cal.expected_streams(config)
    lines, ok = cal.evaluate(expected, healthy_reports(expected))
    status, line = verdicts(lines)["/cameras/front/image_raw"]
    assert not ok and status == cal.BAD and "crop [0, 0, 700, 480] lies outside the 640x480 frame" in line


def test_evaluate_the_arm_near_the_box_is_fine(robot_config):
    expected = cal.expected_streams(robot_config)
    reports = healthy_reports(expected)
    reports["/tcp/pose"].add_pose(1.0, "panda_link0", [0.3, 0.0, 0.49], [0, 1, 0, 0])  # the ready pose, above the box
    assert cal.evaluate(expected, reports)[1]


# tare ---------------------------------------------------------------------------------------------
RNG = np.random.default_rng(0)


def wrench_samples(force, noise=0.05, n=200):
    return np.hstack([np.asarray(force) + RNG.normal(0, noise, (n, 3)), RNG.normal(0, 0.002, (n, 3))])


def test_tare_ok_when_the_force_reads_zero_after():
    result = cal.tare_result(wrench_samples([5.0, -3.0, 12.0]), wrench_samples([0.0, 0.0, 0.0]), tolerance_n=1.0)
    assert result.ok and result.message.startswith("tare OK")
    assert re.search(r"13\.3\d N before, 0\.0\d N after", result.message)  # |(5, -3, 12)| = 13.34


def test_tare_fails_when_the_force_still_reads_the_bias():
    result = cal.tare_result(wrench_samples([5.0, -3.0, 12.0]), wrench_samples([5.0, -3.0, 12.0]), tolerance_n=1.0)
    assert not result.ok and re.search(r"still reads 13\.3\d N", result.message)


def test_tare_is_unsure_when_the_force_is_not_steady():
    result = cal.tare_result(wrench_samples([5.0, 0, 0]), wrench_samples([0.0, 0, 0], noise=2.0), tolerance_n=1.0)
    assert not result.ok and "not steady" in result.message


def test_tare_refuses_bad_samples():
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        cal.tare_result(np.zeros((0, 6)), np.zeros((5, 6)), 1.0)
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        cal.tare_result(np.zeros((5, 3)), np.zeros((5, 6)), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        cal.tare_result(np.zeros((5, 6)), np.full((5, 6), np.nan), 1.0)
    with pytest.raises(ValueError, match="tolerance_n"):
        cal.tare_result(np.zeros((5, 6)), np.zeros((5, 6)), 0.0)
