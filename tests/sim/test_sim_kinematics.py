"""The twin's Panda against Franka's published kinematics and datasheet.

The MJCF is built from body offsets and quaternions; these tests check the compiled model
against an independent statement of the same robot: Franka's modified DH table (written out
again here, not imported), the datasheet's joint and torque limits, and the identified link
masses of Gaz et al. (RA-L 2019).
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_rl.sim import panda

# Franka's modified DH parameters, (a [m], d [m], alpha [rad]) for joints 1..7, then the flange
# offset d = 0.107 m (https://frankaemika.github.io/docs/control_parameters.html).
FRANKA_DH = np.array(
    [
        [0.0, 0.333, 0.0],
        [0.0, 0.0, -np.pi / 2],
        [0.0, 0.316, np.pi / 2],
        [0.0825, 0.0, np.pi / 2],
        [-0.0825, 0.384, -np.pi / 2],
        [0.0, 0.0, np.pi / 2],
        [0.088, 0.0, np.pi / 2],
    ]
)
FRANKA_FLANGE_D = 0.107
# Datasheet joint limits [rad] and joint torque limits [Nm].
DATASHEET_Q_MIN = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
DATASHEET_Q_MAX = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
DATASHEET_TAU_MAX = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
# Identified link masses [kg], links 1..7 (Gaz et al. 2019, as in MuJoCo Menagerie's Panda).
IDENTIFIED_LINK_MASSES = np.array([4.970684, 0.646926, 3.228604, 3.587895, 1.225946, 1.666555, 0.735522])

HAND_FROM_FLANGE = Rotation.from_euler("z", -np.pi / 4).as_matrix()  # the hand is mounted at -45 deg
READY_Q = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])


def _dh_frames(q: np.ndarray) -> list[np.ndarray]:
    """Frames 1..7 and the flange (4x4, base frame) from FRANKA_DH, Craig's modified convention."""
    frames, T = [], np.eye(4)
    for (a, d, alpha), theta in zip(FRANKA_DH, q, strict=True):
        T = T @ _trans_x(a) @ _rot_x(alpha) @ _rot_z(theta) @ _trans_z(d)
        frames.append(T)
    frames.append(T @ _trans_z(FRANKA_FLANGE_D))
    return frames


def _rot_x(angle: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("x", angle).as_matrix()
    return T


def _rot_z(angle: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("z", angle).as_matrix()
    return T


def _trans_x(x: float) -> np.ndarray:
    T = np.eye(4)
    T[0, 3] = x
    return T


def _trans_z(z: float) -> np.ndarray:
    T = np.eye(4)
    T[2, 3] = z
    return T


@pytest.fixture(scope="module")
def arm():
    """Model and data of the bare arm (the reach scene: no payload in the hand)."""
    from robot_rl.sim.config import RobotConfig, SimConfig
    from robot_rl.sim.scene import build_model
    from robot_rl.sim.tasks import make_task

    model = build_model(make_task("reach"), SimConfig(cameras=[]), RobotConfig())
    return model, mujoco.MjData(model)


def _random_configs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(DATASHEET_Q_MIN, DATASHEET_Q_MAX, (n, 7))


def test_dh_table_matches_franka():
    np.testing.assert_array_equal(panda.DH_PARAMS, FRANKA_DH)
    assert panda.FLANGE_D == FRANKA_FLANGE_D


@pytest.mark.parametrize("q", list(_random_configs(25)) + [READY_Q, np.zeros(7)])
def test_library_dh_matches_independent_dh(q):
    np.testing.assert_allclose(panda.dh_forward_kinematics(q), _dh_frames(q)[-1], atol=1e-12)


def test_flange_and_tcp_match_dh_on_random_configs(arm):
    model, data = arm
    for q in _random_configs(40, seed=1):
        data.qpos[:7] = q
        mujoco.mj_kinematics(model, data)
        flange = _dh_frames(q)[-1]
        hand, tcp = data.body("hand"), data.site("tcp")
        np.testing.assert_allclose(hand.xpos, flange[:3, 3], atol=1e-9)
        np.testing.assert_allclose(hand.xmat.reshape(3, 3), flange[:3, :3] @ HAND_FROM_FLANGE, atol=1e-6)
        np.testing.assert_allclose(tcp.xpos, flange[:3, 3] + panda.FLANGE_TO_TCP * flange[:3, 2], atol=1e-9)
        np.testing.assert_allclose(tcp.xmat.reshape(3, 3), flange[:3, :3] @ HAND_FROM_FLANGE, atol=1e-6)


def test_joint_axes_and_anchors_match_dh_frames(arm):
    """Each MuJoCo joint turns about the z axis of its DH frame, through that frame's origin."""
    model, data = arm
    for q in _random_configs(10, seed=2):
        data.qpos[:7] = q
        mujoco.mj_kinematics(model, data)
        for i, frame in enumerate(_dh_frames(q)[:7]):
            joint = model.joint(f"joint{i + 1}").id
            np.testing.assert_allclose(data.xanchor[joint], frame[:3, 3], atol=1e-9)
            np.testing.assert_allclose(data.xaxis[joint], frame[:3, 2], atol=1e-6)


def test_known_pose_zero(arm):
    model, data = arm
    data.qpos[:7] = 0.0
    mujoco.mj_kinematics(model, data)
    a, d = FRANKA_DH[:, 0], FRANKA_DH[:, 1]
    # At q = 0 the arm is straight up; frame 7's z axis points down, so the flange is below it.
    expected = np.array([a[3] + a[4] + a[6], 0.0, d[0] + d[2] + d[4] - FRANKA_FLANGE_D])
    np.testing.assert_allclose(expected, [0.088, 0.0, 0.926], atol=1e-12)
    np.testing.assert_allclose(data.body("hand").xpos, expected, atol=1e-9)
    np.testing.assert_allclose(panda.dh_forward_kinematics(np.zeros(7))[:3, 3], expected, atol=1e-12)
    # Flange z points straight down at q = 0.
    np.testing.assert_allclose(data.body("hand").xmat.reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-9)


def test_known_pose_ready(arm):
    model, data = arm
    data.qpos[:7] = READY_Q
    mujoco.mj_kinematics(model, data)
    flange = panda.dh_forward_kinematics(READY_Q)
    # Franka's "ready" pose: flange about 0.307 m in front of the base and 0.590 m up, pointing down.
    np.testing.assert_allclose(flange[:3, 3], [0.3069, 0.0, 0.5903], atol=2e-4)
    np.testing.assert_allclose(data.body("hand").xpos, flange[:3, 3], atol=1e-9)
    np.testing.assert_allclose(flange[:3, 2], [0, 0, -1], atol=1e-9)
    # The hand's fingers then close along the world y axis: the TCP has the home orientation.
    from robot_rl.sim.env import HOME_TCP_ROTATION

    np.testing.assert_allclose(data.site("tcp").xmat.reshape(3, 3), HOME_TCP_ROTATION.as_matrix(), atol=1e-6)


def test_joint_limits_match_datasheet(arm):
    model, _ = arm
    np.testing.assert_array_equal(panda.JOINT_LIMITS[:, 0], DATASHEET_Q_MIN)
    np.testing.assert_array_equal(panda.JOINT_LIMITS[:, 1], DATASHEET_Q_MAX)
    for i in range(7):
        joint = model.joint(f"joint{i + 1}")
        assert joint.limited[0] == 1
        np.testing.assert_allclose(joint.range, [DATASHEET_Q_MIN[i], DATASHEET_Q_MAX[i]], atol=1e-12)


def test_torque_limits_are_actuatorfrcrange(arm):
    """The impedance controller's joint torques are clamped to the datasheet's torque limits."""
    model, _ = arm
    np.testing.assert_array_equal(panda.TORQUE_LIMITS, DATASHEET_TAU_MAX)
    for i in range(7):
        joint = model.joint(f"joint{i + 1}").id
        assert model.jnt_actfrclimited[joint]
        np.testing.assert_allclose(model.jnt_actfrcrange[joint], [-DATASHEET_TAU_MAX[i], DATASHEET_TAU_MAX[i]])


def test_link_masses_and_inertia(arm):
    model, _ = arm
    masses = np.array([model.body(f"link{i}").mass[0] for i in range(1, 8)])
    np.testing.assert_allclose(masses, IDENTIFIED_LINK_MASSES, rtol=1e-9)
    # Arm with hand and fingers: the datasheet gives ~18 kg.
    total = model.body_subtreemass[model.body("link0").id]
    assert 17.0 < total < 18.5, total
    # The compiled principal moments are the eigenvalues of the identified inertia tensors.
    for name, *_, inertia in panda._LINKS:
        ixx, iyy, izz, ixy, ixz, iyz = map(float, inertia.split())
        tensor = np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]])
        np.testing.assert_allclose(np.sort(model.body(name).inertia), np.linalg.eigvalsh(tensor), rtol=1e-6)


def test_arm_is_gravity_compensated(arm):
    """Franka's controller compensates the arm's own weight; the twin does it with gravcomp."""
    model, _ = arm
    for name in [f"link{i}" for i in range(1, 8)] + ["hand", "left_finger", "right_finger"]:
        assert model.body_gravcomp[model.body(name).id] == 1.0, name
