"""The logic of `robot-rl calibrate`: the set-up tools an operator runs once per robot cell, before
training on a real robot. Pure Python and numpy (no rclpy): ros_nodes/calibrate.py subscribes,
asks the operator, and calls what is here.

  cell file    update_cell_file merges results into a Hydra config-group option file of the `cell`
               group (configs/cell/<name>.yaml, `# @package _global_`), picked with `cell=<name>`:
               measured values live beside the config tree, never edited into it by hand.
  workspace    WorkspaceRecorder: TCP positions recorded while the operator guides the arm to the
               corners (or along the edges) of the region it may work in -> robot.workspace_low/high.
  crops        crop_from_rectangle: a rectangle drawn on a camera frame -> the aggregator's crop
               (ros.aggregator.cameras.<cam>.crop), grown to the observation's aspect ratio.
  doctor       expected_streams: every sensor topic the aggregator and safety nodes of the composed
               config subscribe to (names after the namespace and ros.remappings, type, the rate
               they need, what the content must look like); StreamReport: what arrived on one
               topic; evaluate: a table of verdicts, OK / MISSING / WRONG TYPE / TOO SLOW / BAD.
  tare         tare_result: does the force read ~0 after the F/T sensor's tare?
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from omegaconf import DictConfig, OmegaConf

# Cell file ----------------------------------------------------------------------------------------
CELL_HEADER = "# @package _global_"  # the option's keys are top-level keys of the composed config


def _plain(value: Any, key: str) -> Any:
    """`value` as YAML-able Python (numpy scalars and arrays included); refuses NaN/inf."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v, key) for v in list(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}: {value} cannot go into a cell file")
    return value


def _leaf_keys(tree: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            keys += _leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def update_cell_file(path: str | Path, updates: Mapping, tool: str = "robot-rl calibrate") -> None:
    """Merge `updates` (nested keys of the composed config, e.g. {"robot": {"workspace_low": [...]}})
    into the cell file at `path`, creating it (and its folder) if needed. Other keys stay; lists
    are replaced, not merged. The file starts with CELL_HEADER, then one comment line per update
    (when, which tool, which keys) after those of earlier updates; comments elsewhere are not kept.
    Written to a temporary file in the same folder, then renamed over the old one: a crash leaves
    the old file or the new one, never half of one."""
    path = Path(path)
    if not isinstance(updates, Mapping) or not updates:
        raise ValueError(f"updates for {path}: need a non-empty mapping of config keys, got {updates!r}")
    plain = _plain(updates, "")
    history: list[str] = []
    current = OmegaConf.create()
    if path.exists():
        text = path.read_text()
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            if line.strip() != CELL_HEADER:
                history.append(line)
        loaded = OmegaConf.create(text) if text.strip() else OmegaConf.create()
        if not isinstance(loaded, DictConfig):
            raise ValueError(f"{path}: a cell file holds a mapping of config keys, this one holds a list")
        current = loaded
    merged = OmegaConf.merge(current, OmegaConf.create(plain))
    when = datetime.now().astimezone().isoformat(timespec="seconds")
    history.append(f"# {when} {tool}: {', '.join(_leaf_keys(plain))}")
    text = "\n".join([CELL_HEADER, *history, OmegaConf.to_yaml(merged)])

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# Workspace ----------------------------------------------------------------------------------------
AXES = ("x", "y", "z")
MIN_BOX_SIZE_M = 0.02  # thinner along an axis: a corner recorded twice, or points in mixed-up frames
MAX_BOX_SIZE_M = 3.0  # wider: positions in mm, or in another frame; no arm here reaches that far


class WorkspaceRecorder:
    """TCP positions [x y z] (m, robot base frame) recorded at the corners or along the edges of
    the region the arm may work in; `box` is the axis-aligned box around them."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []

    def add(self, position: Sequence[float] | np.ndarray) -> int:
        """Record one position; how many are recorded now."""
        point = np.asarray(position, dtype=np.float64)
        if point.shape != (3,):
            raise ValueError(f"a TCP position is [x, y, z], got shape {point.shape}")
        if not np.all(np.isfinite(point)):
            raise ValueError(f"a TCP position must be finite, got {point.tolist()}")
        self.points.append(point)
        return len(self.points)

    def box(self, margin: float) -> tuple[list[float], list[float]]:
        """(low, high): per axis the recorded min and max, each moved `margin` m inward (the arm's
        target stays that far inside what the operator showed). Refuses a box the points cannot
        mean: fewer than two distinct points, thinner than MIN_BOX_SIZE_M or wider than
        MAX_BOX_SIZE_M along an axis, or a margin that leaves less than MIN_BOX_SIZE_M."""
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"margin: must be a finite number of metres >= 0, got {margin}")
        distinct = np.unique(np.array(self.points).reshape(-1, 3), axis=0)
        if len(distinct) < 2:
            raise ValueError(
                f"a workspace box needs at least 2 distinct positions, got {len(distinct)} "
                f"(of {len(self.points)} recorded): move the arm to opposite corners and record each"
            )
        low, high = distinct.min(axis=0), distinct.max(axis=0)
        for axis, size in zip(AXES, high - low, strict=True):
            if size < MIN_BOX_SIZE_M:
                raise ValueError(
                    f"the recorded positions span only {size * 100:.1f} cm along {axis} "
                    f"(< {MIN_BOX_SIZE_M * 100:.0f} cm): record corners that differ along every axis "
                    "(a corner recorded twice? the pose in another frame?)"
                )
            if size > MAX_BOX_SIZE_M:
                raise ValueError(
                    f"the recorded positions span {size:.2f} m along {axis} (> {MAX_BOX_SIZE_M} m): "
                    "are the positions in mm, or in another frame than the robot base?"
                )
        low, high = low + margin, high - margin
        for axis, size in zip(AXES, high - low, strict=True):
            if size < MIN_BOX_SIZE_M:
                raise ValueError(
                    f"a margin of {margin} m on each side leaves {size * 100:.1f} cm along {axis} "
                    f"(< {MIN_BOX_SIZE_M * 100:.0f} cm): use a smaller margin or a larger region"
                )
        return [round(float(v), 4) for v in low], [round(float(v), 4) for v in high]


# Crops --------------------------------------------------------------------------------------------
def crop_from_rectangle(
    x0: float, y0: float, x1: float, y1: float, frame_width: int, frame_height: int, target_aspect: float
) -> list[int]:
    """The crop [x0, y0, x1, y1] (integer source pixels, x1/y1 exclusive, as AggregatorCameraConfig
    takes it) for a rectangle drawn on a `frame_width` x `frame_height` frame: the rectangle (its
    corners in either order, widened to whole pixels) clipped to the frame, then grown about its
    centre along its short side to `target_aspect` (the observation's width / height) and shifted
    back inside the frame, so the resize to the observation neither distorts nor drops any of it.
    Raises ValueError for an empty rectangle, or one that needs a larger region than the frame."""
    if not (frame_width > 0 and frame_height > 0):
        raise ValueError(f"frame size must be positive, got {frame_width}x{frame_height}")
    if not (math.isfinite(target_aspect) and target_aspect > 0):
        raise ValueError(f"target_aspect (width / height) must be > 0, got {target_aspect}")
    corners = (x0, y0, x1, y1)
    if not all(math.isfinite(v) for v in corners):
        raise ValueError(f"rectangle {list(corners)}: corners must be finite numbers")
    left = max(0, math.floor(min(x0, x1)))
    right = min(frame_width, math.ceil(max(x0, x1)))
    top = max(0, math.floor(min(y0, y1)))
    bottom = min(frame_height, math.ceil(max(y0, y1)))
    if right <= left or bottom <= top:
        raise ValueError(
            f"rectangle {list(corners)} is empty within the {frame_width}x{frame_height} frame: "
            "draw one with a width and a height inside the frame"
        )
    width, height = right - left, bottom - top
    if width / height < target_aspect:
        width = round(height * target_aspect)
    else:
        height = round(width / target_aspect)
    if width > frame_width or height > frame_height:
        raise ValueError(
            f"rectangle [{left}, {top}, {right}, {bottom}] grown to the observation's aspect ratio "
            f"{target_aspect:.3g} needs {width}x{height} pixels, more than the {frame_width}x{frame_height} "
            "frame: draw a smaller one, closer to that aspect ratio"
        )

    def place(low: int, high: int, size: int, limit: int) -> int:
        # floor: the grown region starts at or before `low` and so ends at or after `high`
        start = math.floor((low + high) / 2 - size / 2)
        return min(max(start, 0), limit - size)

    new_left, new_top = place(left, right, width, frame_width), place(top, bottom, height, frame_height)
    return [new_left, new_top, new_left + width, new_top + height]


# Doctor -------------------------------------------------------------------------------------------
CAMERA, COMPRESSED, WRENCH, POSE, TWIST, JOINTS, PRIVILEGED = (
    "camera",
    "compressed",
    "wrench",
    "pose",
    "twist",
    "joints",
    "privileged",
)
MESSAGE_TYPES = {
    CAMERA: "sensor_msgs/msg/Image",
    COMPRESSED: "sensor_msgs/msg/CompressedImage",
    WRENCH: "geometry_msgs/msg/WrenchStamped",
    POSE: "geometry_msgs/msg/PoseStamped",
    TWIST: "geometry_msgs/msg/TwistStamped",
    JOINTS: "sensor_msgs/msg/JointState",
    PRIVILEGED: "std_msgs/msg/UInt8MultiArray",
}
# What ros_nodes/convert.py reads: Image encodings (COLOR_ENCODINGS) and CompressedImage codecs.
IMAGE_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
COMPRESSED_CODECS = ("jpeg", "jpg", "png")
SLOW_FRACTION = 0.8  # a stream below this fraction of its needed rate is TOO SLOW
QUAT_NORM_TOLERANCE = 1e-3  # as the nodes accept (ros_nodes/convert.py)
# The arm may rest a little outside the box (e.g. at its home pose above it); a pose further off
# than this is a frame or unit mix-up, not a position.
WORKSPACE_TOLERANCE_M = 0.25
MAX_PLAUSIBLE_FORCE_N = 1000.0  # beyond any wrist F/T load: counts not converted, or wrong units
OK, MISSING, WRONG_TYPE, TOO_SLOW, BAD = "OK", "MISSING", "WRONG TYPE", "TOO SLOW", "BAD"


@dataclass(frozen=True)
class ExpectedStream:
    """One sensor topic of the graph as its nodes subscribe to it, and what it must carry."""

    topic: str  # fully qualified, after the namespace and ros.remappings
    kind: str  # CAMERA, COMPRESSED, WRENCH, POSE, TWIST, JOINTS or PRIVILEGED
    namespace: str  # the robot's ("" for the root)
    min_rate_hz: float  # 0: not checked (the twin in lockstep publishes at the actor's pace)
    rate_reason: str  # which config value needs that rate
    publisher: str  # who normally publishes it, for the MISSING verdict
    lockstep: bool = False  # the graph subscribes RELIABLE + TRANSIENT_LOCAL (the twin in lockstep)
    camera: str = ""  # CAMERA / COMPRESSED: which camera
    crop: tuple[int, ...] = ()  # CAMERA: the configured crop, which must lie inside the frame
    frame_id: str = ""  # the header.frame_id the nodes require ("" any)
    frame_key: str = ""  # the config key that sets frame_id
    workspace: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # POSE: (low, high)
    joint_names: tuple[str, ...] = ()  # JOINTS: names each message must hold

    @property
    def message_type(self) -> str:
        return MESSAGE_TYPES[self.kind]

    @property
    def encodings(self) -> tuple[str, ...]:
        """Images: the encodings the aggregator reads; compressed images: the codecs in their format."""
        return {CAMERA: IMAGE_ENCODINGS, COMPRESSED: COMPRESSED_CODECS}.get(self.kind, ())

    @property
    def depth(self) -> int:
        """The history depth the aggregator subscribes with (as ros_nodes/aggregator_node.py)."""
        return {CAMERA: 2, COMPRESSED: 2, WRENCH: 100}.get(self.kind, 10)


def _expand(name: str, namespace: str) -> str:
    return name if name.startswith("/") else f"{namespace.rstrip('/')}/{name}"


def resolve_name(name: str, namespace: str, remappings: Sequence[str], nodes: Sequence[str] = ()) -> str:
    """The fully qualified name a node in `namespace` uses for `name`, after the remapping rules
    ("old:=new") as rcl applies them: both sides expanded in the node's namespace, the first rule
    that matches wins. Rules for one node ("aggregator:old:=new") count when the node is in `nodes`;
    special rules (__ns, __node, ...) are not about names and are skipped."""
    full = _expand(name, namespace)
    for rule in remappings:
        old, _, new = rule.partition(":=")
        node, _, match = old.rpartition(":")
        if match.startswith("__") or (node and node not in nodes):
            continue
        if _expand(match, namespace) == full:
            return _expand(new, namespace)
    return full


def expected_streams(config) -> list[ExpectedStream]:
    """Every sensor stream of the composed robot_rl.config.Config's graph, per robot namespace, as
    ros_nodes/aggregator_node.py and ros_nodes/safety_node.py subscribe to them: the aggregator's
    (cameras of ros.aggregator_for(sim), the wrench, the pose, the twist unless twist_from_pose, the
    joint states, the twin's sim/privileged) and the safety node's camera image_raw topics. The
    needed rate in timer mode: a sample within the aggregator's staleness limit (max_age) at every
    control tick, and the F/T driver's wrench_hz; none in lockstep."""
    ros = config.ros
    aggregator = ros.aggregator_for(config.sim)
    lockstep = aggregator.tick == "stamped"
    safety = ros.safety
    streams: dict[str, ExpectedStream] = {}

    def need(max_age_key: str) -> tuple[float, str]:
        max_age = getattr(aggregator.max_age, max_age_key)
        rate = max(aggregator.control_hz, 1.0 / max_age)
        return rate, f"ros.aggregator.max_age.{max_age_key}={max_age:g} s"

    def add(namespace: str, name: str, kind: str, nodes: Sequence[str], rate: tuple[float, str], **checks) -> None:
        topic = resolve_name(name, namespace, ros.remappings, nodes)
        min_rate, reason = (0.0, "lockstep: paced by the actor") if lockstep else rate
        known = streams.get(topic)
        if known is not None and known.kind == kind:  # one topic, two subscribers: the stricter rate
            if min_rate > known.min_rate_hz:
                streams[topic] = replace(known, min_rate_hz=min_rate, rate_reason=reason)
            return
        publisher = _publisher(kind, namespace, ros.twin, checks.get("camera", ""))
        streams[topic] = ExpectedStream(topic, kind, namespace, min_rate, reason, publisher, lockstep, **checks)

    for ns in ros.namespaces:
        for cam, cam_cfg in aggregator.cameras.items():
            raw = f"cameras/{cam}/image_raw"
            if cam_cfg.compressed:
                add(ns, f"{raw}/compressed", COMPRESSED, ["aggregator"], need("camera"), camera=cam)
            else:
                add(ns, raw, CAMERA, ["aggregator"], need("camera"), camera=cam, crop=tuple(cam_cfg.crop))
        camera_rate = (1.0 / safety.camera_timeout, f"ros.safety.camera_timeout={safety.camera_timeout:g} s")
        for cam in safety.cameras:
            add(ns, f"cameras/{cam}/image_raw", CAMERA, ["safety"], camera_rate, camera=cam)
        wrench_rate = (aggregator.wrench_hz, f"ros.aggregator.wrench_hz={aggregator.wrench_hz:g}")
        ft = {"frame_id": aggregator.ft_frame, "frame_key": "ros.aggregator.ft_frame"}
        add(ns, "ft_sensor/wrench", WRENCH, ["aggregator", "safety"], wrench_rate, **ft)
        base = {"frame_id": aggregator.base_frame, "frame_key": "ros.aggregator.base_frame"}
        workspace = (tuple(safety.workspace_low), tuple(safety.workspace_high))
        add(ns, "tcp/pose", POSE, ["aggregator", "safety"], need("pose"), workspace=workspace, **base)
        if not aggregator.twist_from_pose:
            add(ns, "tcp/twist", TWIST, ["aggregator"], need("twist"), **base)
        add(ns, "joint_states", JOINTS, ["aggregator"], need("joints"), joint_names=tuple(aggregator.gripper_joints))
        if aggregator.privileged:
            add(ns, "sim/privileged", PRIVILEGED, ["aggregator"], need("privileged"))
    return list(streams.values())


def _publisher(kind: str, namespace: str, twin: bool, camera: str) -> str:
    """Who normally publishes a stream of this kind, for a MISSING verdict."""
    if twin or kind == PRIVILEGED:
        return "the twin (robot-rl-twin, or `robot-rl graph` with ros.twin=true)"
    where = f"in namespace {namespace or '/'}"
    if kind in (CAMERA, COMPRESSED):
        return f"a camera driver (robot-rl-uvc-camera in namespace {namespace}/cameras/{camera})"
    if kind == WRENCH:
        return f"the F/T driver (robot-rl-netft) {where}"
    return f"the robot's driver {where} (ros.remappings renames its topic to this one)"


@dataclass
class StreamReport:
    """What arrived on one topic while the doctor listened: receipt times (s, any monotonic clock),
    header frame ids, and per kind of message what its checks need. The add_* methods are cheap
    (plain Python): a 1 kHz wrench stream calls them once per message."""

    topic: str
    messages: int = 0
    first_s: float | None = None
    last_s: float | None = None
    max_gap_s: float = 0.0
    frame_ids: set[str] = field(default_factory=set)
    encodings: set[str] = field(default_factory=set)  # Image encodings or CompressedImage formats
    frame_sizes: set[tuple[int, int]] = field(default_factory=set)  # (width, height) of Images
    joint_names: set[str] = field(default_factory=set)
    nonfinite: int = 0  # messages with a NaN or inf value
    worst_quaternion_norm: float = 1.0  # the orientation norm furthest from 1
    position_low: list[float] | None = None  # per axis over the poses
    position_high: list[float] | None = None
    max_force_n: float = 0.0  # the largest force norm
    published_types: list[str] = field(default_factory=list)  # what the topic's publishers offer

    @property
    def rate_hz(self) -> float:
        """Messages per second between the first and the last arrival (0 with fewer than two)."""
        if self.messages < 2 or self.last_s <= self.first_s:
            return 0.0
        return (self.messages - 1) / (self.last_s - self.first_s)

    def add(self, received_s: float, frame_id: str | None = None) -> None:
        if self.last_s is not None:
            self.max_gap_s = max(self.max_gap_s, received_s - self.last_s)
        else:
            self.first_s = received_s
        self.last_s = received_s
        self.messages += 1
        if frame_id is not None:
            self.frame_ids.add(frame_id)

    def add_image(self, received_s: float, frame_id: str, encoding: str, width: int = 0, height: int = 0) -> None:
        self.add(received_s, frame_id)
        self.encodings.add(encoding)
        if width and height:
            self.frame_sizes.add((width, height))

    def add_pose(
        self, received_s: float, frame_id: str, position: Sequence[float], quaternion: Sequence[float]
    ) -> None:
        self.add(received_s, frame_id)
        if not all(map(math.isfinite, (*position, *quaternion))):
            self.nonfinite += 1
            return
        norm = math.sqrt(sum(q * q for q in quaternion))
        if abs(norm - 1.0) > abs(self.worst_quaternion_norm - 1.0):
            self.worst_quaternion_norm = norm
        if self.position_low is None:
            self.position_low, self.position_high = list(position), list(position)
        else:
            self.position_low = [min(a, b) for a, b in zip(self.position_low, position, strict=True)]
            self.position_high = [max(a, b) for a, b in zip(self.position_high, position, strict=True)]

    def add_wrench(self, received_s: float, frame_id: str, wrench: Sequence[float]) -> None:
        self.add(received_s, frame_id)
        if not all(map(math.isfinite, wrench)):
            self.nonfinite += 1
            return
        self.max_force_n = max(self.max_force_n, math.hypot(wrench[0], wrench[1], wrench[2]))

    def add_values(self, received_s: float, frame_id: str, values: Sequence[float]) -> None:
        """A message whose only content check is that its numbers are finite (a twist)."""
        self.add(received_s, frame_id)
        if not all(map(math.isfinite, values)):
            self.nonfinite += 1

    def add_joint_state(self, received_s: float, frame_id: str, names: Sequence[str]) -> None:
        self.add(received_s, frame_id)
        self.joint_names.update(names)

    def problems(self, expected: ExpectedStream) -> list[str]:
        """What is wrong with the content that arrived, as the graph's nodes would see it."""
        found = []
        if expected.frame_id and self.frame_ids and self.frame_ids != {expected.frame_id}:
            others = sorted(self.frame_ids - {expected.frame_id})
            found.append(f"frame_id {', '.join(map(repr, others))}, but {expected.frame_key}={expected.frame_id!r}")
        if self.nonfinite:
            found.append(f"{self.nonfinite} messages with NaN/inf")
        if expected.kind == CAMERA:
            unsupported = sorted(self.encodings - set(expected.encodings))
            if unsupported:
                found.append(
                    f"encoding {', '.join(unsupported)} not supported (valid: {', '.join(expected.encodings)})"
                )
            if expected.crop:
                x0, y0, x1, y1 = expected.crop
                for width, height in sorted(self.frame_sizes):
                    if x1 > width or y1 > height:
                        found.append(f"crop {list(expected.crop)} lies outside the {width}x{height} frame")
        if expected.kind == COMPRESSED:
            unreadable = sorted(f for f in self.encodings if not any(c in f.lower() for c in expected.encodings))
            if unreadable:
                found.append(
                    f"format {', '.join(map(repr, unreadable))} is no codec the aggregator decodes (jpeg, png)"
                )
        if expected.kind == POSE:
            if abs(self.worst_quaternion_norm - 1.0) > QUAT_NORM_TOLERANCE:
                found.append(f"orientation is not a unit quaternion (norm {self.worst_quaternion_norm:.4g})")
            if expected.workspace and self.position_low is not None:
                low, high = (np.asarray(v) for v in expected.workspace)
                outside = np.maximum(low - np.asarray(self.position_low), np.asarray(self.position_high) - high)
                if outside.max() > WORKSPACE_TOLERANCE_M:
                    axis = AXES[int(outside.argmax())]
                    found.append(
                        f"position {outside.max():.2f} m outside the workspace box along {axis} "
                        f"(seen {np.round(self.position_low, 3).tolist()}..{np.round(self.position_high, 3).tolist()}):"
                        " check frames/units"
                    )
        if expected.kind == WRENCH and self.max_force_n > MAX_PLAUSIBLE_FORCE_N:
            found.append(f"force up to {self.max_force_n:.0f} N: units? counts not converted?")
        if expected.kind == JOINTS:
            missing = [name for name in expected.joint_names if name not in self.joint_names]
            if missing:
                names = ", ".join(sorted(self.joint_names))
                found.append(f"no {', '.join(missing)} (ros.aggregator.gripper_joints); names: {names}")
        return found


def _verdict(expected: ExpectedStream, report: StreamReport) -> tuple[str, str]:
    wrong = [kind for kind in report.published_types if kind != expected.message_type]
    if wrong:
        return WRONG_TYPE, f"published as {', '.join(wrong)}; the graph reads {expected.message_type}"
    if report.messages == 0:
        if report.published_types:
            qos = "reliable + transient local" if expected.lockstep else "best effort"
            return MISSING, f"a publisher exists but nothing arrived: does its QoS offer what the graph asks ({qos})?"
        return MISSING, f"nothing published; normally from {expected.publisher}"
    problems = report.problems(expected)
    if problems:
        return BAD, "; ".join(problems)
    if expected.min_rate_hz and report.rate_hz < SLOW_FRACTION * expected.min_rate_hz:
        return TOO_SLOW, (
            f"{report.rate_hz:.1f} Hz < {expected.min_rate_hz:g} Hz needed ({expected.rate_reason}); "
            f"longest gap {report.max_gap_s:.2f} s"
        )
    seen = sorted(report.frame_ids) + sorted(report.encodings)
    return OK, ", ".join(seen)


def evaluate(expected: Sequence[ExpectedStream], observations: Mapping[str, StreamReport]) -> tuple[list[str], bool]:
    """The doctor's table, one line per expected stream (verdict, topic, type, measured / needed
    rate, details), then a summary line; and whether every stream is OK. `observations` maps topics
    to their reports; a topic without one had nothing at all."""
    rows = []
    for stream in expected:
        report = observations.get(stream.topic) or StreamReport(stream.topic)
        verdict, detail = _verdict(stream, report)
        rows.append((verdict, stream.topic, stream.message_type.split("/")[-1], _rate_text(stream, report), detail))
    table = [("STATUS", "TOPIC", "TYPE", "HZ SEEN / NEEDED", "DETAILS"), *rows]
    widths = [max(len(row[column]) for row in table) for column in range(4)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4]]).rstrip()
        for row in table
    ]
    failing = sum(row[0] != OK for row in rows)
    lines.append(f"all {len(rows)} streams OK" if not failing else f"{failing} of {len(rows)} streams need attention")
    return lines, failing == 0


def _rate_text(stream: ExpectedStream, report: StreamReport) -> str:
    if not stream.min_rate_hz:
        return f"{report.messages} msgs"
    seen = f"{report.rate_hz:.1f}" if report.messages > 1 else "-"
    return f"{seen} / {stream.min_rate_hz:g}"


# Tare ---------------------------------------------------------------------------------------------
class TareResult(NamedTuple):
    ok: bool
    message: str


def _forces(samples: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 6 or len(array) == 0:
        raise ValueError(f"{name}: need wrench samples [N, 6] (fx fy fz tx ty tz) with N >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: the wrench samples hold NaN/inf")
    return array[:, :3]


def tare_result(before: np.ndarray, after: np.ndarray, tolerance_n: float) -> TareResult:
    """Whether the force reads ~0 after the F/T sensor's tare: the mean force's norm over the
    samples `after` within `tolerance_n`, and their spread (the norm of the per-axis standard
    deviations) within it too (a hand on the tool, or an arm still moving, reads neither ~0 nor
    steady). `before` is for the message: how much bias the tare took off."""
    if not (math.isfinite(tolerance_n) and tolerance_n > 0):
        raise ValueError(f"tolerance_n: must be > 0 N, got {tolerance_n}")
    force_before, force_after = _forces(before, "before"), _forces(after, "after")
    bias_before = float(np.linalg.norm(force_before.mean(axis=0)))
    bias_after = float(np.linalg.norm(force_after.mean(axis=0)))
    spread = float(np.linalg.norm(force_after.std(axis=0)))
    numbers = (
        f"|mean force| {bias_before:.2f} N before, {bias_after:.2f} N after ({len(force_after)} samples, "
        f"spread {spread:.2f} N; tolerance {tolerance_n:g} N)"
    )
    if bias_after > tolerance_n:
        return TareResult(
            False,
            f"tare FAILED: the force still reads {bias_after:.2f} N: {numbers}. Did the driver apply the bias? "
            "Nothing may touch the tool during the tare.",
        )
    if spread > tolerance_n:
        return TareResult(False, f"tare UNSURE: the force is not steady: {numbers}. Keep the arm and tool still.")
    return TareResult(True, f"tare OK: {numbers}")
