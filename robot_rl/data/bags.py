"""Episodes as ROS 2 bags (rosbag2 with MCAP storage) that ros2 bag, Foxglove and rosbags open: what
the episode recorder writes (ros_nodes/recorder_node.py), and how recorded demos and labels come back
as robot_rl.data.demos.Episode. Written and read with the pure-Python `rosbags` and its own type store
(CDR without rclpy).

One bag per episode: a folder <directory>/<episode id>/ holding <episode id>.mcap and, once closed,
metadata.yaml, as `ros2 bag record -s mcap` lays them out. The metadata is rosbag2 version 8, which
Jazzy's ros2 bag reads and Kilted's too (version 9 changed how QoS is stored, which Jazzy refuses).
Standard message types only (their Jazzy definitions, unchanged in Kilted):

  /episode/cameras/<cam>   sensor_msgs/Image, rgb8, frame_id <cam>_camera
  /episode/tcp_pose        geometry_msgs/PoseStamped, frame_id `base_frame`
  /episode/tcp_vel         geometry_msgs/TwistStamped, frame_id `base_frame`
  /episode/wrench          geometry_msgs/WrenchStamped, frame_id `ft_frame`: the mean force and torque
  /episode/state           std_msgs/Float32MultiArray: the rest of the state, exactly: the 12-D wrench
                           statistic, the gripper and, where the observation has it, the twin's task
                           state, named with their sizes by the layout's label: "wrench:12,gripper:1"
                           or "wrench:12,gripper:1,task:3"
  /episode/action          std_msgs/Float32MultiArray, label [dx dy dz drx dry drz gripper]: executed
  /episode/policy_action   std_msgs/Float32MultiArray: what the policy proposed
  /episode/reward          std_msgs/Float32
  /episode/intervened      std_msgs/Bool: the operator's action was the one executed
  /episode/success         std_msgs/Bool: the episode's success label as known at that step
  /episode/end             std_msgs/String, JSON {"episode", "steps", "terminated", "truncated",
                           "success", "ended", "reason"}, once after the last step; "ended" false: the
                           recording was closed before the episode ended ("reason" says why), and the
                           episode counts as truncated
The pose, twist and float arrays carry the float32 observation exactly (float32 -> float64 -> float32
is lossless), so reading a bag gives back the very observations that were recorded.

Timeline. Observations are logged, and their headers stamped, at their own time: a step's next_obs
at the step's stamp_ns, together with what happened in that step (action, policy_action, reward,
intervened, success), so the row at time t reads "the step that ended at t did this, earned that and
led here". The episode's first observation is logged 1 ns before the first step: a StepMessage does
not carry its capture time. Each observation is written once; step k's obs is step k-1's next_obs,
as the actor builds them.

Crash safety. rosbags' MCAP writer keeps messages in memory until a 1 MiB chunk fills, and writes the
MCAP summary, the footer and metadata.yaml only when closed: a recorder killed mid-episode would leave
an empty file. EpisodeBagWriter therefore closes a chunk after every step and flushes it to the OS, so
that each step (its observation, action and labels; with the last step the end record too) is one MCAP
chunk record, in the file before write_step returns. A process killed at any point (SIGKILL, a crash)
leaves <id>.mcap holding every step whose write_step returned, maybe followed by part of a record, and
no metadata.yaml. read_episode_bag reads such a bag by walking its whole records (the MCAP framing:
https://mcap.dev/spec) and dropping the cut-off tail: every written step comes back, and the episode
is marked as not ended (truncated, Episode.ended False) unless its end record was written. Only a
closed bag is fsynced: a power cut can also lose what the OS had not yet written back, and the reader
then stops at the first hole. Foxglove opens such an .mcap as it is; tools that need the summary can
use one rebuilt by the mcap CLI (`mcap recover`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from robot_rl import spec
from robot_rl.data.demos import Episode
from robot_rl.robot.messages import StepMessage, check_observation
from robot_rl.sim.config import ConfigError

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
ROSBAG2_VERSION = 8  # see the module docstring

IMAGE = "sensor_msgs/msg/Image"
POSE = "geometry_msgs/msg/PoseStamped"
TWIST = "geometry_msgs/msg/TwistStamped"
WRENCH_STAMPED = "geometry_msgs/msg/WrenchStamped"
FLOATS = "std_msgs/msg/Float32MultiArray"
FLOAT = "std_msgs/msg/Float32"
BOOL = "std_msgs/msg/Bool"
STRING = "std_msgs/msg/String"

CAMERA_PREFIX = "/episode/cameras/"
TCP_POSE, TCP_VEL, WRENCH, STATE = "/episode/tcp_pose", "/episode/tcp_vel", "/episode/wrench", "/episode/state"
ACTION, POLICY_ACTION, REWARD = "/episode/action", "/episode/policy_action", "/episode/reward"
INTERVENED, SUCCESS, END = "/episode/intervened", "/episode/success", "/episode/end"
STATE_TOPICS = {TCP_POSE: POSE, TCP_VEL: TWIST, WRENCH: WRENCH_STAMPED, STATE: FLOATS}
STEP_TOPICS = {ACTION: FLOATS, POLICY_ACTION: FLOATS, REWARD: FLOAT, INTERVENED: BOOL, SUCCESS: BOOL}
END_KEYS = ("episode", "steps", "terminated", "truncated", "success", "ended", "reason")
ARRAY_STATE_KEYS = ("wrench", "gripper")  # in /episode/state, then "task" when present
EPISODE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # usable as a folder name as it is
CAMERA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # usable in a topic name

_types = TYPESTORE.types
Header, Time = _types["std_msgs/msg/Header"], _types["builtin_interfaces/msg/Time"]
Image, PoseStamped, TwistStamped, WrenchStamped = _types[IMAGE], _types[POSE], _types[TWIST], _types[WRENCH_STAMPED]
Pose, Point, Quaternion = (
    _types["geometry_msgs/msg/Pose"],
    _types["geometry_msgs/msg/Point"],
    _types["geometry_msgs/msg/Quaternion"],
)
Twist, Wrench, Vector3 = (
    _types["geometry_msgs/msg/Twist"],
    _types["geometry_msgs/msg/Wrench"],
    _types["geometry_msgs/msg/Vector3"],
)
Float32MultiArray, Float32, Bool, String = _types[FLOATS], _types[FLOAT], _types[BOOL], _types[STRING]
MultiArrayLayout, MultiArrayDimension = (
    _types["std_msgs/msg/MultiArrayLayout"],
    _types["std_msgs/msg/MultiArrayDimension"],
)

_logger = logging.getLogger(__name__)


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


@dataclass
class RecorderConfig:
    """The episode recorder (ros_nodes/recorder_node.py): where its bags go and what they hold."""

    directory: str = "episodes"  # one bag folder per episode in here (created if missing)
    cameras: list[str] | None = None  # cameras to record; None: every camera of the observation
    base_frame: str = "panda_link0"  # frame_id of the recorded TCP pose and twist
    ft_frame: str = "panda_ft_sensor"  # frame_id of the recorded wrench

    def validate(self, key: str = "recorder") -> None:
        _check(bool(self.directory), f"{key}.directory", "must name a folder")
        if self.cameras is not None:
            for cam in self.cameras:
                _check(bool(CAMERA_NAME.fullmatch(cam)), f"{key}.cameras", f"{cam!r} is not usable in a topic name")
            _check(len(set(self.cameras)) == len(self.cameras), f"{key}.cameras", f"repeats a camera: {self.cameras}")
        for name in ("base_frame", "ft_frame"):
            _check(bool(getattr(self, name)), f"{key}.{name}", "must name a frame")


# writing ------------------------------------------------------------------------------------------
def _header(stamp_ns: int, frame_id: str):
    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


def _floats(values: np.ndarray, label: str):
    data = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    dim = MultiArrayDimension(label=label, size=data.size, stride=data.size)
    return Float32MultiArray(layout=MultiArrayLayout(dim=[dim], data_offset=0), data=data)


def _state_label(state: dict) -> str:
    keys = [*ARRAY_STATE_KEYS, "task"] if "task" in state else list(ARRAY_STATE_KEYS)
    return ",".join(f"{key}:{state[key].size}" for key in keys)


def check_episode_id(episode) -> None:
    """Refuse an episode id that is not a plain folder name (no path: "../x", "a/b")."""
    if not isinstance(episode, str) or not EPISODE_ID.fullmatch(episode):
        raise ValueError(f"step.episode: {episode!r} is not usable as a folder name")


def _check_action(values, field: str) -> None:
    array = np.asarray(values)
    if array.shape != (spec.ACTION_DIM,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{field}: expected {spec.ACTION_DIM} finite numbers {spec.ACTION_LAYOUT}, got {values}")


class EpisodeBagWriter:
    """One episode into a new bag folder `path`: write_step for each executed step in order, then close
    (or use it as a context manager). The episode's id, cameras (`cameras`, default: those of its first
    observation) and state layout are fixed by its first step; a step that does not continue the
    episode raises ValueError naming the field, and nothing of it is written. A writer that never got
    a step leaves nothing on disk."""

    def __init__(
        self,
        path: Path | str,
        cameras: Sequence[str] | None = None,
        base_frame: str = "panda_link0",
        ft_frame: str = "panda_ft_sensor",
    ):
        self.path = Path(path)
        if self.path.exists():
            raise ValueError(f"{self.path}: exists already; a bag is never overwritten")
        self.cameras = None if cameras is None else list(cameras)
        self.base_frame, self.ft_frame = base_frame, ft_frame
        self.episode: str | None = None
        self.steps = 0
        self.ended = False  # the end record is written: the episode is over
        self.closed = False
        self.success = False  # the episode's success label as known now
        self._marked_success = False
        self._state_label = ""
        self._last_stamp = -1
        self._writer: Writer | None = None
        self._mcap_path: Path | None = None
        self._connections: dict[str, object] = {}

    def __enter__(self) -> EpisodeBagWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close("closed before the episode ended" if exc is None else f"the recording failed: {exc!r}")

    def mark_success(self) -> None:
        """The operator says the episode succeeded: the next steps and the end record carry success."""
        self._marked_success = self.success = True

    def write_step(self, step: StepMessage) -> None:
        """Append one executed step and flush it to the OS; a terminated or truncated step also writes
        the end record (in the same chunk)."""
        if self.closed:
            raise RuntimeError(f"{self.path}: the bag is closed")
        first = self.episode is None
        cameras = self._check_step(step, first)
        if first:
            self.cameras, self._state_label = cameras, _state_label(step.obs["state"])
        stamp = step.stamp_ns
        records = self._observation(step.obs, stamp - 1) if first else []
        records += self._observation(step.next_obs, stamp)
        success = bool(step.success) or self._marked_success
        records += [
            (ACTION, stamp, _floats(step.action, spec.ACTION_LAYOUT)),
            (POLICY_ACTION, stamp, _floats(step.policy_action, spec.ACTION_LAYOUT)),
            (REWARD, stamp, Float32(data=float(step.reward))),
            (INTERVENED, stamp, Bool(data=bool(step.intervened))),
            (SUCCESS, stamp, Bool(data=success)),
        ]
        ended = bool(step.terminated or step.truncated)
        if ended:
            records.append((END, stamp, self._end(step.episode, self.steps + 1, step, success, "")))
        serialized = [(topic, t, TYPESTORE.serialize_cdr(msg, msg.__msgtype__)) for topic, t, msg in records]
        if first:
            self._open(step.episode)
        self._write(serialized)
        self.episode, self.success, self.ended, self._last_stamp = step.episode, success, ended, stamp
        self.steps += 1

    def close(self, reason: str = "closed before the episode ended") -> None:
        """Finish the bag: the MCAP summary and metadata.yaml, fsynced. An episode that has not ended
        gets its end record now: truncated, not ended, `reason` saying why."""
        if self.closed:
            return
        self.closed = True
        if self._writer is None:
            return
        if not self.ended:
            end = self._end(self.episode, self.steps, None, self.success, reason)
            self._write([(END, self._last_stamp, TYPESTORE.serialize_cdr(end, STRING))])
        self._writer.close()
        for written in (self._mcap_path, self.path / "metadata.yaml", self.path):
            _fsync(written)

    # internals ------------------------------------------------------------------------------
    def _check_step(self, step: StepMessage, first: bool) -> list[str]:
        """The cameras the step's observations are recorded with; ValueError for a step that does not
        continue this episode."""
        if self.ended:
            raise ValueError(f"step.episode: {self.episode!r} already ended with step {self.steps - 1}")
        if first:
            check_episode_id(step.episode)
            if step.stamp_ns < 1:  # the first observation goes 1 ns before it
                raise ValueError(f"step.stamp_ns: the first step must be stamped after 0 ns, got {step.stamp_ns}")
        elif step.episode != self.episode:
            raise ValueError(f"step.episode: {step.episode!r}, but this bag records {self.episode!r}")
        if step.step != self.steps:
            raise ValueError(f"step.step: expected step {self.steps} of {step.episode!r}, got {step.step}")
        if step.stamp_ns <= self._last_stamp:
            raise ValueError(f"step.stamp_ns: {step.stamp_ns} is not after the previous step's {self._last_stamp}")
        _check_action(step.action, "step.action")
        _check_action(step.policy_action, "step.policy_action")
        if not np.isfinite(step.reward):
            raise ValueError(f"step.reward: not finite: {step.reward}")
        observations = [("step.obs", step.obs)] if first else []
        observations.append(("step.next_obs", step.next_obs))
        cameras, label = self.cameras, None if first else self._state_label
        if cameras is None:  # the first step, and every camera of its observation is recorded
            check_observation(step.obs, "step.obs")
            cameras = sorted(step.obs.get("images", {}))
            bad = [cam for cam in cameras if not CAMERA_NAME.fullmatch(cam)]
            if bad:
                raise ValueError(f"step.obs.images: camera name {bad[0]!r} is not usable in a topic name")
        for field, obs in observations:
            label = self._check_observation(obs, field, cameras, label)
        return cameras

    @staticmethod
    def _check_observation(obs, field: str, cameras: list[str], label: str | None) -> str:
        check_observation(obs, field)
        images = obs.get("images", {})
        missing = [cam for cam in cameras if cam not in images]
        if missing:
            raise ValueError(f"{field}.images: no camera {missing[0]!r} (has {sorted(images)})")
        state = obs["state"]
        unknown = sorted(set(state) - set(spec.STATE_DIMS) - {"task"})
        if unknown:
            raise ValueError(f"{field}.state.{unknown[0]}: not a state of the spec, it would not be recorded")
        task = state.get("task")
        if task is not None and (
            not isinstance(task, np.ndarray)
            or task.dtype != np.float32
            or task.ndim != 1
            or not np.all(np.isfinite(task))
        ):
            raise ValueError(f"{field}.state.task: expected finite float32[k], got {task!r}")
        got = _state_label(state)
        if label is not None and got != label:
            raise ValueError(f"{field}.state: its layout {got} differs from the episode's {label}")
        return got

    def _observation(self, obs: dict, stamp: int) -> list[tuple[str, int, object]]:
        state = obs["state"]
        records = []
        for cam in self.cameras:
            frame = np.ascontiguousarray(obs["images"][cam])
            height, width, _ = frame.shape
            image = Image(
                header=_header(stamp, f"{cam}_camera"),
                height=height,
                width=width,
                encoding="rgb8",
                is_bigendian=0,
                step=3 * width,
                data=frame.reshape(-1),
            )
            records.append((CAMERA_PREFIX + cam, stamp, image))
        x, y, z, qw, qx, qy, qz = state["tcp_pose"].astype(np.float64).tolist()
        pose = Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
        records.append((TCP_POSE, stamp, PoseStamped(header=_header(stamp, self.base_frame), pose=pose)))
        records.append((TCP_VEL, stamp, TwistStamped(header=_header(stamp, self.base_frame), twist=_twist(state))))
        records.append((WRENCH, stamp, WrenchStamped(header=_header(stamp, self.ft_frame), wrench=_wrench(state))))
        keys = [*ARRAY_STATE_KEYS, "task"] if "task" in state else ARRAY_STATE_KEYS
        values = np.concatenate([state[key] for key in keys])
        records.append((STATE, stamp, _floats(values, self._state_label)))
        return records

    @staticmethod
    def _end(episode: str, steps: int, last: StepMessage | None, success: bool, reason: str):
        """The end record: of the episode's last step, or (last None) of a recording cut short."""
        fields = {
            "episode": episode,
            "steps": steps,
            "terminated": bool(last.terminated) if last else False,
            "truncated": bool(last.truncated) if last else True,
            "success": success,
            "ended": last is not None,
            "reason": reason,
        }
        return String(data=json.dumps(fields))

    def _open(self, episode: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(self.path, version=ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP)
        # An empty custom_data is written as `null`, which ros2 bag's YAML reader refuses as a map.
        writer.set_custom_data("robot_rl.episode", episode)
        writer.open()
        storage = writer.storage
        if not (callable(getattr(storage, "close_chunk", None)) and hasattr(storage, "bio")):
            writer.abort()
            raise RuntimeError(
                "rosbags' MCAP writer has no close_chunk() / bio any more: per-step flushing (crash "
                "safety) needs rosbags 0.11; see robot_rl/data/bags.py"
            )
        topics = {CAMERA_PREFIX + cam: IMAGE for cam in self.cameras} | STATE_TOPICS | STEP_TOPICS | {END: STRING}
        self._connections = {
            topic: writer.add_connection(topic, kind, typestore=TYPESTORE) for topic, kind in topics.items()
        }
        self._writer, self._mcap_path = writer, storage.path

    def _write(self, records: Iterable[tuple[str, int, bytes]]) -> None:
        for topic, stamp, data in records:
            self._writer.write(self._connections[topic], stamp, data)
        # rosbags' McapWriter writes a chunk only when 1 MiB is pending: end one per step and hand
        # the bytes to the OS, so a crash leaves every step written so far in the file.
        storage = self._writer.storage
        storage.close_chunk()
        storage.bio.flush()


def _twist(state: dict):
    vx, vy, vz, wx, wy, wz = state["tcp_vel"].astype(np.float64).tolist()
    return Twist(linear=Vector3(x=vx, y=vy, z=vz), angular=Vector3(x=wx, y=wy, z=wz))


def _wrench(state: dict):
    fx, fy, fz, tx, ty, tz = state["wrench"][:6].astype(np.float64).tolist()
    return Wrench(force=Vector3(x=fx, y=fy, z=fz), torque=Vector3(x=tx, y=ty, z=tz))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# the recorder's logic -----------------------------------------------------------------------------
class EpisodeRecorder:
    """StepMessages in, one bag per episode in config.directory out: what the recorder node does, with
    no ROS. A step of another episode while one is open closes the open one as cut short (logged as a
    warning); a terminated or truncated step closes its bag; `close` (the node's shutdown) closes the
    open one. An episode id that already has a bag (an actor restarted and counts from 0 again) is
    recorded as <id>-2, <id>-3, ... `log(level, text)` takes logging levels."""

    def __init__(self, config: RecorderConfig, log: Callable[[int, str], None] = _logger.log):
        config.validate()
        self.config = config
        self.directory = Path(config.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = log
        self._bag: EpisodeBagWriter | None = None
        self.saved: list[Path] = []  # closed bags, oldest first

    @property
    def recording(self) -> str | None:
        """The id of the episode being recorded."""
        return self._bag.episode if self._bag is not None else None

    def record(self, step: StepMessage) -> None:
        """Raises ValueError for a step that cannot be recorded (the bag stays as it was)."""
        if self._bag is not None and step.episode != self._bag.episode:
            self._close(f"a step of episode {step.episode!r} arrived before it ended", logging.WARNING)
        if self._bag is None:
            check_episode_id(step.episode)
            cfg = self.config
            self._bag = EpisodeBagWriter(self._free_path(step.episode), cfg.cameras, cfg.base_frame, cfg.ft_frame)
        try:
            self._bag.write_step(step)
        finally:
            if self._bag.episode is None:  # its first step was refused: nothing is on disk
                self._bag = None
        if self._bag.ended:
            self._close("", logging.INFO)

    def mark_success(self) -> bool:
        """The operator marks the episode being recorded a success; False when there is none."""
        if self._bag is None:
            return False
        self._bag.mark_success()
        return True

    def close(self, reason: str) -> None:
        if self._bag is not None:
            self._close(reason, logging.INFO)

    def _close(self, reason: str, level: int) -> None:
        bag, self._bag = self._bag, None
        bag.close(reason)
        self.saved.append(bag.path)
        how = "ended" if not reason else f"cut short ({reason})"
        label = "success" if bag.success else "no success"
        self._log(level, f"episode {bag.episode}: {bag.steps} steps, {how}, {label} -> {bag.path}")

    def _free_path(self, episode: str) -> Path:
        path, n = self.directory / episode, 2
        while path.exists():
            path, n = self.directory / f"{episode}-{n}", n + 1
        return path


# reading ------------------------------------------------------------------------------------------
class EmptyBagError(ValueError):
    """The bag holds no complete step (its recorder died before the first one reached the file)."""


def read_episode_bag(path: Path | str) -> Episode:
    """The episode recorded in bag folder `path`, closed or left by a crash (see the module docstring),
    with its per-step policy actions, intervention flags and success labels. Raises ValueError saying
    what is wrong with a bag that is not an episode bag, and EmptyBagError for one with no step."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: not a bag folder")
    if (path / "metadata.yaml").is_file():
        return _episode(path, _closed_bag_records(path))
    mcaps = sorted(path.glob("*.mcap"))
    if len(mcaps) != 1:
        raise ValueError(f"{path}: no metadata.yaml, and {len(mcaps)} .mcap files instead of one")
    return _episode(path, _recovered_records(mcaps[0]))


def read_episode_bags(folder: Path | str) -> list[Episode]:
    """The episodes of every bag folder in `folder`, in name order. A bag with no complete step is
    skipped with a warning (nothing of its episode was written); any other bad bag raises."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    episodes = []
    for bag in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not ((bag / "metadata.yaml").exists() or any(bag.glob("*.mcap"))):
            continue
        try:
            episodes.append(read_episode_bag(bag))
        except EmptyBagError as error:
            _logger.warning("skipped: %s", error)
    return episodes


Record = tuple[str, str, int, bytes]  # topic, message type, log time (ns), CDR bytes


def _closed_bag_records(path: Path) -> Iterator[Record]:
    try:
        with Reader(path) as reader:
            for connection, stamp, data in reader.messages():
                yield connection.topic, connection.msgtype, stamp, data
    except ReaderError as error:
        raise ValueError(f"{path}: {error}") from error


_MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = 0x03, 0x04, 0x05, 0x06, 0x0F


def _u16(data: memoryview, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _u32(data: memoryview, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _u64(data: memoryview, at: int) -> int:
    return int.from_bytes(data[at : at + 8], "little")


def _string(data: memoryview, at: int) -> tuple[str, int]:
    """An MCAP string at `at` (uint32 length, UTF-8) and the offset after it."""
    end = at + 4 + _u32(data, at)
    return bytes(data[at + 4 : end]).decode(), end


def _mcap_records(data: memoryview, where: str, cut_off_ok: bool) -> Iterator[tuple[int, memoryview]]:
    """(opcode, body) of each whole record in `data` (opcode uint8, length uint64, body). A record cut
    off, or zeros (opcode 0 is reserved; a machine crash can leave unwritten blocks as zeros), end the
    data where a crash may have cut it (`cut_off_ok`), and are an error anywhere else."""
    at = 0
    while at < len(data):
        end = at + 9 + _u64(data, at + 1) if at + 9 <= len(data) else len(data) + 1
        if data[at] == 0 or end > len(data):
            if cut_off_ok:
                return
            raise ValueError(f"{where}: a record at byte {at} is cut off or not MCAP")
        yield data[at], data[at + 9 : end]
        at = end


def _chunk_records(body: memoryview, where: str) -> memoryview:
    """The records inside an MCAP chunk record's body."""
    uncompressed_size, crc = _u64(body, 16), _u32(body, 24)
    compression, at = _string(body, 28)
    if compression:
        raise ValueError(f"{where}: a {compression} chunk; episode bags are written uncompressed")
    records = body[at + 8 : at + 8 + _u64(body, at)]
    if len(records) != uncompressed_size or (crc and zlib.crc32(records) != crc):
        raise ValueError(f"{where}: a damaged chunk")
    return records


def _recovered_records(mcap: Path) -> Iterator[Record]:
    """The messages of an MCAP file without its summary (its writer died), in file order: every
    whole record up to the first one cut off."""
    data = memoryview(mcap.read_bytes())
    if bytes(data[:8]) != _MCAP_MAGIC:
        if _MCAP_MAGIC.startswith(bytes(data)):  # died before the first bytes reached the file
            return
        raise ValueError(f"{mcap}: not an MCAP file")
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    for op, body in _mcap_records(data[8:], str(mcap), cut_off_ok=True):
        if op == _OP_DATA_END:  # closed, but metadata.yaml never written: the summary follows
            return
        inner = _mcap_records(_chunk_records(body, str(mcap)), str(mcap), False) if op == _OP_CHUNK else [(op, body)]
        for kind, record in inner:
            if kind == _OP_SCHEMA:
                schemas[_u16(record, 0)] = _string(record, 2)[0]
            elif kind == _OP_CHANNEL:
                schema_id, topic = _u16(record, 2), _string(record, 4)[0]
                if schema_id not in schemas:
                    raise ValueError(f"{mcap}: channel {topic} names an unknown schema {schema_id}")
                channels[_u16(record, 0)] = (topic, schemas[schema_id])
            elif kind == _OP_MESSAGE:
                channel = _u16(record, 0)
                if channel not in channels:
                    raise ValueError(f"{mcap}: a message on unknown channel {channel}")
                yield (*channels[channel], _u64(record, 6), bytes(record[22:]))


def _expected_type(topic: str) -> str | None:
    if topic.startswith(CAMERA_PREFIX):
        return IMAGE
    return {**STATE_TOPICS, **STEP_TOPICS, END: STRING}.get(topic)


def _episode(path: Path, records: Iterable[Record]) -> Episode:
    """Group the bag's messages by log time: the first observation alone, then one observation with
    its step per time."""
    groups: dict[int, dict[str, object]] = defaultdict(dict)
    end = None
    for topic, msgtype, stamp, data in records:
        expected = _expected_type(topic)
        if expected is None:
            raise ValueError(f"{path}: topic {topic} is not part of an episode bag")
        if msgtype != expected:
            raise ValueError(f"{path}: {topic} holds {msgtype}, expected {expected}")
        msg = TYPESTORE.deserialize_cdr(data, msgtype)
        if topic == END:
            if end is not None:
                raise ValueError(f"{path}: two {END} records")
            end = _end_record(msg.data, path)
        elif topic in groups[stamp]:
            raise ValueError(f"{path}: two {topic} messages at {stamp} ns")
        else:
            groups[stamp][topic] = msg
    if not groups:
        raise EmptyBagError(f"{path}: no step recorded")
    cameras = sorted(
        {t[len(CAMERA_PREFIX) :] for group in groups.values() for t in group if t.startswith(CAMERA_PREFIX)}
    )
    observation_topics = [CAMERA_PREFIX + cam for cam in cameras] + list(STATE_TOPICS)
    observations, steps = [], []
    for index, stamp in enumerate(sorted(groups)):
        group, where = groups[stamp], f"{path} at {stamp} ns"
        missing = [t for t in observation_topics if t not in group]
        if missing:
            raise ValueError(f"{where}: the observation has no {missing[0]}")
        observations.append(_read_observation(group, cameras, where))
        step_topics = [t for t in STEP_TOPICS if t in group]
        if index == 0:
            if step_topics:
                raise ValueError(f"{where}: {step_topics[0]} with the episode's first observation")
        elif len(step_topics) != len(STEP_TOPICS):
            raise ValueError(f"{where}: the step has no {next(t for t in STEP_TOPICS if t not in group)}")
        else:
            steps.append(group)
    if not steps:  # the first observation is written with the first step: this bag was altered
        raise ValueError(f"{path}: an observation but no step")
    successes = np.array([group[SUCCESS].data for group in steps], dtype=bool)
    if end is None:  # the recorder died before the episode ended
        terminated, truncated, success, ended = False, True, bool(successes[-1]), False
    else:
        if end["steps"] != len(steps):
            raise ValueError(f"{path}: {END} says {end['steps']} steps, the bag holds {len(steps)}")
        terminated, truncated, success, ended = (bool(end[k]) for k in ("terminated", "truncated", "success", "ended"))
    return Episode(
        observations,
        np.stack([_read_vector(group[ACTION], spec.ACTION_DIM, f"{path}: {ACTION}") for group in steps]),
        np.array([group[REWARD].data for group in steps], dtype=np.float32),
        terminated,
        truncated,
        success,
        policy_actions=np.stack(
            [_read_vector(group[POLICY_ACTION], spec.ACTION_DIM, f"{path}: {POLICY_ACTION}") for group in steps]
        ),
        intervened=np.array([group[INTERVENED].data for group in steps], dtype=bool),
        successes=successes,
        ended=ended,
    )


def _end_record(text: str, path: Path) -> dict:
    try:
        end = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: {END} is not JSON: {error}") from error
    if not isinstance(end, dict) or any(key not in end for key in END_KEYS):
        raise ValueError(f"{path}: {END} needs the keys {', '.join(END_KEYS)}, got {text!r}")
    return end


def _read_vector(msg, size: int | None, where: str) -> np.ndarray:
    data = np.asarray(msg.data, dtype=np.float32)
    if size is not None and data.shape != (size,):
        raise ValueError(f"{where}: expected {size} values, got {data.shape[0]}")
    return data.copy()


def _read_observation(group: dict, cameras: list[str], where: str) -> dict:
    pose, twist = group[TCP_POSE].pose, group[TCP_VEL].twist
    p, q, v, w = pose.position, pose.orientation, twist.linear, twist.angular
    state = {
        "tcp_pose": np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z], dtype=np.float32),
        "tcp_vel": np.array([v.x, v.y, v.z, w.x, w.y, w.z], dtype=np.float32),
    }
    array = group[STATE]
    values, at = _read_vector(array, None, f"{where}: {STATE}"), 0
    layout = array.layout.dim[0].label if len(array.layout.dim) == 1 else ""
    for part in layout.split(","):
        key, _, size = part.partition(":")
        if key not in (*ARRAY_STATE_KEYS, "task") or not size.isdigit():
            raise ValueError(f"{where}: {STATE} layout {layout!r} is not 'wrench:12,gripper:1[,task:k]'")
        state[key], at = values[at : at + int(size)], at + int(size)
    if at != len(values) or any(state.get(k, np.empty(0)).size != spec.STATE_DIMS[k] for k in ARRAY_STATE_KEYS):
        raise ValueError(f"{where}: {STATE} holds {len(values)} values for the layout {layout!r}")
    images = {cam: _read_image(group[CAMERA_PREFIX + cam], f"{where}: {CAMERA_PREFIX}{cam}") for cam in cameras}
    return {"images": images, "state": state} if images else {"state": state}


def _read_image(msg, where: str) -> np.ndarray:
    if msg.encoding != "rgb8" or msg.step != 3 * msg.width or msg.data.size != msg.step * msg.height:
        raise ValueError(
            f"{where}: expected rgb8 {msg.width}x{msg.height} with step {3 * msg.width}, got {msg.encoding} "
            f"with step {msg.step} and {msg.data.size} bytes"
        )
    return np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.width, 3).copy()
