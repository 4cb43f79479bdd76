"""What a task adds to the twin: its objects, how they are reset, and its ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from robot_rl.sim.config import TaskConfig

# Collision bits: robot geoms are contype 2 / conaffinity 1, so the arm never collides with
# itself but does with everything in the scene, which is contype 1 / conaffinity 3.
SCENE_COLLISION = 'contype="1" conaffinity="3"'
NO_COLLISION = 'contype="0" conaffinity="0"'


@dataclass
class TaskMJCF:
    worldbody: str = ""
    asset: str = ""
    contact: str = ""
    hand_payload: str = ""  # XML inside the Panda hand body (e.g. a peg held from the start)


@dataclass
class TaskReset:
    """Where the TCP starts (robot base frame), chosen by the task at reset."""

    tcp_pos: np.ndarray
    tcp_yaw: float = 0.0


@dataclass
class Task:
    """Base class. Subclasses set `cfg` and implement the methods below; `bind` is called
    once the model is compiled, `reset` once per episode, the rest at every control step."""

    cfg: TaskConfig
    model: mujoco.MjModel = field(init=False, repr=False)
    data: mujoco.MjData = field(init=False, repr=False)
    # Finger opening [m] the gripper is held at, ignoring the policy's gripper action (None: the
    # policy commands the gripper).
    gripper_hold: float | None = field(init=False, default=None)

    def mjcf(self) -> TaskMJCF:
        raise NotImplementedError

    def bind(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model, self.data = model, data

    def reset(self, rng: np.random.Generator, randomize_pose: bool) -> TaskReset:
        raise NotImplementedError

    def success(self) -> bool:
        raise NotImplementedError

    def dense_reward(self) -> float:
        """Shaped reward in [0, 1] from ground truth, for evaluation and baselines only."""
        raise NotImplementedError

    def state(self) -> np.ndarray:
        """Object/goal state only the twin knows (privileged)."""
        raise NotImplementedError

    def object_body_names(self) -> list[str]:
        """Bodies whose friction and mass physics randomisation may change."""
        return []

    # helpers
    def tcp_pos(self) -> np.ndarray:
        return self.data.site("tcp").xpos.copy()
