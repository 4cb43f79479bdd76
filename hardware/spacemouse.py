"""A 3Dconnexion SpaceMouse read directly over USB HID, for machines without spacenavd and the spacenav
node. hardware/spacemouse_node.py publishes what the spacenav node does (spacenav/joy, spacenav/twist),
so the teleop node and configs/teleop/spacemouse.yaml work unchanged. No rclpy here: the report
parsing and the reader are plain Python, tested with recorded reports and a fake device.

The HID library is hidapi (`pip install hidapi`, or this project's `hardware` extra), imported only
when a real device is opened: everything else runs without it.

Reports (input reports; the first byte is the report id, values are little-endian int16 counts)
  classic  report 1: translation x y z (7 bytes); report 2: rotation x y z (7 bytes)
  single   report 1: translation x y z then rotation x y z (13 bytes): the newer wireless models
  both     report 3: the buttons, a bitmask (bit 0 of the first byte after the id is button 0)
  Other report ids (LEDs, status) are ignored. A report shorter than its layout needs is dropped and
  counted (SpaceMouseState.malformed_reports); a longer one is read (Windows pads every report to the
  device's longest).

Axes: the ROS convention of the spacenav node
  The device counts in its own right-handed frame: x right, y toward the operator, z down (pushing
  the cap away from you reads -y, pressing it down +z), rotations by the right-hand rule about
  those axes. spacenavd turns that into libspnav's frame (it swaps y and z and negates both: x
  right, y up, z away) and the spacenav node into ROS's (x = z, y = -x, z = y), so that on
  spacenav/joy and spacenav/twist x points away from the operator (forward), y left and z up:
  REP 103 for an operator facing along the robot base's x. Composed, ROS (x, y, z) = -(HID y, HID x,
  HID z), for translations and rotations alike (that map is a proper rotation, determinant +1, so
  rotation axes map like translation axes). It is applied here directly, so a teleop config made
  for the spacenav node fits this one too.
  Each axis is counts / full_scale, clipped to [-1, 1]. Most models reach about 350 counts at full
  deflection (pyspacemouse's and OpenSCAD's scale), hence the default; the spacenav node divides by
  512, so set full_scale to 512 for its exact numbers. No dead zone here: the teleop mapper has one.

Buttons: Joy button i is bit i of the bitmask; on the two-button models (SpaceNavigator, Compact,
Wireless) that is spacenav's numbering, 0 left and 1 right. The multi-button models (Pro, Enterprise)
publish their raw bits (bit 0 Menu, bit 1 Fit on a Pro), which is not spacenavd's numbering: set the
teleop config's button indices for them. Unlike spacenav, which lists a button only once it has
been pressed, every button of the model is always listed.

Rest: while unplugged, and after a disconnect, the state is at rest (axes 0, no button), so a robot
never keeps moving on a stale deflection. A deflected device reports continuously (the spacenav node
zeroes its output after 30 ms without an event), so a deflection not refreshed for
deflection_timeout_s (a wireless puck out of range, its receiver still plugged in) returns the axes
to rest too.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

DEFAULT_FULL_SCALE = 350.0  # counts at full deflection on most models
REPORT_SIZE = 64  # bytes asked per read: more than any SpaceMouse report
BUTTON_REPORT = 3
HIDAPI_MISSING = (
    "reading a SpaceMouse over HID needs the hidapi package (`import hid`): pip install hidapi, or "
    "install robot_rl with the hardware extra: pip install 'robot_rl[hardware]'"
)
# ROS axis i (x y z rx ry rz) is minus HID axis HID_SOURCE[i] (HID order: x y z rx ry rz): see above
HID_SOURCE = (1, 0, 2, 4, 3, 5)
REST_AXES = (0.0,) * 6


@dataclass(frozen=True, eq=False)  # one object per layout: compared by identity
class ReportLayout:
    """Which input report carries which HID axes (0-5: x y z rx ry rz), as int16s after the id."""

    name: str
    axis_reports: dict[int, range]


CLASSIC = ReportLayout("classic", {1: range(0, 3), 2: range(3, 6)})
SINGLE = ReportLayout("single", {1: range(0, 6)})


@dataclass(frozen=True)
class SpaceMouseModel:
    name: str
    vendor_id: int
    product_id: int
    layout: ReportLayout
    buttons: int  # bits of the button report published as Joy buttons

    @property
    def ids(self) -> str:
        return f"{self.vendor_id:04x}:{self.product_id:04x}"


LOGITECH = 0x046D  # the older models, from when 3Dconnexion was a Logitech company
THREEDCONNEXION = 0x256F
# Ids and layouts as pyspacemouse's device table (devices.toml) lists them, the ids also in OpenSCAD's
# HidApiInputDriver table; the two marked "id: OpenSCAD" are only in OpenSCAD's, with the layout of
# the same mouse on its other connection (cable or receiver).
KNOWN_MODELS = (
    SpaceMouseModel("SpaceNavigator", LOGITECH, 0xC626, CLASSIC, 2),
    SpaceMouseModel("SpaceMouse Pro", LOGITECH, 0xC62B, CLASSIC, 32),
    SpaceMouseModel("SpaceMouse Wireless (cabled)", THREEDCONNEXION, 0xC62E, SINGLE, 2),
    SpaceMouseModel("SpaceMouse Wireless (receiver)", THREEDCONNEXION, 0xC62F, SINGLE, 2),  # id: OpenSCAD
    SpaceMouseModel("SpaceMouse Pro Wireless (cabled)", THREEDCONNEXION, 0xC631, SINGLE, 32),  # id: OpenSCAD
    SpaceMouseModel("SpaceMouse Pro Wireless (receiver)", THREEDCONNEXION, 0xC632, SINGLE, 32),
    SpaceMouseModel("SpaceMouse Enterprise", THREEDCONNEXION, 0xC633, SINGLE, 32),
    SpaceMouseModel("SpaceMouse Compact", THREEDCONNEXION, 0xC635, CLASSIC, 2),
    SpaceMouseModel("3Dconnexion Universal Receiver", THREEDCONNEXION, 0xC652, SINGLE, 32),
)
DEFAULT_BUTTONS = 2  # listed at rest before any device was opened


class SpaceMouseError(RuntimeError):
    """A problem retrying cannot fix: hidapi missing, ids of no known model."""


def find_model(vendor_id: int, product_id: int) -> SpaceMouseModel | None:
    return next((m for m in KNOWN_MODELS if (m.vendor_id, m.product_id) == (vendor_id, product_id)), None)


def known_models_text() -> str:
    return ", ".join(f"{m.name} {m.ids}" for m in KNOWN_MODELS)


# state and parsing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpaceMouseState:
    """What the device says now: `axes` x y z rx ry rz in the ROS convention, each in [-1, 1];
    `buttons` 0/1 per button of the model; `malformed_reports` dropped so far. Immutable, so the
    read thread can hand it to others as it is."""

    axes: tuple[float, ...] = REST_AXES
    buttons: tuple[int, ...] = (0,) * DEFAULT_BUTTONS
    malformed_reports: int = 0

    def at_rest(self) -> SpaceMouseState:
        """The same counters, every axis 0 and no button pressed."""
        return replace(self, axes=REST_AXES, buttons=(0,) * len(self.buttons))


def parse_report(
    layout: ReportLayout, report: bytes, state: SpaceMouseState, full_scale: float = DEFAULT_FULL_SCALE
) -> SpaceMouseState:
    """`state` updated by one input report (report id first). Axes a report does not carry keep their
    values (the classic layout sends translation and rotation apart). Unknown report ids change
    nothing; a report too short for its id is dropped and counted. Never raises on report content."""
    if not report:
        return replace(state, malformed_reports=state.malformed_reports + 1)
    report_id, payload = report[0], report[1:]
    if report_id in layout.axis_reports:
        hid_axes = layout.axis_reports[report_id]
        if len(payload) < 2 * len(hid_axes):
            return replace(state, malformed_reports=state.malformed_reports + 1)
        counts = {
            axis: int.from_bytes(payload[2 * k : 2 * k + 2], "little", signed=True) for k, axis in enumerate(hid_axes)
        }
        axes = list(state.axes)
        for ros_axis, hid_axis in enumerate(HID_SOURCE):
            if hid_axis in counts:
                axes[ros_axis] = min(1.0, max(-1.0, -counts[hid_axis] / full_scale))
        return replace(state, axes=tuple(axes))
    if report_id == BUTTON_REPORT:
        n_buttons = len(state.buttons)
        if len(payload) < math.ceil(n_buttons / 8):
            return replace(state, malformed_reports=state.malformed_reports + 1)
        mask = int.from_bytes(payload, "little")
        return replace(state, buttons=tuple((mask >> i) & 1 for i in range(n_buttons)))
    return state


# the device -------------------------------------------------------------------------------------
class HidDevice(Protocol):
    """What the reader uses of an open hidapi device (`hid.device`)."""

    def read(self, size: int, timeout_ms: int) -> list[int]:
        """One input report (report id first), or [] when none came within timeout_ms; OSError
        once the device is gone."""

    def close(self) -> None: ...


DeviceOpener = Callable[[], tuple[HidDevice, SpaceMouseModel]]


def import_hid():
    try:
        import hid
    except ImportError as error:
        raise SpaceMouseError(HIDAPI_MISSING) from error
    return hid


def open_hid_device(vendor_id: int = 0, product_id: int = 0, path: str = "") -> tuple[HidDevice, SpaceMouseModel]:
    """The first connected SpaceMouse of a known model (0: any vendor / product), or the one at
    `path` (a hidapi path, /dev/hidrawN on Linux), opened. OSError when there is none or it cannot
    be opened (a reader retries); SpaceMouseError without hidapi."""
    hid = import_hid()
    wanted = []
    for info in hid.enumerate():
        model = find_model(info["vendor_id"], info["product_id"])
        if path:
            if info["path"] == path.encode():
                if model is None:
                    raise OSError(f"{path} is {info['vendor_id']:04x}:{info['product_id']:04x}, no known SpaceMouse")
                wanted.append((info, model))
        elif model is not None and vendor_id in (0, model.vendor_id) and product_id in (0, model.product_id):
            wanted.append((info, model))
    if not wanted:
        what = path or (f"{vendor_id:04x}:{product_id:04x}" if vendor_id or product_id else "known SpaceMouse")
        raise FileNotFoundError(f"no {what} connected (known models: {known_models_text()})")
    # a model may list several HID interfaces: take its multi-axis controller one (Generic Desktop
    # page 1, usage 8) where hidapi says which that is, else the first
    info, model = min(wanted, key=lambda pair: (pair[0].get("usage_page"), pair[0].get("usage")) != (1, 8))
    device = hid.device()
    try:
        device.open_path(info["path"])
    except OSError as error:
        raise OSError(
            f"cannot open {model.name} ({model.ids}) at {info['path'].decode(errors='replace')}: {error}; on "
            "Linux the user needs read access to its /dev/hidraw* node (a udev rule)"
        ) from error
    return device, model


def hid_opener(vendor_id: int = 0, product_id: int = 0, path: str = "") -> DeviceOpener:
    """An opener for SpaceMouseReader over hidapi. Checks now what retrying cannot fix: hidapi is
    installed, and given ids name a known model (0: any)."""
    import_hid()
    if (vendor_id or product_id) and not any(
        vendor_id in (0, m.vendor_id) and product_id in (0, m.product_id) for m in KNOWN_MODELS
    ):
        raise SpaceMouseError(
            f"vendor_id {vendor_id:#06x} / product_id {product_id:#06x} is no known SpaceMouse (0: any); "
            f"known: {known_models_text()}"
        )
    return functools.partial(open_hid_device, vendor_id, product_id, path)


# the reader ------------------------------------------------------------------------------------
# on_status events
CONNECTED, DISCONNECTED, OPEN_FAILED, FAILED = "connected", "disconnected", "open_failed", "failed"


class SpaceMouseReader:
    """Keeps `state` current from a device that comes and goes. Each step() either opens the device
    (`open_device()`; an OSError is reported and retried) or reads one report, waiting up to
    read_timeout_ms. An OSError while reading is an unplug: the device is closed, the state goes to
    rest. start() runs steps on a thread, every reconnect_period_s while there is no device, until
    stop(). `on_status(event, message)` hears of every connect, disconnect and failed open (events
    above), on the reading thread. `clock` (s) times the deflection timeout."""

    def __init__(
        self,
        open_device: DeviceOpener,
        full_scale: float = DEFAULT_FULL_SCALE,
        reconnect_period_s: float = 1.0,
        deflection_timeout_s: float = 0.25,
        on_status: Callable[[str, str], None] | None = None,
        read_timeout_ms: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ):
        for name, value in (
            ("full_scale", full_scale),
            ("reconnect_period_s", reconnect_period_s),
            ("deflection_timeout_s", deflection_timeout_s),
            ("read_timeout_ms", read_timeout_ms),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")
        self.open_device, self.full_scale = open_device, full_scale
        self.reconnect_period_s, self.deflection_timeout_s = reconnect_period_s, deflection_timeout_s
        self.read_timeout_ms = int(read_timeout_ms)
        self.on_status, self.clock = on_status, clock
        self.model: SpaceMouseModel | None = None  # the latest device opened
        self.connects = self.disconnects = self.open_failures = self.stale_deflections = 0
        self._state = SpaceMouseState()
        self._device: HidDevice | None = None  # touched by the stepping thread only
        self._last_report = 0.0  # clock() of the latest report
        self._lock = threading.Lock()  # _state: written by the stepping thread, read by anyone
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SpaceMouseState:
        with self._lock:
            return self._state

    @property
    def connected(self) -> bool:
        return self._device is not None

    def step(self) -> None:
        if self._device is None:
            self._open()
            return
        try:
            report = self._device.read(REPORT_SIZE, self.read_timeout_ms)
        except OSError as error:
            self._lose(error)
            return
        now = self.clock()
        with self._lock:
            if report:
                self._state = parse_report(self.model.layout, bytes(report), self._state, self.full_scale)
                self._last_report = now
            elif self._state.axes != REST_AXES and now - self._last_report > self.deflection_timeout_s:
                self._state = replace(self._state, axes=REST_AXES)  # buttons report only on change: kept
                self.stale_deflections += 1

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the SpaceMouse reader is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="spacemouse_reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread (within read_timeout_ms) and closes the device."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._device is not None:
            self._close()
            with self._lock:
                self._state = self._state.at_rest()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
                if self._device is None:  # none found, or just unplugged: look again a period later
                    self._stop.wait(self.reconnect_period_s)
        except Exception as error:  # a bug or an unfixable setup: say so, and leave the state at rest
            with self._lock:
                self._state = self._state.at_rest()
            self._report(FAILED, f"SpaceMouse reader stopped, publishing rest from now on: {error!r}")
            raise

    def _open(self) -> None:
        try:
            device, model = self.open_device()
        except OSError as error:
            self.open_failures += 1
            self._report(OPEN_FAILED, f"no SpaceMouse opened ({error}); trying again every {self.reconnect_period_s} s")
            return
        self._device, self.model = device, model
        self._last_report = self.clock()
        with self._lock:
            self._state = replace(self._state, axes=REST_AXES, buttons=(0,) * model.buttons)
        self.connects += 1
        self._report(CONNECTED, f"{model.name} ({model.ids}) connected")

    def _lose(self, error: OSError) -> None:
        self._close()
        with self._lock:
            self._state = self._state.at_rest()
        self.disconnects += 1
        period = self.reconnect_period_s
        self._report(DISCONNECTED, f"{self.model.name} disconnected ({error}): at rest; reopening every {period} s")

    def _close(self) -> None:
        device, self._device = self._device, None
        try:
            device.close()
        except OSError:  # already gone with the device
            pass

    def _report(self, event: str, message: str) -> None:
        if self.on_status is not None:
            self.on_status(event, message)
