"""The observation / action spec shared by the twin and the real robot.

obs = {"images": {camera: uint8[H, W, 3]},    (absent when no camera is configured)
       "state": {"tcp_pose": float32[7]  position [m] + orientation quaternion (w, x, y, z), base frame,
                                          sign chosen on the side of TCP_HOME_QUAT (canonical_quat),
                 "tcp_vel": float32[6]   linear [m/s] + angular [rad/s] velocity, base frame,
                 "gripper": float32[1]   opening, 0 closed .. 1 fully open,
                 "wrench": float32[12]   F/T over the last control period: mean force [N],
                                          mean torque [Nm], max-abs force, max-abs torque;
                                          the wrench the flange exerts on the tool, in the
                                          sensor frame (z along the fingers), zeroed at rest
                                          at reset: pointing down, an added held weight m
                                          reads F_z = -m*g, pressing on a surface F_z > 0}}
action = float32[7] in [-1, 1]: TCP translation (3) and rotation as a rotation vector (3), each
scaled by the robot's per-step maximum, then the gripper command: above +GRIPPER_DEADBAND close,
below -GRIPPER_DEADBAND open, in between keep the last command ("stay"), as SERL drives the Franka
Hand (its grasp/move actions take a command, not a streamed opening) and as HIL-SERL's discrete
grasp critic ({open, stay, close} = -1, 0, +1) expects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from gymnasium import spaces
from scipy.spatial.transform import Rotation

ACTION_DIM = 7
ACTION_LAYOUT = "[dx dy dz drx dry drz gripper]"
WRENCH_DIM = 12
GRIPPER_DEADBAND = 0.5
STATE_DIMS = {"tcp_pose": 7, "tcp_vel": 6, "gripper": 1, "wrench": WRENCH_DIM}
# TCP pointing straight down (a half turn about the base x axis), where the robot works.
TCP_HOME_QUAT = np.array([0.0, 1.0, 0.0, 0.0])


def canonical_quat(quat_wxyz: np.ndarray) -> np.ndarray:
    """q and -q are the same rotation; pick the one nearest the home orientation, so the
    observation is continuous where the robot works (w >= 0 would flip at home, where w = 0)."""
    return -quat_wxyz if np.dot(quat_wxyz, TCP_HOME_QUAT) < 0 else quat_wxyz


class ImageSize(Protocol):
    width: int
    height: int


def observation_space(cameras: Mapping[str, ImageSize], task_state_dim: int = 0) -> spaces.Dict:
    state = {key: spaces.Box(-np.inf, np.inf, (dim,), np.float32) for key, dim in STATE_DIMS.items()}
    state["gripper"] = spaces.Box(0.0, 1.0, (1,), np.float32)
    if task_state_dim:
        state["task"] = spaces.Box(-np.inf, np.inf, (task_state_dim,), np.float32)
    images = {name: spaces.Box(0, 255, (cam.height, cam.width, 3), np.uint8) for name, cam in cameras.items()}
    if not images:  # state-only: gymnasium forbids an empty Dict space
        return spaces.Dict({"state": spaces.Dict(state)})
    return spaces.Dict({"images": spaces.Dict(images), "state": spaces.Dict(state)})


def flatten_state(state: Mapping[str, np.ndarray]) -> np.ndarray:
    """The state dict as one float32 vector: STATE_DIMS' keys in order, then "task" if present
    (the twin's privileged object state, for state-based baselines only)."""
    keys = [*STATE_DIMS, "task"] if "task" in state else list(STATE_DIMS)
    return np.concatenate([np.asarray(state[k], dtype=np.float32).reshape(-1) for k in keys])


def state_indices_without(ignored: Sequence[str], state_dim: int) -> list[int]:
    """The positions in a flattened state of `state_dim` entries (flatten_state's layout: STATE_DIMS,
    then "task", whatever follows them) that are not in the entries `ignored`."""
    dims = STATE_DIMS | {"task": state_dim - sum(STATE_DIMS.values())}
    unknown = set(ignored) - set(dims)
    if unknown:
        raise ValueError(f"unknown state entries {sorted(unknown)}; valid: {', '.join(dims)}")
    indices: list[int] = []
    start = 0
    for key, dim in dims.items():
        if key not in ignored:
            indices += range(start, start + dim)
        start += dim
    return indices


def action_space() -> spaces.Box:
    return spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)


def gripper_closed_after(command: float, closed: bool) -> bool:
    """Whether the gripper is commanded closed after the gripper action `command` (see the module
    docstring), given whether it was before."""
    if command > GRIPPER_DEADBAND:
        return True
    if command < -GRIPPER_DEADBAND:
        return False
    return closed


# Poses and actions ----------------------------------------------------------------------------
def quat_rotation(quat_wxyz: np.ndarray) -> Rotation:
    w, x, y, z = quat_wxyz
    return Rotation.from_quat([x, y, z, w])


def rotation_quat(rotation: Rotation) -> np.ndarray:
    """[w x y z], the spec's quaternion order (scipy's is scalar last)."""
    x, y, z, w = rotation.as_quat()
    return np.array([w, x, y, z])


def action_to_target_pose(
    action: np.ndarray, tcp_pose: np.ndarray, max_translation_step: float, max_rotation_step: float
) -> np.ndarray:
    """The impedance target [x y z qw qx qy qz] that an action (its first 6 entries) asks for from
    the measured pose `tcp_pose`: translated by action[:3] * max_translation_step and rotated, in
    the base frame, by the rotation vector action[3:6] * max_rotation_step (what the twin does, and
    SERL on the real Franka). No workspace clipping: the robot side (twin, safety filter) clips."""
    a = np.asarray(action, dtype=np.float64)
    position = tcp_pose[:3] + a[:3] * max_translation_step
    rotation = Rotation.from_rotvec(a[3:6] * max_rotation_step) * quat_rotation(tcp_pose[3:])
    return np.concatenate([position, canonical_quat(rotation_quat(rotation))])


def target_pose_to_action(
    target_pose: np.ndarray, tcp_pose: np.ndarray, max_translation_step: float, max_rotation_step: float
) -> np.ndarray:
    """The inverse of action_to_target_pose: the 6 motion entries of the action that move the
    measured pose `tcp_pose` to `target_pose`. Entries beyond [-1, 1] (a target further than one
    control step) are returned as they are; the env clips them as it clips any action."""
    translation = (target_pose[:3] - tcp_pose[:3]) / max_translation_step
    turn = quat_rotation(target_pose[3:]) * quat_rotation(tcp_pose[3:]).inv()
    return np.concatenate([translation, turn.as_rotvec() / max_rotation_step])
