"""`robot-rl calibrate <tool>`: the set-up tools' ROS side, one function per tool, each a whole
command that takes the composed Config and returns an exit code (0 done, 1 problems found, said
on stdout). The logic (what the graph expects, the verdicts, the workspace box, the crops, the
tare check, the cell file) is robot_rl/robot/calibration.py's; this module subscribes, asks the
operator and prints.

  doctor            listens to every sensor stream the graph's aggregator and safety nodes read and
                    prints a table of verdicts: is each there, of the right type, fast enough, sane
  record_workspace  the operator guides the arm (hand-guiding mode) to the corners of the region it
                    may work in, pressing Enter at each: robot.workspace_low/high -> the cell file
  tare              zeroes the F/T sensor (std_srvs/Trigger ft_sensor/tare) and checks that the
                    force then reads ~0
  pick_crops        one frame per camera; a rectangle per camera (drawn in a window, or given) ->
                    ros.aggregator.cameras.<cam>.crop -> the cell file

Each starts rclpy in a context of its own with one temporary node in the root namespace, so it also
runs beside other nodes in one process (the tests' fake drivers), and shuts it down when done. The
node joins whatever DDS domain the environment names (ROS_DOMAIN_ID): the robot's, to calibrate it.
Callbacks run on a SingleThreadedExecutor: spin_once loops, or its spin() on a thread while the
operator is asked for input.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import UInt8MultiArray
from std_srvs.srv import Trigger

from robot_rl.config import Config
from robot_rl.hil.operator import has_display
from robot_rl.robot import calibration as cal
from ros_nodes import convert

MESSAGE_CLASSES = {
    cal.CAMERA: Image,
    cal.COMPRESSED: CompressedImage,
    cal.WRENCH: WrenchStamped,
    cal.POSE: PoseStamped,
    cal.TWIST: TwistStamped,
    cal.JOINTS: JointState,
    cal.PRIVILEGED: UInt8MultiArray,
}
# How long a new node may take to meet the drivers: Fast DDS discovers a new participant at once
# most of the time, but now and then only at the next announcement (measured here: up to ~3 s).
DISCOVERY_TIMEOUT_S = 5.0
SERVICE_TIMEOUT_S = 5.0  # for the tare service to appear, and then to answer
FRESH_POSE_S = 1.0  # an older pose is not "the current one": its driver has stopped
TARE_SETTLE_S = 0.2  # samples measured before the bias was applied may still be on their way
CROPS_RERUN_HINT = "robot-rl calibrate crops --rect <cam>=x0,y0,x1,y1 ..."


def _interruptible(command: Callable[..., int]) -> Callable[..., int]:
    """Ctrl-C ends a tool with exit code 1 and a line saying so, not a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs) -> int:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            print(f"{command.__name__}: interrupted; nothing written")
            return 1

    return run


@contextmanager
def _session(name: str) -> Iterator[tuple[Node, SingleThreadedExecutor]]:
    context = Context()
    rclpy.init(args=[], context=context)
    node = Node(name, context=context, start_parameter_services=False)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def _spin_until(executor: SingleThreadedExecutor, seconds: float, done: Callable[[], bool] = lambda: False) -> bool:
    """Spin for up to `seconds`, until done(); whether it is done."""
    deadline = time.monotonic() + seconds
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        executor.spin_once(timeout_sec=min(0.05, left))
    return True


def _qos(stream: cal.ExpectedStream) -> QoSProfile:
    """As the graph subscribes: reliable + transient local for the twin in lockstep (which
    publishes only when stepped and latches its latest), else sensor data (matches any publisher)."""
    if stream.lockstep:
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=stream.depth,
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def _namespace(config: Config, namespace: str | None) -> str:
    if namespace is None:
        return config.ros.namespaces[0]
    if namespace not in config.ros.namespaces:
        raise ValueError(f"namespace {namespace!r} is not among ros.namespaces={config.ros.namespaces}")
    return namespace


def _stream(config: Config, namespace: str, kinds: Sequence[str], camera: str = "") -> cal.ExpectedStream:
    return next(
        s for s in cal.expected_streams(config) if s.kind in kinds and s.namespace == namespace and s.camera == camera
    )


def _wrench_values(msg: WrenchStamped) -> tuple[float, ...]:
    f, t = msg.wrench.force, msg.wrench.torque
    return (f.x, f.y, f.z, t.x, t.y, t.z)


def _reader(kind: str, report: cal.StreamReport) -> Callable:
    """The doctor's callback for one stream: note what arrived, when, cheaply."""
    now = time.monotonic
    if kind == cal.CAMERA:
        return lambda m: report.add_image(now(), m.header.frame_id, m.encoding, m.width, m.height)
    if kind == cal.COMPRESSED:
        return lambda m: report.add_image(now(), m.header.frame_id, m.format)
    if kind == cal.WRENCH:
        return lambda m: report.add_wrench(now(), m.header.frame_id, _wrench_values(m))
    if kind == cal.POSE:

        def on_pose(m: PoseStamped) -> None:
            p, q = m.pose.position, m.pose.orientation
            report.add_pose(now(), m.header.frame_id, (p.x, p.y, p.z), (q.w, q.x, q.y, q.z))

        return on_pose
    if kind == cal.TWIST:

        def on_twist(m: TwistStamped) -> None:
            v, w = m.twist.linear, m.twist.angular
            report.add_values(now(), m.header.frame_id, (v.x, v.y, v.z, w.x, w.y, w.z))

        return on_twist
    if kind == cal.JOINTS:
        return lambda m: report.add_joint_state(now(), m.header.frame_id, m.name)
    return lambda m: report.add(now())


@_interruptible
def doctor(config: Config, seconds: float = 5.0, discovery_s: float = DISCOVERY_TIMEOUT_S) -> int:
    """Listen to every sensor stream of the graph for `seconds`, once each has a publisher (or
    `discovery_s` has passed), and print the verdicts."""
    expected = cal.expected_streams(config)
    reports = {stream.topic: cal.StreamReport(stream.topic) for stream in expected}
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    print(f"doctor: listening to {len(expected)} sensor streams for {seconds:g} s (ROS_DOMAIN_ID={domain})")
    with _session("robot_rl_doctor") as (node, executor):
        for stream in expected:
            kind = MESSAGE_CLASSES[stream.kind]
            node.create_subscription(kind, stream.topic, _reader(stream.kind, reports[stream.topic]), _qos(stream))
        topics = [stream.topic for stream in expected]
        _spin_until(executor, discovery_s, lambda: all(node.get_publishers_info_by_topic(t) for t in topics))
        _spin_until(executor, seconds)
        for stream in expected:
            # The publishers' types only: get_topic_names_and_types() would list this node's own
            # subscription's type too, hiding a publisher of another type.
            infos = node.get_publishers_info_by_topic(stream.topic)
            reports[stream.topic].published_types = sorted({info.topic_type for info in infos})
    lines, ok = cal.evaluate(expected, reports)
    print("\n".join(lines))
    return 0 if ok else 1


def _cell_hint(output: Path) -> str:
    if output.parent.name == "cell":
        return f"use it with cell={output.stem}"
    return "put it in configs/cell/ to use it with cell=<its name>"


@_interruptible
def record_workspace(
    config: Config,
    output: str | Path,
    margin: float = 0.02,
    input_fn: Callable[[str], str] = input,
    namespace: str | None = None,
) -> int:
    """Record TCP positions from tcp/pose (after ros.remappings) while the operator guides the arm:
    each Enter stores the current one, "q" finishes; the box around them, `margin` m inward, goes
    into the cell file `output` as robot.workspace_low/high."""
    output = Path(output)
    stream = _stream(config, _namespace(config, namespace), [cal.POSE])
    recorder = cal.WorkspaceRecorder()
    latest: list[tuple[float, PoseStamped]] = []  # [(receipt time, message)], the newest only

    def on_pose(msg: PoseStamped) -> None:
        latest[:] = [(time.monotonic(), msg)]  # one slice assignment: the input thread sees old or new

    with _session("robot_rl_record_workspace") as (node, executor):
        node.create_subscription(PoseStamped, stream.topic, on_pose, _qos(stream))
        if not _spin_until(executor, DISCOVERY_TIMEOUT_S, lambda: bool(latest)):
            print(
                f"record_workspace: no pose on {stream.topic} within {DISCOVERY_TIMEOUT_S:g} s: is the driver running?"
            )
            return 1
        print(
            f"record_workspace: reading {stream.topic}. Put the arm in guiding mode and move it to each corner "
            "(or along the edges) of the region it may work in; press Enter at each, q and Enter to finish."
        )
        spinner = threading.Thread(target=executor.spin, daemon=True)  # poses arrive while input_fn waits
        spinner.start()
        try:
            _ask_for_positions(recorder, latest, stream, input_fn)
        finally:
            executor.shutdown()
            spinner.join()

    try:
        low, high = recorder.box(margin)
    except ValueError as error:
        print(f"record_workspace: {error}; nothing written")
        return 1
    cal.update_cell_file(
        output, {"robot": {"workspace_low": low, "workspace_high": high}}, tool="robot-rl calibrate workspace"
    )
    print(f"workspace box, {margin:g} m inside the recorded positions: low {low}, high {high} (m, {stream.frame_id})")
    print(f"wrote robot.workspace_low/high to {output}; {_cell_hint(output)}")
    return 0


def _ask_for_positions(
    recorder: cal.WorkspaceRecorder,
    latest: list[tuple[float, PoseStamped]],
    stream: cal.ExpectedStream,
    input_fn: Callable[[str], str],
) -> None:
    """Until "q" (or the end of input): on each Enter, record the newest pose's position."""
    while True:
        try:
            answer = input_fn(f"[{len(recorder.points)} recorded] Enter: record here, q: finish > ").strip()
        except EOFError:
            return
        if answer.lower() == "q":
            return
        if answer:
            print("Enter records the current position, q finishes")
            continue
        position, problem = _current_position(latest, stream)
        if problem:
            print(f"not recorded: {problem}")
            continue
        count = recorder.add(position)
        print(f"position {count}: x={position[0]:.4f} y={position[1]:.4f} z={position[2]:.4f} m")


def _current_position(
    latest: list[tuple[float, PoseStamped]], stream: cal.ExpectedStream
) -> tuple[np.ndarray | None, str]:
    """(position, "") of the newest pose, or (None, why it is not usable)."""
    if not latest:
        return None, f"no pose on {stream.topic} yet"
    received, msg = latest[0]
    age = time.monotonic() - received
    if age > FRESH_POSE_S:
        return None, f"the newest pose on {stream.topic} is {age:.1f} s old: is its driver running?"
    if stream.frame_id and msg.header.frame_id != stream.frame_id:
        return None, f"the pose is in frame {msg.header.frame_id!r}, not {stream.frame_key}={stream.frame_id!r}"
    p = msg.pose.position
    position = np.array([p.x, p.y, p.z])
    if not np.all(np.isfinite(position)):
        return None, f"the pose holds NaN/inf: {position.tolist()}"
    return position, ""


@_interruptible
def tare(
    config: Config,
    service: str = "ft_sensor/tare",
    seconds: float = 1.0,
    tolerance_n: float = 1.0,
    namespace: str | None = None,
    service_timeout_s: float = SERVICE_TIMEOUT_S,
) -> int:
    """Read the wrench for `seconds`, call the F/T driver's std_srvs/Trigger tare service, read
    again and print whether the force now reads ~0 (within `tolerance_n`). Nothing may touch the
    tool meanwhile."""
    ns = _namespace(config, namespace)
    stream = _stream(config, ns, [cal.WRENCH])
    service_name = cal.resolve_name(service, ns, config.ros.remappings)  # rules rename services too
    samples: list[tuple[float, ...]] = []
    with _session("robot_rl_tare") as (node, executor):
        node.create_subscription(WrenchStamped, stream.topic, lambda m: samples.append(_wrench_values(m)), _qos(stream))
        client = node.create_client(Trigger, service_name)
        print(f"tare: waiting for the service {service_name} (std_srvs/Trigger)")
        if not client.wait_for_service(timeout_sec=service_timeout_s):
            print(
                f"tare: no service {service_name} within {service_timeout_s:g} s: is the F/T driver running "
                "(robot-rl-netft offers ft_sensor/tare), in this ROS_DOMAIN_ID?"
            )
            return 1

        def measure(when: str) -> np.ndarray | None:
            samples.clear()
            _spin_until(executor, seconds)
            if not samples:
                print(f"tare: no wrench on {stream.topic} {when}: is the F/T driver streaming?")
                return None
            return np.array(samples)

        if not _spin_until(executor, DISCOVERY_TIMEOUT_S, lambda: bool(samples)):
            print(f"tare: no wrench on {stream.topic} within {DISCOVERY_TIMEOUT_S:g} s: is the F/T driver streaming?")
            return 1
        before = measure("before the tare")
        if before is None:
            return 1
        future = client.call_async(Trigger.Request())
        if not _spin_until(executor, service_timeout_s, future.done):
            print(f"tare: {service_name} did not answer within {service_timeout_s:g} s")
            return 1
        response = future.result()
        if not response.success:
            print(f"tare: {service_name} refused: {response.message}")
            return 1
        _spin_until(executor, TARE_SETTLE_S)
        after = measure("after the tare")
        if after is None:
            return 1
    result = cal.tare_result(before, after, tolerance_n)
    print(result.message)
    return 0 if result.ok else 1


@_interruptible
def pick_crops(
    config: Config,
    output: str | Path,
    rectangles: Mapping[str, Sequence[float]] | None = None,
    namespace: str | None = None,
    frames_dir: str | Path = "crop_frames",
    timeout_s: float = DISCOVERY_TIMEOUT_S,
) -> int:
    """One frame per camera from its topic (the aggregator's: image_raw or its compressed form);
    a rectangle [x0, y0, x1, y1] per camera in source pixels, from `rectangles` or drawn in a
    window (when a display exists), grown to the observation's aspect ratio
    (calibration.crop_from_rectangle) -> ros.aggregator.cameras.<cam>.crop in the cell file
    `output`. Without a display and without rectangles, each frame goes to
    `frames_dir`/<cam>.png with a pixel grid to read the corners from, and nothing is written."""
    output, ns = Path(output), _namespace(config, namespace)
    cameras = config.ros.aggregator_for(config.sim).cameras
    unknown = sorted(set(rectangles or {}) - set(cameras))
    if unknown:
        print(f"pick_crops: no camera {unknown} in the observation (cameras: {sorted(cameras)})")
        return 1
    wanted = list(rectangles) if rectangles else list(cameras)
    streams = {
        cam: _stream(config, ns, [cal.COMPRESSED if cameras[cam].compressed else cal.CAMERA], cam) for cam in wanted
    }
    frames = _grab_frames(streams, timeout_s)
    if frames is None:
        return 1

    if rectangles is None:
        rectangles = _draw_rectangles(frames) if has_display() else None
        if rectangles is None:
            _save_grids(frames, Path(frames_dir))
            print(
                f"pick_crops: no display to draw on; re-run with the rectangles read off the grid: {CROPS_RERUN_HINT}"
            )
            return 1
        if not rectangles:
            print("pick_crops: no rectangle drawn; nothing written")
            return 1
    crops = {}
    for cam, rectangle in rectangles.items():
        height, width = frames[cam].shape[:2]
        observation = cameras[cam]
        try:
            if len(rectangle) != 4:
                raise ValueError(f"a rectangle is [x0, y0, x1, y1], got {list(rectangle)}")
            crops[cam] = cal.crop_from_rectangle(*rectangle, width, height, observation.width / observation.height)
        except ValueError as error:
            print(f"pick_crops: {cam}: {error}; nothing written")
            return 1
        print(
            f"{cam}: rectangle {[round(v, 1) for v in rectangle]} on the {width}x{height} frame -> crop {crops[cam]}, "
            f"resized to the {observation.width}x{observation.height} observation"
        )
    updates = {"ros": {"aggregator": {"cameras": {cam: {"crop": crop} for cam, crop in crops.items()}}}}
    cal.update_cell_file(output, updates, tool="robot-rl calibrate crops")
    print(f"wrote the crops of {', '.join(crops)} to {output}; {_cell_hint(output)}")
    return 0


def _grab_frames(streams: Mapping[str, cal.ExpectedStream], timeout_s: float) -> dict[str, np.ndarray] | None:
    """The first frame of each camera as uint8 RGB, or None (said why) when one does not come."""
    frames: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}

    def keep(cam: str, msg) -> None:
        if cam in frames:
            return
        try:
            frames[cam] = (
                convert.compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else convert.image_to_rgb(msg)
            )
        except ValueError as error:
            errors[cam] = str(error)

    with _session("robot_rl_pick_crops") as (node, executor):
        for cam, stream in streams.items():
            kind = MESSAGE_CLASSES[stream.kind]
            node.create_subscription(kind, stream.topic, functools.partial(keep, cam), _qos(stream))
        _spin_until(executor, timeout_s, lambda: len(frames) == len(streams))
    if len(frames) == len(streams):
        return frames
    for cam, stream in streams.items():
        if cam not in frames:
            why = errors.get(cam, f"no frame within {timeout_s:g} s")
            print(f"pick_crops: {cam}: {stream.topic}: {why}")
    return None


def _draw_rectangles(
    frames: Mapping[str, np.ndarray], show: Callable[[], None] | None = None
) -> dict[str, list[float]] | None:
    """A window with one RectangleSelector per camera; the rectangles drawn when it is closed, or
    None when matplotlib has no interactive backend after all. `show` blocks while the person
    draws (default plt.show, until the window is closed)."""
    import matplotlib.pyplot as plt
    from matplotlib.widgets import RectangleSelector

    if show is None:
        if plt.get_backend().lower() == "agg":  # pyplot fell back: no GUI toolkit could open the display
            return None
        show = plt.show
    figure, axes = plt.subplots(1, len(frames), squeeze=False, figsize=(6 * len(frames), 5.5))
    figure.suptitle("Drag a rectangle on each frame (it grows to the observation's aspect ratio); then close")
    selectors = {}
    for ax, (cam, frame) in zip(axes[0], frames.items(), strict=True):
        height, width = frame.shape[:2]
        ax.imshow(frame, extent=(0, width, height, 0))  # data coordinates = pixel edges
        ax.set_title(f"{cam} ({width}x{height})")
        selectors[cam] = RectangleSelector(ax, lambda *_: None, interactive=True, useblit=True)
    show()
    rectangles = {}
    for cam, selector in selectors.items():
        x0, x1, y0, y1 = selector.extents
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            rectangles[cam] = [x0, y0, x1, y1]
    plt.close(figure)
    return rectangles


def _save_grids(frames: Mapping[str, np.ndarray], directory: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    directory.mkdir(parents=True, exist_ok=True)
    for cam, frame in frames.items():
        height, width = frame.shape[:2]
        step = next(s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000) if max(width, height) / s <= 16)
        inches = min(max(width / 100, 6.0), 12.0)  # legible labels, on a screen, whatever the frame's size
        figure = Figure(figsize=(inches, inches * height / width + 0.8), dpi=120)
        ax = figure.add_subplot()
        ax.imshow(frame, extent=(0, width, height, 0), interpolation="nearest")
        ax.set_xticks(range(0, width + 1, step))
        ax.set_yticks(range(0, height + 1, step))
        ax.grid(color="yellow", linewidth=0.5, alpha=0.8)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{cam}: {width}x{height}; a crop is [x0, y0, x1, y1] in these pixels", fontsize=9)
        path = directory / f"{cam}.png"
        figure.savefig(path, bbox_inches="tight")
        print(f"pick_crops: saved {path}")
