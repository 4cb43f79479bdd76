"""The teleop mapping (axes, deadband, scaling, bad input, buttons, gripper, deadman, keyboard,
timeouts) and the keyboard reader through a pty. No ROS here: tests/ros/scenario_teleop_node.py
drives the node."""

from __future__ import annotations

import os
import queue
import termios
import threading
from dataclasses import replace

import numpy as np
import pytest

from robot_rl.robot.teleop import (
    KeyboardReader,
    KeyDecoder,
    TeleopConfig,
    TeleopMapper,
    apply_deadband,
)
from robot_rl.sim.config import ConfigError

S = 1_000_000_000  # ns per s
MS = 1_000_000
T0 = 10 * S
REST_AXES = [0.0] * 6
NO_BUTTONS = [0, 0]


def joy_mapper(**fields) -> TeleopMapper:
    return TeleopMapper(TeleopConfig(device="joy", deadband=0.0, **fields))


def expected_deadband(v: float, width: float) -> float:
    return float(np.sign(v) * max(abs(v) - width, 0.0) / (1 - width))


# configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"device": "gamepad"}, "teleop.device"),
        ({"axes": [0, 1, 2]}, "teleop.axes"),
        ({"axes": [0, 1, 2, 3, 4, -2]}, "teleop.axes"),
        ({"signs": [1, 1, 1, 1, 1, 0.5]}, "teleop.signs"),
        ({"success_button": 0}, "teleop.success_button"),  # 0 already closes the gripper
        ({"deadman_button": -3}, "teleop.deadman_button"),
        ({"deadband": 1.0}, "teleop.deadband"),
        ({"rotation_scale": -1.0}, "teleop.rotation_scale"),
        ({"twist_linear_speed": 0.0}, "teleop.twist_linear_speed"),
        ({"device_timeout_s": float("nan")}, "teleop.device_timeout_s"),
        ({"gripper_pulse_s": 0.05}, "teleop.gripper_pulse_s"),  # shorter than a 10 Hz period
        ({"keys": {"W": "+x"}}, "teleop.keys.W"),
        ({"keys": {"w": "forward"}}, "teleop.keys.w"),
        ({"joy_topic": ""}, "teleop.joy_topic"),
    ],
)
def test_config_names_the_bad_key(fields, key):
    with pytest.raises(ConfigError, match=rf"^{key}:"):
        TeleopMapper(replace(TeleopConfig(), **fields))


def test_default_config_is_valid_for_every_device():
    for device in ("joy", "twist", "keyboard"):
        TeleopConfig(device=device).validate()


# motion: deadband, signs, scaling ------------------------------------------------------------------
def test_deadband_is_continuous_and_reaches_full_scale():
    width = 0.1
    v = np.linspace(-1.0, 1.0, 2001)
    out = apply_deadband(v, width)
    assert np.all(out[np.abs(v) <= width] == 0.0)
    assert out[0] == -1.0 and out[-1] == 1.0
    assert np.all(np.diff(out) >= 0)  # monotonic
    # continuous: no step anywhere, in particular none at the deadband's edge
    assert np.max(np.abs(np.diff(out))) <= (v[1] - v[0]) / (1 - width) + 1e-12
    edge = apply_deadband(np.array([width + 1e-6]), width)[0]
    assert 0 < edge < 2e-6


def test_joy_axes_map_to_dims_with_signs_and_deadband():
    # a gamepad: dim x from axis 4, y from axis 3 reversed, z unused, yaw from axis 0
    config = TeleopConfig(axes=[4, 3, -1, -1, -1, 0], signs=[1, -1, 1, 1, 1, 1], deadband=0.2, rotation_scale=0.5)
    mapper = TeleopMapper(config)
    axes = [0.6, 9.0, 9.0, 0.5, -1.0, 9.0]  # 9.0 on unmapped axes must not matter (it is not checked)
    out = mapper.on_joy(axes, NO_BUTTONS, T0)
    expected = [
        expected_deadband(-1.0, 0.2),
        expected_deadband(-0.5, 0.2),
        0.0,
        0.0,
        0.0,
        0.5 * expected_deadband(0.6, 0.2),
    ]
    np.testing.assert_allclose(out.action[:6], expected, rtol=1e-6)
    assert out.action.dtype == np.float32 and out.action.shape == (7,)
    assert out.nonfinite == () and out.out_of_range == ()


def test_inside_the_deadband_is_zero_and_does_not_intervene():
    mapper = TeleopMapper(TeleopConfig(deadband=0.1))
    out = mapper.on_joy([0.09, -0.1, 0.05, 0, 0, -0.02], NO_BUTTONS, T0)
    assert not np.any(out.action) and not out.intervening


def test_scale_then_clip():
    mapper = joy_mapper(translation_scale=2.0, rotation_scale=0.25)
    out = mapper.on_joy([0.3, 0.7, -0.9, 1.0, -0.4, 0.0], NO_BUTTONS, T0)
    np.testing.assert_allclose(out.action[:6], [0.6, 1.0, -1.0, 0.25, -0.1, 0.0], rtol=1e-6)


def test_twist_is_scaled_by_full_scale_speeds():
    config = TeleopConfig(device="twist", deadband=0.0, twist_linear_speed=0.2, twist_angular_speed=2.0)
    mapper = TeleopMapper(config)
    out = mapper.on_twist([0.1, -0.05, 0.2, 1.0, 0.0, -0.5], T0)
    np.testing.assert_allclose(out.action, [0.5, -0.25, 1.0, 0.5, 0.0, -0.25, 0.0], rtol=1e-6)
    assert out.intervening and out.out_of_range == ()
    # faster than full scale: clipped, and reported (the configured full scale is too low)
    out = mapper.on_twist([0.5, 0, 0, 0, 0, -3.0], T0 + 10 * MS)
    np.testing.assert_allclose(out.action[[0, 5]], [1.0, -1.0])
    assert out.out_of_range == ("Twist.linear.x=0.5", "Twist.angular.z=-3")


def test_twist_signs_apply_too():
    mapper = TeleopMapper(TeleopConfig(device="twist", deadband=0.0, signs=[-1, -1, 1, 1, 1, 1]))
    out = mapper.on_twist([0.15, 0.15, 0.15, 0, 0, 0], T0)
    np.testing.assert_allclose(out.action[:3], [-0.5, -0.5, 0.5], rtol=1e-6)


# bad input ------------------------------------------------------------------------------------
def test_nan_and_inf_axes_read_as_zero_and_are_reported():
    mapper = joy_mapper()
    out = mapper.on_joy([0.5, float("nan"), 0.5, float("inf"), float("-inf"), 0.5], NO_BUTTONS, T0)
    np.testing.assert_allclose(out.action, [0.5, 0, 0.5, 0, 0, 0.5, 0])
    assert out.nonfinite == ("Joy.axes[1]", "Joy.axes[3]", "Joy.axes[4]")
    assert np.all(np.isfinite(out.action))


def test_huge_values_are_clipped_to_full_scale_and_reported():
    mapper = joy_mapper()
    out = mapper.on_joy([1e30, -5.0, 1.0005, 0, 0, 0], NO_BUTTONS, T0)  # 1.0005: float32 round-off, not reported
    np.testing.assert_allclose(out.action[:3], [1.0, -1.0, 1.0])
    assert out.out_of_range == ("Joy.axes[0]=1e+30", "Joy.axes[1]=-5")
    twist = TeleopMapper(TeleopConfig(device="twist"))
    out = twist.on_twist([1e308, 0, 0, 0, 0, -1e308], T0)  # overflows when divided by the full scale
    np.testing.assert_allclose(out.action[[0, 5]], [1.0, -1.0])
    assert out.nonfinite == () and len(out.out_of_range) == 2


def test_wrong_number_of_values_names_the_field():
    mapper = TeleopMapper(TeleopConfig(axes=[0, 1, 2, 3, 4, 7]))
    with pytest.raises(ValueError, match=r"Joy\.axes has 6 entries; teleop\.axes reads axis 7"):
        mapper.on_joy([0.0] * 6, NO_BUTTONS, T0)
    twist = TeleopMapper(TeleopConfig(device="twist"))
    with pytest.raises(ValueError, match=r"twist has 5 values"):
        twist.on_twist([0.0] * 5, T0)


def test_a_mapper_refuses_another_devices_input():
    with pytest.raises(ValueError, match=r"teleop\.device is 'joy'"):
        TeleopMapper(TeleopConfig()).on_twist([0.0] * 6, T0)


def test_missing_buttons_are_released():
    """spacenav lists a button only once it has been pressed: a short list is not an error."""
    mapper = joy_mapper(success_button=3)
    assert not mapper.on_joy(REST_AXES, [], T0).success
    assert mapper.on_joy(REST_AXES, [0, 0, 0, 1], T0 + 10 * MS).success


# buttons: edges, gripper, deadman ---------------------------------------------------------------------
def test_success_and_end_fire_on_press_edges_only():
    mapper = joy_mapper(success_button=2, end_episode_button=3)
    events = []
    for i, buttons in enumerate([[0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]):
        out = mapper.on_joy(REST_AXES, buttons, T0 + i * 50 * MS)
        events.append((out.success, out.end_episode))
    assert events == [(True, False), (False, False), (False, False), (True, True), (False, False)]
    assert not mapper.intervening  # events label the episode, they do not take over


def test_gripper_press_is_a_pulse_then_stay():
    mapper = joy_mapper(gripper_pulse_s=0.3)
    out = mapper.on_joy(REST_AXES, [1, 0], T0)  # close pressed
    assert out.action[6] == 1.0 and out.intervening  # no deadman: a gripper press takes over
    assert mapper.on_joy(REST_AXES, [1, 0], T0 + 100 * MS).action[6] == 1.0  # still in the pulse
    assert mapper.on_joy(REST_AXES, [1, 0], T0 + 300 * MS).action[6] == 0.0  # held, but it does not repeat
    assert mapper.on_joy(REST_AXES, [0, 1], T0 + 400 * MS).action[6] == -1.0  # open pressed
    assert mapper.tick(T0 + 699 * MS).action[6] == -1.0
    assert mapper.tick(T0 + 700 * MS).action[6] == 0.0
    # both at once is ambiguous: nothing
    mapper.on_joy(REST_AXES, [0, 0], T0 + 800 * MS)
    assert mapper.on_joy(REST_AXES, [1, 1], T0 + 900 * MS).action[6] == 0.0


def test_deadman_button_holds_the_intervention():
    mapper = joy_mapper(deadman_button=2)
    out = mapper.on_joy([0.5, 0, 0, 0, 0, 0], [0, 0, 0], T0)
    assert not out.intervening and out.action[0] == 0.5  # moving alone does not take over
    assert mapper.on_joy([0.0] * 6, [0, 0, 1], T0 + 50 * MS).intervening  # held at rest: still intervening
    assert mapper.tick(T0 + 400 * MS).intervening
    assert not mapper.on_joy([0.5, 0, 0, 0, 0, 0], [0, 0, 0], T0 + 450 * MS).intervening  # released


def test_without_deadman_motion_takes_over_and_rest_hands_back():
    mapper = TeleopMapper(TeleopConfig(deadband=0.1, idle_release_s=0.3))
    assert not mapper.on_joy([0.05, 0, 0, 0, 0, 0], NO_BUTTONS, T0).intervening
    assert mapper.on_joy([0.5, 0, 0, 0, 0, 0], NO_BUTTONS, T0 + 50 * MS).intervening
    assert mapper.on_joy([0.0] * 6, NO_BUTTONS, T0 + 100 * MS).intervening  # rests from here
    assert mapper.tick(T0 + 399 * MS).intervening
    assert not mapper.on_joy([0.0] * 6, NO_BUTTONS, T0 + 400 * MS).intervening


def test_passing_through_the_centre_keeps_the_intervention():
    mapper = TeleopMapper(TeleopConfig(idle_release_s=0.3))
    mapper.on_joy([0.5, 0, 0, 0, 0, 0], NO_BUTTONS, T0)
    mapper.on_joy([0.0] * 6, NO_BUTTONS, T0 + 50 * MS)
    mapper.on_joy([-0.5, 0, 0, 0, 0, 0], NO_BUTTONS, T0 + 250 * MS)  # moving again before the release
    out = mapper.tick(T0 + 500 * MS)
    assert out.intervening and out.note == ""


# silence ------------------------------------------------------------------------------------
@pytest.mark.parametrize("deadman", [-1, 0])
def test_a_silent_device_ends_the_intervention(deadman):
    mapper = TeleopMapper(
        TeleopConfig(deadman_button=deadman, gripper_close_button=2, gripper_open_button=3, device_timeout_s=0.5)
    )
    out = mapper.on_joy([0.8, 0, 0, 0, 0, 0], [1, 0], T0)  # then the device goes away mid-motion
    assert out.intervening and out.action[0] > 0.7
    out = mapper.tick(T0 + 500 * MS)
    assert out.intervening and out.note == ""
    out = mapper.tick(T0 + 600 * MS)
    assert not out.intervening and not np.any(out.action)
    assert out.note == "teleop device silent for 0.60 s: intervention ended"
    assert mapper.tick(T0 + 700 * MS).note == ""  # said once
    assert mapper.on_joy([0.8, 0, 0, 0, 0, 0], [1, 0], T0 + S).intervening  # it is back


# keyboard -----------------------------------------------------------------------------------
def keyboard(**fields) -> TeleopMapper:
    return TeleopMapper(TeleopConfig(device="keyboard", **fields))


def test_default_key_map():
    mapper = keyboard(translation_scale=0.5)
    expected = {
        "w": (0, 0.5),
        "s": (0, -0.5),
        "a": (1, 0.5),
        "d": (1, -0.5),
        "r": (2, 0.5),
        "f": (2, -0.5),
        "up": (0, 0.5),
        "down": (0, -0.5),
        "left": (1, 0.5),
        "right": (1, -0.5),
        "i": (3, 1.0),
        "k": (3, -1.0),
        "j": (4, 1.0),
        "l": (4, -1.0),
        "u": (5, 1.0),
        "o": (5, -1.0),
    }
    for n, (key, (dim, value)) in enumerate(expected.items()):
        now = T0 + n * S  # each one after the previous has run out
        action = mapper.on_key(key, now).action
        assert action[dim] == value and np.count_nonzero(action) == 1, key
    now = T0 + 100 * S
    assert mapper.on_key("enter", now).success
    assert mapper.on_key("backspace", now).end_episode and mapper.on_key("e", now).end_episode


def test_motion_key_moves_for_key_motion_s_and_takes_over():
    mapper = keyboard(key_motion_s=0.4)
    out = mapper.on_key("w", T0)
    assert out.intervening and out.action[0] == 1.0
    assert mapper.tick(T0 + 300 * MS).action[0] == 1.0
    assert mapper.on_key("w", T0 + 350 * MS).action[0] == 1.0  # auto-repeat keeps it going
    assert mapper.tick(T0 + 700 * MS).action[0] == 1.0
    assert mapper.tick(T0 + 750 * MS).action[0] == 0.0
    assert mapper.on_key("s", T0 + 800 * MS).action[0] == -1.0  # the opposite key replaces it
    assert mapper.intervening  # the intervention outlasts the motion


def test_keyboard_toggle_and_idle_timeout():
    mapper = keyboard(key_idle_s=3.0)
    assert mapper.on_key("t", T0).intervening
    assert not mapper.on_key("t", T0 + S).intervening
    assert mapper.on_key("t", T0 + 2 * S).intervening
    assert mapper.tick(T0 + 5 * S).intervening and mapper.tick(T0 + 5 * S).note == ""
    out = mapper.tick(T0 + 5 * S + 100 * MS)
    assert not out.intervening and out.note == "keyboard: no key for 3.1 s: intervention ended"
    assert not mapper.on_key("x", T0 + 6 * S).intervening  # an unbound key does nothing


def test_keyboard_gripper_toggle_follows_the_robots_last_command():
    mapper = keyboard(gripper_pulse_s=0.3)
    assert mapper.on_key("space", T0).action[6] == 1.0  # open (nothing sent yet): close
    assert mapper.on_key("space", T0 + S).action[6] == -1.0
    mapper.observe_gripper_command(0.9)  # the policy closed it meanwhile ...
    mapper.observe_gripper_command(0.0)  # ... and "stay" leaves it closed
    assert mapper.on_key("space", T0 + 2 * S).action[6] == -1.0
    assert mapper.on_key("c", T0 + 3 * S).action[6] == 1.0
    assert mapper.on_key("v", T0 + 4 * S).action[6] == -1.0
    assert mapper.tick(T0 + 4 * S + 300 * MS).action[6] == 0.0


# keyboard reader: decoding and a real pty ---------------------------------------------------------------------
def test_decoder_keys_and_split_escape_sequences():
    decoder = KeyDecoder()
    assert decoder.feed(b"wA \r\n\x7f\x08\t") == ["w", "a", "space", "enter", "enter", "backspace", "backspace", "tab"]
    assert decoder.feed(b"\x1b[A\x1bOB\x1b[C\x1b[D") == ["up", "down", "right", "left"]
    assert decoder.feed(b"s\x1b") == ["s"] and decoder.pending  # maybe an arrow, maybe Esc
    assert decoder.feed(b"[") == [] and decoder.pending
    assert decoder.feed(b"Bw") == ["down", "w"] and not decoder.pending
    assert decoder.feed(b"\x1b[1;5A\x1b[15~\x1bOPk") == ["k"]  # Ctrl+Up, F5, F1: dropped
    assert decoder.feed("é".encode() + b"\x03q") == ["q"]  # non-ASCII and other control bytes: dropped
    assert decoder.feed(b"\x1bw") == ["esc", "w"]
    decoder.feed(b"\x1b")
    assert decoder.flush() == ["esc"] and not decoder.pending
    decoder.feed(b"\x1b[")
    assert decoder.flush() == []


@pytest.fixture
def pty():
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:  # closed by the test
            pass


def next_keys(keys: queue.Queue, n: int) -> list[str]:
    return [keys.get(timeout=5.0) for _ in range(n)]


def test_keyboard_reader_through_a_pty(pty):
    master, slave = pty
    before = termios.tcgetattr(slave)
    keys: queue.Queue[str] = queue.Queue()
    with KeyboardReader(keys.put, fd=slave):
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & termios.ICANON and not lflag & termios.ECHO  # cbreak: no line editing, no echo
        assert lflag & termios.ISIG  # Ctrl-C still interrupts
        os.write(master, b"w\x1b[A ")
        assert next_keys(keys, 3) == ["w", "up", "space"]
        os.write(master, b"\x1b[")  # an arrow split across two writes
        os.write(master, b"D")
        assert next_keys(keys, 1) == ["left"]
        os.write(master, b"\x1b")  # Esc alone: decided once nothing follows
        assert next_keys(keys, 1) == ["esc"]
        os.write(master, b"\x7f")
        assert next_keys(keys, 1) == ["backspace"]
    assert termios.tcgetattr(slave) == before  # the terminal's mode is back


def test_keyboard_reader_reports_a_closed_terminal(pty):
    master, slave = pty
    closed = threading.Event()
    reader = KeyboardReader(lambda key: None, fd=slave, on_close=closed.set)
    reader.start()
    os.close(master)
    assert closed.wait(5.0)
    reader.stop()


def test_keyboard_reader_needs_a_tty():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(RuntimeError, match=r"not a TTY"):
            KeyboardReader(lambda key: None, fd=read_end).start()
    finally:
        os.close(read_end)
        os.close(write_end)
