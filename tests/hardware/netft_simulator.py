"""A simulated ATI Net F/T sensor for tests: a UDP server on 127.0.0.1 (an ephemeral port) in a
thread, answering RDT requests as the real one does (hardware/netft.py has the protocol):

- start (0x0002): streams one 36-byte record per datagram at `rate_hz` to the requester's address,
  rdt_sequence from 1 in each new stream, ft_sequence counting on across streams; sample_count
  records, or until stopped when 0. A start from another address moves the stream there.
- stop (0x0000): stops streaming.
- bias (0x0042): later records read the load minus the load at that moment (so ~0 at once).
A datagram that is not a valid request is ignored, as the sensor does.

Faults, for the tests of a client: `drop` (those rdt_sequence numbers are never sent: packet
loss), `swap` (record n goes out after n + 1: reordering), `send_garbage` (datagrams that are no
record, before the next one), `go_silent` (a rebooting sensor or a pulled cable: nothing goes out
and requests go unheard) and `resume` (the sensor is back, and streams again once asked), and
`status` (the status word of every record from now on).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterable, Sequence

from hardware.netft import (
    CMD_SET_BIAS,
    CMD_START_STREAMING,
    CMD_STOP,
    Record,
    decode_request,
    encode_record,
    wrench_to_counts,
)

POLL_S = 0.02  # the longest the thread waits before it notices close()
MAX_BEHIND_S = 0.1  # a thread this late skips the records it missed instead of bursting them


class NetFTSimulator:
    def __init__(
        self, rate_hz: float = 500.0, counts_per_force: float = 1_000_000, counts_per_torque: float = 1_000_000
    ):
        self.rate_hz = rate_hz
        self.counts_per_force = counts_per_force
        self.counts_per_torque = counts_per_torque
        self.commands: list[int] = []  # the requests it answered, in order
        self.unheard = 0  # requests that came while silent
        self._lock = threading.Lock()
        self._load = (0,) * 6  # counts
        self._bias = (0,) * 6
        self._status = 0
        self._drop: set[int] = set()
        self._swap: set[int] = set()
        self._held: bytes | None = None  # a record waiting for its successor (swap)
        self._garbage: list[bytes] = []
        self._silent = False
        self._target: tuple[str, int] | None = None  # streaming to; None: not streaming
        self._remaining = 0  # records left in a finite stream; 0: endless
        self._rdt = 0
        self._ft = 0
        self._next_send = 0.0
        self._closed = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._socket.getsockname()
        self._thread = threading.Thread(target=self._run, name="netft_simulator", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.address[1]

    # the load and the faults -------------------------------------------------------------------------
    def set_load(self, wrench: Sequence[float]) -> None:
        """[Fx Fy Fz Tx Ty Tz] in N and Nm, through the sensor's calibration."""
        self.set_load_counts(wrench_to_counts(wrench, self.counts_per_force, self.counts_per_torque))

    def set_load_counts(self, counts: Sequence[int]) -> None:
        if len(counts) != 6:
            raise ValueError(f"a load is 6 counts (Fx Fy Fz Tx Ty Tz), got {len(counts)}")
        with self._lock:
            self._load = tuple(int(c) for c in counts)

    def set_status(self, status: int) -> None:
        with self._lock:
            self._status = status

    def drop(self, sequences: Iterable[int]) -> None:
        with self._lock:
            self._drop.update(sequences)

    def swap(self, sequences: Iterable[int]) -> None:
        """Each record n of `sequences` goes out right after record n + 1."""
        with self._lock:
            self._swap.update(sequences)

    def send_garbage(self, datagrams: Iterable[bytes]) -> None:
        """Sent to the stream's address before the next record."""
        with self._lock:
            self._garbage.extend(datagrams)

    def go_silent(self) -> None:
        """Stop streaming and ignore requests: the sensor reboots."""
        with self._lock:
            self._silent = True
            self._target = None
            self._held = None

    def resume(self) -> None:
        """Answer requests again (a rebooted sensor: it streams once asked)."""
        with self._lock:
            self._silent = False

    @property
    def streaming(self) -> bool:
        return self._target is not None

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._socket.close()

    # the sensor --------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed.is_set():
            wait = POLL_S if self._target is None else min(POLL_S, max(0.0, self._next_send - time.monotonic()))
            readable, _, _ = select.select([self._socket], [], [], wait)
            with self._lock:
                if readable:
                    self._on_request(*self._socket.recvfrom(64))
                self._stream_due()

    def _on_request(self, data: bytes, sender: tuple[str, int]) -> None:
        if self._silent:
            self.unheard += 1
            return
        try:
            command, sample_count = decode_request(data)
        except ValueError:
            return
        if command == CMD_START_STREAMING:
            self._target, self._remaining, self._rdt = sender, sample_count, 0
            self._held = None
            self._next_send = time.monotonic()
        elif command == CMD_STOP:
            self._target = None
        elif command == CMD_SET_BIAS:
            self._bias = self._load
        else:
            return
        self.commands.append(command)

    def _stream_due(self) -> None:
        now = time.monotonic()
        if now - self._next_send > MAX_BEHIND_S:
            self._next_send = now
        while self._target is not None and self._next_send <= now:
            self._next_send += 1.0 / self.rate_hz
            self._send_record()
            if self._remaining:
                self._remaining -= 1
                if self._remaining == 0:
                    self._target = None

    def _send_record(self) -> None:
        self._rdt, self._ft = (self._rdt + 1) % (1 << 32), (self._ft + 1) % (1 << 32)
        counts = tuple(load - bias for load, bias in zip(self._load, self._bias, strict=True))
        datagram = encode_record(Record(self._rdt, self._ft, self._status, counts))
        for garbage in self._garbage:
            self._send(garbage)
        self._garbage.clear()
        if self._rdt in self._drop:
            return
        if self._rdt in self._swap:
            self._held = datagram
            return
        self._send(datagram)
        if self._held is not None:
            self._send(self._held)
            self._held = None

    def _send(self, datagram: bytes) -> None:
        self._socket.sendto(datagram, self._target)
