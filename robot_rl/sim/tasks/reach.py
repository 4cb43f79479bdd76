from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.sim.config import ReachConfig
from robot_rl.sim.tasks.base import NO_COLLISION, Task, TaskMJCF, TaskReset


@dataclass
class ReachTask(Task):
    """Move the TCP to a goal marker (a smoke test for the whole loop)."""

    cfg: ReachConfig

    def mjcf(self) -> TaskMJCF:
        return TaskMJCF(
            worldbody=f"""
<body name="goal" mocap="true" pos="0.5 0 0.2">
  <geom name="goal_marker" type="sphere" size="{self.cfg.goal_tolerance}" rgba="0.1 0.8 0.2 0.6" {NO_COLLISION}/>
</body>"""
        )

    def reset(self, rng: np.random.Generator, randomize_pose: bool) -> TaskReset:
        low, high = np.array(self.cfg.goal_low), np.array(self.cfg.goal_high)
        goal = rng.uniform(low, high) if randomize_pose else (low + high) / 2
        self.data.mocap_pos[self.model.body("goal").mocapid[0]] = goal
        start = np.array([0.45, 0.0, 0.3]) + (rng.uniform(-0.05, 0.05, 3) if randomize_pose else 0.0)
        return TaskReset(tcp_pos=start)

    def goal(self) -> np.ndarray:
        return self.data.mocap_pos[self.model.body("goal").mocapid[0]].copy()

    def distance(self) -> float:
        return float(np.linalg.norm(self.tcp_pos() - self.goal()))

    def success(self) -> bool:
        return self.distance() < self.cfg.goal_tolerance

    def dense_reward(self) -> float:
        return float(1.0 - np.tanh(10.0 * self.distance()))

    def state(self) -> np.ndarray:
        """Goal position, then goal - TCP (the vector a policy has to close)."""
        return np.concatenate([self.goal(), self.goal() - self.tcp_pos()])
