"""ROS 2 messages <-> numpy arrays in the layout of robot_rl/spec.py. Message objects only: no node,
no DDS, so all of it is unit-tested without starting anything.

Every reader validates what it is given and raises a ValueError that names the offending field
(`Image.step`, `WrenchStamped.wrench.force.x`, ...), so a node can log the reason and drop the
message instead of passing garbage on.

Images
  image_to_rgb       sensor_msgs/Image in rgb8, bgr8, rgba8, bgra8 or mono8, with any row stride
                     (step >= width * channels; the padding is dropped) -> uint8[H, W, 3] RGB.
                     Depth encodings (16UC1, 32FC1) are refused here: a depth image is not a camera
                     frame of the spec, and silently scaling millimetres into 0..255 would feed a
                     policy nonsense. image_to_depth reads them instead.
  image_to_depth     16UC1 (millimetres, REP 118; 0 = no reading) or 32FC1 (metres) -> float32[H, W]
                     metres, NaN where there is no reading.
  compressed_to_rgb  sensor_msgs/CompressedImage (jpeg or png, as image_transport's compressed
                     plugin writes them, e.g. format "rgb8; jpeg compressed bgr8") -> uint8[H, W, 3].
  rgb_to_image / rgb_to_compressed  the other way (rgb8, step = 3 * width).
Robot state and commands (spec layout, float64; the spec's observation casts to float32)
  tcp_pose  [x y z qw qx qy qz] (m, unit quaternion, scalar first, sign by spec.canonical_quat)
            <-> geometry_msgs/PoseStamped (quaternion fields x y z w)
  tcp_vel   [vx vy vz wx wy wz] (m/s, rad/s, base frame) <-> geometry_msgs/TwistStamped
  wrench    [fx fy fz tx ty tz] (N, Nm) <-> geometry_msgs/WrenchStamped
  joints    sensor_msgs/JointState <-> arrays ordered by the caller's joint names
  action    a target pose command <-> the spec's 7-D action: robot_rl/spec.py (target_pose_to_action)
Blobs
  tree_to_blob / blob_to_tree  a robot_rl/data/tree.py tree (robot_rl/robot/messages.py: observation,
            step, weights) <-> std_msgs/UInt8MultiArray holding its safetensors bytes
Times are integer nanoseconds (sim time never loses precision to a float).
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Header, UInt8MultiArray

from robot_rl import spec
from robot_rl.data.tree import tree_from_bytes, tree_to_bytes

# encoding -> (channels, indices of R, G, B among them)
COLOR_ENCODINGS = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
# encoding -> (numpy dtype without byte order, metres per unit)
DEPTH_ENCODINGS = {"16UC1": ("u2", 0.001), "32FC1": ("f4", 1.0)}
QUAT_NORM_TOLERANCE = 1e-3  # |q| may be off 1 by this much (float32 round trips), then it is normalised


# Time ---------------------------------------------------------------------------------------
def time_msg(ns: int) -> Time:
    if ns < 0:
        raise ValueError(f"stamp: negative time {ns} ns")
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def time_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def header(ns: int, frame_id: str) -> Header:
    return Header(stamp=time_msg(ns), frame_id=frame_id)


def check_frame(msg_header: Header, expected: str | None, field: str) -> None:
    """Refuse a message in another frame than `expected` (None: any frame)."""
    if expected is not None and msg_header.frame_id != expected:
        raise ValueError(f"{field}.header.frame_id is {msg_header.frame_id!r}, expected {expected!r}")


# Images -------------------------------------------------------------------------------------
def _image_rows(msg: Image, bytes_per_pixel: int) -> np.ndarray:
    """The image's bytes as a [height, width * bytes_per_pixel] view, row padding dropped."""
    if msg.height <= 0 or msg.width <= 0:
        raise ValueError(f"Image.height/width: empty image {msg.height}x{msg.width}")
    row_bytes = msg.width * bytes_per_pixel
    if msg.step < row_bytes:
        raise ValueError(
            f"Image.step is {msg.step}, less than width {msg.width} x {bytes_per_pixel} bytes per pixel "
            f"({msg.encoding}) = {row_bytes}"
        )
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != msg.step * msg.height:
        raise ValueError(
            f"Image.data has {data.size} bytes, expected step {msg.step} x height {msg.height} "
            f"= {msg.step * msg.height}"
        )
    return data.reshape(msg.height, msg.step)[:, :row_bytes]


def image_to_rgb(msg: Image) -> np.ndarray:
    """A colour (or mono) sensor_msgs/Image as a new uint8[H, W, 3] RGB array."""
    if msg.encoding in DEPTH_ENCODINGS:
        raise ValueError(
            f"Image.encoding {msg.encoding!r} is a depth image, not a camera frame of the spec "
            "(uint8 RGB): read it with image_to_depth, or point this camera at a colour stream"
        )
    if msg.encoding not in COLOR_ENCODINGS:
        raise ValueError(f"Image.encoding {msg.encoding!r} is not supported; valid: {', '.join(COLOR_ENCODINGS)}")
    channels, rgb = COLOR_ENCODINGS[msg.encoding]
    pixels = _image_rows(msg, channels).reshape(msg.height, msg.width, channels)
    if rgb == (0, 1, 2) and channels == 3:
        return pixels.copy()
    return np.ascontiguousarray(pixels[:, :, list(rgb)])


def image_to_depth(msg: Image) -> np.ndarray:
    """A depth sensor_msgs/Image (REP 118) as float32[H, W] metres, NaN where there is no reading."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ValueError(
            f"Image.encoding {msg.encoding!r} is not a depth encoding; valid: {', '.join(DEPTH_ENCODINGS)}"
        )
    kind, scale = DEPTH_ENCODINGS[msg.encoding]
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    rows = _image_rows(msg, dtype.itemsize)
    raw = np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width)
    depth = raw.astype(np.float32) * np.float32(scale)
    if msg.encoding == "16UC1":
        depth[raw == 0] = np.nan
    return depth


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """A jpeg or png sensor_msgs/CompressedImage as uint8[H, W, 3] RGB."""
    fmt = msg.format.lower()
    if "compresseddepth" in fmt:
        raise ValueError(f"CompressedImage.format {msg.format!r} is a compressed depth image, not a camera frame")
    if not any(codec in fmt for codec in ("jpeg", "jpg", "png")):
        raise ValueError(f"CompressedImage.format {msg.format!r} names no supported codec (jpeg, png)")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ValueError(f"CompressedImage.data ({data.size} bytes) does not decode as {msg.format!r}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # OpenCV decodes colour as BGR whatever was stored


def _check_frame_array(frame: np.ndarray) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be uint8[H, W, 3] RGB, got {frame.dtype}{list(frame.shape)}")


def rgb_to_image(frame: np.ndarray, stamp_ns: int = 0, frame_id: str = "") -> Image:
    _check_frame_array(frame)
    height, width, _ = frame.shape
    msg = Image(header=header(stamp_ns, frame_id), height=height, width=width, encoding="rgb8")
    msg.is_bigendian, msg.step = 0, 3 * width
    msg.data = np.ascontiguousarray(frame).tobytes()  # bytes: ~1000x faster to assign than a list
    return msg


def rgb_to_compressed(frame: np.ndarray, codec: str = "jpeg", stamp_ns: int = 0, frame_id: str = "") -> CompressedImage:
    _check_frame_array(frame)
    if codec not in ("jpeg", "png"):
        raise ValueError(f"codec {codec!r}: valid: jpeg, png")
    ok, buf = cv2.imencode(".jpg" if codec == "jpeg" else ".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"frame: OpenCV could not encode it as {codec}")
    msg = CompressedImage(header=header(stamp_ns, frame_id), format=f"rgb8; {codec} compressed bgr8")
    msg.data = buf.tobytes()
    return msg


# Vectors ------------------------------------------------------------------------------------
def _finite(values: Sequence[float], names: Sequence[str], field: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{field}.{names[bad[0]]} is {array[bad[0]]}")
    return array


def _vector6(values: np.ndarray | Sequence[float], field: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (6,):
        raise ValueError(f"{field} must have 6 entries, got shape {array.shape}")
    return array


def wrench_to_array(msg: WrenchStamped, frame_id: str | None = None) -> np.ndarray:
    """[fx fy fz tx ty tz] in N and Nm."""
    check_frame(msg.header, frame_id, "WrenchStamped")
    f, t = msg.wrench.force, msg.wrench.torque
    names = ("force.x", "force.y", "force.z", "torque.x", "torque.y", "torque.z")
    return _finite((f.x, f.y, f.z, t.x, t.y, t.z), names, "WrenchStamped.wrench")


def array_to_wrench(wrench: np.ndarray | Sequence[float], stamp_ns: int, frame_id: str) -> WrenchStamped:
    w = _vector6(wrench, "wrench").tolist()
    msg = WrenchStamped(header=header(stamp_ns, frame_id))
    msg.wrench.force.x, msg.wrench.force.y, msg.wrench.force.z = w[:3]
    msg.wrench.torque.x, msg.wrench.torque.y, msg.wrench.torque.z = w[3:]
    return msg


def pose_to_tcp_pose(msg: PoseStamped, frame_id: str | None = None) -> np.ndarray:
    """[x y z qw qx qy qz]: the quaternion normalised and its sign chosen as the spec's."""
    check_frame(msg.header, frame_id, "PoseStamped")
    p, q = msg.pose.position, msg.pose.orientation
    names = ("position.x", "position.y", "position.z", "orientation.w", "orientation.x", "orientation.y")
    pose = _finite((p.x, p.y, p.z, q.w, q.x, q.y, q.z), (*names, "orientation.z"), "PoseStamped.pose")
    norm = np.linalg.norm(pose[3:])
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        raise ValueError(f"PoseStamped.pose.orientation is not a unit quaternion (norm {norm:.6g})")
    pose[3:] = spec.canonical_quat(pose[3:] / norm)
    return pose


def tcp_pose_to_pose(tcp_pose: np.ndarray | Sequence[float], stamp_ns: int, frame_id: str) -> PoseStamped:
    pose = np.asarray(tcp_pose, dtype=np.float64)
    if pose.shape != (7,):
        raise ValueError(f"tcp_pose must be [x y z qw qx qy qz], got shape {pose.shape}")
    x, y, z, qw, qx, qy, qz = pose.tolist()
    msg = PoseStamped(header=header(stamp_ns, frame_id))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    o = msg.pose.orientation
    o.w, o.x, o.y, o.z = qw, qx, qy, qz
    return msg


def twist_to_tcp_vel(msg: TwistStamped, frame_id: str | None = None) -> np.ndarray:
    """[vx vy vz wx wy wz] in m/s and rad/s."""
    check_frame(msg.header, frame_id, "TwistStamped")
    v, w = msg.twist.linear, msg.twist.angular
    names = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")
    return _finite((v.x, v.y, v.z, w.x, w.y, w.z), names, "TwistStamped.twist")


def tcp_vel_to_twist(tcp_vel: np.ndarray | Sequence[float], stamp_ns: int, frame_id: str) -> TwistStamped:
    v = _vector6(tcp_vel, "tcp_vel").tolist()
    msg = TwistStamped(header=header(stamp_ns, frame_id))
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = v[:3]
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = v[3:]
    return msg


# Joints -------------------------------------------------------------------------------------
JOINT_FIELDS = ("position", "velocity", "effort")


def joint_state_field(msg: JointState, names: Sequence[str], field: str = "position") -> np.ndarray:
    """One of JointState's position/velocity/effort, in the order of `names` (the message may hold
    more joints, in any order)."""
    if field not in JOINT_FIELDS:
        raise ValueError(f"field {field!r}: valid: {', '.join(JOINT_FIELDS)}")
    values = getattr(msg, field)
    if len(values) != len(msg.name):
        raise ValueError(f"JointState.{field} has {len(values)} entries for {len(msg.name)} names")
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [name for name in names if name not in index]
    if missing:
        raise ValueError(f"JointState.name lacks {missing[0]!r} (has {list(msg.name)})")
    picked = [values[index[name]] for name in names]
    return _finite(picked, [f"[{name}]" for name in names], f"JointState.{field}")


def arrays_to_joint_state(
    names: Sequence[str],
    position: np.ndarray | Sequence[float],
    velocity: np.ndarray | Sequence[float] | None = None,
    effort: np.ndarray | Sequence[float] | None = None,
    stamp_ns: int = 0,
) -> JointState:
    msg = JointState(header=header(stamp_ns, ""), name=list(names))
    for field, values in zip(JOINT_FIELDS, (position, velocity, effort), strict=True):
        if values is None:
            continue
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (len(names),):
            raise ValueError(f"{field} must have one entry per name ({len(names)}), got shape {array.shape}")
        setattr(msg, field, array.tolist())
    return msg


def gripper_opening(finger_positions: np.ndarray, max_finger_opening: float) -> np.ndarray:
    """The spec's gripper state (0 closed .. 1 fully open, float32[1]) from the two finger joints'
    positions (each 0 .. max_finger_opening, as the Franka Hand reports them)."""
    opening = np.sum(finger_positions) / (2 * max_finger_opening)
    return np.clip([opening], 0.0, 1.0).astype(np.float32)


# Commands -----------------------------------------------------------------------------------
def gripper_command(value: float) -> float:
    """The spec's gripper command (> +GRIPPER_DEADBAND close, < -GRIPPER_DEADBAND open, else keep)
    from a std_msgs/Float64's data."""
    if not np.isfinite(value):
        raise ValueError(f"Float64.data (gripper command) is {value}")
    return float(value)


# Blobs --------------------------------------------------------------------------------------
def tree_to_blob(tree: Any) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.data = array.array("B", tree_to_bytes(tree))  # an array.array is taken without a per-byte copy
    return msg


def blob_to_tree(msg: UInt8MultiArray) -> Any:
    """Raises ValueError for bytes that are not a whole tree (robot_rl/data/tree.py says why)."""
    return tree_from_bytes(msg.data.tobytes() if isinstance(msg.data, array.array) else bytes(msg.data))
