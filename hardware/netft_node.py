"""The ATI Net F/T driver node: the sensor's RDT stream over UDP (hardware/netft.py has the
protocol, the sequence checks and the client) as geometry_msgs/WrenchStamped, one message per
sample. This node only moves samples and reports.

Parameters
  host, port                       the sensor (ATI's factory default 192.168.1.1, UDP 49152)
  counts_per_force, counts_per_torque  the sensor's calibration (its web page), counts per N / Nm
  frame_id                         of the wrench messages ("ft_sensor")
  sample_rate_hz                   the rate the sensor is set to stream at (1000)
  silence_timeout_s                no sample this long: the sensor is silent (0.5)
  restart_period_s                 while silent, the start command goes out again this often (1.0)
Topics (relative names: one namespace per robot)
  ft_sensor/wrench   geometry_msgs/WrenchStamped, sensor-data QoS (best effort: a late sample is
                     worth nothing), stamped with the time of receipt on the node's clock
  ft_sensor/status   std_msgs/String about once a second: the client's counters, e.g.
                     "streaming: received=1000 lost=0 duplicate=0 out_of_order=0 garbage=0 status_errors=0",
                     or, while silent, "no data from <host> for X s: sending start again; <counters>"
                     (also logged as an error)
Services
  ft_sensor/tare     std_srvs/Trigger: the sensor's software bias; the current load reads zero

A thread of its own reads the socket (at 1 kHz a timer's period is too coarse and an executor's
overhead too high) and publishes each sample as it comes; it also sends start again while the
sensor is silent. A sample whose status word is not 0 (error or saturation flags) is still
published, as the sensor measured it, and logged as a warning at most once a second. The stream is
stopped when the node is destroyed.
"""

from __future__ import annotations

import threading

from geometry_msgs.msg import WrenchStamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hardware.netft import NetFTClient, NetFTConfig, Sample
from ros_nodes import convert
from ros_nodes.node_process import declare, spin_node_process

RECEIVE_TIMEOUT_S = 0.05  # the receive thread checks for silence and for shutdown this often
STATUS_PERIOD_S = 1.0
LOG_PERIOD_S = 1.0  # between two log lines about the same trouble


class NetFTNode(Node):
    def __init__(self, **kwargs):
        super().__init__("netft", **kwargs)
        defaults = NetFTConfig(host="192.168.1.1")
        config = NetFTConfig(
            host=declare(self, "host", defaults.host, "the Net F/T's IP address or host name"),
            port=declare(self, "port", defaults.port, "the Net F/T's RDT UDP port"),
            counts_per_force=declare(self, "counts_per_force", defaults.counts_per_force, "counts per N"),
            counts_per_torque=declare(self, "counts_per_torque", defaults.counts_per_torque, "counts per Nm"),
            sample_rate_hz=declare(self, "sample_rate_hz", defaults.sample_rate_hz, "the sensor's streaming rate"),
            silence_timeout_s=declare(
                self, "silence_timeout_s", defaults.silence_timeout_s, "no sample this long: the sensor is silent"
            ),
            restart_period_s=declare(
                self, "restart_period_s", defaults.restart_period_s, "while silent, send start again this often"
            ),
        )
        self.frame_id = declare(self, "frame_id", "ft_sensor", "frame of the wrench messages")
        self.client = NetFTClient(config, clock=lambda: self.get_clock().now().nanoseconds)
        self.config = self.client.config

        self.wrench_publisher = self.create_publisher(WrenchStamped, "ft_sensor/wrench", qos_profile_sensor_data)
        self.status_publisher = self.create_publisher(String, "ft_sensor/status", 10)
        self.create_service(Trigger, "ft_sensor/tare", self._on_tare)
        self.create_timer(STATUS_PERIOD_S, self._publish_status)
        self._was_silent = False

        self._stopping = threading.Event()
        try:
            self.client.start()
        except OSError as error:  # the receive thread tries again once the silence timeout has passed
            self.get_logger().error(f"could not send start to {config.host}:{config.port}: {error}")
        self._receiver = threading.Thread(target=self._receive_loop, name="netft_receive", daemon=True)
        self._receiver.start()
        self.get_logger().info(f"streaming from Net F/T {config.host}:{config.port} into ft_sensor/wrench")

    def _receive_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sample = self.client.receive(RECEIVE_TIMEOUT_S)
                if not self.context.ok():  # Ctrl-C shut rclpy down before destroy_node stops this thread
                    return
                if sample is not None:
                    self._publish(sample)
                self.client.restart_if_silent()
            except OSError as error:  # sending start: the network is down; keep trying
                self.get_logger().error(f"Net F/T {self.config.host}: {error}", throttle_duration_sec=LOG_PERIOD_S)
                self._stopping.wait(RECEIVE_TIMEOUT_S)

    def _publish(self, sample: Sample) -> None:
        self.wrench_publisher.publish(convert.array_to_wrench(sample.wrench, sample.stamp_ns, self.frame_id))
        if sample.status != 0:
            self.get_logger().warning(
                f"Net F/T status 0x{sample.status:08x} (error or saturation flags) at record {sample.rdt_sequence}; "
                f"{self.client.tracker.status_errors} such records so far",
                throttle_duration_sec=LOG_PERIOD_S,
            )

    def _publish_status(self) -> None:
        counters = " ".join(f"{name}={value}" for name, value in self.client.counters().items())
        silent_s = self.client.silent_for()
        silent = silent_s >= self.config.silence_timeout_s
        if silent:
            message = f"no data from {self.config.host} for {silent_s:.1f} s: sending start again"
            self.get_logger().error(message)
            status = f"{message}; {counters}"
        else:
            if self._was_silent:
                self.get_logger().info(f"data from {self.config.host} again")
            status = f"streaming: {counters}"
        self._was_silent = silent
        self.status_publisher.publish(String(data=status))

    def _on_tare(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            self.client.tare()
        except OSError as error:
            response.success, response.message = False, f"could not send the bias command: {error}"
        else:
            response.success, response.message = True, f"bias command sent to {self.config.host}"
        return response

    def destroy_node(self) -> None:
        self._stopping.set()
        self._receiver.join()
        try:
            self.client.stop()
        except OSError as error:
            self.get_logger().warning(f"could not send stop to {self.config.host}: {error}")
        self.client.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """`robot-rl-netft --ros-args -p host:=192.168.1.1`, inside a loopback-only network namespace
    unless the machine's DDS is meant to be reachable."""
    spin_node_process(NetFTNode, args)


if __name__ == "__main__":
    main()
