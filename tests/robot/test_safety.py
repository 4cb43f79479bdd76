"""The safety filter (clipping, every fault, latching, stop / reset / resume) and its wrapper on the
in-process twin. No ROS here: tests/ros/scenario_safety_node.py drives the node."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_rl.config import load_config
from robot_rl.robot.safety import SafetyConfig, SafetyFilter, SafetyWrapper
from robot_rl.rollout import make_env
from robot_rl.sim.config import ConfigError

S = 1_000_000_000  # ns per s
HOME = np.array([0.5, 0.0, 0.2, 0.0, 1.0, 0.0, 0.0])  # TCP pointing down, inside the default box
REST = np.zeros(6)
FAULTS = ["wrench", "pose", "camera", "stop"]


def running(interface: str = "pose", now: int = 0, **limits) -> SafetyFilter:
    """A filter with one camera that has seen every stream at `now` and a command: RUNNING."""
    safety = SafetyFilter(SafetyConfig(command_interface=interface, cameras=["front"], **limits))
    feed(safety, now)
    safety.tick(now)
    assert safety.status == "RUNNING"
    return safety


def feed(safety: SafetyFilter, now: int, pose=HOME, wrench=REST, streams=("pose", "wrench", "camera")) -> None:
    if "pose" in streams:
        safety.measure_pose(pose, now)
    if "wrench" in streams:
        safety.measure_wrench(wrench, now)
    if "camera" in streams:
        safety.measure_camera("front", now)


def rotated(pose: np.ndarray, rotvec) -> np.ndarray:
    w, x, y, z = pose[3:]
    x, y, z, w = (Rotation.from_rotvec(rotvec) * Rotation.from_quat([x, y, z, w])).as_quat()
    return np.concatenate([pose[:3], [w, x, y, z]])


def turn_angle(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between two poses' orientations [rad]."""
    return 2 * np.arccos(min(1.0, abs(float(np.dot(a[3:], b[3:])))))


# configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("command_interface", "torque", "safety.command_interface"),
        ("cameras", ["front", "front"], "safety.cameras"),
        ("control_hz", 0.0, "safety.control_hz"),
        ("workspace_low", [0.0, 0.0], "safety.workspace_low"),
        ("workspace_high", [0.75, -0.5, 0.45], "safety.workspace_high"),
        ("max_speed", -1.0, "safety.max_speed"),
        ("max_force", float("nan"), "safety.max_force"),
        ("wrench_timeout", 0.0, "safety.wrench_timeout"),
        ("command_timeout", 0.1, "safety.command_timeout"),
    ],
)
def test_bad_config_names_the_key(field, value, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        SafetyFilter(replace(SafetyConfig(), **{field: value}))


def test_defaults_are_the_twins_box():
    robot = load_config(["task=reach", "sim=state"]).robot
    config = SafetyConfig()
    assert (config.workspace_low, config.workspace_high) == (robot.workspace_low, robot.workspace_high)


def test_wrong_shapes_raise():
    safety = running()
    with pytest.raises(ValueError, match=r"target pose must be \[x y z qw qx qy qz\]"):
        safety.filter_pose(HOME[:3], 0)
    with pytest.raises(ValueError, match="wrench must be"):
        safety.measure_wrench([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="camera 'wrist' is not watched"):
        safety.measure_camera("wrist", 0)
    with pytest.raises(ValueError, match="stream 'joints'"):
        safety.bad_measurement("joints", "?")


# start-up and clipping ----------------------------------------------------------------------
def test_waits_for_every_stream_before_anything_goes_out():
    safety = SafetyFilter(SafetyConfig(cameras=["front"]))
    assert safety.status == "WAITING: no pose, wrench, camera front received yet"
    command = safety.filter_pose(HOME, 0)
    assert command.hold and command.value is None, "no pose yet: no safe target to send"
    feed(safety, 0, streams=("pose", "wrench"))
    assert safety.status == "WAITING: no camera front received yet"
    assert safety.tick(0).value is None, "nothing goes out before every stream has started"
    feed(safety, 0, streams=("camera",))
    assert safety.status == "RUNNING" and safety.tick(0) is None, "waiting is not latched"


def test_a_command_within_the_limits_passes_unchanged():
    safety = running()
    target = rotated(HOME + [0.03, -0.02, 0.01, 0, 0, 0, 0], [0.0, 0.0, 0.15])
    command = safety.filter_pose(target, 0)
    assert not command.hold and not command.clipped and command.note == ""
    np.testing.assert_allclose(command.value, target, atol=1e-12)
    assert safety.filter_gripper(1.0, 0) == 1.0


def test_target_is_clipped_to_the_box_then_step_limited():
    safety = running()  # max_speed 0.6 m/s at 10 Hz: 0.06 m per period
    command = safety.filter_pose([0.5, 0.0, 0.19, *HOME[3:]], 0)
    assert not command.clipped
    command = safety.filter_pose([0.5, 0.0, -0.3, *HOME[3:]], 0)  # under the table
    assert command.clipped and "outside the workspace box" in command.note and "step 0.195 m > 0.060 m" in command.note
    np.testing.assert_allclose(command.value[:3], [0.5, 0.0, 0.2 - 0.06])

    feed(safety, 0, pose=[0.5, 0.0, 0.6, *HOME[3:]])  # pushed 15 cm above the box: walks back in
    command = safety.filter_pose([0.5, 0.0, 0.6, *HOME[3:]], 0)
    np.testing.assert_allclose(command.value[:3], [0.5, 0.0, 0.54])


def test_rotation_is_limited_about_its_axis():
    safety = running()  # 3 rad/s at 10 Hz: 0.3 rad per period
    command = safety.filter_pose(rotated(HOME, [0.0, 0.0, 1.0]), 0)
    assert command.clipped and "turn 1.000 rad > 0.300 rad" in command.note
    assert turn_angle(command.value, HOME) == pytest.approx(0.3)
    np.testing.assert_allclose(command.value, rotated(HOME, [0.0, 0.0, 0.3]), atol=1e-9)


def test_twist_is_cut_at_the_box_and_scaled_to_the_speed_limits():
    safety = running("twist")
    command = safety.filter_twist([0.1, 0.0, 0.0, 0.0, 0.0, 0.5], 0)
    assert not command.clipped
    command = safety.filter_twist([2.0, 0.0, 0.0, 0.0, 0.0, 10.0], 0)
    assert "speed 2.000 m/s > 0.600 m/s" in command.note and "angular speed 10.000 rad/s > 3.000 rad/s" in command.note
    np.testing.assert_allclose(command.value, [0.6, 0, 0, 0, 0, 3.0])
    feed(safety, 0, pose=[0.5, 0.0, 0.44, *HOME[3:]])  # 1 cm under the box's top
    command = safety.filter_twist([0.0, 0.0, 0.5, 0.0, 0.0, 0.0], 0)
    assert "velocity cut at the workspace box" in command.note
    np.testing.assert_allclose(command.value[:3], [0.0, 0.0, 0.1])  # 1 cm in one 0.1 s period
    safety.stop()
    np.testing.assert_array_equal(safety.filter_twist([0.1, 0, 0, 0, 0, 0], 0).value, np.zeros(6))


# faults -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wrench", "reason"),
    [([0.0, 50.0, 68.0, 0, 0, 0], "wrench force 84.4 N > 60.0 N"), ([0, 0, 0, 5.0, 5.0, 0.0], "wrench torque 7.07 Nm")],
)
def test_force_over_the_limit_latches_until_reset_and_resume(wrench, reason):
    safety = running()
    feed(safety, 0, wrench=wrench)
    assert safety.status.startswith(f"HOLDING: {reason}")
    command = safety.filter_pose(HOME + [0.01, 0, 0, 0, 0, 0, 0], 0)
    assert command.hold
    np.testing.assert_array_equal(command.value, HOME)
    assert safety.filter_gripper(-1.0, 0) == 0.0, "the gripper stays while holding"

    assert safety.resume(0) == (False, f"reset first: {safety.status}")
    done, message = safety.reset(0)
    assert not done and reason in message, "the force is still over the limit"
    feed(safety, S // 10)
    assert safety.status.startswith(f"HOLDING: {reason}"), "latched: the force going down is not enough"
    assert safety.reset(S // 10)[0]
    assert safety.status == "HOLDING: reset; waiting for resume"
    assert safety.filter_pose(HOME, S // 10).hold
    assert safety.resume(S // 10) == (True, "RUNNING")
    assert not safety.filter_pose(HOME, S // 10).hold


@pytest.mark.parametrize(
    ("stream", "timeout"), [("pose", 0.25), ("wrench", 0.25), ("camera", 0.5)], ids=["pose", "wrench", "camera"]
)
def test_a_stream_that_stops_latches_a_hold(stream, timeout):
    safety = running()
    others = [s for s in ("pose", "wrench", "camera") if s != stream]
    now = 0
    while now <= timeout * S:
        assert safety.tick(now) is None, f"held at {now / S} s, before {stream}'s {timeout} s timeout"
        safety.filter_pose(HOME, now)  # the actor is alive
        now += S // 10
        feed(safety, now, streams=others)
    hold = safety.tick(now)
    name = "camera front" if stream == "camera" else stream
    age = (now - 0) / S
    assert safety.status == f"HOLDING: {name} stale: {age:.3f} s old > {timeout:.3f} s"
    np.testing.assert_array_equal(hold.value, HOME)
    assert not safety.reset(now)[0]
    feed(safety, now, streams=[stream])
    assert safety.reset(now)[0] and safety.resume(now)[0]


def test_a_stale_command_holds_only_while_stale():
    safety = running()
    safety.filter_pose(HOME, 0)
    for now in range(S // 10, 6 * S // 10, S // 10):
        feed(safety, now)
        assert safety.tick(now) is None
    feed(safety, 6 * S // 10)
    hold = safety.tick(6 * S // 10)
    assert safety.status == "WAITING: no command for 0.600 s > 0.500 s" and hold.hold
    feed(safety, 7 * S // 10)
    safety.tick(7 * S // 10)
    assert safety.status == "WAITING: no command for 0.600 s > 0.500 s", "the text changes only on a transition"
    assert safety.filter_gripper(1.0, 7 * S // 10) == 0.0, "a gripper command alone does not end the wait"
    command = safety.filter_pose(HOME + [0.01, 0, 0, 0, 0, 0, 0], 7 * S // 10)
    assert not command.hold and safety.status == "RUNNING", "not latched: the next command moves"


@pytest.mark.parametrize(
    ("measure", "reason"),
    [
        (lambda s: s.measure_pose([0.5, np.nan, 0.2, 0, 1, 0, 0], 0), "pose[1] is nan"),
        (lambda s: s.measure_pose([0.5, 0.0, 0.2, 0, 2, 0, 0], 0), "pose orientation is not a unit quaternion"),
        (lambda s: s.measure_wrench([0, 0, np.inf, 0, 0, 0], 0), "wrench has a non-finite value"),
        (lambda s: s.bad_measurement("pose", "tcp/pose: header.frame_id is 'world'"), "frame_id is 'world'"),
    ],
    ids=["nan_pose", "non_unit_pose", "inf_wrench", "unreadable_pose"],
)
def test_a_bad_measurement_latches_until_a_good_one(measure, reason):
    safety = running()
    measure(safety)
    assert safety.status.startswith("HOLDING: ") and reason in safety.status
    np.testing.assert_array_equal(safety.tick(0).value, HOME)  # the hold: the latest valid pose
    done, message = safety.reset(0)
    assert not done and reason in message
    feed(safety, 0)
    assert safety.reset(0)[0] and safety.resume(0)[0]


@pytest.mark.parametrize(
    ("interface", "command", "reason"),
    [
        ("pose", lambda s: s.filter_pose([0.5, 0.0, np.nan, 0, 1, 0, 0], 0), "target pose[2] is nan"),
        ("pose", lambda s: s.filter_pose([0.5, 0.0, 0.2, 0, 0, 0, 0], 0), "not a unit quaternion (norm 0)"),
        ("twist", lambda s: s.filter_twist([0, 0, 0, -np.inf, 0, 0], 0), "twist[3] is -inf"),
        ("pose", lambda s: s.filter_gripper(np.nan, 0), "gripper command is nan"),
    ],
    ids=["nan_target", "zero_quaternion", "inf_twist", "nan_gripper"],
)
def test_a_garbage_command_is_dropped_for_the_hold_and_latches(interface, command, reason):
    safety = running(interface)
    result = command(safety)
    assert safety.status.startswith("HOLDING: ") and reason in safety.status
    if interface == "pose" and hasattr(result, "value"):
        np.testing.assert_array_equal(result.value, HOME)
    assert safety.reset(0)[0], "a bad command is gone once dropped"
    assert safety.resume(0)[0]


def test_stamps_or_the_clock_going_back_latch():
    safety = running(now=S)
    safety.measure_pose(HOME, S - S // 20)
    assert safety.status == "HOLDING: pose stamp went back 0.050 s"
    feed(safety, S)
    assert safety.reset(S)[0] and safety.resume(S)[0]

    safety.tick(S - S // 10)
    assert safety.status == "HOLDING: clock went back 0.100 s"
    assert safety.reset(S)[0] and safety.resume(S)[0], "the new reading is the clock's baseline"


# operator -----------------------------------------------------------------------------------
def test_stop_reset_resume():
    safety = running()
    assert safety.resume(0) == (True, "already RUNNING")
    assert safety.reset(0) == (True, "nothing to reset: RUNNING")
    assert safety.stop() == "HOLDING: stopped by request"
    assert safety.stop() == "already holding: stopped by request"
    assert safety.filter_pose(HOME + [0.01, 0, 0, 0, 0, 0, 0], 0).hold
    assert safety.resume(0) == (False, "reset first: HOLDING: stopped by request")
    assert safety.reset(0) == (True, "reset (stopped by request); call resume to move")
    assert safety.reset(0) == (True, "nothing to reset: HOLDING: reset; waiting for resume")
    assert safety.stop() == "HOLDING: stopped by request", "a stop after a reset latches again"
    assert safety.reset(0)[0]

    # resuming long after the last command gives the actor a full command_timeout again
    later = 3 * S
    feed(safety, later)
    assert safety.resume(later) == (True, "RUNNING")
    feed(safety, later + 4 * S // 10)
    assert safety.tick(later + 4 * S // 10) is None and safety.status == "RUNNING"


def test_the_first_reason_stays_and_reset_checks_every_condition():
    safety = running()
    feed(safety, 0, wrench=[0, 0, 100.0, 0, 0, 0])
    safety.stop()
    safety.measure_pose([np.nan] * 7, 0)
    assert safety.status == "HOLDING: wrench force 100.0 N > 60.0 N"
    feed(safety, 0, streams=("wrench",))
    done, message = safety.reset(0)
    assert not done and message == "not reset (wrench force 100.0 N > 60.0 N): pose[0] is nan"


def test_reset_refuses_while_a_stream_is_missing_and_resume_after_a_new_fault():
    safety = SafetyFilter(SafetyConfig(cameras=["front"]))
    safety.stop()
    assert safety.reset(0) == (
        False,
        "not reset (stopped by request): no pose received yet; no wrench received yet; no camera front received yet",
    )
    feed(safety, 0)
    assert safety.reset(0)[0]
    assert safety.resume(S) == (False, "reset first: HOLDING: pose stale: 1.000 s old > 0.250 s")


# the wrapper on the twin -------------------------------------------------------------------------
@pytest.fixture
def config():
    return load_config(["task=reach", "sim=state"])


@pytest.fixture
def envs(config):
    made = []

    def factory(safety: SafetyConfig | None = None, wrapped: bool = True):
        env = make_env(config)
        made.append(env)
        return SafetyWrapper(env, safety) if wrapped else env

    yield factory
    for env in made:
        env.close()


def test_wrapper_leaves_safe_actions_alone(envs):
    wrapped, plain = envs(), envs(wrapped=False)
    obs, info = wrapped.reset(seed=3)
    reference, _ = plain.reset(seed=3)
    assert info["safety"] == {"status": "RUNNING"}
    rng = np.random.default_rng(0)
    for _ in range(10):
        action = rng.uniform(-0.5, 0.5, 7).astype(np.float32)
        obs, _, _, _, info = wrapped.step(action)
        reference, *_ = plain.step(action)
        np.testing.assert_array_equal(obs["state"]["tcp_pose"], reference["state"]["tcp_pose"])
        assert info["safety"]["status"] == "RUNNING" and not info["safety"]["clipped"]
        np.testing.assert_array_equal(info["safety"]["action"], action)


def test_wrapper_keeps_the_target_in_its_box_and_under_its_speed(envs, config):
    robot = config.robot
    safety = SafetyConfig(workspace_high=[0.75, 0.3, 0.3], max_speed=0.1)  # the twin starts near z = 0.34
    env = envs(safety)
    obs, _ = env.reset(seed=0)
    for _ in range(15):
        before = obs["state"]["tcp_pose"].astype(np.float64)
        obs, _, _, _, info = env.step(np.array([1.0, 0.0, 1.0, 0, 0, 0, 0], np.float32))
        assert info["safety"]["clipped"] and info["safety"]["status"] == "RUNNING"
        step = info["safety"]["action"][:3] * robot.max_translation_step
        assert np.linalg.norm(step) <= 0.01 + 1e-9, "0.1 m/s at 10 Hz: at most 1 cm per step"
        # the target never rises above the box's top, and walks down to it from above at the speed limit
        assert before[2] + step[2] <= max(0.3, before[2]) + 1e-9
    assert obs["state"]["tcp_pose"][2] < 0.3 + 0.005


def test_wrapper_holds_on_a_nan_action_until_the_next_episode(envs):
    env = envs()
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([0.5, 0, np.nan, 0, 0, 0, 1.0]))
    assert info["safety"]["status"].startswith("HOLDING: action has a non-finite entry")
    np.testing.assert_array_equal(info["safety"]["action"], np.zeros(7))
    _, _, _, _, info = env.step(np.array([1.0, 0, 0, 0, 0, 0, 1.0]))
    np.testing.assert_array_equal(info["safety"]["action"], np.zeros(7))  # latched
    _, info = env.reset(seed=1)
    assert info["safety"] == {"status": "RUNNING"}


def test_wrapper_holds_when_the_tool_hits_the_table(envs):
    env = envs(SafetyConfig(max_force=20.0))
    env.reset(seed=0)
    for _ in range(30):
        obs, _, _, _, info = env.step(np.array([0, 0, -1.0, 0, 0, 0, 0], np.float32))
        if info["safety"]["status"] != "RUNNING":
            break
    assert info["safety"]["status"].startswith("HOLDING: wrench force"), info["safety"]["status"]
    _, _, _, _, info = env.step(np.array([0, 0, -1.0, 0, 0, 0, 0], np.float32))
    np.testing.assert_array_equal(info["safety"]["action"], np.zeros(7))


def test_wrapper_refuses_a_config_the_twin_cannot_honour(envs):
    with pytest.raises(ValueError, match="safety.control_hz"):
        envs(SafetyConfig(control_hz=20.0))
    with pytest.raises(ValueError, match="safety.command_interface"):
        envs(SafetyConfig(command_interface="twist"))
    with pytest.raises(ValueError, match="safety.cameras"):
        envs(SafetyConfig(cameras=["front"]))  # sim=state renders none


# start-up check: frames and units -------------------------------------------------------------
def test_a_measured_pose_far_outside_the_box_refuses_to_start():
    safety = SafetyFilter(SafetyConfig(cameras=["front"]))
    millimetres = [500.0, 0.0, 200.0, *HOME[3:]]  # the driver's pose in mm
    feed(safety, 0, pose=millimetres)
    assert safety.status.startswith("HOLDING") and "in the robot base frame, in metres?" in safety.status
    assert safety.filter_pose(millimetres, 0).hold
    done, why = safety.reset(0)
    assert not done and "outside the workspace box" in why  # refused while the pose is that far out
    feed(safety, 1, pose=HOME)
    assert safety.reset(1)[0] and safety.resume(1)[0] and safety.status == "RUNNING"


def test_a_first_target_far_from_the_measured_pose_refuses_to_start():
    safety = running()
    other_frame = HOME + [0.0, 0.5, 0.0, 0, 0, 0, 0]  # e.g. a target in another base frame
    command = safety.filter_pose(other_frame, 0)
    assert command.hold and "the first target is 0.500 m from the measured pose" in safety.status
    # after reset and resume the first target is checked again; a near one passes, and later far
    # ones are only step-limited
    assert safety.reset(0)[0] and safety.resume(0)[0]
    assert not safety.filter_pose(HOME + [0.01, 0, 0, 0, 0, 0, 0], 0).hold
    command = safety.filter_pose(other_frame, 0)
    assert not command.hold and command.clipped
