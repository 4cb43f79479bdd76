"""Configuration of the simulation twin: robot, cameras, F/T sensor, randomisation, tasks.

These dataclasses are both Hydra structured configs (see robot_rl/config.py) and the plain
constructor arguments of `SimTwinEnv`, so the env is usable without Hydra. `validate()`
methods check values that a type cannot, and name the offending key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING


class ConfigError(ValueError):
    """A config value is invalid; the message names the key."""


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def check_choice(value: str, valid: list[str] | tuple[str, ...], key: str) -> None:
    _check(value in valid, key, f"unknown value {value!r}; valid: {', '.join(valid)}")


@dataclass
class CameraConfig:
    """A pinhole camera. `mount` is "world" (pos/lookat in the robot base frame) or "hand"
    (pos/lookat in the Panda hand frame: z along the fingers)."""

    mount: str = "world"
    pos: list[float] = field(default_factory=lambda: [1.05, 0.0, 0.5])
    lookat: list[float] = field(default_factory=lambda: [0.45, 0.0, 0.08])
    up: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0])
    fovy: float = 45.0
    width: int = 128
    height: int = 128

    def validate(self, key: str) -> None:
        check_choice(self.mount, ("world", "hand"), f"{key}.mount")
        for name in ("pos", "lookat", "up"):
            _check(len(getattr(self, name)) == 3, f"{key}.{name}", "needs 3 numbers")
        _check(0 < self.fovy < 180, f"{key}.fovy", f"must be in (0, 180), got {self.fovy}")
        _check(8 <= self.width <= 2048, f"{key}.width", f"must be in [8, 2048], got {self.width}")
        _check(8 <= self.height <= 2048, f"{key}.height", f"must be in [8, 2048], got {self.height}")


def _default_camera_rigs() -> dict[str, CameraConfig]:
    return {
        "front": CameraConfig(),
        # Looks past the fingers from behind the hand, like a wrist-mounted RealSense D405.
        "wrist": CameraConfig(
            mount="hand", pos=[0.09, 0.0, 0.02], lookat=[0.0, 0.0, 0.16], up=[1.0, 0.0, 0.0], fovy=70.0
        ),
    }


@dataclass
class FTSensorConfig:
    """A wrist force-torque sensor model: raw MuJoCo reading + bias + white noise, then a
    first-order low-pass filter, sampled at every physics step."""

    force_noise_std: float = 0.05  # N, per sample
    torque_noise_std: float = 0.002  # Nm
    force_bias_std: float = 0.5  # N, drawn per episode when randomize.ft_noise_bias
    torque_bias_std: float = 0.02  # Nm
    lowpass_hz: float = 100.0  # 0 disables the filter
    tare_on_reset: bool = True

    def validate(self, key: str) -> None:
        for name in ("force_noise_std", "torque_noise_std", "force_bias_std", "torque_bias_std", "lowpass_hz"):
            _check(getattr(self, name) >= 0, f"{key}.{name}", "must be >= 0")


@dataclass
class RandomizationConfig:
    """Domain randomisation switches (each independent) and their magnitudes."""

    object_pose: bool = True
    lighting: bool = False
    colors: bool = False
    camera_pose: bool = False
    physics: bool = False  # object friction and mass
    ft_noise_bias: bool = True
    camera_pos_jitter: float = 0.01  # m
    camera_rot_jitter: float = 0.03  # rad
    friction_range: list[float] = field(default_factory=lambda: [0.6, 1.4])  # scale
    mass_range: list[float] = field(default_factory=lambda: [0.5, 2.0])  # scale

    def validate(self, key: str) -> None:
        for name in ("friction_range", "mass_range"):
            lo_hi = getattr(self, name)
            _check(len(lo_hi) == 2 and 0 < lo_hi[0] <= lo_hi[1], f"{key}.{name}", "needs 0 < low <= high")


RENDER_PROFILES = ("fast", "pretty")
INVALID_ACTION_POLICIES = ("raise", "hold")


@dataclass
class SimConfig:
    physics_dt: float = 0.002  # s (500 Hz)
    control_hz: float = 10.0
    render_profile: str = "fast"
    cameras: list[str] = field(default_factory=lambda: ["front", "wrist"])
    camera_rigs: dict[str, CameraConfig] = field(default_factory=_default_camera_rigs)
    ft_sensor: FTSensorConfig = field(default_factory=FTSensorConfig)
    randomize: RandomizationConfig = field(default_factory=RandomizationConfig)
    # "raise": a NaN/inf action raises; "hold": it is replaced by a hold-still action and a
    # warning is logged. A wrong shape always raises.
    invalid_action: str = "raise"
    # Append the task's object/goal state to obs["state"]["task"]: only the twin has it, so it
    # is for state-based baselines, never for policies meant for the real robot.
    privileged_state: bool = False

    def validate(self, key: str = "sim") -> None:
        _check(0 < self.physics_dt <= 0.01, f"{key}.physics_dt", f"must be in (0, 0.01], got {self.physics_dt}")
        _check(0 < self.control_hz <= 100, f"{key}.control_hz", f"must be in (0, 100], got {self.control_hz}")
        period = 1.0 / (self.control_hz * self.physics_dt)
        _check(
            abs(period - round(period)) < 1e-6,
            f"{key}.control_hz",
            f"the control period must be a whole number of physics steps (got {period:.3f})",
        )
        check_choice(self.render_profile, RENDER_PROFILES, f"{key}.render_profile")
        check_choice(self.invalid_action, INVALID_ACTION_POLICIES, f"{key}.invalid_action")
        for cam in self.cameras:
            check_choice(cam, sorted(self.camera_rigs), f"{key}.cameras")
        _check(len(set(self.cameras)) == len(self.cameras), f"{key}.cameras", "lists a camera twice")
        for name, rig in self.camera_rigs.items():
            rig.validate(f"{key}.camera_rigs.{name}")
        self.ft_sensor.validate(f"{key}.ft_sensor")
        self.randomize.validate(f"{key}.randomize")

    @property
    def substeps(self) -> int:
        return round(1.0 / (self.control_hz * self.physics_dt))


# The twin simulates the Panda; the others are real arms driven over ROS only (configs/robot/).
TWIN_ROBOT = "panda"
ROBOT_NAMES = (TWIN_ROBOT, "ur5e")


@dataclass
class RobotConfig:
    """The arm, its Cartesian impedance gains, the action scaling and the workspace box."""

    name: str = "panda"
    translational_stiffness: float = 1500.0  # N/m
    translational_damping: float = 90.0  # N s/m
    rotational_stiffness: float = 150.0  # Nm/rad
    rotational_damping: float = 6.0  # Nm s/rad
    posture_stiffness: float = 2.0  # Nm/rad, null-space pull of the elbow toward home
    gripper_force: float = 70.0  # N
    # An action of +-1 puts the impedance target this far from the measured TCP pose.
    max_translation_step: float = 0.03  # m
    max_rotation_step: float = 0.15  # rad
    # TCP target box in the robot base frame [m], and the largest rotation away from the
    # home orientation (pointing down) per axis [rad].
    workspace_low: list[float] = field(default_factory=lambda: [0.25, -0.3, 0.005])
    workspace_high: list[float] = field(default_factory=lambda: [0.75, 0.3, 0.45])
    max_tilt: list[float] = field(default_factory=lambda: [0.5, 0.5, 1.6])
    # What the robot's controller takes over ROS: "pose", a target PoseStamped (Cartesian
    # impedance, e.g. the Franka) or "twist", a TwistStamped (servo, e.g. a UR under MoveIt Servo).
    command_interface: str = "pose"

    def validate(self, key: str = "robot") -> None:
        check_choice(self.name, ROBOT_NAMES, f"{key}.name")
        check_choice(self.command_interface, ("pose", "twist"), f"{key}.command_interface")
        for name in (
            "translational_stiffness",
            "translational_damping",
            "rotational_stiffness",
            "rotational_damping",
            "gripper_force",
            "max_translation_step",
            "max_rotation_step",
        ):
            _check(getattr(self, name) > 0, f"{key}.{name}", f"must be > 0, got {getattr(self, name)}")
        _check(self.posture_stiffness >= 0, f"{key}.posture_stiffness", "must be >= 0")
        _check(
            len(self.workspace_low) == 3 and len(self.workspace_high) == 3, f"{key}.workspace_low", "needs 3 numbers"
        )
        _check(
            all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)),
            f"{key}.workspace_high",
            "must be above workspace_low on every axis",
        )
        _check(len(self.max_tilt) == 3 and all(t > 0 for t in self.max_tilt), f"{key}.max_tilt", "needs 3 numbers > 0")


TASK_NAMES = ("reach", "pick_cube", "peg_insert")
ROTATION_AXES = ("x", "y", "z")


@dataclass
class TaskConfig:
    name: str = MISSING
    max_episode_steps: int = 100
    terminate_on_success: bool = True
    # Base-frame axes the action's rotation part turns the TCP about; about the others the TCP is
    # held at the home orientation (pointing down) and those action entries are ignored. A task
    # that needs no rotation learns faster without it: SERL's PandaPickCube moves in x, y, z only.
    rotation_axes: list[str] = field(default_factory=lambda: list(ROTATION_AXES))

    # Whether the policy's gripper command does anything (a task may hold the gripper itself).
    policy_grips: ClassVar[bool] = True

    def controlled_actions(self) -> list[int]:
        """The entries of the spec's 7-D action the policy drives: the translation, the task's
        rotation axes and the gripper; the twin ignores the others, so agents leave them at 0."""
        rotation = [3 + ROTATION_AXES.index(axis) for axis in sorted(self.rotation_axes)]
        return [0, 1, 2, *rotation, *([6] if self.policy_grips else [])]

    def validate(self, key: str = "task") -> None:
        check_choice(self.name, TASK_NAMES, f"{key}.name")
        _check(self.max_episode_steps > 0, f"{key}.max_episode_steps", "must be > 0")
        for axis in self.rotation_axes:
            check_choice(axis, ROTATION_AXES, f"{key}.rotation_axes")
        _check(len(set(self.rotation_axes)) == len(self.rotation_axes), f"{key}.rotation_axes", "lists an axis twice")


@dataclass
class ReachConfig(TaskConfig):
    name: str = "reach"
    max_episode_steps: int = 50
    rotation_axes: list[str] = field(default_factory=list)  # position only
    goal_tolerance: float = 0.02  # m
    goal_low: list[float] = field(default_factory=lambda: [0.35, -0.2, 0.05])
    goal_high: list[float] = field(default_factory=lambda: [0.65, 0.2, 0.35])


@dataclass
class PickCubeConfig(TaskConfig):
    name: str = "pick_cube"
    max_episode_steps: int = 100
    # x, y, z and the gripper, as SERL's PandaPickCube: the 4 cm cube fits the 8 cm gripper at any yaw
    rotation_axes: list[str] = field(default_factory=list)
    cube_half_size: float = 0.02  # m
    cube_mass: float = 0.1  # kg
    lift_height: float = 0.05  # m above the table, for success
    cube_low: list[float] = field(default_factory=lambda: [0.4, -0.15])  # x, y on the table
    cube_high: list[float] = field(default_factory=lambda: [0.6, 0.15])

    def validate(self, key: str = "task") -> None:
        super().validate(key)
        _check(0.005 <= self.cube_half_size <= 0.035, f"{key}.cube_half_size", "must fit the 8 cm gripper")


@dataclass
class PegInsertConfig(TaskConfig):
    """A square peg, held in the gripper from the start, into a square hole."""

    policy_grips: ClassVar[bool] = False  # the peg is held from the start
    name: str = "peg_insert"
    max_episode_steps: int = 100
    rotation_axes: list[str] = field(default_factory=lambda: ["z"])  # the peg turns to the hole's yaw
    peg_half_size: float = 0.0125  # m, square cross-section
    peg_half_length: float = 0.04  # m
    clearance: float = 0.0015  # m, hole width minus peg width (1-2 mm)
    hole_depth: float = 0.04  # m
    insert_depth: float = 0.025  # m the peg tip must be below the hole's rim, for success
    hole_low: list[float] = field(default_factory=lambda: [0.45, -0.1])
    hole_high: list[float] = field(default_factory=lambda: [0.6, 0.1])
    hole_max_yaw: float = 0.3  # rad

    def validate(self, key: str = "task") -> None:
        super().validate(key)
        _check(0.0005 <= self.clearance <= 0.01, f"{key}.clearance", "must be in [0.5, 10] mm")
        _check(self.insert_depth < self.hole_depth, f"{key}.insert_depth", "must be less than hole_depth")


TASK_CONFIGS: dict[str, type[TaskConfig]] = {
    "reach": ReachConfig,
    "pick_cube": PickCubeConfig,
    "peg_insert": PegInsertConfig,
}
