"""ros_nodes.convert on message objects only: no node is started, nothing goes on the wire."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped, WrenchStamped
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CompressedImage, Image, JointState

from robot_rl import spec
from ros_nodes import convert

RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)  # odd sizes: H != W catches a transpose


def image_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """An Image holding `pixels` ([H, W] or [H, W, C]) with `pad` junk bytes after every row."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8)
    junk = np.full((height, pad), 0xAB, dtype=np.uint8)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian))
    msg.step = rows.shape[1] + pad
    msg.data = np.concatenate([rows, junk], axis=1).tobytes()
    return msg


# Images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [0, 1, 3, 64])
@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", FRAME),
        ("bgr8", FRAME[:, :, ::-1]),
        ("rgba8", np.concatenate([FRAME, np.full((5, 7, 1), 9, np.uint8)], axis=2)),
        ("bgra8", np.concatenate([FRAME[:, :, ::-1], np.full((5, 7, 1), 9, np.uint8)], axis=2)),
    ],
)
def test_colour_image_any_stride_to_rgb(encoding, pixels, pad):
    rgb = convert.image_to_rgb(image_msg(np.ascontiguousarray(pixels), encoding, pad))
    assert rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, FRAME)


@pytest.mark.parametrize("pad", [0, 5])
def test_mono8_is_grey_rgb(pad):
    grey = FRAME[:, :, 0].copy()
    rgb = convert.image_to_rgb(image_msg(grey, "mono8", pad))
    np.testing.assert_array_equal(rgb, np.repeat(grey[:, :, None], 3, axis=2))


def test_rgb_to_image_round_trip_and_header():
    msg = convert.rgb_to_image(FRAME, stamp_ns=3_000_000_007, frame_id="front_camera")
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 5, 7, 21)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (3, 7, "front_camera")
    np.testing.assert_array_equal(convert.image_to_rgb(msg), FRAME)


@pytest.mark.parametrize("frame", [FRAME.astype(np.float32), FRAME[:, :, 0], FRAME[:, :, :2]])
def test_rgb_to_image_refuses_other_arrays(frame):
    with pytest.raises(ValueError, match="frame must be uint8"):
        convert.rgb_to_image(frame)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 2])
def test_16uc1_depth_in_millimetres(bigendian, pad):
    mm = np.array([[0, 1, 1000], [65535, 250, 2]], dtype=">u2" if bigendian else "<u2")
    depth = convert.image_to_depth(image_msg(mm, "16UC1", pad, bigendian))
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    assert np.isnan(depth[0, 0])  # 0: no reading (REP 118)
    np.testing.assert_allclose(depth.ravel()[1:], np.array([1, 1000, 65535, 250, 2]) / 1000, rtol=1e-6)


def test_32fc1_depth_in_metres():
    metres = np.array([[0.5, np.nan], [1.25, 3.0]], dtype="<f4")
    np.testing.assert_array_equal(convert.image_to_depth(image_msg(metres, "32FC1", pad=4)), metres)


def test_depth_refused_as_a_camera_frame_and_colour_as_depth():
    with pytest.raises(ValueError, match=r"Image.encoding '16UC1' is a depth image.*image_to_depth"):
        convert.image_to_rgb(image_msg(np.zeros((2, 3), np.uint16), "16UC1"))
    with pytest.raises(ValueError, match=r"Image.encoding 'rgb8' is not a depth encoding"):
        convert.image_to_depth(image_msg(FRAME, "rgb8"))


def test_bad_images_name_the_field():
    with pytest.raises(ValueError, match=r"Image.encoding 'yuv422' is not supported; valid: rgb8"):
        convert.image_to_rgb(image_msg(FRAME, "yuv422"))
    short_step = image_msg(FRAME, "rgb8")
    short_step.step = 20
    with pytest.raises(ValueError, match=r"Image.step is 20, less than width 7 x 3"):
        convert.image_to_rgb(short_step)
    truncated = image_msg(FRAME, "rgb8", pad=2)
    truncated.data = bytes(truncated.data)[:-1]
    with pytest.raises(ValueError, match=r"Image.data has 114 bytes, expected step 23 x height 5 = 115"):
        convert.image_to_rgb(truncated)
    with pytest.raises(ValueError, match=r"Image.height/width: empty image 0x0"):
        convert.image_to_rgb(Image(encoding="rgb8"))


def test_compressed_png_round_trip_is_exact_jpeg_close():
    frame = np.kron(FRAME, np.ones((8, 8, 1), np.uint8))  # flat 8x8 blocks: what jpeg keeps well
    png = convert.rgb_to_compressed(frame, "png", stamp_ns=5, frame_id="wrist_camera")
    assert png.format == "rgb8; png compressed bgr8" and png.header.frame_id == "wrist_camera"
    np.testing.assert_array_equal(convert.compressed_to_rgb(png), frame)
    jpeg = convert.rgb_to_compressed(frame, "jpeg")
    decoded = convert.compressed_to_rgb(jpeg)
    assert decoded.shape == frame.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - frame).mean() < 8  # lossy, but the colours stay in place


def test_compressed_bare_format_names_and_mono():
    grey = np.repeat(FRAME[:, :, :1], 3, axis=2)
    msg = convert.rgb_to_compressed(grey, "png")
    msg.format = "png"
    np.testing.assert_array_equal(convert.compressed_to_rgb(msg), grey)


def test_bad_compressed_images_name_the_field():
    msg = convert.rgb_to_compressed(FRAME, "png")
    msg.format = "16UC1; compressedDepth png"
    with pytest.raises(ValueError, match=r"CompressedImage.format .* compressed depth"):
        convert.compressed_to_rgb(msg)
    msg.format = "theora"
    with pytest.raises(ValueError, match=r"CompressedImage.format 'theora' names no supported codec"):
        convert.compressed_to_rgb(msg)
    for data in (b"", b"\xff\xd8 not a jpeg at all"):
        with pytest.raises(ValueError, match=r"CompressedImage.data \(\d+ bytes\) does not decode"):
            convert.compressed_to_rgb(CompressedImage(format="jpeg", data=data))


# Wrench, pose, twist ------------------------------------------------------------------------
def test_wrench_round_trip_and_nan():
    values = [1.0, -2.0, 3.5, 0.1, -0.2, 0.3]
    msg = convert.array_to_wrench(values, 42, "panda_ft_sensor")
    assert isinstance(msg, WrenchStamped) and msg.wrench.torque.z == 0.3 and msg.header.frame_id == "panda_ft_sensor"
    np.testing.assert_array_equal(convert.wrench_to_array(msg, frame_id="panda_ft_sensor"), values)
    msg.wrench.torque.y = float("nan")
    with pytest.raises(ValueError, match=r"WrenchStamped.wrench.torque.y is nan"):
        convert.wrench_to_array(msg)
    with pytest.raises(ValueError, match=r"WrenchStamped.header.frame_id is 'panda_ft_sensor', expected 'ft'"):
        convert.wrench_to_array(msg, frame_id="ft")
    with pytest.raises(ValueError, match="wrench must have 6 entries"):
        convert.array_to_wrench(values[:5], 0, "")


def test_pose_layout_is_the_specs():
    # the home orientation: TCP pointing down, a half turn about x: (w, x, y, z) = (0, 1, 0, 0)
    tcp_pose = np.array([0.5, -0.1, 0.2, *spec.TCP_HOME_QUAT])
    msg = convert.tcp_pose_to_pose(tcp_pose, 7, "panda_link0")
    o = msg.pose.orientation
    assert (o.w, o.x, o.y, o.z) == (0.0, 1.0, 0.0, 0.0)
    assert (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z) == (0.5, -0.1, 0.2)
    np.testing.assert_array_equal(convert.pose_to_tcp_pose(msg, frame_id="panda_link0"), tcp_pose)


def test_pose_quaternion_is_canonicalised_and_normalised():
    quat = np.array([0.1, 0.9, 0.3, -0.2])
    quat /= np.linalg.norm(quat)
    msg = convert.tcp_pose_to_pose([0, 0, 0, *(-quat * (1 + 5e-4))], 0, "b")  # flipped sign, |q| slightly off
    pose = convert.pose_to_tcp_pose(msg)
    np.testing.assert_allclose(pose[3:], quat, atol=1e-12)
    assert np.dot(pose[3:], spec.TCP_HOME_QUAT) >= 0


def test_bad_poses_name_the_field():
    good = convert.tcp_pose_to_pose([0.4, 0, 0.2, 0, 1, 0, 0], 0, "panda_link0")
    nan = convert.tcp_pose_to_pose([np.nan, 0, 0.2, 0, 1, 0, 0], 0, "panda_link0")
    with pytest.raises(ValueError, match=r"PoseStamped.pose.position.x is nan"):
        convert.pose_to_tcp_pose(nan)
    inf = convert.tcp_pose_to_pose([0.4, 0, 0.2, 0, 1, np.inf, 0], 0, "panda_link0")
    with pytest.raises(ValueError, match=r"PoseStamped.pose.orientation.y is inf"):
        convert.pose_to_tcp_pose(inf)
    zero = PoseStamped()
    zero.pose.orientation.w = 0.0
    with pytest.raises(ValueError, match=r"PoseStamped.pose.orientation is not a unit quaternion \(norm 0\)"):
        convert.pose_to_tcp_pose(zero)
    with pytest.raises(ValueError, match=r"PoseStamped.header.frame_id is 'panda_link0', expected 'world'"):
        convert.pose_to_tcp_pose(good, frame_id="world")
    with pytest.raises(ValueError, match=r"tcp_pose must be \[x y z qw qx qy qz\]"):
        convert.tcp_pose_to_pose([0, 0, 0], 0, "")


def test_twist_round_trip_and_nan():
    vel = [0.1, 0.2, -0.3, 0.01, -0.02, 0.5]
    msg = convert.tcp_vel_to_twist(vel, 9, "panda_link0")
    assert isinstance(msg, TwistStamped) and msg.twist.linear.z == -0.3 and msg.twist.angular.z == 0.5
    np.testing.assert_array_equal(convert.twist_to_tcp_vel(msg, frame_id="panda_link0"), vel)
    msg.twist.angular.x = float("-inf")
    with pytest.raises(ValueError, match=r"TwistStamped.twist.angular.x is -inf"):
        convert.twist_to_tcp_vel(msg)


# Joints -------------------------------------------------------------------------------------
def test_joint_state_picks_by_name_in_any_order():
    msg = convert.arrays_to_joint_state(["b", "a", "c"], [2.0, 1.0, 3.0], [0.2, 0.1, 0.3], stamp_ns=11)
    assert msg.header.stamp.nanosec == 11 and list(msg.effort) == []
    np.testing.assert_array_equal(convert.joint_state_field(msg, ["a", "c"]), [1.0, 3.0])
    np.testing.assert_array_equal(convert.joint_state_field(msg, ["c", "b"], "velocity"), [0.3, 0.2])
    with pytest.raises(ValueError, match=r"JointState.effort has 0 entries for 3 names"):
        convert.joint_state_field(msg, ["a"], "effort")


def test_bad_joint_states_name_the_field():
    msg = JointState(name=["a", "b"], position=[1.0, float("nan")])
    with pytest.raises(ValueError, match=r"JointState.position.\[b\] is nan"):
        convert.joint_state_field(msg, ["a", "b"])
    with pytest.raises(ValueError, match=r"JointState.name lacks 'z'"):
        convert.joint_state_field(msg, ["z"])
    with pytest.raises(ValueError, match=r"JointState.position has 1 entries for 2 names"):
        convert.joint_state_field(JointState(name=["a", "b"], position=[1.0]), ["a"])
    with pytest.raises(ValueError, match="position must have one entry per name"):
        convert.arrays_to_joint_state(["a", "b"], [1.0])


def test_gripper_opening_from_fingers():
    assert convert.gripper_opening(np.array([0.04, 0.04]), 0.04) == pytest.approx(1.0)
    assert convert.gripper_opening(np.array([0.01, 0.01]), 0.04) == pytest.approx(0.25)
    assert convert.gripper_opening(np.array([-1e-4, 0.0]), 0.04)[0] == 0.0  # clipped like the spec's


# Commands and time --------------------------------------------------------------------------
def test_target_pose_is_the_action_applied_to_the_measured_pose():
    rotation = Rotation.from_rotvec([0.1, -0.2, 0.3]) * Rotation.from_quat([1, 0, 0, 0])
    x, y, z, w = rotation.as_quat()
    tcp_pose = np.array([0.45, 0.05, 0.2, w, x, y, z])
    for action in RNG.uniform(-1, 1, (20, 6)):
        target = spec.action_to_target_pose(action, tcp_pose, 0.03, 0.15)
        np.testing.assert_allclose(target[:3], tcp_pose[:3] + 0.03 * action[:3], atol=1e-15)
        # the rotation vector acts in the base frame, before the measured orientation (as the twin)
        expected = Rotation.from_rotvec(0.15 * action[3:]) * rotation
        w, x, y, z = target[3:]
        assert (Rotation.from_quat([x, y, z, w]) * expected.inv()).magnitude() < 1e-12
        np.testing.assert_allclose(spec.target_pose_to_action(target, tcp_pose, 0.03, 0.15), action, atol=1e-12)


def test_gripper_command_and_time():
    assert convert.gripper_command(-1.0) == -1.0
    with pytest.raises(ValueError, match=r"Float64.data \(gripper command\) is nan"):
        convert.gripper_command(float("nan"))
    assert convert.time_ns(convert.time_msg(12_345_678_901)) == 12_345_678_901
    with pytest.raises(ValueError, match="stamp: negative time"):
        convert.time_msg(-1)
