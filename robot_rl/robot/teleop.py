"""Teleoperation: an operator's SpaceMouse, gamepad or keyboard as the spec's 7-D action, an
intervention flag and the episode's success / end marks. Pure Python (numpy, and termios for the
keyboard): ros_nodes/teleop_node.py feeds it messages; anything else (a viewer window on the twin)
can feed it too.

Devices (TeleopConfig.device)
  joy       sensor_msgs/Joy. `axes[d]` is the Joy axis that drives motion dim d (x y z rx ry rz of
            the spec's action), -1 for none. The defaults fit a SpaceMouse through the spacenav
            node's spacenav/joy: 6 axes in [-1, 1] (x y z roll pitch yaw in spacenav's frame: flip
            `signs` to match how the device sits relative to the robot base, e.g. x and y for an
            operator facing the robot) and two buttons, the left closing the gripper and the right
            opening it, as HIL-SERL's SpaceMouse does. spacenav divides by its full_scale (512),
            which many SpaceMice never reach (~350): lower that, or raise translation_scale.
  twist     geometry_msgs/Twist(Stamped) (spacenav/twist, teleop_twist_joy): twist_linear_speed m/s
            and twist_angular_speed rad/s are a full-scale action; by default the Panda twin's
            maxima per control period (0.03 m and 0.15 rad per 0.1 s). No buttons.
  keyboard  key presses from a terminal (KeyboardReader below), bound by `keys`. The defaults:
              w / s  +x / -x      a / d  +y / -y      r / f  +z / -z      arrows: x and y as w s a d
              i / k  +rx / -rx    j / l  +ry / -ry    u / o  +rz / -rz
              space  gripper toggle    c  close    v  open
              t      take over / hand back          enter  success    backspace or e  end episode
            The toggle flips the robot's last gripper command (observe_gripper_command: the node
            reads command/gripper, so a grasp the policy made counts); c and v say it outright.

The action
  motion    each input normalised to full scale [-1, 1] (Joy axes already are; a twist is divided
            by the full-scale speeds), times `signs`, then the deadband: |v| <= deadband is 0, and
            beyond it (|v| - deadband) / (1 - deadband), so the output is continuous, rising from 0
            at the deadband's edge to 1 at full deflection; then translation_scale (x y z) or
            rotation_scale (rx ry rz), clipped to [-1, 1]. A keyboard key is a full deflection.
  gripper   the spec's command: +1 close, -1 open, 0 stay. A close or open press (its edge, not the
            held button) commands it for gripper_pulse_s, longer than a control period so that an
            actor sampling the latest action at its own tick sees it; then the action says "stay"
            and the gripper stays where the command left it. Pressing close and open at once is
            ambiguous and commands nothing.
  bad input NaN/inf in an axis: that axis reads 0. A value beyond full scale (which a Joy axis
            should never be) is clipped to it. Both are listed in the output (TeleopOutput.nonfinite,
            out_of_range) for the node to log. A Joy with too few axes for `axes`, or a twist without
            6 values, raises a ValueError naming the field. A Joy with fewer buttons than the
            mapping reads is not an error: those buttons are released, because the spacenav node
            lists a button only once it has been pressed.

Intervention (while `intervening`, the operator's action is executed and stored)
  joy with deadman_button >= 0: while that button is held.
  joy with deadman_button = -1, and twist: starts when a motion axis leaves the deadband (or a
            gripper button is pressed) and ends once the input has rested for idle_release_s, so a
            puck passing through its centre does not hand control back.
  keyboard: toggle_intervention (t) takes over and hands back; a motion or gripper key takes over
            too. Terminals report no key releases: a motion key moves for key_motion_s after its
            last press (0.4 s, as teleop_tools' key_teleop: a held key keeps moving on the terminal's
            auto-repeat, with a short pause where its first repeat delay is longer), and an
            intervention ends after key_idle_s with no key.
  silence:  with joy or twist, no message for device_timeout_s ends an intervention (the output's
            `note` says so) and zeroes the motion: an unplugged SpaceMouse must not leave the robot
            under a stale human command. joy_node republishes its state at autorepeat_rate (20 Hz
            by default) and a SpaceMouse reports while its puck is off centre, but spacenav sends
            nothing while the puck rests, so on a SpaceMouse a held deadman button would time out:
            keep deadman_button = -1 there (the default).
Events: success and end_episode on a button's press edge or a key press, whether or not the
operator intervenes (they label the episode, they do not move the robot). success_held says whether
the success button is held now, or the success key was pressed within key_motion_s (a held key
repeats): labelling frames (`robot-rl label`) stores it with each frame.

Times are integer nanoseconds of the caller's clock; tick(now) lets time pass (timeouts, pulses).
TeleopMapper is not thread-safe: a caller with several threads (the node's keyboard thread) locks.
"""

from __future__ import annotations

import math
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_rl import spec
from robot_rl.sim.config import ConfigError, check_choice

NS = 1_000_000_000  # ns per s
DEVICES = ("joy", "twist", "keyboard")
MOTION_DIMS = ("x", "y", "z", "rx", "ry", "rz")  # the spec's action, before the gripper
BUTTONS = ("deadman_button", "gripper_close_button", "gripper_open_button", "success_button", "end_episode_button")
KEY_ACTIONS = (
    *(f"{sign}{dim}" for dim in MOTION_DIMS for sign in "+-"),
    "gripper_toggle",
    "gripper_close",
    "gripper_open",
    "toggle_intervention",
    "success",
    "end_episode",
)
NAMED_KEYS = ("space", "enter", "backspace", "tab", "esc", "up", "down", "left", "right")
RANGE_TOLERANCE = 1e-3  # a full-scale input may overshoot 1 by this much (float32) without a report


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _default_keys() -> dict[str, str]:
    return {
        "w": "+x",
        "s": "-x",
        "a": "+y",
        "d": "-y",
        "r": "+z",
        "f": "-z",
        "up": "+x",
        "down": "-x",
        "left": "+y",
        "right": "-y",
        "i": "+rx",
        "k": "-rx",
        "j": "+ry",
        "l": "-ry",
        "u": "+rz",
        "o": "-rz",
        "space": "gripper_toggle",
        "c": "gripper_close",
        "v": "gripper_open",
        "t": "toggle_intervention",
        "enter": "success",
        "backspace": "end_episode",
        "e": "end_episode",
    }


@dataclass
class TeleopConfig:
    """The operator's device and how it maps to the action (see the module docstring)."""

    device: str = "joy"  # joy | twist | keyboard
    rate_hz: float = 10.0  # the control rate: the node republishes and lets timeouts pass at it
    # joy: per motion dim (x y z rx ry rz) the Joy axis (-1: none); per dim a sign (joy and twist)
    joy_topic: str = "spacenav/joy"
    axes: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    signs: list[float] = field(default_factory=lambda: [1.0] * 6)
    deadman_button: int = -1  # held to intervene; -1: intervene whenever the input leaves the deadband
    gripper_close_button: int = 0  # -1 for none, as for every button
    gripper_open_button: int = 1
    success_button: int = -1
    end_episode_button: int = -1
    # twist: the speeds that make a full-scale action
    twist_topic: str = "spacenav/twist"
    twist_stamped: bool = False  # geometry_msgs/TwistStamped instead of Twist
    twist_linear_speed: float = 0.3  # m/s
    twist_angular_speed: float = 1.5  # rad/s
    # shaping, every device
    deadband: float = 0.05  # of full scale, per axis
    translation_scale: float = 1.0
    rotation_scale: float = 1.0  # 0 holds the orientation (many SERL tasks do)
    # timing [s]
    idle_release_s: float = 0.3  # without a deadman: rest this long to hand control back
    device_timeout_s: float = 0.5  # joy / twist: silence this long ends an intervention
    gripper_pulse_s: float = 0.3  # a gripper press commands close / open this long
    # keyboard: key name (a character, or one of NAMED_KEYS) -> one of KEY_ACTIONS
    keys: dict[str, str] = field(default_factory=_default_keys)
    key_motion_s: float = 0.4  # a motion key moves this long after its last press
    key_idle_s: float = 3.0  # a keyboard intervention ends after this long without a key

    def validate(self, key: str = "teleop") -> None:
        check_choice(self.device, DEVICES, f"{key}.device")
        _check(
            math.isfinite(self.rate_hz) and 0 < self.rate_hz <= 1000,
            f"{key}.rate_hz",
            f"must be in (0, 1000], got {self.rate_hz}",
        )
        _check(bool(self.joy_topic), f"{key}.joy_topic", "must name a topic")
        _check(bool(self.twist_topic), f"{key}.twist_topic", "must name a topic")
        _check(
            len(self.axes) == len(MOTION_DIMS) and all(isinstance(i, int) and i >= -1 for i in self.axes),
            f"{key}.axes",
            f"needs {len(MOTION_DIMS)} Joy axis indices (-1: none), one per motion dim {' '.join(MOTION_DIMS)}",
        )
        _check(
            len(self.signs) == len(MOTION_DIMS) and all(s in (-1, 1) for s in self.signs),
            f"{key}.signs",
            f"needs {len(MOTION_DIMS)} signs, each 1 or -1, got {list(self.signs)}",
        )
        seen: dict[int, str] = {}
        for name in BUTTONS:
            index = getattr(self, name)
            _check(
                isinstance(index, int) and index >= -1, f"{key}.{name}", f"must be a button index or -1, got {index}"
            )
            _check(index not in seen, f"{key}.{name}", f"button {index} is already {seen.get(index)}")
            if index >= 0:
                seen[index] = name
        for name in ("twist_linear_speed", "twist_angular_speed"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{key}.{name}", f"must be > 0, got {value}")
        _check(0 <= self.deadband < 1, f"{key}.deadband", f"must be in [0, 1), got {self.deadband}")
        for name in ("translation_scale", "rotation_scale"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{key}.{name}", f"must be >= 0, got {value}")
        for name in ("device_timeout_s", "key_motion_s", "key_idle_s"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{key}.{name}", f"must be > 0 s, got {value}")
        _check(
            math.isfinite(self.idle_release_s) and self.idle_release_s >= 0,
            f"{key}.idle_release_s",
            f"must be >= 0 s, got {self.idle_release_s}",
        )
        period = 1.0 / self.rate_hz
        _check(
            math.isfinite(self.gripper_pulse_s) and self.gripper_pulse_s > period,
            f"{key}.gripper_pulse_s",
            f"must outlast a control period ({period:g} s) or the actor may never see it, got {self.gripper_pulse_s}",
        )
        for name, action in self.keys.items():
            _check(
                name in NAMED_KEYS or (len(name) == 1 and name.isprintable() and name == name.lower() and name != " "),
                f"{key}.keys.{name}",
                f"not a key name: a lowercase character or one of {', '.join(NAMED_KEYS)}",
            )
            check_choice(action, KEY_ACTIONS, f"{key}.keys.{name}")


def apply_deadband(values: np.ndarray, width: float) -> np.ndarray:
    """Zero inside [-width, width]; beyond it rescaled so that the edge maps to 0 and 1 stays 1."""
    return np.sign(values) * np.maximum(np.abs(values) - width, 0.0) / (1.0 - width)


@dataclass(frozen=True)
class TeleopOutput:
    action: np.ndarray  # float32[7] in [-1, 1], the spec's layout
    intervening: bool
    success: bool = False  # the success mark was pressed with this input
    success_held: bool = False  # the success button is held (a key: pressed within key_motion_s)
    end_episode: bool = False
    nonfinite: tuple[str, ...] = ()  # fields that were NaN/inf, read as 0
    out_of_range: tuple[str, ...] = ()  # "field=value" beyond full scale, clipped to it
    note: str = ""  # why an intervention ended by itself (a silent device, an idle keyboard)


class TeleopMapper:
    """Device input -> TeleopOutput: on_joy / on_twist / on_key for each input, tick as time passes."""

    def __init__(self, config: TeleopConfig):
        config.validate("teleop")
        self.config = config
        c = config
        self.intervening = False
        self._signs = np.asarray(c.signs, np.float64)
        self._scale = np.array([c.translation_scale] * 3 + [c.rotation_scale] * 3)
        self._twist_full_scale = np.array([c.twist_linear_speed] * 3 + [c.twist_angular_speed] * 3)
        self._motion = np.zeros(len(MOTION_DIMS))  # joy / twist: from the latest message, shaped
        self._key_direction = np.zeros(len(MOTION_DIMS))  # keyboard: -1, 0, +1 per dim ...
        self._key_pressed_at = np.full(len(MOTION_DIMS), -(2**62), np.int64)  # ... and its last press [ns]
        self._pressed: set[int] = set()  # Joy buttons held at the latest message
        self._last_input: int | None = None  # ns of the latest message or bound key
        self._rest_since: int | None = None  # without a deadman: when the input came to rest, intervening
        self._gripper = 0.0  # the command of the latest gripper press ...
        self._gripper_until = -(2**62)  # ... until then [ns]
        self._gripper_closed = False  # the robot's last gripper command, for the toggle
        self._success_key_at = -(2**62)  # keyboard: the latest success key press [ns]

    # inputs ------------------------------------------------------------------------------------
    def on_joy(self, axes: Sequence[float], buttons: Sequence[int], now: int) -> TeleopOutput:
        c = self._expect("joy")
        needed = max(c.axes) + 1
        if len(axes) < needed:
            raise ValueError(f"Joy.axes has {len(axes)} entries; teleop.axes reads axis {needed - 1}")
        raw = np.array([axes[i] if i >= 0 else 0.0 for i in c.axes], np.float64)
        names = [f"Joy.axes[{i}]" for i in c.axes]
        self._motion, nonfinite, out_of_range = self._shape(raw, np.ones(len(MOTION_DIMS)), names)
        pressed = {i for i, state in enumerate(buttons) if state}
        edges, self._pressed = pressed - self._pressed, pressed
        close, open_ = c.gripper_close_button in edges, c.gripper_open_button in edges
        if close != open_:
            self._command_gripper(1.0 if close else -1.0, now)
        self._last_input = now
        if c.deadman_button >= 0:
            self.intervening, self._rest_since = c.deadman_button in pressed, None
        else:
            gripper_held = bool({c.gripper_close_button, c.gripper_open_button} & pressed)
            self._active(bool(np.any(self._motion)) or gripper_held, now)
        return self._output(
            now,
            success=c.success_button in edges,
            end_episode=c.end_episode_button in edges,
            nonfinite=nonfinite,
            out_of_range=out_of_range,
        )

    def on_twist(self, twist: Sequence[float], now: int) -> TeleopOutput:
        """`twist`: [vx vy vz wx wy wz] in m/s and rad/s."""
        self._expect("twist")
        if len(twist) != len(MOTION_DIMS):
            raise ValueError(f"twist has {len(twist)} values, expected 6 (linear x y z, angular x y z)")
        names = [f"Twist.{part}.{axis}" for part in ("linear", "angular") for axis in "xyz"]
        raw = np.array([float(v) for v in twist], np.float64)
        self._motion, nonfinite, out_of_range = self._shape(raw, self._twist_full_scale, names)
        self._last_input = now
        self._active(bool(np.any(self._motion)), now)
        return self._output(now, nonfinite=nonfinite, out_of_range=out_of_range)

    def on_key(self, key: str, now: int) -> TeleopOutput:
        """A key press (a KeyboardReader name); an unbound key changes nothing."""
        self._expect("keyboard")
        action = self.config.keys.get(key)
        if action is None:
            return self._output(now)
        self._last_input = now
        if action[0] in "+-":
            dim = MOTION_DIMS.index(action[1:])
            self._key_direction[dim] = 1.0 if action[0] == "+" else -1.0
            self._key_pressed_at[dim] = now
            self.intervening = True
        elif action.startswith("gripper_"):
            closing = not self._gripper_closed if action == "gripper_toggle" else action == "gripper_close"
            self._command_gripper(1.0 if closing else -1.0, now)
            self.intervening = True
        elif action == "toggle_intervention":
            self.intervening = not self.intervening
        elif action == "success":
            self._success_key_at = now
        return self._output(now, success=action == "success", end_episode=action == "end_episode")

    def observe_gripper_command(self, command: float) -> None:
        """The gripper command the robot was sent (anyone's: the policy's too), for the toggle."""
        self._gripper_closed = spec.gripper_closed_after(command, self._gripper_closed)

    def tick(self, now: int) -> TeleopOutput:
        """Let time pass: timeouts end interventions, key motions and gripper pulses run out."""
        return self._output(now)

    def action(self, now: int) -> np.ndarray:
        if self.config.device == "keyboard":
            held = (now - self._key_pressed_at) < self.config.key_motion_s * NS
            motion = np.clip(self._key_direction * held * self._scale, -1.0, 1.0)
        else:
            motion = self._motion
        gripper = self._gripper if now < self._gripper_until else 0.0
        return np.append(motion, gripper).astype(np.float32)

    # internals ---------------------------------------------------------------------------------
    def _expect(self, device: str) -> TeleopConfig:
        if self.config.device != device:
            raise ValueError(f"teleop.device is {self.config.device!r}: this mapper takes no {device} input")
        return self.config

    def _shape(
        self, raw: np.ndarray, full_scale: np.ndarray, names: list[str]
    ) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
        """Raw device values -> the shaped motion, the non-finite fields, the out-of-range ones."""
        finite = np.isfinite(raw)
        with np.errstate(over="ignore"):  # 1e308 / 0.3 is inf: out of range, clipped below
            value = np.where(finite, raw, 0.0) / full_scale
        over = np.abs(value) > 1.0 + RANGE_TOLERANCE
        nonfinite = tuple(name for name, ok in zip(names, finite, strict=True) if not ok)
        out_of_range = tuple(f"{n}={r:g}" for n, r, o in zip(names, raw, over, strict=True) if o)
        shaped = apply_deadband(np.clip(value, -1.0, 1.0) * self._signs, self.config.deadband)
        return np.clip(shaped * self._scale, -1.0, 1.0), nonfinite, out_of_range

    def _active(self, active: bool, now: int) -> None:
        """Without a deadman: input outside the deadband takes over; resting starts the release clock."""
        if active:
            self.intervening, self._rest_since = True, None
        elif self.intervening and self._rest_since is None:
            self._rest_since = now

    def _command_gripper(self, command: float, now: int) -> None:
        self._gripper, self._gripper_until = command, now + round(self.config.gripper_pulse_s * NS)
        self._gripper_closed = command > 0

    def _expire(self, now: int) -> str:
        """End what has timed out by `now`; a note when that ended an intervention unexpectedly."""
        c = self.config
        silence = (now - self._last_input) / NS if self._last_input is not None else 0.0
        if c.device != "keyboard" and silence > c.device_timeout_s:
            self._motion = np.zeros(len(MOTION_DIMS))  # a stale command must not come back later
            if self.intervening:
                self.intervening, self._rest_since = False, None
                return f"teleop device silent for {silence:.2f} s: intervention ended"
        elif c.device == "keyboard" and self.intervening and silence > c.key_idle_s:
            self.intervening = False
            return f"keyboard: no key for {silence:.1f} s: intervention ended"
        elif self._rest_since is not None and now - self._rest_since >= c.idle_release_s * NS:
            self.intervening, self._rest_since = False, None
        return ""

    def _output(
        self,
        now: int,
        success: bool = False,
        end_episode: bool = False,
        nonfinite: tuple[str, ...] = (),
        out_of_range: tuple[str, ...] = (),
    ) -> TeleopOutput:
        note = self._expire(now)
        c = self.config
        if c.device == "keyboard":
            held = now - self._success_key_at < c.key_motion_s * NS
        else:
            held = c.device == "joy" and c.success_button in self._pressed
        return TeleopOutput(
            self.action(now), self.intervening, success, held, end_episode, nonfinite, out_of_range, note
        )


# keyboard -------------------------------------------------------------------------------------
ESCAPE_TIMEOUT_S = 0.05  # an ESC with nothing after it within this long is the Esc key itself
MAX_ESCAPE_BYTES = 16  # an escape sequence longer than this is garbage: dropped
CURSOR_KEYS = {"A": "up", "B": "down", "C": "right", "D": "left"}
CONTROL_KEYS = {" ": "space", "\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace", "\t": "tab"}


class KeyDecoder:
    """A terminal's bytes (cbreak mode) -> key names: printable characters lowercased (Caps Lock does
    not unbind the keys), NAMED_KEYS for the others. Arrow keys arrive as escape sequences (ESC [ A,
    or ESC O A in application mode), possibly split across reads: an incomplete one waits for the
    next feed, or for flush() when no byte follows (then a lone ESC is the Esc key). Other escape
    sequences (function keys, modified arrows) and non-ASCII bytes are dropped."""

    def __init__(self):
        self._pending = b""

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def feed(self, data: bytes) -> list[str]:
        buffer, keys, i = self._pending + data, [], 0
        self._pending = b""
        while i < len(buffer):
            if buffer[i] == 0x1B:
                parsed = self._escape(buffer, i)
                if parsed is None:
                    self._pending = buffer[i:]
                    break
                length, key = parsed
            else:
                length, key = 1, self._plain(buffer[i])
            if key is not None:
                keys.append(key)
            i += length
        return keys

    def flush(self) -> list[str]:
        """No more bytes came: a pending lone ESC is the Esc key; a partial sequence is dropped."""
        lone_escape, self._pending = self._pending == b"\x1b", b""
        return ["esc"] if lone_escape else []

    @staticmethod
    def _plain(byte: int) -> str | None:
        char = chr(byte)
        if char in CONTROL_KEYS:
            return CONTROL_KEYS[char]
        return char.lower() if 0x21 <= byte <= 0x7E else None

    @staticmethod
    def _escape(buffer: bytes, i: int) -> tuple[int, str | None] | None:
        """The escape sequence at buffer[i] (ESC) as (its length, its key or None); None if incomplete."""
        if i + 1 >= len(buffer):
            return None
        kind = chr(buffer[i + 1])
        if kind == "[":  # CSI: parameter and intermediate bytes, then a final byte in 0x40-0x7e
            end = i + 2
            while end < len(buffer) and not 0x40 <= buffer[end] <= 0x7E:
                end += 1
            if end >= len(buffer):
                return (len(buffer) - i, None) if len(buffer) - i > MAX_ESCAPE_BYTES else None
            plain = end == i + 2  # no parameters: not a modified or function key
            return end + 1 - i, CURSOR_KEYS.get(chr(buffer[end])) if plain else None
        if kind == "O":  # SS3: cursor keys in application mode
            return (3, CURSOR_KEYS.get(chr(buffer[i + 2]))) if i + 2 < len(buffer) else None
        return 1, "esc"  # ESC then an ordinary key: the Esc key, then that key


class KeyboardReader:
    """Key presses from a terminal on a background thread, each passed to `on_key` as it comes. While
    running, the terminal is in cbreak mode (keys arrive at once, unechoed; Ctrl-C still interrupts);
    stop() restores it. `fd` defaults to stdin; a test passes one end of a pty. `on_close` is called
    if the terminal closes (end of file), after which no key comes."""

    def __init__(
        self, on_key: Callable[[str], None], fd: int | None = None, on_close: Callable[[], None] | None = None
    ):
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.on_key, self.on_close = on_key, on_close
        self._saved_mode: list | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None  # a pipe that stop() writes to, to end the thread

    def start(self) -> None:
        if not os.isatty(self.fd):
            raise RuntimeError(
                f"keyboard teleop reads key presses from a terminal, but fd {self.fd} is not a TTY (stdin "
                "redirected, or started without a terminal as ros2 launch does): run it in a terminal "
                "(e.g. a launch prefix 'xterm -e'), or use a joy or twist device"
            )
        self._saved_mode = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name="teleop_keyboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        os.write(self._wake[1], b"\0")
        self._thread.join()
        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved_mode)
        except termios.error:  # the terminal is gone: nothing left to restore
            pass
        for end in self._wake:
            os.close(end)
        self._thread = self._wake = None

    def __enter__(self) -> KeyboardReader:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run(self) -> None:
        decoder = KeyDecoder()
        wake = self._wake[0]
        while True:
            timeout = ESCAPE_TIMEOUT_S if decoder.pending else None
            readable, _, _ = select.select([self.fd, wake], [], [], timeout)
            if wake in readable:
                return
            if not readable:
                keys = decoder.flush()
            else:
                try:
                    data = os.read(self.fd, 1024)
                except OSError:  # EIO: the terminal (the pty's other end) closed
                    data = b""
                if not data:
                    if self.on_close is not None:
                        self.on_close()
                    return
                keys = decoder.feed(data)
            for key in keys:
                self.on_key(key)
