"""ATI Net F/T driver throughput: hardware/netft.py's NetFTClient alone and hardware/netft_node.py's
NetFTNode (its own process) fed by the protocol-accurate simulated sensor
(tests/hardware/netft_simulator.py), at 1000 Hz and at 7000 Hz (the Net F/T's top RDT rate).

    .venv/bin/python bench/netft_throughput.py                  # ~1.5 minutes: four 10 s windows
    .venv/bin/python bench/netft_throughput.py --duration 3     # a quick look

It starts a ROS 2 node, so it runs only inside a loopback-only network namespace: started anywhere
else it re-executes itself in a new one (`unshare --net`, only `lo`, brought up) with
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a random ROS_DOMAIN_ID, as bench/ros_timing.py does;
the ROS part refuses to run outside one. All UDP goes to 127.0.0.1.

The simulator runs in a forked process of its own (so that its sending thread does not share a GIL
with what it feeds) and notes the wall-clock time (time.time_ns) of every record just before
sendto. Each configuration runs --warmup s, then a --duration s window over which:
  client  NetFTClient in this process's main thread, nothing else running in it, receive() in a
          loop (each sample's rdt_sequence and stamp kept in a list). The simulator never sends a
          seeded 0.1% of the sequence numbers (injected loss). Over the records after the last
          warm-up one up to the window's last: sent (the simulator's log), received (the client's
          accepted count), the client's lost count vs the injected drops in that range
          (lost_matches_injected; lost on the way = sent - received, e.g. a full socket buffer),
          duplicate and out_of_order counts, latency = the client's stamp - the record's send time
          (exact per record, by rdt_sequence), and this process's CPU (getrusage) = the client's.
  ros     `python -m hardware.netft_node --ros-args -p host:=127.0.0.1 -p port:=<simulator>
          -p sample_rate_hz:=<rate> -p counts_per_force:=1000000.0`, no injected loss. The simulator
          loads each record with its own ft_sequence as Fx counts, so a subscriber (sensor-data QoS,
          as the node publishes; spun in a thread of this process) knows which record each
          WrenchStamped is; it keeps that, the header stamp (the node's time of receipt) and the
          arrival time. Over the window [t0, t1) of wall time: the records the simulator sent in it
          vs those of them that reached the subscriber (by 0.5 s after it), latency = arrival -
          header stamp (publish -> receive; also send -> header stamp and send -> arrival), the
          node's CPU (/proc/<pid>/stat utime + stime) and the bench process's (= the subscriber's).
          The node's own counters (ft_sensor/status, once a second) between its first and last
          report in the window say whether records were lost before the node (lost) or after it.
CPU % is of one core (100% = a core busy the whole window); the simulator's is reported too. On a
busy machine a process gets less than it wants, so also CPU us per record (client: exact; node: over
the records its counters say it read): 1e6 / that is the rate one free core would sustain.

How to read it: received_per_s near sent_per_s and a client lost count equal to the injected drops
mean the driver keeps up; sent_per_s below the nominal rate means the simulator itself fell behind
(it skips, not bursts, once 0.1 s late) and says nothing about the driver. These machines have 2
cores shared with other work: the load average at each window's start and end is recorded, and a
high one makes every figure here worse than on an idle workstation.

Writes bench/results/netft_throughput.json and .png, prints a summary.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from geometry_msgs.msg import WrenchStamped  # noqa: E402
from loopback import ISOLATED, in_loopback_namespace, reexecute_isolated  # noqa: E402
from machine import machine_info  # noqa: E402  (bench/machine.py, beside this script)
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from hardware.netft import NetFTClient, NetFTConfig  # noqa: E402
from ros_nodes import convert  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "hardware"))  # the simulator lives with the driver's tests
from netft_simulator import NetFTSimulator  # noqa: E402

RESULTS = REPO / "bench" / "results"
RATES_HZ = (1000, 7000)  # 7000 Hz: the Net F/T's fastest RDT rate
DROP_FRACTION = 0.001  # injected loss in the client runs
COUNTS_PER_FORCE = 1_000_000.0  # the node's calibration: Fx = ft_sequence / COUNTS_PER_FORCE
START_TIMEOUT_S = 60.0  # for the first sample (the node process imports rclpy on a shared CPU)
STOP_TIMEOUT_S = 10.0
SETTLE_S = 0.5  # after the window: messages stamped in it are still on their way
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
FORK = multiprocessing.get_context("fork")  # started before rclpy.init: the child only uses sockets


# the simulated sensor ----------------------------------------------------------------------------
class RecordingSimulator(NetFTSimulator):
    """NetFTSimulator that notes each record's rdt_sequence, ft_sequence and send time (wall clock, the
    client's), and loads each record with its own ft_sequence as Fx counts: that number survives the
    node's conversion to newtons (Fx * counts_per_force), so a subscriber can tell which record a
    WrenchStamped is. ft_sequence, unlike rdt_sequence, does not restart with a new stream."""

    def __init__(self, rate_hz: float):
        self.sent_rdt: list[int] = []
        self.sent_ft: list[int] = []
        self.sent_ns: list[int] = []
        super().__init__(rate_hz)

    def _send_record(self) -> None:
        self._load = (self._ft + 1, 0, 0, 0, 0, 0)  # under the simulator's lock: set_load_counts would deadlock
        super()._send_record()

    def _send(self, datagram: bytes) -> None:
        self.sent_rdt.append(int.from_bytes(datagram[0:4], "big"))
        self.sent_ft.append(int.from_bytes(datagram[4:8], "big"))
        self.sent_ns.append(time.time_ns())
        super()._send(datagram)


def serve_simulator(rate_hz: float, drops: list[int], conn) -> None:
    """The simulator process: sends its port, streams until told to stop, sends back its log."""
    simulator = RecordingSimulator(rate_hz)
    simulator.drop(drops)
    conn.send(simulator.port)
    conn.recv()
    simulator.close()
    conn.send(
        {
            "rdt": np.array(simulator.sent_rdt, dtype=np.int64),
            "ft": np.array(simulator.sent_ft, dtype=np.int64),
            "ns": np.array(simulator.sent_ns, dtype=np.int64),
            "starts": simulator.commands.count(0x0002),
        }
    )


class SimulatorProcess:
    def __init__(self, rate_hz: float, drops: list[int]):
        self._conn, child = FORK.Pipe()
        self.process = FORK.Process(target=serve_simulator, args=(rate_hz, drops, child), daemon=True)
        self.process.start()
        child.close()
        self.port = self._receive("its port")

    def finish(self) -> dict:
        """Stops it; its send log: rdt, ft and ns (int64 arrays, in send order) and the count of starts."""
        self._conn.send("stop")
        log = self._receive("its send log")
        self.process.join(STOP_TIMEOUT_S)
        return log

    def _receive(self, what: str):
        if not self._conn.poll(START_TIMEOUT_S):
            self.process.kill()
            raise RuntimeError(f"the simulator process did not send {what} within {START_TIMEOUT_S:.0f} s")
        return self._conn.recv()


# measuring -------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # fields 14 and 15 of proc(5)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentiles_ms(latencies_ns: np.ndarray) -> dict | None:
    if not len(latencies_ns):
        return None
    ms = latencies_ns / 1e6
    p50, p99 = np.percentile(ms, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(float(ms.max()), 3), "n": len(ms)}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure_client(rate_hz: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed + rate_hz)
    stream_length = int(rate_hz * (args.warmup + args.duration + START_TIMEOUT_S))
    drops = 1 + np.flatnonzero(rng.random(stream_length) < DROP_FRACTION)
    simulator = SimulatorProcess(rate_hz, drops.tolist())
    client = NetFTClient(NetFTConfig(host="127.0.0.1", port=simulator.port, sample_rate_hz=rate_hz))
    try:
        client.start()
        last = client.receive(START_TIMEOUT_S)
        if last is None:
            raise RuntimeError(f"client {rate_hz} Hz: no record within {START_TIMEOUT_S:.0f} s")
        warm_end = time.monotonic() + args.warmup
        while time.monotonic() < warm_end:
            last = client.receive(0.1) or last
        before, first_rdt, first_stamp = client.counters(), last.rdt_sequence, last.stamp_ns
        loads, cpu0, simulator_cpu0, t0 = (
            [loadavg()],
            own_cpu_seconds(),
            cpu_seconds(simulator.process.pid),
            time.time(),
        )
        rdts, stamps = [], []
        while time.time() < t0 + args.duration:
            sample = client.receive(0.1)
            if sample is not None:
                rdts.append(sample.rdt_sequence)
                stamps.append(sample.stamp_ns)
        wall = time.time() - t0
        cpu, simulator_cpu = own_cpu_seconds() - cpu0, cpu_seconds(simulator.process.pid) - simulator_cpu0
        loads.append(loadavg())
        after = client.counters()
        client.stop()
    finally:
        client.close()
        log = simulator.finish()
    if log["starts"] != 1 or not rdts:
        raise RuntimeError(f"client {rate_hz} Hz: {log['starts']} streams, {len(rdts)} records in the window")
    rdts, stamps = np.array(rdts, dtype=np.int64), np.array(stamps, dtype=np.int64)
    last_rdt = int(rdts[-1])
    # records after the last warm-up one, up to the window's last: what the window's counters cover
    sent = int(((log["rdt"] > first_rdt) & (log["rdt"] <= last_rdt)).sum())
    injected = int(((drops > first_rdt) & (drops < last_rdt)).sum())
    delta = {key: after[key] - before[key] for key in after}
    sent_at = log["ns"][np.searchsorted(log["rdt"], [first_rdt, *rdts])]  # one stream: rdt ascending
    return {
        "rate_hz": rate_hz,
        "window_s": round(wall, 3),
        "rdt_range": [first_rdt, last_rdt],
        "sent": sent,
        "received": delta["received"],
        "sent_per_s": round(sent / ((sent_at[-1] - sent_at[0]) / 1e9), 1),
        "received_per_s": round(delta["received"] / ((stamps[-1] - first_stamp) / 1e9), 1),
        "injected_drops": injected,
        "lost_counted_by_client": delta["lost"],
        "lost_on_the_way": sent - delta["received"],
        "lost_matches_injected": delta["lost"] == injected + sent - delta["received"],
        "duplicate": delta["duplicate"],
        "out_of_order": delta["out_of_order"],
        "garbage": delta["garbage"],
        "latency_ms": percentiles_ms(stamps - sent_at[1:]),
        "cpu_percent": {"client": round(100 * cpu / wall, 1), "simulator": round(100 * simulator_cpu / wall, 1)},
        "client_cpu_us_per_record": round(1e6 * cpu / max(1, delta["received"]), 1),
        "loadavg_window_start_end": loads,
    }


class WrenchSubscriber(Node):
    """Keeps each wrench message's record (its ft_sequence, from Fx), header stamp and arrival, and the
    node's status counters."""

    def __init__(self):
        super().__init__("netft_bench_subscriber")
        self.fx: list[float] = []
        self.stamps_ns: list[int] = []
        self.arrivals_ns: list[int] = []
        self.statuses: list[tuple[int, dict[str, int]]] = []  # (arrival, counters)
        self.create_subscription(WrenchStamped, "ft_sensor/wrench", self._on_wrench, qos_profile_sensor_data)
        self.create_subscription(String, "ft_sensor/status", self._on_status, 10)

    def _on_wrench(self, msg: WrenchStamped) -> None:
        self.arrivals_ns.append(time.time_ns())
        self.stamps_ns.append(convert.time_ns(msg.header.stamp))
        self.fx.append(msg.wrench.force.x)

    def _on_status(self, msg: String) -> None:
        counters = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", msg.data)}
        self.statuses.append((time.time_ns(), counters))


def wait_for_first_message(subscriber: WrenchSubscriber, node: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not subscriber.stamps_ns:
        if node.poll() is not None or time.monotonic() > deadline:
            why = "exited" if node.poll() is not None else f"sent nothing within {START_TIMEOUT_S:.0f} s"
            raise RuntimeError(f"netft_node {why}; its log:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # as Ctrl-C / ros2 launch: the node sends stop to the sensor
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def node_counters(statuses: list[tuple[int, dict[str, int]]], t0: int, t1: int) -> dict | None:
    """The node's counters between its first status report after t0 and its last before t1."""
    inside = [s for s in statuses if t0 <= s[0] < t1]
    if len(inside) < 2:
        return None
    (start_ns, start), (end_ns, end) = inside[0], inside[-1]
    span_s = (end_ns - start_ns) / 1e9
    delta = {key: end[key] - start.get(key, 0) for key in end}
    return {"span_s": round(span_s, 2), "received_per_s": round(delta["received"] / span_s, 1)} | delta


def measure_node(rate_hz: int, args: argparse.Namespace, log_dir: Path) -> dict:
    if not in_loopback_namespace():
        raise RuntimeError("the ROS part runs only inside the bench's loopback-only network namespace")
    simulator = SimulatorProcess(rate_hz, [])  # forked before rclpy.init
    argv = [sys.executable, "-m", "hardware.netft_node", "--ros-args", "-p", "host:=127.0.0.1"]
    argv += ["-p", f"port:={simulator.port}", "-p", f"sample_rate_hz:={float(rate_hz)}"]
    argv += ["-p", f"counts_per_force:={COUNTS_PER_FORCE:.1f}"]
    log_path = log_dir / f"netft_node_{rate_hz}Hz.log"
    rclpy.init()
    subscriber = WrenchSubscriber()
    executor = SingleThreadedExecutor()
    executor.add_node(subscriber)
    spinner = threading.Thread(target=executor.spin, daemon=True, name="subscriber")
    spinner.start()
    with open(log_path, "w") as log:
        node = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_first_message(subscriber, node, log_path)
        time.sleep(args.warmup)
        pids = {"node": node.pid, "simulator": simulator.process.pid}
        loads, t0 = [loadavg()], time.time_ns()
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"bench (subscriber)": own_cpu_seconds()}
        time.sleep(args.duration)
        t1 = time.time_ns()
        cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"bench (subscriber)": own_cpu_seconds()}
        loads.append(loadavg())
        time.sleep(SETTLE_S)
        if node.poll() is not None:
            raise RuntimeError(f"netft_node exited during the window; see {log_path}")
    finally:
        stop_process(node)
        executor.shutdown()
        spinner.join()
        subscriber.destroy_node()
        rclpy.try_shutdown()
        log = simulator.finish()
    wall = (t1 - t0) / 1e9
    stamps, arrivals = np.array(subscriber.stamps_ns, dtype=np.int64), np.array(subscriber.arrivals_ns, np.int64)
    records = np.rint(np.array(subscriber.fx) * COUNTS_PER_FORCE).astype(np.int64)  # their ft_sequence
    sent_in_window = log["ft"][(log["ns"] >= t0) & (log["ns"] < t1)]
    arrived = np.isin(records, sent_in_window)
    sent_ns = log["ns"][np.searchsorted(log["ft"], records[arrived])]  # ft counts on: ascending in the log
    stamps, arrivals = stamps[arrived], arrivals[arrived]
    sent, received = len(sent_in_window), int(arrived.sum())
    counters = node_counters(subscriber.statuses, t0, t1)
    node_cpu_s = cpu1["node"] - cpu0["node"]
    return {
        "rate_hz": rate_hz,
        "window_s": round(wall, 3),
        "sent": sent,
        "received_by_subscriber": received,
        "sent_per_s": round(sent / wall, 1),
        "received_per_s": round(received / wall, 1),
        "received_fraction": round(received / sent, 4) if sent else None,
        "node_counters": counters,
        # what the node spends per record it reads and publishes (at the rate its counters report)
        "node_cpu_us_per_record": round(1e6 * node_cpu_s / (counters["received_per_s"] * wall), 1)
        if counters
        else None,
        "stream_starts": log["starts"],
        "latency_ms": percentiles_ms(arrivals - stamps),  # header stamp (the node's receipt) -> arrival
        "sensor_to_node_ms": percentiles_ms(stamps - sent_ns),
        "sensor_to_subscriber_ms": percentiles_ms(arrivals - sent_ns),
        "cpu_percent": {name: round(100 * (cpu1[name] - cpu0[name]) / wall, 1) for name in cpu0},
        "loadavg_window_start_end": loads,
        "node_command": shlex.join(["python", *argv[1:]]),
    }


# report ----------------------------------------------------------------------------------------
def plot(results: dict[str, dict], path: Path, title: str) -> None:
    names = list(results)
    x = np.arange(len(names))
    labels = [name.replace("_", "\n") for name in names]
    fig, (rates, latency) = plt.subplots(1, 2, figsize=(13, 5))
    sent = [r["sent_per_s"] for r in results.values()]
    received = [r["received_per_s"] for r in results.values()]
    rates.bar(x - 0.2, sent, 0.4, label="sent by the simulator")
    bars = rates.bar(x + 0.2, received, 0.4, label="received (client / subscriber)")
    cpu = [r["cpu_percent"].get("client", r["cpu_percent"].get("node")) for r in results.values()]
    rates.bar_label(bars, [f"{v:.0f}/s\nCPU {c:.0f}%" for v, c in zip(received, cpu, strict=True)], fontsize=8)
    rates.set_xticks(x, labels, fontsize=9)
    rates.set_ylabel("records or messages per second")
    rates.set_ylim(0, 1.4 * max(r["rate_hz"] for r in results.values()))
    rates.set_title("rate sent vs received (CPU: the client's / the node's, % of one core)", fontsize=10)
    rates.legend(fontsize=8, loc="upper left")

    series = [  # (result key, percentile, label); the sensor-to-subscriber one is the ROS runs' only
        ("latency_ms", "p50", "p50"),
        ("latency_ms", "p99", "p99"),
        ("sensor_to_subscriber_ms", "p99", "ros: simulator send -> subscriber arrival, p99"),
    ]
    for i, (key, percentile, label) in enumerate(series):
        values = [r[key][percentile] if r.get(key) else np.nan for r in results.values()]
        bars = latency.bar(x + (i - 1) * 0.27, values, 0.27, label=label, hatch="//" if i == 2 else None)
        latency.bar_label(bars, fmt="%.3g", fontsize=7)
    latency.set_yscale("log")
    latency.set_ylim(top=latency.get_ylim()[1] * 30)  # room for the legend
    latency.set_xticks(x, labels, fontsize=9)
    latency.set_ylabel("latency [ms] (log)")
    latency.set_title("client: send -> client receipt; ros: header stamp -> subscriber arrival", fontsize=10)
    latency.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summary_line(name: str, r: dict) -> str:
    latency = r["latency_ms"] or {}
    line = (
        f"[{name}] sent {r['sent_per_s']:.0f}/s received {r['received_per_s']:.0f}/s; latency p50 "
        f"{latency.get('p50')} ms p99 {latency.get('p99')} ms; CPU % {r['cpu_percent']}; "
        f"load {r['loadavg_window_start_end']}"
    )
    if "injected_drops" in r:
        line += (
            f"; injected drops {r['injected_drops']}, client lost {r['lost_counted_by_client']} "
            f"(matches: {r['lost_matches_injected']}), duplicate {r['duplicate']}, out of order {r['out_of_order']}"
        )
    else:
        line += f"; node counters {r['node_counters']}"
    return line


def run_bench(args: argparse.Namespace) -> None:
    t_start, load_before = time.perf_counter(), os.getloadavg()
    log_dir = Path(tempfile.mkdtemp(prefix="netft_throughput_"))
    results = {}
    for rate in RATES_HZ:
        results[f"client_{rate}Hz"] = measure_client(rate, args)
        print(summary_line(f"client_{rate}Hz", results[f"client_{rate}Hz"]), flush=True)
    for rate in RATES_HZ:
        results[f"ros_node_{rate}Hz"] = measure_node(rate, args, log_dir)
        print(summary_line(f"ros_node_{rate}Hz", results[f"ros_node_{rate}Hz"]), flush=True)
    report = {
        "benchmark": "netft_throughput",
        "command": os.environ.get("ROBOT_RL_BENCH_COMMAND", shlex.join(sys.argv)),
        "config": {
            "simulator": "tests/hardware/netft_simulator.py NetFTSimulator in a forked process of its own, noting "
            "time.time_ns() of each record before sendto; it skips (does not burst) once 0.1 s behind",
            "client": "hardware.netft.NetFTClient in this process's main thread, receive() in a loop; seeded "
            f"{DROP_FRACTION:.1%} of rdt sequence numbers never sent (injected loss)",
            "ros": "python -m hardware.netft_node (its own process) -> subscriber in this process (sensor-data "
            "QoS, SingleThreadedExecutor in a thread); no injected loss",
            "window": f"{args.warmup:g} s warm-up after the first sample, then {args.duration:g} s",
            "client_accounting": "records after the last warm-up one up to the window's last (by rdt_sequence): "
            "lost_matches_injected is lost == injected drops + lost on the way (sent - received)",
            "ros_accounting": "the records sent in [t0, t1) vs those of them that reached the subscriber by "
            f"{SETTLE_S:g} s after t1 (matched by ft_sequence, carried in Fx); node_counters between the node's "
            "first and last status report in the window",
            "latency": "client: its receipt stamp - the record's send time (matched by rdt_sequence); ros: "
            "latency_ms = subscriber arrival - header stamp (the node's receipt), sensor_to_node_ms = header "
            "stamp - send time, sensor_to_subscriber_ms = arrival - send time; all time.time_ns / the ROS "
            "system clock on one machine",
            "cpu_percent": "utime + stime over the window, % of one core (getrusage for this process, "
            "/proc/<pid>/stat for the others)",
            "receive_buffer": f"the client asks for 1 s of records (rate x 1024 B), capped at net.core.rmem_max = "
            f"{Path('/proc/sys/net/core/rmem_max').read_text().strip()} B",
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "seed": args.seed,
        },
        "results": results,
        "machine": machine_info(load_before) | {"machine_shared": "2 cores shared with other work"},
        "logs": str(log_dir),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    json_path, png_path = RESULTS / "netft_throughput.json", RESULTS / "netft_throughput.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    title = (
        f"ATI Net F/T driver vs the simulated sensor, {args.duration:g} s windows; {os.cpu_count()} shared cores, "
        f"load average {load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    plot(results, png_path, title)
    print(f"wrote {json_path} and {png_path} ({report['wall_s']:.0f} s; node logs in {log_dir})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured window per configuration [s]")
    parser.add_argument("--warmup", type=float, default=2.0, help="after the first sample [s]")
    parser.add_argument("--seed", type=int, default=0, help="of the injected drops")
    args = parser.parse_args()
    if args.duration <= 0 or args.warmup < 0:
        parser.error(f"--duration must be > 0 and --warmup >= 0, got {args.duration} and {args.warmup}")
    if not in_loopback_namespace():
        if os.environ.get(ISOLATED) == "1":
            sys.exit(f"{ISOLATED}=1 but this is not a loopback-only namespace with LOCALHOST discovery; refusing")
        sys.exit(reexecute_isolated("netft_throughput.py"))
    run_bench(args)


if __name__ == "__main__":
    main()
