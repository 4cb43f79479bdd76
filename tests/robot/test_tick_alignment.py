"""TickAligner: moves the control tick to just after the cameras' frames are ready, whatever the
phase camera and tick started in, and only ever earlier."""

import numpy as np
import pytest

from robot_rl.robot.tick_alignment import TickAligner, TickAlignmentConfig, frame_period_ns
from robot_rl.sim.config import ConfigError

MS = 1_000_000
TICK = 100 * MS
FRAME = 100 * MS / 3  # 30 Hz
MARGIN, SLACK = TickAlignmentConfig.margin_ms, TickAlignmentConfig.slack_ms


def run(aligner, seconds, first_tick_ns, frame_delays_ns, cameras=("front",), frame_period_ns=FRAME):
    """Frames stamped every frame_period_ns (30 Hz) become ready after a delay (frame_delays_ns(i, k):
    frame i of camera k); ticks every 100 ms from first_tick_ns, moved as the aligner asks. Returns
    each tick's age of the newest ready frame per camera [ms] and the intervals between ticks [ms]."""
    events = []
    for i in range(int(seconds * 1e9 / frame_period_ns)):
        for k, cam in enumerate(cameras):
            stamp = i * frame_period_ns
            events.append((stamp + frame_delays_ns(i, k), "frame", cam, stamp))
    events.sort()
    newest_stamp: dict[str, float] = {}
    ages, intervals = [], []
    tick, last_tick, e = first_tick_ns, None, 0
    while tick < seconds * 1e9 - TICK:
        while e < len(events) and events[e][0] <= tick:
            t, _, cam, stamp = events[e]
            aligner.frame_ready(cam, int(stamp), int(t))
            newest_stamp[cam] = stamp
            e += 1
        ages.append([(tick - newest_stamp[cam]) / MS for cam in cameras] if len(newest_stamp) == len(cameras) else None)
        if last_tick is not None:
            intervals.append((tick - last_tick) / MS)
        last_tick = tick
        tick = tick + TICK - aligner.after_tick(int(tick), int(tick + TICK))
    return [a for a in ages if a is not None], intervals


@pytest.mark.parametrize("phase_ms", [0.0, 0.5, 10.0, 17.0, 25.0, 32.9])
def test_whatever_the_start_phase_frames_are_fresh_after_alignment(phase_ms):
    delay = 16 * MS
    aligner = TickAligner(TickAlignmentConfig(), ["front"], TICK)
    ages, intervals = run(aligner, 30.0, 1e9 + phase_ms * MS, lambda i, k: delay)
    settled = np.array(ages[-200:])  # after the first decisions (2 s windows)
    # ready at the delay, the tick margin..margin+slack later
    assert 16 + MARGIN - 1e-6 <= settled.min() and settled.max() <= 16 + MARGIN + SLACK + 1e-6
    assert aligner.shifts <= 1
    # only ever earlier: no interval longer than a period (a late tick)
    assert max(intervals) <= 100 + 1e-6 and min(intervals) > 100 - 100 / 3


def test_jittered_frames_ready_around_the_tick_are_moved_ahead_of_it():
    """The bench's case: frames ready about when the tick comes, some of them just after it (the
    previous frame, 33 ms older, goes out): the tick moves to after the previous frame."""
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-2 * MS, 2 * MS, 10_000)
    aligner = TickAligner(TickAlignmentConfig(), ["front", "wrist"], TICK)
    # the tick at 1.016 s: the wrist frame (1 ms after the front's) is ready at 16-19 ms
    ages, _ = run(aligner, 30.0, 1e9 + 17 * MS, lambda i, k: 16 * MS + k * MS + jitter[i], cameras=("front", "wrist"))
    before, settled = np.array(ages[:15]).max(axis=1), np.array(ages[-200:]).max(axis=1)
    assert before.max() > 40  # the previous frame at some ticks
    assert aligner.shifts >= 1
    assert settled.max() <= 16 + 1 + 2 + MARGIN + SLACK  # delay + wrist offset + jitter + margin + slack


def test_frames_with_widely_varying_delays_settle_the_tick_after_the_slowest():
    # ready 14-24 ms after their stamps, at random: the tick settles after the slowest of them, and
    # every frame is in time for its tick (a tick chasing each frame's delay would miss some)
    delays = np.random.default_rng(1).uniform(14 * MS, 24 * MS, 10_000)
    aligner = TickAligner(TickAlignmentConfig(), ["front"], TICK)
    ages, intervals = run(aligner, 60.0, 1e9 + 3 * MS, lambda i, k: delays[i])
    settled = np.array(ages[50:])
    assert settled.max() <= 24 + MARGIN + SLACK
    assert aligner.shifts <= 5 and max(intervals) <= 100 + 1e-6


def test_a_camera_clock_drifting_against_the_tick_is_followed():
    # a camera whose clock runs 200 ppm slow against this machine's: 6.7 us later every frame, its
    # frames' phase against the tick sweeps the 33 ms in 170 s
    aligner = TickAligner(TickAlignmentConfig(), ["front"], TICK)
    ages, intervals = run(aligner, 300.0, 1e9, lambda i, k: 16 * MS, frame_period_ns=FRAME * (1 + 2e-4))
    late = np.array(ages[100:])
    assert 16 + MARGIN - 1e-6 <= late.min() and late.max() <= 16 + MARGIN + SLACK + 1e-6
    assert aligner.shifts >= 2
    assert max(intervals) <= 100 + 1e-6


def test_a_stopped_camera_suspends_alignment():
    aligner = TickAligner(TickAlignmentConfig(), ["front"], TICK)
    for i in range(20):
        aligner.frame_ready("front", int(i * FRAME), int(i * FRAME + 16 * MS))
    t = 20 * FRAME + 2 * TICK + 10 * MS  # frames stopped 210 ms ago
    assert [aligner.after_tick(int(t + k * TICK), int(t + (k + 1) * TICK)) for k in range(40)] == [0] * 40
    assert aligner.shifts == 0


def test_disabled_or_no_cameras_never_moves_the_tick():
    disabled = TickAligner(TickAlignmentConfig(enabled=False), ["front"], TICK)
    _, intervals = run(disabled, 5.0, 1e9 + 30 * MS, lambda i, k: 16 * MS)
    assert disabled.shifts == 0 and set(intervals) == {100.0}
    no_cameras = TickAligner(TickAlignmentConfig(), [], TICK)
    assert [no_cameras.after_tick(k * TICK, (k + 1) * TICK) for k in range(50)] == [0] * 50


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"margin_ms": 0.0}, "margin_ms"),
        ({"slack_ms": float("nan")}, "slack_ms"),
        ({"max_frame_period_s": -0.1}, "max_frame_period_s"),
    ],
)
def test_bad_config_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=f"tick_alignment.{key}"):
        TickAligner(TickAlignmentConfig(**overrides), ["front"], TICK)


def test_the_frame_period_is_the_mean_interval_without_the_gaps():
    stamps = np.cumsum([0] + [33, 33, 34] * 10) * MS  # the twin's 30 Hz on its 1 ms physics grid
    assert frame_period_ns(stamps) == pytest.approx(100 / 3 * MS)
    dropped = np.delete(stamps, 7)  # one frame lost: a 67 ms gap
    assert frame_period_ns(dropped) == pytest.approx(100 / 3 * MS, rel=1e-3)
