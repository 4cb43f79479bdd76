"""What the scenario_*.py tests' client nodes share: a test drives the node under test from a client
node spinning on an executor thread, and waits on what arrives instead of sleeping.

ClientNode keeps what its subscriptions receive in lists under one Condition, `changed`, that every
arrival notifies; `wait_for` waits on it for a state of those lists, with a deadline that fails the
test saying what never came. It can also collect the log lines one node writes to /rosout.
Imported as `from client import ClientNode`: pytest puts this folder (it has no __init__.py) on
sys.path for the scenarios it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from rcl_interfaces.msg import Log
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

TIMEOUT = 10.0  # s for anything to arrive
# as the rosout publishers offer: a log line written before the client matched still arrives
ROSOUT_LATCHED = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)

T = TypeVar("T")


def wait_until(condition: Callable[[], object], failure: str, timeout: float = TIMEOUT, poll_s: float = 0.01) -> None:
    """Polls condition() every `poll_s` until it holds, for state nothing notifies about (matching
    publishers, a file being written); fails with `failure` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(poll_s)


class ClientNode(Node):
    """A node whose callbacks append to lists with `add`. With `log_of`, it also keeps the /rosout
    lines of the node of that name (in any namespace) in `log`, and their levels in `log_levels`:
    by default those written once this node has matched, with `log_qos` ROSOUT_LATCHED the earlier
    ones too."""

    def __init__(self, name: str, log_of: str | None = None, log_qos: QoSProfile | int = 100):
        super().__init__(name)
        self.changed = threading.Condition()
        self.log_of = log_of
        self.log: list[str] = []
        self.log_levels: list[int] = []
        if log_of is not None:
            self.create_subscription(Log, "/rosout", self._on_log, log_qos)

    def add(self, into: list, value) -> None:
        with self.changed:
            into.append(value)
            self.changed.notify_all()

    def _on_log(self, msg: Log) -> None:
        # a node's logger is named after it, prefixed with its namespace: cameras.front.uvc_camera
        if msg.name == self.log_of or msg.name.endswith(f".{self.log_of}"):
            with self.changed:
                self.log.append(msg.msg)
                self.log_levels.append(msg.level)
                self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
        """predicate()'s first truthy value; re-checked on every notification and every 20 ms (a
        service future, or another node's counter, changes without notifying `changed`)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not (value := predicate()):
                if time.monotonic() > deadline:
                    log = f"; {self.log_of} log: {self.log[-10:]}" if self.log_of is not None else ""
                    pytest.fail(f"timed out after {timeout} s waiting for {what}{log}")
                self.changed.wait(0.02)
            return value

    def wait_log(self, text: str, count: int = 1, level: int | None = None, timeout: float = TIMEOUT) -> list[str]:
        """The log lines containing `text` (at `level`, when given), once there are `count` of them."""

        def lines() -> list[str] | None:
            found = [
                line
                for line, line_level in zip(self.log, self.log_levels, strict=True)
                if text in line and level in (None, line_level)
            ]
            return found if len(found) >= count else None

        at_level = f" at level {level}" if level is not None else ""
        return self.wait_for(lines, f"{count} log line(s) with {text!r}{at_level}", timeout)
