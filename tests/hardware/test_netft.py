"""hardware/netft.py: the RDT byte layout, counts, sequence tracking, and the client against a
simulated sensor on loopback (netft_simulator.py) with injected loss, reordering, garbage and
silence."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from netft_simulator import NetFTSimulator

from hardware.netft import (
    CMD_SET_BIAS,
    CMD_START_STREAMING,
    CMD_STOP,
    NetFTClient,
    NetFTConfig,
    Record,
    Sample,
    SequenceTracker,
    Verdict,
    counts_to_wrench,
    decode_record,
    decode_request,
    encode_record,
    encode_request,
)
from robot_rl.sim.config import ConfigError

LOAD = [1.5, -2.0, 30.25, 0.125, -0.5, 0.75]  # N, Nm: exact in counts
TIMEOUT = 1.0  # s for a sample to arrive


# protocol ---------------------------------------------------------------------------------------
def test_request_byte_layout():
    assert encode_request(CMD_START_STREAMING) == bytes.fromhex("1234 0002 00000000")
    assert encode_request(CMD_STOP) == bytes.fromhex("1234 0000 00000000")
    assert encode_request(CMD_SET_BIAS) == bytes.fromhex("1234 0042 00000000")
    assert encode_request(CMD_START_STREAMING, 0x01020304) == bytes.fromhex("1234 0002 01020304")
    assert decode_request(encode_request(CMD_START_STREAMING, 10)) == (CMD_START_STREAMING, 10)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="0x0007 is not an RDT command"):
        encode_request(0x0007)
    with pytest.raises(ValueError, match="uint32"):
        encode_request(CMD_START_STREAMING, -1)
    with pytest.raises(ValueError, match="header is 0x4321"):
        decode_request(bytes.fromhex("4321 0002 00000000"))
    with pytest.raises(ValueError, match="8 bytes, got 9"):
        decode_request(bytes(9))


def test_record_byte_layout_and_round_trip():
    data = bytes.fromhex(
        "00000007"  # rdt_sequence
        "0000012c"  # ft_sequence 300
        "80000001"  # status
        "000f4240"  # Fx 1_000_000
        "fff0bdc0"  # Fy -1_000_000
        "00000000"  # Fz
        "7fffffff"  # Tx int32 max
        "80000000"  # Ty int32 min
        "ffffffff"  # Tz -1
    )
    record = decode_record(data)
    assert record == Record(7, 300, 0x80000001, (1_000_000, -1_000_000, 0, 2**31 - 1, -(2**31), -1))
    assert encode_record(record) == data


@pytest.mark.parametrize("size", [0, 35, 37, 72])
def test_a_record_of_the_wrong_length_is_refused(size):
    with pytest.raises(ValueError, match=f"36 bytes, got {size}"):
        decode_record(bytes(size))


def test_counts_to_newtons_and_newton_metres():
    wrench = counts_to_wrench([1_000_000, -250_000, 0, 3_000, -1_500, 1], counts_per_force=1e6, counts_per_torque=1e3)
    assert wrench.dtype == np.float64
    np.testing.assert_array_equal(wrench, [1.0, -0.25, 0.0, 3.0, -1.5, 0.001])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("host", "", "netft.host: must name the sensor"),
        ("port", 0, "netft.port: must be a UDP port"),
        ("port", 70000, "netft.port: must be a UDP port"),
        ("counts_per_force", 0, "netft.counts_per_force: must be > 0"),
        ("counts_per_torque", float("nan"), "netft.counts_per_torque: must be > 0"),
        ("sample_rate_hz", -1.0, "netft.sample_rate_hz: must be > 0"),
        ("restart_period_s", 0.0, "netft.restart_period_s: must be > 0"),
        ("silence_timeout_s", 0.001, "netft.silence_timeout_s: must be more than two sample periods"),
    ],
)
def test_config_validation_names_the_key(field, value, message):
    config = NetFTConfig(host="127.0.0.1")
    setattr(config, field, value)
    with pytest.raises(ConfigError, match=message):
        config.validate()


# sequence numbers -------------------------------------------------------------------------------
def record(sequence: int, status: int = 0) -> Record:
    return Record(sequence, sequence, status, (0,) * 6)


def check_all(tracker: SequenceTracker, sequences: list[int]) -> list[Verdict]:
    return [tracker.check(record(s)) for s in sequences]


def test_gaps_are_counted_lost():
    tracker = SequenceTracker()
    assert check_all(tracker, [5, 6, 9, 10, 20]) == [Verdict.ACCEPTED] * 5
    assert (tracker.accepted, tracker.lost) == (5, 2 + 9)


def test_duplicates_are_dropped():
    tracker = SequenceTracker()
    assert check_all(tracker, [1, 2, 2, 3, 1]) == [Verdict.ACCEPTED] * 2 + [Verdict.DUPLICATE, Verdict.ACCEPTED] + [
        Verdict.DUPLICATE
    ]
    assert (tracker.accepted, tracker.duplicates, tracker.lost) == (3, 2, 0)


def test_a_late_record_is_dropped_and_not_lost():
    tracker = SequenceTracker()
    verdicts = check_all(tracker, [1, 3, 2, 4, 2])  # 2 arrives after 3 (late), then again (a duplicate)
    assert verdicts == [Verdict.ACCEPTED] * 2 + [Verdict.OUT_OF_ORDER, Verdict.ACCEPTED, Verdict.DUPLICATE]
    assert (tracker.accepted, tracker.lost, tracker.out_of_order, tracker.duplicates) == (3, 0, 1, 1)


def test_sequence_numbers_wrap_around():
    tracker = SequenceTracker()
    top = 2**32 - 1
    assert check_all(tracker, [top - 1, top, 0, 1]) == [Verdict.ACCEPTED] * 4
    assert tracker.lost == 0
    assert check_all(tracker, [top, 4]) == [Verdict.DUPLICATE, Verdict.ACCEPTED]  # top is behind 1
    assert tracker.lost == 2
    wrapped = SequenceTracker()
    assert check_all(wrapped, [top - 1, 1, 0]) == [Verdict.ACCEPTED, Verdict.ACCEPTED, Verdict.OUT_OF_ORDER]
    assert (wrapped.lost, wrapped.out_of_order) == (1, 1)  # top was lost, 0 came late


def test_nonzero_status_words_are_counted():
    tracker = SequenceTracker()
    tracker.check(record(1))
    tracker.check(record(2, status=0x00010000))
    tracker.check(record(2, status=0x00020000))  # a duplicate: not counted again
    tracker.check(record(3, status=0x80000000))
    assert (tracker.status_errors, tracker.last_error_status) == (2, 0x80000000)


def test_a_new_stream_starts_afresh_and_keeps_the_counters():
    tracker = SequenceTracker()
    check_all(tracker, [100, 102])
    tracker.reset()
    assert check_all(tracker, [1, 2]) == [Verdict.ACCEPTED] * 2
    assert (tracker.accepted, tracker.lost) == (4, 1)


# the client against the simulated sensor ---------------------------------------------------------
@pytest.fixture
def sensor():
    simulator = NetFTSimulator(rate_hz=500.0, counts_per_force=1_000_000, counts_per_torque=1_000_000)
    yield simulator
    simulator.close()


@pytest.fixture
def connect(sensor):
    clients = []

    def connect(**config) -> NetFTClient:
        client = NetFTClient(NetFTConfig(host="127.0.0.1", port=sensor.port, sample_rate_hz=sensor.rate_hz, **config))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def receive(client: NetFTClient) -> Sample:
    sample = client.receive(TIMEOUT)
    assert sample is not None, f"no sample in {TIMEOUT} s ({client.counters()})"
    return sample


def receive_until(client: NetFTClient, done: Callable[[Sample], bool], what: str) -> list[Sample]:
    """The samples up to the first one that is `done`, which must come within TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    samples = [receive(client)]
    while not done(samples[-1]):
        assert time.monotonic() < deadline, f"no {what} in {TIMEOUT} s (last: {samples[-1]})"
        samples.append(receive(client))
    return samples


def up_to(rdt_sequence: int) -> Callable[[Sample], bool]:
    return lambda sample: sample.rdt_sequence >= rdt_sequence


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_samples_are_the_load_in_newtons(sensor, connect):
    sensor.set_load(LOAD)
    client = connect()
    before = time.time_ns()
    client.start()
    samples = receive_until(client, up_to(10), "record 10")
    assert before <= samples[0].stamp_ns <= time.time_ns()
    assert [s.rdt_sequence for s in samples] == list(range(1, 11))
    for sample in samples:
        np.testing.assert_array_equal(sample.wrench, LOAD)
        assert sample.status == 0
    zero = {"lost": 0, "duplicate": 0, "out_of_order": 0, "garbage": 0, "status_errors": 0}
    assert client.counters() == {"received": 10, **zero}
    client.stop()
    wait_until(lambda: sensor.commands == [CMD_START_STREAMING, CMD_STOP], "start, then stop at the sensor")
    assert not sensor.streaming


def test_the_calibration_scales_counts(sensor, connect):
    sensor.set_load_counts([1000, 2000, -3000, 40, 50, -60])
    client = connect(counts_per_force=100.0, counts_per_torque=10.0)
    client.start()
    np.testing.assert_array_equal(receive(client).wrench, [10.0, 20.0, -30.0, 4.0, 5.0, -6.0])


def test_dropped_packets_are_counted_exactly(sensor, connect):
    sensor.drop([3, 10, 11, 12, 25])
    client = connect()
    client.start()
    samples = receive_until(client, up_to(30), "record 30")
    assert [s.rdt_sequence for s in samples] == [n for n in range(1, 31) if n not in (3, 10, 11, 12, 25)]
    assert (client.counters()["lost"], client.counters()["received"]) == (5, 25)


def test_reordered_packets_are_dropped_and_counted(sensor, connect):
    sensor.swap([5, 12])
    client = connect()
    client.start()
    samples = receive_until(client, up_to(20), "record 20")
    assert [s.rdt_sequence for s in samples] == [n for n in range(1, 21) if n not in (5, 12)]
    counters = client.counters()
    assert (counters["out_of_order"], counters["lost"], counters["duplicate"]) == (2, 0, 0)  # they came, late


def test_garbage_is_counted_and_skipped(sensor, connect):
    sensor.set_load(LOAD)
    client = connect()
    client.start()
    first = receive(client).rdt_sequence
    sensor.send_garbage([b"", b"\x00" * 35, b"\x12" * 37, bytes(72), b"not a record"])
    samples = receive_until(client, up_to(first + 10), "records after the garbage")
    assert [s.rdt_sequence for s in samples] == list(range(first + 1, first + 11))
    assert all(np.array_equal(s.wrench, LOAD) for s in samples)
    assert (client.counters()["garbage"], client.counters()["lost"]) == (5, 0)


def test_a_nonzero_status_word_is_reported(sensor, connect):
    client = connect()
    client.start()
    receive(client)
    sensor.set_status(0x80000002)
    flagged = receive_until(client, lambda s: s.status != 0, "a record with a status")[-1]
    assert flagged.status == 0x80000002
    assert client.counters()["status_errors"] >= 1
    assert client.tracker.last_error_status == 0x80000002


def test_tare_zeroes_the_reading(sensor, connect):
    sensor.set_load(LOAD)
    client = connect()
    client.start()
    np.testing.assert_array_equal(receive(client).wrench, LOAD)
    client.tare()
    receive_until(client, lambda s: not s.wrench.any(), "a zero reading after the tare")
    sensor.set_load([x + 1.0 for x in LOAD])
    samples = receive_until(client, lambda s: np.array_equal(s.wrench, np.ones(6)), "the added load")
    assert not any(s.wrench.any() for s in samples[:-1])  # zero until the new load was on


def test_a_silent_sensor_is_noticed_and_restarted(sensor, connect):
    sensor.set_load(LOAD)
    client = connect(silence_timeout_s=0.2, restart_period_s=0.1)
    client.start()
    receive_until(client, up_to(5), "record 5")
    assert client.restart_if_silent() is None  # data is flowing
    sensor.go_silent()
    while client.receive(0.05) is not None:  # the records on their way when it went silent
        pass
    restarts = []  # starts that the rebooting sensor does not hear
    deadline = time.monotonic() + TIMEOUT
    while len(restarts) < 2:
        assert time.monotonic() < deadline, "no restart while silent"
        assert client.receive(0.02) is None
        if (silent := client.restart_if_silent()) is not None:
            restarts.append(silent)
    assert restarts[0] >= 0.2 and restarts[1] >= restarts[0] + 0.1
    wait_until(lambda: sensor.unheard == 2, "both starts at the silent sensor")
    sensor.resume()
    deadline = time.monotonic() + TIMEOUT
    while (sample := client.receive(0.02)) is None:
        assert time.monotonic() < deadline, f"streaming did not resume ({client.counters()})"
        client.restart_if_silent()
    assert sample.rdt_sequence <= 2  # a new stream, accepted from its start
    np.testing.assert_array_equal(sample.wrench, LOAD)
    assert client.silent_for() < 0.1
    assert client.counters()["lost"] == 0
