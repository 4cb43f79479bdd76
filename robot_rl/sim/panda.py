"""Franka Emika Panda in MJCF, built from Franka's published kinematics with primitive geometry.

Kinematics (link frames, joint axes, joint limits) follow Franka's modified Denavit-Hartenberg
parameters; link masses, centres of mass and inertia tensors are the identified values of
Gaz et al., "Dynamic Identification of the Franka Emika Panda Robot" (RA-L 2019), the same
numbers MuJoCo Menagerie's Panda uses. Geometry is capsules, cylinders and boxes instead of
meshes: on the CPU renderer triangles are the cost, and an arm of primitives renders ~30x
faster than the Panda's visual meshes (see ../../shared/ARCHITECTURE.md).

Control is a Cartesian impedance controller evaluated by MuJoCo at every physics step: six
`position` actuators on the TCP site, each measured relative to the `target` mocap frame
(MuJoCo's site transmission with `refsite`), so the joint torques are
tau = J^T (K (x_target - x) - D xdot), clamped to the Panda's joint torque limits, with the
robot's own gravity compensated (`gravcomp`) as Franka's controller does. The policy moves
the target frame at the control rate; no Python runs inside the physics loop. The redundant
seventh degree of freedom is held near home by a posture torque projected into the Jacobian's
null space (`posture_torque`), so it never pulls the TCP off its target.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_rl.sim.config import RobotConfig

# Joint limits [rad] and torque limits [Nm] from Franka's datasheet.
JOINT_LIMITS = np.array(
    [
        [-2.8973, 2.8973],
        [-1.7628, 1.7628],
        [-2.8973, 2.8973],
        [-3.0718, -0.0698],
        [-2.8973, 2.8973],
        [-0.0175, 3.7525],
        [-2.8973, 2.8973],
    ]
)
TORQUE_LIMITS = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
FINGER_MAX_OPENING = 0.04  # per finger [m]; the hand opens 8 cm in total
FLANGE_TO_TCP = 0.1034  # flange to the centre of the fingertip pads [m]

# Franka's modified DH parameters (a, d, alpha) for joints 1..7 and the flange.
DH_PARAMS = np.array(
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
FLANGE_D = 0.107

# (name, body pos, body quat, mass, com, fullinertia) in MuJoCo's body-frame convention.
_LINKS = [
    ("link1", "0 0 0.333", "1 0 0 0", 4.970684, "0.003875 0.002081 -0.04762",
     "0.70337 0.70661 0.0091170 -0.00013900 0.0067720 0.019169"),
    ("link2", "0 0 0", "1 -1 0 0", 0.646926, "-0.003141 -0.02872 0.003495",
     "0.0079620 2.8110e-2 2.5995e-2 -3.925e-3 1.0254e-2 7.04e-4"),
    ("link3", "0 -0.316 0", "1 1 0 0", 3.228604, "2.7518e-2 3.9252e-2 -6.6502e-2",
     "3.7242e-2 3.6155e-2 1.083e-2 -4.761e-3 -1.1396e-2 -1.2805e-2"),
    ("link4", "0.0825 0 0", "1 1 0 0", 3.587895, "-5.317e-2 1.04419e-1 2.7454e-2",
     "2.5853e-2 1.9552e-2 2.8323e-2 7.796e-3 -1.332e-3 8.641e-3"),
    ("link5", "-0.0825 0.384 0", "1 -1 0 0", 1.225946, "-1.1953e-2 4.1065e-2 -3.8437e-2",
     "3.5549e-2 2.9474e-2 8.627e-3 -2.117e-3 -4.037e-3 2.29e-4"),
    ("link6", "0 0 0", "1 1 0 0", 1.666555, "6.0149e-2 -1.4117e-2 -1.0517e-2",
     "1.964e-3 4.354e-3 5.433e-3 1.09e-4 -1.158e-3 3.41e-4"),
    ("link7", "0.088 0 0", "1 1 0 0", 0.735522, "1.0517e-2 -4.252e-3 6.1597e-2",
     "1.2516e-2 1.0027e-2 4.815e-3 -4.28e-4 -1.196e-3 -7.41e-4"),
]  # fmt: skip

# Primitive shells per link, in that link's frame (fromto for capsules/cylinders).
_LINK_GEOMS = {
    "link1": [
        ('type="capsule" fromto="0 0 -0.2 0 0 -0.06" size="0.06"', "white"),
        ('type="cylinder" fromto="0 -0.06 0 0 0.06 0" size="0.06"', "white"),
    ],
    "link2": [('type="capsule" fromto="0 0 0 0 -0.2 0" size="0.06"', "white")],
    "link3": [
        ('type="capsule" fromto="0 0 -0.14 0 0 -0.02" size="0.06"', "white"),
        ('type="cylinder" fromto="0.0825 -0.06 0 0.0825 0.06 0" size="0.055"', "dark"),
    ],
    "link4": [('type="capsule" fromto="0 0 0 -0.0825 0.13 0" size="0.055"', "white")],
    "link5": [('type="capsule" fromto="0 0 -0.26 0 0 -0.05" size="0.05"', "white")],
    "link6": [
        ('type="capsule" fromto="0 0 0 0.088 0 0" size="0.045"', "white"),
        ('type="cylinder" fromto="0 0 -0.06 0 0 0.055" size="0.05"', "accent"),
    ],
    "link7": [('type="cylinder" fromto="0 0 -0.03 0 0 0.1" size="0.042"', "dark")],
}

HOME_QPOS = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, np.pi / 4])


def panda_mjcf(robot: RobotConfig, hand_payload: str = "", wrist_cameras: str = "") -> dict[str, str]:
    """MJCF sections of the Panda: `default`, `worldbody`, `actuator`, `sensor`, `equality`,
    `tendon`, `contact`. `hand_payload` is XML placed inside the hand body (e.g. a held
    peg); `wrist_cameras` is XML for cameras mounted on the hand."""
    bodies_open = []
    bodies_close = []
    for i, (name, pos, quat, mass, com, inertia) in enumerate(_LINKS):
        lo, hi = JOINT_LIMITS[i]
        geoms = "\n".join(f'<geom class="robot" {shape} material="panda_{mat}"/>' for shape, mat in _LINK_GEOMS[name])
        bodies_open.append(
            f'<body name="{name}" pos="{pos}" quat="{quat}" gravcomp="1">\n'
            f'<inertial mass="{mass}" pos="{com}" fullinertia="{inertia}"/>\n'
            f'<joint name="joint{i + 1}" range="{lo} {hi}" '
            f'actuatorfrcrange="{-TORQUE_LIMITS[i]} {TORQUE_LIMITS[i]}"/>\n{geoms}'
        )
        bodies_close.append("</body>")

    finger_geoms = (
        '<geom class="finger" type="box" pos="0 0.008 0.027" size="0.01 0.008 0.027"/>'
        '<geom class="robot" type="box" pos="0 0.012 0.008" size="0.01 0.012 0.008" '
        'material="panda_dark"/>'
    )
    hand = f"""
<body name="hand" pos="0 0 0.107" quat="0.9238795 0 0 -0.3826834" gravcomp="1">
  <inertial mass="0.73" pos="-0.01 0 0.03" diaginertia="0.001 0.0025 0.0017"/>
  <site name="ft_site" size="0.005" rgba="1 0 0 0"/>
  <site name="tcp" pos="0 0 {FLANGE_TO_TCP}" size="0.005" rgba="0 1 0 0"/>
  <geom class="robot" type="box" pos="0 0 0.04" size="0.025 0.1 0.02" material="panda_white"/>
  <geom class="robot" type="cylinder" fromto="0 0 0 0 0 0.02" size="0.04" material="panda_dark"/>
  {wrist_cameras}
  {hand_payload}
  <body name="left_finger" pos="0 0 0.0584" gravcomp="1">
    <inertial mass="0.015" pos="0 0 0" diaginertia="2.375e-6 2.375e-6 7.5e-7"/>
    <joint name="finger_joint1" class="finger"/>
    {finger_geoms}
  </body>
  <body name="right_finger" pos="0 0 0.0584" quat="0 0 0 1" gravcomp="1">
    <inertial mass="0.015" pos="0 0 0" diaginertia="2.375e-6 2.375e-6 7.5e-7"/>
    <joint name="finger_joint2" class="finger"/>
    {finger_geoms}
  </body>
</body>"""

    worldbody = f"""
<body name="link0" childclass="panda">
  <inertial mass="0.629769" pos="-0.041018 -0.00014 0.049974"
            fullinertia="0.00315 0.00388 0.004285 8.2904e-7 0.00015 8.2299e-6"/>
  <geom type="cylinder" fromto="0 0 0 0 0 0.14" size="0.07" material="panda_white" contype="0" conaffinity="0"/>
  <geom type="box" pos="-0.08 0 0.05" size="0.08 0.07 0.05" material="panda_white" contype="0" conaffinity="0"/>
  {"".join(bodies_open)}
  {hand}
  {"".join(bodies_close)}
</body>
<body name="target" mocap="true">
  <site name="target_site" size="0.01" rgba="0 1 0 0"/>
</body>"""

    g = robot
    cartesian = []
    for axis in range(6):
        gear = ["0"] * 6
        gear[axis] = "1"
        if axis < 3:
            kp, kv = g.translational_stiffness, g.translational_damping
        else:
            kp, kv = g.rotational_stiffness, g.rotational_damping
        cartesian.append(
            f'<position name="impedance_{"xyzabc"[axis]}" site="tcp" refsite="target_site" '
            f'gear="{" ".join(gear)}" kp="{kp}" kv="{kv}" ctrlrange="-1 1"/>'
        )
    # The gripper: a position servo on the mean finger opening, force-limited like the real hand.
    gripper_kp = 2 * g.gripper_force / FINGER_MAX_OPENING
    actuator = "\n".join(cartesian) + (
        f'\n<position name="gripper" tendon="finger_split" kp="{gripper_kp}" kv="{0.05 * gripper_kp}" '
        f'ctrlrange="0 {FINGER_MAX_OPENING}" forcerange="{-2 * g.gripper_force} {2 * g.gripper_force}"/>'
    )
    default = f"""
<default class="panda">
  <joint axis="0 0 1" armature="0.1" damping="1"/>
  <default class="robot">
    <geom contype="2" conaffinity="1" group="1" friction="1 0.005 0.0001"/>
  </default>
  <!-- Heavy finger damping: MuJoCo integrates a saturated servo's kv explicitly, and with the
       15 g fingers that is unstable; joint damping is always implicit. -->
  <default class="finger">
    <joint axis="0 1 0" type="slide" range="0 {FINGER_MAX_OPENING}" armature="0.01" damping="50"/>
    <geom contype="2" conaffinity="1" group="1" condim="4" friction="1.5 0.01 0.0001"
          material="panda_dark" solref="0.005 1"/>
  </default>
</default>"""
    return {
        "default": default,
        "asset": """
<material name="panda_white" rgba="0.92 0.93 0.93 1" specular="0.4" shininess="0.3"/>
<material name="panda_dark" rgba="0.22 0.22 0.24 1" specular="0.3" shininess="0.2"/>
<material name="panda_accent" rgba="0.04 0.54 0.78 1" specular="0.3" shininess="0.2"/>""",
        "worldbody": worldbody,
        "actuator": actuator,
        "tendon": """
<fixed name="finger_split">
  <joint joint="finger_joint1" coef="0.5"/>
  <joint joint="finger_joint2" coef="0.5"/>
</fixed>""",
        "equality": '<joint joint1="finger_joint1" joint2="finger_joint2" solimp="0.95 0.99 0.001" solref="0.005 1"/>',
        "sensor": """
<force name="ft_force" site="ft_site"/>
<torque name="ft_torque" site="ft_site"/>""",
        "contact": '<exclude body1="link7" body2="hand"/>',
    }


def dh_forward_kinematics(q: np.ndarray) -> np.ndarray:
    """Flange pose (4x4) from Franka's modified DH table; independent of the MJCF, for tests."""
    T = np.eye(4)
    for (a, d, alpha), theta in zip(DH_PARAMS, q, strict=True):
        ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
        T = T @ np.array(
            [
                [ct, -st, 0, a],
                [st * ca, ct * ca, -sa, -d * sa],
                [st * sa, ct * sa, ca, d * ca],
                [0, 0, 0, 1],
            ]
        )
    flange = np.eye(4)
    flange[2, 3] = FLANGE_D
    return T @ flange


def solve_ik(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    pos: np.ndarray,
    quat: np.ndarray,
    q_init: np.ndarray = HOME_QPOS,
    iterations: int = 100,
    damping: float = 1e-3,
) -> np.ndarray:
    """Arm joint angles putting the TCP at `pos` with orientation `quat` (wxyz), by damped least
    squares from `q_init`, within joint limits. Leaves `data.qpos[:7]` at the solution."""
    tcp = model.site("tcp").id
    jac = np.zeros((6, model.nv))
    current = np.zeros(4)
    rot_err = np.zeros(3)
    data.qpos[:7] = q_init
    for _ in range(iterations):
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mju_mat2Quat(current, data.site_xmat[tcp])
        mujoco.mju_subQuat(rot_err, quat, current)  # body-frame rotation from current to goal
        err = np.concatenate([pos - data.site_xpos[tcp], data.site_xmat[tcp].reshape(3, 3) @ rot_err])
        if np.linalg.norm(err) < 1e-6:
            break
        mujoco.mj_jacSite(model, data, jac[:3], jac[3:], tcp)
        J = jac[:, :7]
        dq = J.T @ np.linalg.solve(J @ J.T + damping * np.eye(6), err)
        data.qpos[:7] = np.clip(data.qpos[:7] + dq, JOINT_LIMITS[:, 0], JOINT_LIMITS[:, 1])
    return data.qpos[:7].copy()


def posture_torque(
    model: mujoco.MjModel, data: mujoco.MjData, stiffness: float, q_home: np.ndarray = HOME_QPOS
) -> np.ndarray:
    """Joint torque pulling the arm toward `q_home` only in the null space of the TCP Jacobian:
    tau = (I - J^T (J^T)^+) k (q_home - q), the posture term of Franka's Cartesian impedance
    example controller. It moves the elbow without moving the TCP."""
    jac = np.zeros((6, model.nv))
    mujoco.mj_jacSite(model, data, jac[:3], jac[3:], model.site("tcp").id)
    J = jac[:, :7]
    null_space = np.eye(7) - J.T @ np.linalg.pinv(J.T)
    return null_space @ (stiffness * (q_home - data.qpos[:7]))
