"""ATI Net F/T force-torque sensors over UDP: the RDT ("Raw Data Transfer") protocol and a client.
No rclpy here: ros_nodes-style wrapping is hardware/netft_node.py.

The protocol (ATI's Net F/T manual, "RDT interface"; all fields big-endian)
  request  8 bytes, sent to the sensor's UDP port 49152:
           uint16 header 0x1234, uint16 command, uint32 sample_count
           commands: 0x0000 stop streaming, 0x0002 start high-speed real-time streaming
           (sample_count records, 0 = until stopped), 0x0042 set software bias (tare: the
           sensor subtracts the current load from every later record)
  record   36 bytes, one per datagram in high-speed streaming, sent to the requester's address:
           uint32 rdt_sequence (position in this stream, restarts with each start command),
           uint32 ft_sequence (the sensor's internal sample counter), uint32 status (0 = healthy;
           any other bit is an error or saturation flag), int32 Fx Fy Fz Tx Ty Tz in counts
           (N = counts / counts_per_force, Nm = counts / counts_per_torque, the calibration the
           sensor's web page shows)

UDP loses, duplicates and reorders datagrams. SequenceTracker decides per record whether it is
news (accepted) or to be dropped (a duplicate, or older than one already passed on: samples leave
in time order), counts the sequence numbers that never came (lost), with uint32 wraparound, and
counts records whose status word is not 0. NetFTClient reads the socket: garbage (a datagram that
is not 36 bytes) is counted and skipped, and a sensor that went silent (rebooted, cable pulled,
stopped by another client) is asked to start again every restart_period_s (restart_if_silent).
"""

from __future__ import annotations

import collections
import math
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from robot_rl.sim.config import ConfigError

DEFAULT_PORT = 49152
REQUEST_HEADER = 0x1234
CMD_STOP = 0x0000
CMD_START_STREAMING = 0x0002  # high-speed real-time: one record per datagram
CMD_SET_BIAS = 0x0042
COMMANDS = (CMD_STOP, CMD_START_STREAMING, CMD_SET_BIAS)
REQUEST = struct.Struct(">HHI")
RECORD = struct.Struct(">III6i")
SEQUENCE_MODULUS = 1 << 32
# Missing sequence numbers remembered, so a late arrival is told from a duplicate (and un-lost).
MISSING_REMEMBERED = 4096
RECEIVE_BUFFER_S = 1.0  # socket buffer for this much of the stream, for when the reader is descheduled
# what one small datagram costs of a socket's buffer: the kernel counts its bookkeeping (and caps
# the buffer at net.core.rmem_max)
BUFFER_BYTES_PER_DATAGRAM = 1024
MAX_DATAGRAM = 65536  # larger than any UDP payload: an oversized datagram is seen whole, as garbage


# Encoding ---------------------------------------------------------------------------------------
def encode_request(command: int, sample_count: int = 0) -> bytes:
    if command not in COMMANDS:
        raise ValueError(
            f"command 0x{command:04x} is not an RDT command; valid: {', '.join(f'0x{c:04x}' for c in COMMANDS)}"
        )
    if not 0 <= sample_count < SEQUENCE_MODULUS:
        raise ValueError(f"sample_count must be a uint32 (0 = infinite), got {sample_count}")
    return REQUEST.pack(REQUEST_HEADER, command, sample_count)


def decode_request(data: bytes) -> tuple[int, int]:
    """(command, sample_count) of an RDT request, as a sensor reads it."""
    if len(data) != REQUEST.size:
        raise ValueError(f"an RDT request is {REQUEST.size} bytes, got {len(data)}")
    header, command, sample_count = REQUEST.unpack(data)
    if header != REQUEST_HEADER:
        raise ValueError(f"RDT request header is 0x{header:04x}, expected 0x{REQUEST_HEADER:04x}")
    return command, sample_count


@dataclass(frozen=True)
class Record:
    rdt_sequence: int
    ft_sequence: int
    status: int
    counts: tuple[int, ...]  # Fx Fy Fz Tx Ty Tz


def decode_record(data: bytes) -> Record:
    if len(data) != RECORD.size:
        raise ValueError(f"an RDT record is {RECORD.size} bytes, got {len(data)}")
    rdt_sequence, ft_sequence, status, *counts = RECORD.unpack(data)
    return Record(rdt_sequence, ft_sequence, status, tuple(counts))


def encode_record(record: Record) -> bytes:
    """The datagram a sensor sends (struct.error for a field out of its uint32 / int32 range)."""
    return RECORD.pack(record.rdt_sequence, record.ft_sequence, record.status, *record.counts)


def counts_to_wrench(counts: Sequence[int], counts_per_force: float, counts_per_torque: float) -> np.ndarray:
    """[Fx Fy Fz Tx Ty Tz] counts -> float64[6] in N and Nm."""
    scale = np.array([counts_per_force] * 3 + [counts_per_torque] * 3, dtype=np.float64)
    return np.asarray(counts, dtype=np.float64) / scale


def wrench_to_counts(wrench: Sequence[float], counts_per_force: float, counts_per_torque: float) -> tuple[int, ...]:
    """float64[6] in N and Nm -> the nearest counts, as a sensor reports them."""
    scale = np.array([counts_per_force] * 3 + [counts_per_torque] * 3, dtype=np.float64)
    return tuple(int(c) for c in np.rint(np.asarray(wrench, dtype=np.float64) * scale))


# Configuration ----------------------------------------------------------------------------------
@dataclass
class NetFTConfig:
    host: str  # the sensor's address (ATI's factory default: 192.168.1.1)
    port: int = DEFAULT_PORT
    counts_per_force: float = 1_000_000.0  # the sensor's calibration (its web page, "Counts per Force")
    counts_per_torque: float = 1_000_000.0
    sample_rate_hz: float = 1000.0  # the rate the sensor is set to stream at
    silence_timeout_s: float = 0.5  # no record this long: the sensor is silent
    restart_period_s: float = 1.0  # while silent, the start command is sent again this often

    def validate(self, key: str = "netft") -> NetFTConfig:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"{key}.host: must name the sensor (an IP address or host name), got {self.host!r}")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"{key}.port: must be a UDP port in 1..65535, got {self.port!r}")
        for name in ("counts_per_force", "counts_per_torque", "sample_rate_hz", "restart_period_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key}.{name}: must be > 0, got {value!r}")
        period = 1.0 / self.sample_rate_hz
        if not (math.isfinite(self.silence_timeout_s) and self.silence_timeout_s > 2 * period):
            raise ConfigError(
                f"{key}.silence_timeout_s: must be more than two sample periods (2 / sample_rate_hz = "
                f"{2 * period:g} s), else the gap between two samples reads as silence; got {self.silence_timeout_s!r}"
            )
        return self


# Sequence numbers -------------------------------------------------------------------------------
class Verdict(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # its sequence number was passed on already (or is too old to tell)
    OUT_OF_ORDER = "out_of_order"  # a record counted lost came after all: too late, after newer ones


class SequenceTracker:
    """Passes on the records of one stream in rdt_sequence order. Serial number arithmetic (RFC 1982):
    a record is newer than the newest so far when it is less than 2^31 ahead modulo 2^32, so the
    count wraps from 0xFFFFFFFF to 0 without a hitch."""

    def __init__(self):
        self.accepted = 0
        self.lost = 0  # sequence numbers skipped and not (yet) seen
        self.duplicates = 0
        self.out_of_order = 0
        self.status_errors = 0  # accepted records with a non-zero status word
        self.last_error_status = 0
        self.reset()

    def reset(self) -> None:
        """A new stream (a start command was sent): its sequence numbers start afresh. Counters stay."""
        self.newest: int | None = None
        self._missing: collections.deque[int] = collections.deque(maxlen=MISSING_REMEMBERED)

    def check(self, record: Record) -> Verdict:
        if self.newest is not None:
            ahead = (record.rdt_sequence - self.newest) % SEQUENCE_MODULUS
            if ahead == 0:
                self.duplicates += 1
                return Verdict.DUPLICATE
            if ahead >= SEQUENCE_MODULUS // 2:  # behind the newest
                if record.rdt_sequence in self._missing:
                    self._missing.remove(record.rdt_sequence)
                    self.lost -= 1
                    self.out_of_order += 1
                    return Verdict.OUT_OF_ORDER
                self.duplicates += 1
                return Verdict.DUPLICATE
            self.lost += ahead - 1
            first_remembered = max(1, ahead - MISSING_REMEMBERED)
            self._missing.extend((self.newest + k) % SEQUENCE_MODULUS for k in range(first_remembered, ahead))
        self.newest = record.rdt_sequence
        self.accepted += 1
        if record.status != 0:
            self.status_errors += 1
            self.last_error_status = record.status
        return Verdict.ACCEPTED


# Client -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    stamp_ns: int  # when it was received, on the client's clock
    wrench: np.ndarray  # float64[6]: Fx Fy Fz (N) Tx Ty Tz (Nm), in the sensor's frame
    rdt_sequence: int
    ft_sequence: int
    status: int  # 0 = healthy; otherwise the sensor's error / saturation flags


class NetFTClient:
    """One sensor over a connected UDP socket (which takes datagrams from the sensor's address
    only). `clock` stamps samples on receipt, in ns (e.g. a ROS node's clock); silence is measured
    on the monotonic clock. receive(), start() and restart_if_silent() belong to one thread (start
    empties the socket's queue); stop() and tare() may come from another."""

    def __init__(self, config: NetFTConfig, clock: Callable[[], int] = time.time_ns):
        self.config = config.validate()
        self.clock = clock
        self.tracker = SequenceTracker()
        self.garbage = 0  # datagrams that are not one record
        self._last_data = time.monotonic()  # of the last accepted record (or of the client's creation)
        self._last_start = -math.inf
        self._buffer = bytearray(MAX_DATAGRAM)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            wanted = int(RECEIVE_BUFFER_S * config.sample_rate_hz * BUFFER_BYTES_PER_DATAGRAM)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, max(wanted, 1 << 16))
            self._socket.connect((config.host, config.port))
        except OSError:
            self._socket.close()
            raise

    # commands ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Ask for an endless high-speed stream. Records still queued from an earlier stream are
        discarded: the new one numbers its records from the start again."""
        self._last_start = time.monotonic()
        self._discard_queued()
        self.tracker.reset()
        self._socket.send(encode_request(CMD_START_STREAMING))

    def stop(self) -> None:
        self._socket.send(encode_request(CMD_STOP))

    def tare(self) -> None:
        """The sensor's software bias: from the next record on, the current load reads zero."""
        self._socket.send(encode_request(CMD_SET_BIAS))

    def restart_if_silent(self) -> float | None:
        """Sends start again when nothing came for silence_timeout_s, at most every restart_period_s;
        returns how long the sensor has been silent when it did, else None."""
        silent = self.silent_for()
        if silent < self.config.silence_timeout_s:
            return None
        if time.monotonic() - self._last_start < self.config.restart_period_s:
            return None
        self.start()
        return silent

    # data -------------------------------------------------------------------------------------------
    def receive(self, timeout: float) -> Sample | None:
        """The next accepted sample, or None after `timeout` seconds without one. Never raises for
        what the network brings: garbage, duplicates and late records are counted and skipped."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self._socket.settimeout(remaining)
            try:
                size = self._socket.recv_into(self._buffer)
            except TimeoutError:
                return None
            except ConnectionRefusedError:  # an ICMP "port unreachable" from a sensor that is down
                continue
            stamp_ns = self.clock()
            if size != RECORD.size:
                self.garbage += 1
                continue
            record = decode_record(bytes(self._buffer[:size]))
            if self.tracker.check(record) is not Verdict.ACCEPTED:
                continue
            self._last_data = time.monotonic()
            wrench = counts_to_wrench(record.counts, self.config.counts_per_force, self.config.counts_per_torque)
            return Sample(stamp_ns, wrench, record.rdt_sequence, record.ft_sequence, record.status)
        return None

    def silent_for(self) -> float:
        """Seconds since the last accepted record (or since the client was made, before the first)."""
        return time.monotonic() - self._last_data

    def counters(self) -> dict[str, int]:
        t = self.tracker
        return {
            "received": t.accepted,
            "lost": t.lost,
            "duplicate": t.duplicates,
            "out_of_order": t.out_of_order,
            "garbage": self.garbage,
            "status_errors": t.status_errors,
        }

    def _discard_queued(self) -> None:
        self._socket.setblocking(False)
        while True:
            try:
                self._socket.recv_into(self._buffer)
            except BlockingIOError:
                break
            except ConnectionRefusedError:  # a stale ICMP error: there may be more behind it
                continue
        self._socket.setblocking(True)

    def close(self) -> None:
        self._socket.close()
