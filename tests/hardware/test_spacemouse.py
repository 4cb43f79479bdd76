"""The SpaceMouse HID driver without a device and without hidapi: report parsing (both layouts, axis
order and signs, clipping, buttons, unknown and short reports) from recorded reports, the reader with
a fake device (unplug, rest, reconnect, stale deflections), and opening through a fake `hid` module.
tests/ros/scenario_spacemouse_node.py drives the node."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from types import SimpleNamespace

import pytest

from hardware.spacemouse import (
    CLASSIC,
    CONNECTED,
    DISCONNECTED,
    FAILED,
    KNOWN_MODELS,
    OPEN_FAILED,
    SINGLE,
    SpaceMouseError,
    SpaceMouseReader,
    SpaceMouseState,
    find_model,
    hid_opener,
    import_hid,
    open_hid_device,
    parse_report,
)

SPACE_NAVIGATOR = find_model(0x046D, 0xC626)  # classic layout, two buttons
WIRELESS = find_model(0x256F, 0xC62E)  # single-report layout, two buttons
PRO = find_model(0x046D, 0xC62B)  # classic layout, 32 button bits
REST = (0.0,) * 6
TIMEOUT = 5.0  # s for the reader's thread to get somewhere

# Reports as a SpaceNavigator sends them (hex; the report id first, then little-endian int16s).
# 175 counts = 0xaf00, -175 = 0x51ff: half of the default full scale (350).
PUSHED_AWAY = "01 0000 51ff 0000"  # HID y -175 -> ROS x +0.5
RELEASED = "01 0000 0000 0000"
TILTED_RIGHT_DOWN = "02 0000 af00 0000"  # HID ry +175 -> ROS rx -0.5
LEFT_BUTTON = "03 01 00"
NO_BUTTON = "03 00 00"


def report(text: str) -> bytes:
    return bytes.fromhex(text)


def parse(layout, *reports: str, state: SpaceMouseState | None = None, full_scale: float = 350.0) -> SpaceMouseState:
    state = SpaceMouseState() if state is None else state
    for text in reports:
        state = parse_report(layout, report(text), state, full_scale)
    return state


# parsing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("01 af00 0000 0000", [0, -0.5, 0, 0, 0, 0]),  # cap pushed right: ROS -y
        ("01 0000 51ff 0000", [0.5, 0, 0, 0, 0, 0]),  # pushed away from the operator: ROS +x
        ("01 0000 0000 51ff", [0, 0, 0.5, 0, 0, 0]),  # pulled up: ROS +z
        ("02 af00 0000 0000", [0, 0, 0, 0, -0.5, 0]),  # tilted far edge up: about ROS -y
        ("02 0000 af00 0000", [0, 0, 0, -0.5, 0, 0]),  # tilted right edge up: about ROS -x
        ("02 0000 0000 af00", [0, 0, 0, 0, 0, -0.5]),  # twisted clockwise seen from above: about ROS -z
    ],
)
def test_classic_layout_axis_order_and_signs(text, expected):
    assert parse(CLASSIC, text).axes == pytest.approx(expected)


def test_classic_reports_update_translation_and_rotation_apart():
    state = parse(CLASSIC, PUSHED_AWAY, TILTED_RIGHT_DOWN)
    assert state.axes == pytest.approx([0.5, 0, 0, -0.5, 0, 0])
    assert parse(CLASSIC, RELEASED, state=state).axes == pytest.approx([0, 0, 0, -0.5, 0, 0])


def test_single_layout_carries_all_six_axes():
    # HID x 175, y -175, z -175, rx 35, ry 0, rz -105 in one 13-byte report (a SpaceMouse Wireless)
    state = parse(SINGLE, "01 af00 51ff 51ff 2300 0000 97ff")
    assert state.axes == pytest.approx([0.5, -0.5, 0.5, 0.0, -0.1, 0.3])
    # a classic device's 7-byte report 1 is too short for this layout
    assert parse(SINGLE, PUSHED_AWAY).malformed_reports == 1


def test_padded_reports_are_read():
    """Windows pads every report to the device's longest."""
    assert parse(CLASSIC, PUSHED_AWAY + " 0000 0000 0000").axes == pytest.approx([0.5, 0, 0, 0, 0, 0])
    assert parse(CLASSIC, LEFT_BUTTON + " 00" * 10).buttons == (1, 0)


def test_full_scale_and_clipping():
    assert parse(CLASSIC, PUSHED_AWAY, full_scale=175.0).axes[0] == 1.0
    assert parse(CLASSIC, "01 0000 3cf6 0000").axes[0] == 1.0  # -2500 counts: beyond full scale
    assert parse(CLASSIC, "01 0080 0000 0000").axes[1] == 1.0  # -32768, the int16 minimum
    assert parse(CLASSIC, "01 ff7f 0000 0000").axes[1] == -1.0  # 32767


def test_buttons_bitmask():
    assert parse(CLASSIC, LEFT_BUTTON).buttons == (1, 0)
    assert parse(CLASSIC, "03 02 00").buttons == (0, 1)
    assert parse(CLASSIC, "03 03 00").buttons == (1, 1)
    assert parse(CLASSIC, "03 03 00", NO_BUTTON).buttons == (0, 0)
    pro = SpaceMouseState(buttons=(0,) * PRO.buttons)
    pressed = parse(PRO.layout, "03 01 00 00 04", state=pro).buttons
    assert [i for i, b in enumerate(pressed) if b] == [0, 26]  # Menu, and bit 2 of the fourth byte
    assert parse(CLASSIC, LEFT_BUTTON, PUSHED_AWAY).buttons == (1, 0)  # motion leaves buttons alone


@pytest.mark.parametrize("text", ["04 01", "17 64 00", "00 af00 51ff 0000", "02 af00 51ff 0000"])
def test_unknown_report_ids_change_nothing(text):
    state = parse(CLASSIC, PUSHED_AWAY, LEFT_BUTTON)
    layout = SINGLE if text.startswith("02") else CLASSIC  # report 2 is unknown to the single layout
    assert parse_report(layout, report(text), state) == state


def test_short_reports_are_dropped_and_counted_never_raising():
    state = parse(CLASSIC, PUSHED_AWAY, LEFT_BUTTON)
    shorts = [report(PUSHED_AWAY)[:n] for n in range(7)] + [report("03"), report("02 af00 51")]
    for short in shorts:
        state = parse_report(CLASSIC, short, state)
    assert state.malformed_reports == len(shorts)
    assert state.axes == pytest.approx([0.5, 0, 0, 0, 0, 0]) and state.buttons == (1, 0)
    pro = SpaceMouseState(buttons=(0,) * PRO.buttons)
    assert parse(PRO.layout, "03 01", state=pro).malformed_reports == 1  # 32 buttons need 4 bytes


def test_known_models():
    ids = [(m.vendor_id, m.product_id) for m in KNOWN_MODELS]
    assert len(set(ids)) == len(ids)
    assert {m.vendor_id for m in KNOWN_MODELS} == {0x046D, 0x256F}
    assert find_model(0x256F, 0xC635).name == "SpaceMouse Compact" and find_model(0x256F, 0xC635).layout is CLASSIC
    assert find_model(0x256F, 0xC62F).layout is SINGLE  # the Wireless through its receiver
    assert find_model(0x046D, 0xC31C) is None  # a keyboard


# the reader -------------------------------------------------------------------------------------
class FakeDevice:
    """Plays recorded reports, then times out; raises OSError once unplugged, as hidapi's device."""

    def __init__(self, *reports: str):
        self.reports = deque(report(text) for text in reports)
        self.unplugged = self.closed = False

    def play(self, *reports: str) -> None:
        self.reports.extend(report(text) for text in reports)

    def read(self, size: int, timeout_ms: int) -> list[int]:
        if self.unplugged:
            raise OSError("read error")
        if self.reports:
            return list(self.reports.popleft())[:size]
        time.sleep(timeout_ms / 1000)
        return []

    def close(self) -> None:
        self.closed = True


class FakePort:
    """The opener: whatever device is plugged in."""

    def __init__(self, model=SPACE_NAVIGATOR):
        self.model, self.device, self.opens = model, None, 0

    def __call__(self):
        self.opens += 1
        if self.device is None:
            raise FileNotFoundError("no known SpaceMouse connected")
        return self.device, self.model

    def plug(self, *reports: str) -> FakeDevice:
        self.device = FakeDevice(*reports)
        return self.device

    def unplug(self) -> None:
        self.device.unplugged, self.device = True, None


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def __call__(self, event: str, message: str) -> None:
        self.events.append((event, message))

    def kinds(self) -> list[str]:
        return [event for event, _ in self.events]


def make_reader(port: FakePort, **kwargs) -> tuple[SpaceMouseReader, Recorder]:
    recorder = Recorder()
    kwargs.setdefault("read_timeout_ms", 1)
    return SpaceMouseReader(port, on_status=recorder, **kwargs), recorder


def test_reader_unplug_goes_to_rest_and_replug_reconnects():
    port = FakePort()
    reader, recorder = make_reader(port)
    reader.step()  # nothing plugged in
    assert not reader.connected and reader.state.axes == REST and recorder.kinds() == [OPEN_FAILED]
    assert "no known SpaceMouse connected" in recorder.events[0][1]

    first = port.plug(PUSHED_AWAY, TILTED_RIGHT_DOWN, LEFT_BUTTON)
    for _ in range(4):  # open, then the three reports
        reader.step()
    assert reader.connected and recorder.events[-1] == (CONNECTED, "SpaceNavigator (046d:c626) connected")
    assert reader.state.axes == pytest.approx([0.5, 0, 0, -0.5, 0, 0]) and reader.state.buttons == (1, 0)

    port.unplug()
    reader.step()
    assert not reader.connected and first.closed
    assert reader.state.axes == REST and reader.state.buttons == (0, 0)  # no stale deflection, no held button
    assert recorder.kinds()[-1] == DISCONNECTED and "SpaceNavigator disconnected (read error)" in recorder.events[-1][1]
    reader.step()
    assert recorder.kinds()[-1] == OPEN_FAILED and reader.state.axes == REST

    port.plug(PUSHED_AWAY)
    reader.step()
    reader.step()
    assert reader.connected and reader.state.axes == pytest.approx([0.5, 0, 0, 0, 0, 0])
    assert (reader.connects, reader.disconnects, reader.open_failures, port.opens) == (2, 1, 2, 4)


def test_reader_takes_the_models_layout_and_buttons():
    port = FakePort(WIRELESS)
    port.plug("01 af00 51ff 51ff 2300 0000 97ff", "03 02 00")
    reader, _ = make_reader(port)
    for _ in range(3):
        reader.step()
    assert reader.state.axes == pytest.approx([0.5, -0.5, 0.5, 0.0, -0.1, 0.3]) and reader.state.buttons == (0, 1)
    pro = FakePort(PRO)
    pro.plug()
    reader, _ = make_reader(pro)
    reader.step()
    assert reader.state.buttons == (0,) * 32


def test_a_deflection_not_refreshed_returns_to_rest():
    """A wireless puck out of range: its receiver stays plugged in, the reports stop."""
    now = [0.0]
    port = FakePort()
    port.plug(PUSHED_AWAY, LEFT_BUTTON)
    reader, _ = make_reader(port, deflection_timeout_s=0.25, clock=lambda: now[0])
    for _ in range(3):
        reader.step()
    now[0] = 0.25
    reader.step()  # silent, but not for longer than the timeout
    assert reader.state.axes[0] == 0.5
    now[0] = 0.3
    reader.step()
    assert reader.state.axes == REST and reader.state.buttons == (1, 0)  # buttons report only on change
    assert reader.stale_deflections == 1 and reader.connected


def test_malformed_reports_are_counted_by_the_reader():
    port = FakePort()
    port.plug("01 0000", PUSHED_AWAY)
    reader, _ = make_reader(port)
    for _ in range(3):
        reader.step()
    assert reader.state.malformed_reports == 1 and reader.state.axes[0] == 0.5


def test_reader_thread_reconnects_every_period():
    port = FakePort()
    device = port.plug(PUSHED_AWAY)
    reader, recorder = make_reader(port, reconnect_period_s=0.02, read_timeout_ms=5)

    def wait_until(condition, what):
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.005)

    reader.start()
    try:
        wait_until(lambda: reader.state.axes[0] == 0.5, "the deflection")
        port.unplug()
        wait_until(lambda: not reader.connected and reader.state.axes == REST, "rest after the unplug")
        wait_until(lambda: reader.open_failures >= 2, "two more tries to open")
        port.plug(PUSHED_AWAY, LEFT_BUTTON)
        wait_until(lambda: reader.state.buttons == (1, 0) and reader.state.axes[0] == 0.5, "values after replug")
    finally:
        reader.stop()
    assert device.closed and port.device.closed and not reader.connected
    assert reader.state.axes == REST  # stopped: at rest
    kinds = recorder.kinds()
    assert kinds[0] == CONNECTED and kinds[1] == DISCONNECTED and kinds[-1] == CONNECTED
    assert set(kinds[2:-1]) == {OPEN_FAILED}


def test_reader_thread_reports_an_unexpected_error_and_rests():
    def broken():
        raise SpaceMouseError("hidapi is missing")

    reader, recorder = make_reader(broken)
    with pytest.MonkeyPatch.context() as patch:  # the thread's exception is expected: keep it out of the report
        patch.setattr(threading, "excepthook", lambda args: None)
        reader.start()
        reader._thread.join(TIMEOUT)
    assert recorder.kinds() == [FAILED] and "hidapi is missing" in recorder.events[0][1]
    assert reader.state.axes == REST
    reader.stop()


def test_reader_refuses_bad_settings():
    with pytest.raises(ValueError, match="full_scale must be > 0, got 0"):
        SpaceMouseReader(FakePort(), full_scale=0)
    with pytest.raises(ValueError, match="reconnect_period_s must be > 0, got nan"):
        SpaceMouseReader(FakePort(), reconnect_period_s=float("nan"))


# opening through hidapi -----------------------------------------------------------------------------
def test_missing_hidapi_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "hid", None)  # `import hid` raises ImportError
    for call in (import_hid, open_hid_device, hid_opener):
        with pytest.raises(SpaceMouseError, match=r"pip install hidapi.*robot_rl\[hardware\]"):
            call()
    reader, _ = make_reader(open_hid_device)  # not an OSError: the reader does not retry it
    with pytest.raises(SpaceMouseError, match="hidapi"):
        reader.step()


class FakeHid:
    """What open_hid_device uses of hidapi's `hid` module."""

    def __init__(self, infos: list[dict], refuse: bool = False):
        self.infos, self.refuse, self.opened = infos, refuse, []

    def enumerate(self) -> list[dict]:
        return self.infos

    def device(self):
        def open_path(path: bytes) -> None:
            if self.refuse:
                raise OSError("open failed")
            self.opened.append(path)

        return SimpleNamespace(open_path=open_path, read=lambda size, timeout_ms: [], close=lambda: None)


def info(vendor_id: int, product_id: int, path: str, usage_page: int = 1, usage: int = 8) -> dict:
    return dict(vendor_id=vendor_id, product_id=product_id, path=path.encode(), usage_page=usage_page, usage=usage)


KEYBOARD = info(0x046D, 0xC31C, "/dev/hidraw0", usage=6)
COMPACT = [info(0x256F, 0xC635, "/dev/hidraw1", usage_page=0xFF00, usage=1), info(0x256F, 0xC635, "/dev/hidraw2")]
NAVIGATOR = info(0x046D, 0xC626, "/dev/hidraw3")


def test_open_takes_the_first_known_model_and_its_multi_axis_interface(monkeypatch):
    hid = FakeHid([KEYBOARD, *COMPACT, NAVIGATOR])
    monkeypatch.setitem(sys.modules, "hid", hid)
    device, model = open_hid_device()
    assert model.name == "SpaceMouse Compact" and hid.opened == [b"/dev/hidraw2"]
    assert device.read(64, 10) == []
    assert open_hid_device(0x046D, 0xC626)[1].name == "SpaceNavigator"
    assert open_hid_device(0, 0xC626)[1].name == "SpaceNavigator"
    assert open_hid_device(path="/dev/hidraw3")[1].name == "SpaceNavigator"
    assert hid_opener(product_id=0xC626)()[1].name == "SpaceNavigator"


def test_open_failures_are_os_errors_that_say_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "hid", FakeHid([KEYBOARD]))
    with pytest.raises(FileNotFoundError, match=r"no known SpaceMouse connected \(known models: SpaceNavigator 046d"):
        open_hid_device()
    with pytest.raises(FileNotFoundError, match="no 256f:c62e connected"):
        open_hid_device(0x256F, 0xC62E)
    with pytest.raises(OSError, match="/dev/hidraw0 is 046d:c31c, no known SpaceMouse"):
        open_hid_device(path="/dev/hidraw0")
    monkeypatch.setitem(sys.modules, "hid", FakeHid([NAVIGATOR], refuse=True))
    with pytest.raises(OSError, match="cannot open SpaceNavigator .* at /dev/hidraw3: open failed; .* udev rule"):
        open_hid_device()


def test_unknown_ids_fail_at_once(monkeypatch):
    monkeypatch.setitem(sys.modules, "hid", FakeHid([]))
    with pytest.raises(SpaceMouseError, match=r"product_id 0xc31c is no known SpaceMouse .* known: SpaceNavigator"):
        hid_opener(0x046D, 0xC31C)
    with pytest.raises(SpaceMouseError, match="no known SpaceMouse"):
        hid_opener(0x256F, 0xC626)  # a known product under the other vendor id
