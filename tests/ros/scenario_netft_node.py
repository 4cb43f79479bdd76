"""The Net F/T driver node (hardware/netft_node.py) reading a simulated sensor on 127.0.0.1
(tests/hardware/netft_simulator.py), beside a client node on one executor: the wrench stream's
values, frame and stamps, the tare service, the status line when the sensor goes silent and the
recovery once it is back, and the stop command on shutdown. Runs only inside a loopback-only
network namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from client import ROSOUT_LATCHED, TIMEOUT, ClientNode, wait_until
from geometry_msgs.msg import WrenchStamped
from rcl_interfaces.msg import Log
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hardware.netft import CMD_SET_BIAS, CMD_START_STREAMING, CMD_STOP
from hardware.netft_node import NetFTNode
from ros_nodes import convert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hardware"))
from netft_simulator import NetFTSimulator  # noqa: E402

LOAD = [1.5, -2.0, 30.25, 0.125, -0.5, 0.75]  # N, Nm: exact in counts


class Client(ClientNode):
    """The wrench's and the status' subscriber, the tare's caller, and the driver's log lines."""

    def __init__(self):
        super().__init__("netft_client", log_of="netft", log_qos=ROSOUT_LATCHED)
        self.wrenches: list[WrenchStamped] = []
        self.statuses: list[str] = []
        self.create_subscription(
            WrenchStamped, "ft_sensor/wrench", lambda m: self.add(self.wrenches, m), qos_profile_sensor_data
        )
        self.create_subscription(String, "ft_sensor/status", lambda m: self.add(self.statuses, m.data), 10)
        self.tare = self.create_client(Trigger, "ft_sensor/tare")

    def wait_wrench(self, expected, after: int) -> WrenchStamped:
        """The first wrench equal to `expected` among those received after index `after`."""
        return self.wait_for(
            lambda: next((m for m in self.wrenches[after:] if np.allclose(convert.wrench_to_array(m), expected)), None),
            f"the wrench {expected}",
        )

    def wait_status(self, text: str, after: int = 0) -> str:
        return self.wait_for(lambda: next((s for s in self.statuses[after:] if text in s), None), f"status {text!r}")


@pytest.fixture
def sensor():
    simulator = NetFTSimulator(rate_hz=500.0)
    yield simulator
    simulator.close()


class Graph:
    """The driver reading a simulated sensor and the client, on one executor spinning in a thread."""

    def __init__(self, sensor: NetFTSimulator):
        parameters = {"host": "127.0.0.1", "port": sensor.port, "sample_rate_hz": sensor.rate_hz}
        parameters |= {"silence_timeout_s": 0.3, "restart_period_s": 0.2}
        self.netft = NetFTNode(parameter_overrides=[Parameter(name, value=value) for name, value in parameters.items()])
        self.client = Client()
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.netft)
        self.executor.add_node(self.client)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    def wait_matched(self) -> None:
        publishers = [self.netft.wrench_publisher, self.netft.status_publisher]
        wait_until(
            lambda: all(p.get_subscription_count() >= 1 for p in publishers), "the client and the driver never matched"
        )
        assert self.client.tare.wait_for_service(timeout_sec=TIMEOUT), "no ft_sensor/tare service"

    def close(self) -> None:
        """Stops spinning and destroys both nodes (the driver sends stop); again: nothing."""
        if self.spinner.is_alive():
            self.executor.shutdown()
            self.spinner.join(timeout=TIMEOUT)
            self.netft.destroy_node()
            self.client.destroy_node()


@pytest.fixture
def graph(ros, sensor):
    sensor.set_load(LOAD)
    graph = Graph(sensor)
    try:
        graph.wait_matched()
        yield graph
    finally:
        graph.close()


def test_wrenches_arrive_with_the_load_frame_and_stamp(graph):
    client = graph.client
    msg = client.wait_wrench(LOAD, after=0)
    age_ns = graph.netft.get_clock().now().nanoseconds - convert.time_ns(msg.header.stamp)
    assert 0 <= age_ns < 200_000_000  # stamped on receipt, on the node's clock
    assert msg.header.frame_id == "ft_sensor"
    client.wait_for(lambda: len(client.wrenches) >= 50, "50 wrenches")
    stamps = [convert.time_ns(m.header.stamp) for m in client.wrenches[:50]]
    assert stamps == sorted(stamps)
    status = client.wait_status("streaming: received=")
    assert "lost=0" in status and "garbage=0" in status and "status_errors=0" in status
    types = dict(client.get_topic_names_and_types())
    assert types["/ft_sensor/wrench"] == ["geometry_msgs/msg/WrenchStamped"]
    assert types["/ft_sensor/status"] == ["std_msgs/msg/String"]


def test_tare_zeroes_the_wrench(graph, sensor):
    client = graph.client
    client.wait_wrench(LOAD, after=0)
    future = client.tare.call_async(Trigger.Request())
    response = client.wait_for(lambda: future.done() and future.result(), "the tare's response")
    assert response.success, response.message
    assert response.message == "bias command sent to 127.0.0.1"
    client.wait_wrench(np.zeros(6), after=0)
    assert sensor.commands.count(CMD_SET_BIAS) == 1
    after = len(client.wrenches)
    sensor.set_load([x + 1.0 for x in LOAD])
    client.wait_wrench(np.ones(6), after=after)  # the change from the tared load


def test_a_silent_sensor_is_reported_and_recovers(graph, sensor):
    client = graph.client
    client.wait_wrench(LOAD, after=0)
    sensor.go_silent()
    status = client.wait_status("no data from 127.0.0.1 for")
    assert re.fullmatch(r"no data from 127\.0\.0\.1 for \d+\.\d s: sending start again; received=\d+ lost=0 .*", status)
    assert client.wait_log("no data from 127.0.0.1 for", level=Log.ERROR)
    client.wait_for(lambda: sensor.unheard >= 1, "a start sent again while silent")

    sensor.resume()
    after_status = client.statuses.index(status)
    client.wait_wrench(LOAD, after=len(client.wrenches))
    client.wait_status("streaming: received=", after=after_status)
    assert client.wait_log("data from 127.0.0.1 again", level=Log.INFO)
    assert sensor.commands.count(CMD_START_STREAMING) >= 2  # the first, and one after the silence


def test_the_stream_is_stopped_on_shutdown(graph, sensor):
    graph.client.wait_wrench(LOAD, after=0)
    assert sensor.streaming
    graph.close()
    deadline = time.monotonic() + TIMEOUT
    while sensor.streaming or sensor.commands[-1] != CMD_STOP:
        assert time.monotonic() < deadline, f"no stop at the sensor (it got {sensor.commands})"
        time.sleep(0.01)
