"""Scripted experts for the twin's tasks: small state machines on ground-truth object state.

They produce demonstrations, play the simulated human in intervention experiments, and give
tests a policy that succeeds. Each reads only the observation's TCP pose and the env's
`info["task_state"]` (privileged), and returns a spec action in [-1, 1]^7.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.sim.config import RobotConfig
from robot_rl.sim.env import HOME_TCP_ROTATION, SimTwinEnv

OPEN, CLOSE = -1.0, 1.0


class ScriptedExpert:
    """Base: moves the TCP toward a goal pose each step, as fast as the action scale allows."""

    def __init__(self, env: SimTwinEnv):
        self.env = env
        self.robot: RobotConfig = env.robot_cfg
        # Where the expert aims, relative to the task's goal (the cube, the hole): zero for the
        # task; a shift of a few cm makes it miss on purpose, the near misses a success classifier
        # must learn to reject (the cube grasped beside it, the peg pushed down beside the hole).
        self.goal_offset = np.zeros(3)
        self.reset()

    def reset(self) -> None:
        self.phase = "approach"
        self.phase_steps = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        raise NotImplementedError

    def _goto(self, obs: dict, pos: np.ndarray, yaw: float, gripper: float, max_speed: float = 1.0) -> np.ndarray:
        tcp = obs["state"]["tcp_pose"]
        move = np.clip((pos - tcp[:3]) / self.robot.max_translation_step, -max_speed, max_speed)
        goal_rotation = Rotation.from_euler("z", yaw) * HOME_TCP_ROTATION
        current = Rotation.from_quat(tcp[3:], scalar_first=True)
        turn = np.clip((goal_rotation * current.inv()).as_rotvec() / self.robot.max_rotation_step, -1, 1)
        return np.concatenate([move, turn, [gripper]]).astype(np.float32)

    def _advance(self, phase: str) -> None:
        self.phase, self.phase_steps = phase, 0


def _grasp_yaw(quat_wxyz: np.ndarray) -> float:
    """Gripper yaw that lines the fingers up with a cube's faces (a square repeats every 90 deg)."""
    yaw = Rotation.from_quat(quat_wxyz, scalar_first=True).as_euler("zyx")[0]
    return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)


class ReachExpert(ScriptedExpert):
    def act(self, obs: dict, info: dict) -> np.ndarray:
        return self._goto(obs, info["task_state"][:3] + self.goal_offset, 0.0, OPEN)  # the goal


class PickCubeExpert(ScriptedExpert):
    """Above the cube -> down around it -> close -> lift; starts over if the cube slips."""

    def act(self, obs: dict, info: dict) -> np.ndarray:
        cube = info["task_state"]
        cube_pos, yaw = cube[:3] + self.goal_offset, _grasp_yaw(cube[3:7])
        tcp = obs["state"]["tcp_pose"][:3]
        above = cube_pos + [0.0, 0.0, 0.07]
        self.phase_steps += 1
        if self.phase == "approach":
            if np.linalg.norm(tcp - above) < 0.015:
                self._advance("descend")
            return self._goto(obs, above, yaw, OPEN)
        if self.phase == "descend":
            if np.linalg.norm(tcp - cube_pos) < 0.006 or self.phase_steps > 15:
                self._advance("grasp")
            return self._goto(obs, cube_pos, yaw, OPEN, max_speed=0.6)
        if self.phase == "grasp":
            if self.phase_steps >= 4:
                self._advance("lift")
            return self._goto(obs, cube_pos, yaw, CLOSE)
        # lift
        if np.linalg.norm(tcp - cube_pos) > 0.03:  # dropped it
            self._advance("approach")
            return self._goto(obs, above, yaw, OPEN)
        return self._goto(obs, np.array([cube_pos[0], cube_pos[1], 0.2]), yaw, CLOSE, max_speed=0.6)


class PegInsertExpert(ScriptedExpert):
    """Hover the peg tip over the hole until it is lined up to within the clearance, then push it
    straight down, slowly; back up to hovering if it drifts off centre while above the rim."""

    def act(self, obs: dict, info: dict) -> np.ndarray:
        s = info["task_state"]
        rim, hole_yaw, tip = s[:3] + self.goal_offset, float(np.arctan2(s[4], s[3])), s[5:8]
        yaw = (hole_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
        tcp = obs["state"]["tcp_pose"]
        tcp_yaw = (Rotation.from_quat(tcp[3:], scalar_first=True) * HOME_TCP_ROTATION.inv()).as_euler("zyx")[0]
        yaw_error = abs((tcp_yaw - yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)
        xy_error = np.linalg.norm(tip[:2] - rim[:2])
        clearance = self.env.task.cfg.clearance
        above_rim = tip[2] > rim[2] - 0.002
        # Hysteresis: start down when well centred, give up only when clearly off centre.
        # The tip fits when it is within clearance / 2 of the hole axis.
        if self.phase == "approach" and xy_error < 0.25 * clearance and yaw_error < 0.02:
            self._advance("insert")
        elif self.phase == "insert" and above_rim and xy_error > 0.5 * clearance:
            self._advance("approach")
        tip_to_tcp = tcp[:3] - tip
        if self.phase == "approach":
            return self._goto(obs, rim + [0.0, 0.0, 0.006] + tip_to_tcp, yaw, CLOSE, max_speed=0.5)
        bottom = rim - [0.0, 0.0, self.env.task.cfg.hole_depth]
        return self._goto(obs, bottom + tip_to_tcp, yaw, CLOSE, max_speed=0.1)


EXPERTS: dict[str, type[ScriptedExpert]] = {
    "reach": ReachExpert,
    "pick_cube": PickCubeExpert,
    "peg_insert": PegInsertExpert,
}


def make_expert(env: SimTwinEnv) -> ScriptedExpert:
    return EXPERTS[env.task.cfg.name](env)
