"""robot_rl.robot.aggregator without ROS: the wrench statistic and its window, the ring buffer, lost
and refused wrench samples, staleness per stream, stamped-mode readiness, crops and resizes, bad
input and the counters."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_rl.data.tree import tree_from_bytes, tree_to_bytes
from robot_rl.robot.aggregator import (
    JOINTS,
    POSE,
    PRIVILEGED,
    TWIST,
    WRENCH,
    AggregatorCameraConfig,
    AggregatorConfig,
    ObservationAggregator,
    StaleStream,
    WrenchRing,
    crop_and_resize,
)
from robot_rl.robot.messages import ObservationMessage, check_observation
from robot_rl.sim.config import ConfigError
from robot_rl.sim.ft_sensor import WristFTSensor

MS = 1_000_000  # ns
PERIOD = 100 * MS  # 10 Hz
POSE_VALUE = np.array([0.5, 0.1, 0.2, 0.0, 1.0, 0.0, 0.0])
TWIST_VALUE = np.array([0.01, -0.02, 0.03, 0.1, 0.2, -0.3])
RNG = np.random.default_rng(0)


def config(**changes) -> AggregatorConfig:
    cfg = AggregatorConfig(cameras={"front": AggregatorCameraConfig(width=16, height=12)})
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def frame(height: int = 12, width: int = 16, value: int | None = None) -> np.ndarray:
    if value is not None:
        return np.full((height, width, 3), value, np.uint8)
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def feed_state(agg: ObservationAggregator, stamp: int, image: np.ndarray | None = None) -> None:
    """Every stream but the wrench at `stamp`."""
    agg.add_image("front", stamp, frame() if image is None else image)
    agg.add_pose(stamp, POSE_VALUE)
    agg.add_twist(stamp, TWIST_VALUE)
    agg.add_gripper(stamp, [0.25])


def feed_wrench_1khz(agg: ObservationAggregator, start: int, end: int, rng=RNG) -> np.ndarray:
    """1 kHz samples stamped start, start + 1 ms, .. up to end inclusive; returns them."""
    samples = rng.normal(0.0, 3.0, ((end - start) // MS + 1, 6))
    for i, sample in enumerate(samples):
        agg.add_wrench(start + i * MS, sample)
    return samples


# config -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"control_hz": 0.0}, "aggregator.control_hz"),
        ({"tick": "sometimes"}, "aggregator.tick"),
        ({"wrench_buffer": 150}, "aggregator.wrench_buffer"),
        ({"gripper_joints": ["finger"]}, "aggregator.gripper_joints"),
        ({"cameras": {"front": AggregatorCameraConfig(width=4)}}, "aggregator.cameras.front.width"),
        ({"cameras": {"front": AggregatorCameraConfig(crop=[10, 0, 5, 8])}}, "aggregator.cameras.front.crop"),
        ({"cameras": {"front": AggregatorCameraConfig(crop=[0, 0, 5])}}, "aggregator.cameras.front.crop"),
    ],
)
def test_bad_config_names_the_key(changes, key):
    with pytest.raises(ConfigError, match=f"^{key}: "):
        config(**changes).validate()


def test_stale_limit_must_be_positive():
    cfg = config()
    cfg.max_age.wrench = 0.0
    with pytest.raises(ConfigError, match="^aggregator.max_age.wrench: "):
        cfg.validate()


# images -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "target", "shape"),
    [((480, 640), (128, 128), (128, 128, 3)), ((480, 640), (64, 48), (48, 64, 3)), ((24, 40), (40, 24), (24, 40, 3))],
)
def test_centre_crop_then_resize_shapes(source, target, shape):
    cam = AggregatorCameraConfig(width=target[0], height=target[1])
    out = crop_and_resize(frame(*source), cam, "cameras/front")
    assert out.shape == shape and out.dtype == np.uint8 and out.flags.c_contiguous


def test_640x480_to_128x128_is_the_centre_square_resized_with_inter_area():
    image = frame(480, 640)
    out = crop_and_resize(image, AggregatorCameraConfig(width=128, height=128), "cameras/front")
    expected = cv2.resize(image[:, 80:560], (128, 128), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out, expected)


def test_same_size_frame_passes_unchanged():
    image = frame(24, 40)
    np.testing.assert_array_equal(crop_and_resize(image, AggregatorCameraConfig(width=40, height=24), "c"), image)


def test_explicit_crop_in_source_pixels():
    image = frame(480, 640)
    cam = AggregatorCameraConfig(width=100, height=50, crop=[100, 40, 300, 140])
    out = crop_and_resize(image, cam, "cameras/front")
    np.testing.assert_array_equal(out, cv2.resize(image[40:140, 100:300], (100, 50), interpolation=cv2.INTER_AREA))
    with pytest.raises(ValueError, match=r"cameras/front: the crop \[100, 40, 300, 140\] lies outside the 200x100"):
        crop_and_resize(frame(100, 200), cam, "cameras/front")


@pytest.mark.parametrize("bad", [frame().astype(np.float32), frame()[:, :, 0], frame()[:, :, :2]])
def test_non_rgb_frame_is_refused(bad):
    with pytest.raises(ValueError, match="cameras/front: frame must be uint8"):
        ObservationAggregator(config()).add_image("front", 1, bad)


# wrench -------------------------------------------------------------------------------------------
def test_ring_buffer_wraps_and_keeps_the_newest_in_order():
    ring = WrenchRing(5)
    for i in range(1, 13):
        ring.append(i * 10, np.full(6, i))
    stamps, samples = ring.window(0, 1000)
    np.testing.assert_array_equal(stamps, [80, 90, 100, 110, 120])
    np.testing.assert_array_equal(samples[:, 0], [8, 9, 10, 11, 12])
    stamps, samples = ring.window(90, 110)  # (after, upto]
    np.testing.assert_array_equal(stamps, [100, 110])


def test_wrench_statistic_is_the_ft_sensors_over_the_last_period():
    agg = ObservationAggregator(config())
    t = 10_000 * MS
    samples = feed_wrench_1khz(agg, t - 250 * MS, t + 5 * MS)  # before, across and after the window
    feed_state(agg, t)
    message = agg.observe(t)
    in_window = samples[151:251]  # stamps t - 99 ms .. t: (t - period, t]
    expected = WristFTSensor.period_statistics(in_window)
    np.testing.assert_array_equal(message.obs["state"]["wrench"], expected)
    assert message.obs["state"]["wrench"].dtype == np.float32
    assert message.ages_ms[WRENCH] == 0.0


def test_window_boundaries_exclude_the_start_and_include_the_end():
    agg = ObservationAggregator(config(max_age=config().max_age))
    t = 1_000 * MS
    agg.add_wrench(t - PERIOD, np.full(6, 100.0))  # on the open end: excluded
    agg.add_wrench(t - PERIOD + 1, np.full(6, 1.0))
    agg.add_wrench(t, np.full(6, -3.0))  # on the closed end: included
    agg.add_wrench(t + 1, np.full(6, 50.0))  # after the tick: excluded
    feed_state(agg, t)
    wrench = agg.observe(t).obs["state"]["wrench"]
    np.testing.assert_allclose(wrench, [-1.0] * 6 + [3.0] * 6)
    assert agg.stats()["wrench_lost"] > 0  # 100 ms between the first two at 1 kHz


def test_single_sample_per_period_gives_mean_and_its_absolute_value():
    """The twin in lockstep publishes one wrench (its period mean) per control period."""
    agg = ObservationAggregator(config(tick="stamped", wrench_hz=10.0, wrench_buffer=4))
    sample = np.array([1.0, -2.0, 3.0, -0.1, 0.2, -0.3])
    agg.add_wrench(PERIOD, sample)
    feed_state(agg, PERIOD)
    (message,) = agg.pop_ready()
    np.testing.assert_allclose(message.obs["state"]["wrench"], np.concatenate([sample, np.abs(sample)]), rtol=1e-6)


def test_lost_samples_are_counted_from_stamp_gaps():
    agg = ObservationAggregator(config())
    stamps = [1, 2, 3, 6, 7, 8.4, 10, 20]  # ms: 2 lost before 6, none at 8.4 (1.4 periods), 1 before 10, 9 before 20
    for stamp in stamps:
        agg.add_wrench(int(stamp * MS), np.zeros(6))
    stats = agg.stats()
    assert (stats["received"][WRENCH], stats["wrench_lost"], stats["wrench_dropped"]) == (8, 12, 12)


def test_no_loss_counted_for_a_regular_stream_with_jitter():
    agg = ObservationAggregator(config())
    jitter = RNG.uniform(-0.2, 0.2, 2000) * MS  # gaps up to 1.4 periods
    for i in range(2000):
        agg.add_wrench(int(10 * MS + i * MS + jitter[i]), np.zeros(6))
    assert agg.stats()["wrench_lost"] == 0 and agg.stats()["received"][WRENCH] == 2000


@pytest.mark.parametrize("stamp", [5 * MS, 4 * MS])
def test_wrench_stamp_not_newer_is_refused_and_counted(stamp):
    agg = ObservationAggregator(config())
    agg.add_wrench(5 * MS, np.ones(6))
    with pytest.raises(ValueError, match=f"ft_sensor/wrench: stamp {stamp} ns is not newer than the previous"):
        agg.add_wrench(stamp, np.full(6, 9.0))
    agg.add_wrench(6 * MS, np.ones(6))
    stats = agg.stats()
    assert (stats["received"][WRENCH], stats["wrench_backwards"], stats["wrench_dropped"]) == (2, 1, 1)


@pytest.mark.parametrize("bad", [[np.nan, 0, 0, 0, 0, 0], [0, 0, 0, 0, np.inf, 0], [1, 2, 3]])
def test_non_finite_or_short_wrench_is_refused_and_not_stored(bad):
    agg = ObservationAggregator(config())
    with pytest.raises(ValueError, match="ft_sensor/wrench: "):
        agg.add_wrench(MS, bad)
    assert agg.stats()["received"] == {}


# staleness (timer mode) ---------------------------------------------------------------------------
def fresh_timer_aggregator(t: int, reports: list | None = None) -> ObservationAggregator:
    agg = ObservationAggregator(config(), on_missed=None if reports is None else lambda k, s: reports.append((k, s)))
    feed_wrench_1khz(agg, t - 200 * MS, t)
    feed_state(agg, t)
    return agg


@pytest.mark.parametrize(
    ("stream", "limit_ms"), [("cameras/front", 100), (POSE, 50), (TWIST, 50), (JOINTS, 50), (WRENCH, 25)]
)
def test_each_stream_goes_stale_after_its_own_limit(stream, limit_ms):
    t = 10_000 * MS
    agg = fresh_timer_aggregator(t)
    agg.observe(t)  # all fresh
    # every other stream gets a sample at the next tick; `stream` none since t
    tick = t + (limit_ms - 1) * MS
    for name, add in (
        ("cameras/front", lambda s: agg.add_image("front", s, frame())),
        (POSE, lambda s: agg.add_pose(s, POSE_VALUE)),
        (TWIST, lambda s: agg.add_twist(s, TWIST_VALUE)),
        (JOINTS, lambda s: agg.add_gripper(s, [0.2])),
        (WRENCH, lambda s: agg.add_wrench(s, np.zeros(6))),
    ):
        if name != stream:
            add(tick)
    message = agg.observe(tick)  # just inside the limit
    assert message.ages_ms[stream] == pytest.approx(limit_ms - 1)
    late = t + (limit_ms + 1) * MS
    with pytest.raises(StaleStream, match=f"^{stream}: newest sample is {limit_ms + 1} ms old") as error:
        agg.observe(late)
    assert error.value.stream == stream and error.value.age_s == pytest.approx((limit_ms + 1) / 1e3)
    assert agg.stats()["missed_by"] == {stream: 1}


def test_missing_stream_before_the_first_observation_is_waiting_not_missed():
    reports = []
    agg = ObservationAggregator(config(), on_missed=lambda key, text: reports.append((key, text)))
    feed_state(agg, 5 * MS)
    with pytest.raises(StaleStream, match="^ft_sensor/wrench: no sample yet$"):
        agg.observe(10 * MS)
    stats = agg.stats()
    assert (stats["ticks_waiting"], stats["ticks_missed"], stats["ticks_emitted"]) == (1, 0, 0)
    assert reports == [(WRENCH, "waiting for the first observation: ft_sensor/wrench: no sample yet")]


def test_camera_that_stops_misses_ticks_and_says_its_age():
    reports = []
    t = 10_000 * MS
    agg = fresh_timer_aggregator(t, reports)
    agg.observe(t)
    for k in range(1, 4):  # the camera stops; everything else keeps coming
        tick = t + k * PERIOD
        agg.add_pose(tick, POSE_VALUE)
        agg.add_twist(tick, TWIST_VALUE)
        agg.add_gripper(tick, [0.2])
        feed_wrench_1khz(agg, tick - 99 * MS, tick)
        if k == 1:
            agg.observe(tick)  # 100 ms: still within the limit
        else:
            with pytest.raises(StaleStream):
                agg.observe(tick)
    stats = agg.stats()
    assert (stats["ticks_emitted"], stats["ticks_missed"], stats["missed_by"]) == (2, 2, {"cameras/front": 2})
    assert reports == [
        ("cameras/front", "control tick missed: cameras/front: newest sample is 200 ms old (limit 100 ms)"),
        ("cameras/front", "control tick missed: cameras/front: newest sample is 300 ms old (limit 100 ms)"),
    ]


def test_late_ticks_count_the_skipped_ones():
    reports = []
    t = 10_000 * MS
    agg = fresh_timer_aggregator(t, reports)
    agg.observe(t)
    tick = t + 3 * PERIOD + 10 * MS  # two ticks never happened
    feed_wrench_1khz(agg, t + MS, tick)
    feed_state(agg, tick)
    agg.observe(tick)
    assert agg.stats()["missed_by"] == {"late": 2}
    assert reports == [("late", "2 control tick(s) missed: this tick came 310 ms after the last")]


def test_timer_observation_values_and_message_round_trip():
    t = 10_000 * MS
    image = frame(24, 32)  # resized to the configured 16x12
    agg = ObservationAggregator(config())
    feed_wrench_1khz(agg, t - 150 * MS, t - 2 * MS)
    agg.add_image("front", t - 30 * MS, image)
    agg.add_pose(t - 4 * MS, POSE_VALUE)
    agg.add_twist(t - 5 * MS, TWIST_VALUE)
    agg.add_gripper(t - 6 * MS, [0.75])
    message = agg.observe(t)
    check_observation(message.obs)
    state = message.obs["state"]
    np.testing.assert_array_equal(
        message.obs["images"]["front"], cv2.resize(image, (16, 12), interpolation=cv2.INTER_AREA)
    )
    np.testing.assert_allclose(state["tcp_pose"], POSE_VALUE.astype(np.float32))
    np.testing.assert_allclose(state["tcp_vel"], TWIST_VALUE.astype(np.float32))
    assert state["gripper"].tolist() == [0.75] and "task" not in state
    assert message.ages_ms == {"cameras/front": 30.0, POSE: 4.0, TWIST: 5.0, JOINTS: 6.0, WRENCH: 2.0}
    assert message.stamp_ns == t and message.privileged == {}
    back = ObservationMessage.from_tree(tree_from_bytes(tree_to_bytes(message.to_tree())))
    np.testing.assert_array_equal(back.obs["state"]["wrench"], state["wrench"])


def test_no_cameras_gives_a_state_only_observation():
    agg = ObservationAggregator(config(cameras={}))
    agg.add_wrench(MS, np.zeros(6))
    agg.add_pose(MS, POSE_VALUE)
    agg.add_twist(MS, TWIST_VALUE)
    agg.add_gripper(MS, [0.0])
    assert set(agg.observe(MS).obs) == {"state"}


# stamped mode ---------------------------------------------------------------------------------------
def stamped(**changes) -> ObservationAggregator:
    return ObservationAggregator(config(tick="stamped", wrench_hz=10.0, wrench_buffer=4, **changes))


def test_stamped_mode_emits_once_when_the_set_is_complete():
    agg = stamped()
    agg.add_wrench(PERIOD, np.ones(6))
    agg.add_image("front", PERIOD, frame())
    agg.add_pose(PERIOD, POSE_VALUE)
    agg.add_twist(PERIOD, TWIST_VALUE)
    assert agg.ready_stamp() is None and agg.pop_ready() == []
    with pytest.raises(StaleStream, match="^joint_states: no sample yet"):
        agg.observe(PERIOD)
    agg.add_gripper(PERIOD, [0.5])
    assert agg.ready_stamp() == PERIOD
    (message,) = agg.pop_ready()
    assert message.stamp_ns == PERIOD and all(age == 0.0 for age in message.ages_ms.values())
    assert agg.pop_ready() == [] and agg.ready_stamp() is None  # not twice
    with pytest.raises(ValueError, match="not newer than the last observation"):
        agg.observe(PERIOD)


def test_stamped_mode_matches_stamps_that_arrive_out_of_step():
    agg = stamped()
    for stamp in (PERIOD, 2 * PERIOD):  # images and wrench of two stamps first, then the state
        agg.add_image("front", stamp, frame(value=stamp // PERIOD))
        agg.add_wrench(stamp, np.full(6, float(stamp // PERIOD)))
    for stamp in (PERIOD, 2 * PERIOD):
        agg.add_pose(stamp, POSE_VALUE)
        agg.add_twist(stamp, TWIST_VALUE)
        agg.add_gripper(stamp, [0.5])
    messages = agg.pop_ready()
    assert [m.stamp_ns for m in messages] == [PERIOD, 2 * PERIOD]
    assert [m.obs["images"]["front"][0, 0, 0] for m in messages] == [1, 2]
    assert [m.obs["state"]["wrench"][0] for m in messages] == [1.0, 2.0]
    assert agg.stats()["ticks_missed"] == 0


def test_stamped_mode_counts_an_incomplete_stamp_when_a_later_one_completes():
    reports = []
    agg = ObservationAggregator(
        config(tick="stamped", wrench_hz=10.0, wrench_buffer=4), on_missed=lambda key, text: reports.append((key, text))
    )
    agg.add_wrench(PERIOD, np.ones(6))
    agg.add_pose(PERIOD, POSE_VALUE)  # the rest of stamp 1 never arrives
    agg.add_wrench(2 * PERIOD, np.ones(6))
    feed_state(agg, 2 * PERIOD)
    (message,) = agg.pop_ready()
    assert message.stamp_ns == 2 * PERIOD
    assert agg.stats()["missed_by"] == {"incomplete": 1}
    assert reports == [
        ("incomplete", f"stamp {PERIOD} ns skipped: no sample from cameras/front, tcp/twist, joint_states")
    ]


def test_stamped_mode_with_privileged_ground_truth():
    agg = stamped(privileged=True)
    agg.add_wrench(PERIOD, np.ones(6))
    feed_state(agg, PERIOD)
    assert agg.ready_stamp() is None  # waits for sim/privileged too
    task_state = np.array([0.4, 0.0, 0.02], np.float32)
    agg.add_privileged(PERIOD, {"stamp_ns": PERIOD, "task_state": task_state, "success": True, "reward": 1.0})
    (message,) = agg.pop_ready()
    np.testing.assert_array_equal(message.obs["state"]["task"], task_state)
    assert message.privileged["success"] is True and message.privileged["reward"] == 1.0
    assert "stamp_ns" not in message.privileged and message.ages_ms[PRIVILEGED] == 0.0

    # the twin without sim.privileged_state sends an empty task state: no "task" in the observation
    agg.add_wrench(2 * PERIOD, np.ones(6))
    feed_state(agg, 2 * PERIOD)
    agg.add_privileged(2 * PERIOD, {"task_state": np.zeros(0, np.float32), "success": False})
    (message,) = agg.pop_ready()
    assert "task" not in message.obs["state"] and message.privileged["success"] is False


# bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("add", "match"),
    [
        (lambda a: a.add_pose(MS, [0.5, 0, 0.2, 0, 0, 0, 0]), "tcp/pose: the orientation is not a unit quaternion"),
        (lambda a: a.add_pose(MS, [np.nan, 0, 0.2, 0, 1, 0, 0]), "tcp/pose: not finite"),
        (lambda a: a.add_twist(MS, [0, 0, 0]), r"tcp/twist: expected 6 values, got shape \(3,\)"),
        (lambda a: a.add_gripper(MS, [1.5]), r"joint_states: gripper opening 1.5 is outside \[0, 1\]"),
        (lambda a: a.add_image("side", MS, frame()), r"cameras/side: not a configured camera \(front\)"),
        (lambda a: a.add_privileged(MS, {"task_state": [0.0]}), "sim/privileged: not configured"),
    ],
)
def test_bad_samples_are_refused_with_the_stream_named(add, match):
    with pytest.raises(ValueError, match=match):
        add(ObservationAggregator(config()))


def test_state_stamp_going_backwards_is_refused_and_the_newer_sample_kept():
    agg = ObservationAggregator(config())
    agg.add_pose(2 * MS, POSE_VALUE)
    with pytest.raises(ValueError, match="tcp/pose: stamp 1000000 ns is not newer than the previous sample's 2000000"):
        agg.add_pose(MS, np.array([0.0, 0, 0, 0, 1, 0, 0]))
    agg.add_image("front", 2 * MS, frame())
    agg.add_twist(2 * MS, TWIST_VALUE)
    agg.add_gripper(2 * MS, [0.5])
    agg.add_wrench(2 * MS, np.zeros(6))
    np.testing.assert_allclose(agg.observe(2 * MS).obs["state"]["tcp_pose"], POSE_VALUE)


def test_rejected_messages_are_counted_per_stream():
    agg = ObservationAggregator(config())
    agg.reject("cameras/front")
    agg.reject("cameras/front")
    agg.reject(WRENCH)
    assert agg.stats()["bad_messages"] == {"cameras/front": 2, WRENCH: 1}


def test_twist_from_pose_is_the_velocity_between_consecutive_poses():
    # franka_ros2 publishes no measured TCP twist: it is differentiated from the poses
    agg = ObservationAggregator(config(twist_from_pose=True))
    t = 10_000 * MS
    turn = Rotation.from_rotvec([0.0, 0.0, 0.02])  # 0.02 rad about base z in 10 ms: 2 rad/s
    start = Rotation.from_quat(POSE_VALUE[[4, 5, 6, 3]])  # scipy: xyzw
    moved = np.concatenate([POSE_VALUE[:3] + [0.001, -0.002, 0.0], (turn * start).as_quat()[[3, 0, 1, 2]]])
    feed_wrench_1khz(agg, t - 150 * MS, t)
    agg.add_image("front", t, frame())
    agg.add_gripper(t, [0.5])
    agg.add_pose(t - 20 * MS, POSE_VALUE)
    agg.add_pose(t - 10 * MS, moved)
    state = agg.observe(t).obs["state"]
    np.testing.assert_allclose(state["tcp_vel"], [0.1, -0.2, 0.0, 0.0, 0.0, 2.0], atol=1e-4)
    with pytest.raises(ValueError, match="not newer"):  # a repeated pose is refused, twist and all
        agg.add_pose(t - 10 * MS, moved)
