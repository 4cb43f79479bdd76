"""SimTwinEnv: the MuJoCo twin of the real cell as a gymnasium.Env.

Observation and action follow the spec shared with the real robot (robot_rl/spec.py):
  obs = {"images": {camera: uint8[H, W, 3]},
         "state": {"tcp_pose": [x y z qw qx qy qz], "tcp_vel": [vx vy vz wx wy wz],
                   "gripper": [opening 0..1], "wrench": [mean F, mean T, max|F|, max|T|]}}
  action = [dx dy dz, rotation vector drx dry drz, gripper] in [-1, 1]^7.
One step is one control period: the policy's action moves the Cartesian impedance target,
then MuJoCo integrates `sim.substeps` physics steps with the controller in the loop, and
the wrist F/T sensor is sampled at every one of them.

step() is built from three public pieces, for a driver that runs the twin against a wall clock
(ros_nodes/twin_node.py in real-time mode) rather than one control period at a time:
  set_command(action)  what step() does first: move the impedance target and the gripper
  advance(n)           integrate n physics steps (any n: part of a period, or several) and
                       return the F/T sensor's output at each of them, (n, 6)
  observe()            the observation now; its wrench statistic is over the last control
                       period's worth of samples (sim.substeps), whatever slices they came in
Advancing a period in any slices gives bit for bit what step() gives. The null-space posture
torque is refreshed once per control period, at set_command() and, while no command comes,
every `substeps` physics steps after it, as a controller that keeps running would.

The reward is the task's ground truth (sparse success or the dense shaped reward, shifted to
[-1, 0] when success ends the episode), an oracle that only the twin has: learned reward models
replace it for real-robot learning.
"""

from __future__ import annotations

import logging
import os
from typing import Any

if os.name == "posix" and "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl"  # headless rendering; set before mujoco is imported

import gymnasium as gym
import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl import spec
from robot_rl.sim.config import ROTATION_AXES, TWIN_ROBOT, RobotConfig, SimConfig, TaskConfig, check_choice
from robot_rl.sim.ft_sensor import WristFTSensor
from robot_rl.sim.panda import FINGER_MAX_OPENING, HOME_QPOS, posture_torque, solve_ik
from robot_rl.sim.randomization import DomainRandomizer
from robot_rl.sim.scene import VIDEO_SIZE, build_model
from robot_rl.sim.tasks import make_task

log = logging.getLogger(__name__)

REWARD_TYPES = ("sparse", "dense")
DIVERGED_SPEED = 50.0  # m/s or rad/s in any degree of freedom: no real motion here comes near it
SETTLE_TIME = 1.0  # s of physics after a reset, so the scene is at rest when the F/T is zeroed

# The home orientation: TCP pointing straight down, fingers closing along the world y axis.
HOME_TCP_ROTATION = Rotation.from_matrix(np.diag([1.0, -1.0, -1.0]))


class SimTwinEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: TaskConfig | str = "pick_cube",
        sim: SimConfig | None = None,
        robot: RobotConfig | None = None,
        reward: str = "sparse",
        render_mode: str | None = None,
    ):
        self.sim_cfg = sim if sim is not None else SimConfig()
        self.robot_cfg = robot if robot is not None else RobotConfig()
        self.sim_cfg.validate()
        self.robot_cfg.validate()
        check_choice(self.robot_cfg.name, (TWIN_ROBOT,), "robot.name")  # the other arms are real ones only
        check_choice(reward, REWARD_TYPES, "reward")
        if render_mode is not None:
            check_choice(render_mode, self.metadata["render_modes"], "render_mode")
        self.reward_type = reward
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.sim_cfg.control_hz}

        self.task = make_task(task)
        self.model = build_model(self.task, self.sim_cfg, self.robot_cfg)
        self.data = mujoco.MjData(self.model)
        self.task.bind(self.model, self.data)
        self.randomizer = DomainRandomizer(self.model, self.sim_cfg.randomize, self.task.object_body_names())
        self.ft_sensor = WristFTSensor(self.sim_cfg.ft_sensor, self.sim_cfg.physics_dt)

        self._tcp = self.model.site("tcp").id
        self._rotation_mask = np.array([axis in self.task.cfg.rotation_axes for axis in ROTATION_AXES], dtype=float)
        self._target = self.model.body("target").mocapid[0]
        self._ft_adr = self.model.sensor("ft_force").adr[0]  # force (3) then torque (3)
        self._gripper_act = self.model.actuator("gripper").id
        # The F/T output over the last control period (observe()'s statistic), oldest first.
        self._recent_wrench = np.zeros((self.sim_cfg.substeps, 6))
        self._steps_since_posture = 0  # physics steps since the posture torque was last computed
        self._gripper_closed = False  # the last gripper command (spec.gripper_closed_after)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

        self.observation_space = spec.observation_space(
            {name: self.sim_cfg.camera_rigs[name] for name in self.sim_cfg.cameras},
            task_state_dim=len(self.task.state()) if self.sim_cfg.privileged_state else 0,
        )
        self.action_space = spec.action_space()
        self._steps = 0

    # gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self.randomizer.apply(rng)
        start = self.task.reset(rng, self.sim_cfg.randomize.object_pose)

        start_rotation = Rotation.from_euler("z", start.tcp_yaw) * HOME_TCP_ROTATION
        start_quat = _wxyz(start_rotation)
        start_pos = np.clip(start.tcp_pos, self.robot_cfg.workspace_low, self.robot_cfg.workspace_high)
        # Teleport the arm (joint positions from IK); the objects were placed by the task.
        solve_ik(m, d, start_pos, start_quat, q_init=HOME_QPOS)
        d.qvel[:] = 0.0
        opening = self.task.gripper_hold if self.task.gripper_hold is not None else FINGER_MAX_OPENING
        d.qpos[7:9] = opening
        d.ctrl[self._gripper_act] = opening
        self._gripper_closed = False
        self.target_pos, self.target_rotation = start_pos, start_rotation
        self._set_target()
        mujoco.mj_forward(m, d)
        self._apply_posture_torque()
        if np.linalg.norm(d.site_xpos[self._tcp] - start_pos) > 0.01:
            log.warning("reset: IK reached %s for TCP target %s", d.site_xpos[self._tcp], start_pos)

        # Let the scene settle; the F/T sensor is zeroed at rest like a real one before a run.
        settle_periods = max(1, round(SETTLE_TIME * self.sim_cfg.control_hz))
        self.ft_sensor.reset(rng, self.sim_cfg.randomize.ft_noise_bias, d.sensordata[self._ft_adr : self._ft_adr + 6])
        for _ in range(settle_periods):
            samples = self._simulate(self.sim_cfg.substeps)
        if self.sim_cfg.ft_sensor.tare_on_reset:
            self.ft_sensor.tare(samples)
            samples = samples - samples.mean(axis=0)
        self._steps = 0
        self._steps_since_posture = 0  # the settled arm holds its pose: refreshed a period from now
        self._recent_wrench = samples
        return self.observe(), self._info()

    def step(self, action):
        self.set_command(action)
        self.advance(self.sim_cfg.substeps)
        self._steps += 1

        success = self.task.success()
        info = self._info(success)
        terminated = bool(success and self.task.cfg.terminate_on_success)
        # A contact that blows up (rare: a heavy randomised cube squeezed at an edge) flings an
        # object away at absurd speed, and MuJoCo later resets the whole state mid-episode. End
        # the episode there, visibly, rather than train on what follows.
        diverged = self.physics_diverged()
        if diverged:
            log.warning(
                "physics diverged at step %d (speed %.0f): episode truncated", self._steps, np.abs(self.data.qvel).max()
            )
        info["physics_diverged"] = diverged
        reward = self._oracle_reward(success, info)
        truncated = self._steps >= self.task.cfg.max_episode_steps or diverged
        return self.observe(), reward, terminated, truncated, info

    def ground_truth(self) -> tuple[bool, float]:
        """Task success and the configured oracle's reward in the state now, between steps (the
        twin node's real-time mode publishes them on sim/privileged)."""
        success = self.task.success()
        return success, self._oracle_reward(success, self._info(success))

    def _oracle_reward(self, success: bool, info: dict) -> float:
        if self.reward_type == "sparse":
            return float(success)
        if self.task.cfg.terminate_on_success:
            # Shifted to [-1, 0], 0 on success: a positive reward per step would pay a policy
            # more for hovering short of success than for the success that ends the episode.
            return 0.0 if success else info["oracle_dense_reward"] - 1.0
        return info["oracle_dense_reward"]

    def render(self):
        """A front view for videos, at VIDEO_SIZE, in the configured render profile."""
        return self.render_camera("front", VIDEO_SIZE, VIDEO_SIZE)

    def render_camera(self, camera: str, width: int, height: int) -> np.ndarray:
        renderer = self._renderers.get((height, width))
        if renderer is None:
            _import_triton_before_egl()
            renderer = self._renderers[(height, width)] = mujoco.Renderer(self.model, height, width)
        renderer.update_scene(self.data, camera=camera)
        return renderer.render()

    def close(self):
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    # the pieces of a step, for drivers that run the twin in real time -------------------------
    def set_command(self, action) -> None:
        """Start a control period as step() does: the action (the spec's 7-D, validated as step()
        validates it) moves the impedance target from the measured TCP pose and sets the gripper.
        The target then holds until the next command, however many physics steps follow."""
        self._move_target(self._checked_action(action))
        self._apply_posture_torque()
        self._steps_since_posture = 0

    def advance(self, n_physics_steps: int) -> np.ndarray:
        """Integrate `n_physics_steps` physics steps (sim.physics_dt each) with the controller in
        the loop; returns the F/T sensor's output at each of them, (n, 6) [N, Nm] in the sensor
        frame, the n samples a real sensor would have streamed. Episode bookkeeping (step count,
        success, truncation) is step()'s, not this."""
        if isinstance(n_physics_steps, bool) or not isinstance(n_physics_steps, int | np.integer):
            raise ValueError(f"n_physics_steps must be an int, got {type(n_physics_steps).__name__}")
        if n_physics_steps < 0:
            raise ValueError(f"n_physics_steps must be >= 0, got {n_physics_steps}")
        if n_physics_steps == 0:
            return np.zeros((0, 6))
        period = self.sim_cfg.substeps
        parts, done = [], 0
        while done < n_physics_steps:
            if self._steps_since_posture == period:  # a period with no new command: the controller runs on
                self._apply_posture_torque()
                self._steps_since_posture = 0
            n = min(n_physics_steps - done, period - self._steps_since_posture)
            parts.append(self._simulate(n))
            done += n
            self._steps_since_posture += n
        samples = np.concatenate(parts)
        self._recent_wrench = np.concatenate([self._recent_wrench, samples])[-period:]
        return samples

    @property
    def recent_wrench(self) -> np.ndarray:
        """The F/T sensor's samples of the last control period, (substeps, 6), oldest first: the
        last is the one at the latest observation. The observation's wrench is their statistic."""
        return self._recent_wrench.copy()

    def observe(self) -> dict[str, Any]:
        """The observation now, as step() returns it (cameras rendered now)."""
        d = self.data
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        quat = spec.canonical_quat(quat)
        velocity = np.zeros(6)  # [angular, linear] in the world frame
        mujoco.mj_objectVelocity(self.model, d, mujoco.mjtObj.mjOBJ_SITE, self._tcp, velocity, 0)
        state = {
            "tcp_pose": np.concatenate([d.site_xpos[self._tcp], quat]).astype(np.float32),
            "tcp_vel": np.concatenate([velocity[3:], velocity[:3]]).astype(np.float32),
            "gripper": np.clip([(d.qpos[7] + d.qpos[8]) / (2 * FINGER_MAX_OPENING)], 0.0, 1.0).astype(np.float32),
            "wrench": WristFTSensor.period_statistics(self._recent_wrench),
        }
        if self.sim_cfg.privileged_state:
            state["task"] = self.task.state().astype(np.float32)
        if not self.sim_cfg.cameras:
            return {"state": state}
        return {"images": self.render_cameras(), "state": state}

    def render_cameras(self) -> dict[str, np.ndarray]:
        """Every configured camera (sim.cameras) at its rig's size, rendered now."""
        rigs = self.sim_cfg.camera_rigs
        return {name: self.render_camera(name, rigs[name].width, rigs[name].height) for name in self.sim_cfg.cameras}

    def physics_diverged(self) -> bool:
        """Whether some degree of freedom moves faster than anything real (DIVERGED_SPEED)."""
        return bool(np.abs(self.data.qvel).max() > DIVERGED_SPEED)

    # internals ----------------------------------------------------------------------------
    def _checked_action(self, action) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (spec.ACTION_DIM,):
            raise ValueError(f"action must have shape ({spec.ACTION_DIM},) {spec.ACTION_LAYOUT}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            if self.sim_cfg.invalid_action == "raise":
                raise ValueError(f"action contains NaN/inf: {a.tolist()}")
            log.warning("non-finite action %s replaced by a hold-still action", a.tolist())
            a = np.zeros(spec.ACTION_DIM)  # no motion, and the gripper keeps its last command
        return np.clip(a, -1.0, 1.0)

    def _move_target(self, a: np.ndarray) -> None:
        """Set the impedance target to the measured TCP pose moved by the scaled action (as SERL
        does on the real Franka), within the safety limits: the workspace box and a maximum
        tilt from the home orientation. Relative to the measured pose, a blocked arm never
        winds up a force larger than stiffness x one step."""
        r = self.robot_cfg
        tcp_pos = self.data.site_xpos[self._tcp]
        tcp_rotation = Rotation.from_matrix(self.data.site_xmat[self._tcp].reshape(3, 3))

        self.target_pos = np.clip(tcp_pos + a[:3] * r.max_translation_step, r.workspace_low, r.workspace_high)
        rotation = Rotation.from_rotvec(a[3:6] * self._rotation_mask * r.max_rotation_step) * tcp_rotation
        # an axis the task does not rotate about has no room to tilt: the target holds home there
        max_tilt = np.asarray(r.max_tilt) * self._rotation_mask
        tilt = np.clip((rotation * HOME_TCP_ROTATION.inv()).as_rotvec(), -max_tilt, max_tilt)
        self.target_rotation = Rotation.from_rotvec(tilt) * HOME_TCP_ROTATION
        self._set_target()

        if self.task.gripper_hold is not None:
            self.data.ctrl[self._gripper_act] = self.task.gripper_hold
        else:
            self._gripper_closed = spec.gripper_closed_after(a[6], self._gripper_closed)
            self.data.ctrl[self._gripper_act] = 0.0 if self._gripper_closed else FINGER_MAX_OPENING

    def _apply_posture_torque(self) -> None:
        # Updated once per control period: the null space changes slowly at these speeds.
        self.data.qfrc_applied[:7] = posture_torque(self.model, self.data, self.robot_cfg.posture_stiffness)

    def _set_target(self) -> None:
        self.data.mocap_pos[self._target] = self.target_pos
        self.data.mocap_quat[self._target] = _wxyz(self.target_rotation)

    def _simulate(self, n: int) -> np.ndarray:
        """Integrate n physics steps as they are (no controller update); the F/T output at each."""
        m, d = self.model, self.data
        raw = np.empty((n, 6))
        for i in range(n):
            mujoco.mj_step(m, d)
            raw[i] = d.sensordata[self._ft_adr : self._ft_adr + 6]
        return self.ft_sensor.measure(raw, self.np_random)

    def _info(self, success: bool | None = None) -> dict[str, Any]:
        return {
            "success": self.task.success() if success is None else success,
            "oracle_dense_reward": self.task.dense_reward(),
            "task_state": self.task.state(),
            "physics_diverged": False,  # step() sets it (see DIVERGED_SPEED)
        }


def _import_triton_before_egl() -> None:
    """torch imports triton lazily (when the first optimiser is built), and importing triton into
    a process that already holds an EGL context segfaults (seen with Mesa's EGL here): a learner
    that renders camera observations and then builds its agent would crash. Import it first."""
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


def _wxyz(rotation: Rotation) -> np.ndarray:
    x, y, z, w = rotation.as_quat()
    return np.array([w, x, y, z])
