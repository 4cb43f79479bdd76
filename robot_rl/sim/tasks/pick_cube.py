from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.sim.config import PickCubeConfig
from robot_rl.sim.tasks.base import SCENE_COLLISION, Task, TaskMJCF, TaskReset


@dataclass
class PickCubeTask(Task):
    """Grasp a cube on the table and lift it `lift_height` above the table, held by both fingers."""

    cfg: PickCubeConfig

    def mjcf(self) -> TaskMJCF:
        h = self.cfg.cube_half_size
        return TaskMJCF(
            worldbody=f"""
<body name="cube" pos="0.5 0 {h}">
  <freejoint name="cube_joint"/>
  <geom name="cube" type="box" size="{h} {h} {h}" mass="{self.cfg.cube_mass}" material="object"
        condim="4" friction="1 0.01 0.0001" {SCENE_COLLISION}/>
</body>"""
        )

    def reset(self, rng: np.random.Generator, randomize_pose: bool) -> TaskReset:
        low, high = np.array(self.cfg.cube_low), np.array(self.cfg.cube_high)
        xy = rng.uniform(low, high) if randomize_pose else (low + high) / 2
        yaw = rng.uniform(-np.pi / 4, np.pi / 4) if randomize_pose else 0.0
        qadr = self.model.joint("cube_joint").qposadr[0]
        self.data.qpos[qadr : qadr + 7] = [*xy, self.cfg.cube_half_size, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        start = np.array([0.5, 0.0, 0.25]) + (
            rng.uniform([-0.05, -0.1, -0.03], [0.05, 0.1, 0.05]) if randomize_pose else 0.0
        )
        return TaskReset(tcp_pos=start)

    def cube_pose(self) -> np.ndarray:
        qadr = self.model.joint("cube_joint").qposadr[0]
        return self.data.qpos[qadr : qadr + 7].copy()

    def lift(self) -> float:
        """Height of the cube's bottom face above the table [m] (0 when resting)."""
        return float(self.cube_pose()[2] - self.cfg.cube_half_size)

    def bind(self, model, data) -> None:
        super().bind(model, data)
        self._cube_geom = model.geom("cube").id
        self._finger_bodies = [model.body("left_finger").id, model.body("right_finger").id]

    def grasped(self) -> bool:
        """Both fingers touch the cube."""
        pairs = self.data.contact.geom[: self.data.ncon]
        with_cube = pairs[(pairs == self._cube_geom).any(axis=1)]
        touching = self.model.geom_bodyid[with_cube[with_cube != self._cube_geom]]
        return all(finger in touching for finger in self._finger_bodies)

    def success(self) -> bool:
        # Held, not only high: a cube flung into the air is not a successful pick.
        return self.lift() >= self.cfg.lift_height and self.grasped()

    def dense_reward(self) -> float:
        reach = 1.0 - np.tanh(10.0 * np.linalg.norm(self.tcp_pos() - self.cube_pose()[:3]))
        lift = np.clip(self.lift() / self.cfg.lift_height, 0.0, 1.0)
        return float(0.25 * reach + 0.25 * self.grasped() + 0.5 * lift)

    def state(self) -> np.ndarray:
        """Cube pose (position, quaternion wxyz), then cube - TCP."""
        pose = self.cube_pose()
        return np.concatenate([pose, pose[:3] - self.tcp_pos()])

    def object_body_names(self) -> list[str]:
        return ["cube"]
