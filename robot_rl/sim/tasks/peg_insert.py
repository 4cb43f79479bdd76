from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.sim.config import PegInsertConfig
from robot_rl.sim.panda import FLANGE_TO_TCP
from robot_rl.sim.tasks.base import SCENE_COLLISION, Task, TaskMJCF, TaskReset

WALL = 0.02  # thickness of the fixture's walls [m]
GRIP_OVERLAP = 0.015  # length of peg inside the fingers [m]


@dataclass
class PegInsertTask(Task):
    """Insert a square peg, held by the gripper, into a square hole with 1-2 mm clearance.

    The peg is rigidly attached to the hand (a firm grasp, as in SERL's insertion tasks), so
    every contact force on it passes through the wrist F/T sensor."""

    cfg: PegInsertConfig

    def __post_init__(self) -> None:
        self.gripper_hold = self.cfg.peg_half_size

    def mjcf(self) -> TaskMJCF:
        c = self.cfg
        s, length = c.peg_half_size, c.peg_half_length
        w = s + c.clearance / 2  # half width of the hole
        d = c.hole_depth / 2
        # Four walls around the hole; the fixture is a mocap body so reset can move it.
        off = w + WALL / 2
        half_span = w + WALL
        walls = "\n".join(
            f'<geom name="wall_{i}" type="box" pos="{x} {y} {d}" size="{sx} {sy} {d}" material="fixture" '
            f"{SCENE_COLLISION}/>"
            for i, (x, y, sx, sy) in enumerate(
                [
                    (off, 0, WALL / 2, half_span),
                    (-off, 0, WALL / 2, half_span),
                    (0, off, w, WALL / 2),
                    (0, -off, w, WALL / 2),
                ]
            )
        )
        peg_centre = FLANGE_TO_TCP - GRIP_OVERLAP + length
        return TaskMJCF(
            worldbody=f"""
<body name="fixture" mocap="true" pos="0.5 0 0">
  {walls}
  <site name="hole_rim" pos="0 0 {c.hole_depth}" size="0.003" rgba="1 0 0 0"/>
</body>""",
            hand_payload=f"""
<body name="peg" pos="0 0 {peg_centre}">
  <geom name="peg" type="box" size="{s} {s} {length}" mass="0.05" material="object"
        friction="0.3 0.005 0.0001" {SCENE_COLLISION}/>
  <site name="peg_tip" pos="0 0 {length}" size="0.003" rgba="1 0 0 0"/>
</body>""",
            contact='<exclude body1="peg" body2="left_finger"/><exclude body1="peg" body2="right_finger"/>',
        )

    def reset(self, rng: np.random.Generator, randomize_pose: bool) -> TaskReset:
        low, high = np.array(self.cfg.hole_low), np.array(self.cfg.hole_high)
        xy = rng.uniform(low, high) if randomize_pose else (low + high) / 2
        yaw = rng.uniform(-self.cfg.hole_max_yaw, self.cfg.hole_max_yaw) if randomize_pose else 0.0
        mocap = self.model.body("fixture").mocapid[0]
        self.data.mocap_pos[mocap] = [*xy, 0.0]
        self.data.mocap_quat[mocap] = [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        tip_to_tcp = 2 * self.cfg.peg_half_length - GRIP_OVERLAP
        above = self.cfg.hole_depth + tip_to_tcp + 0.08
        offset = rng.uniform([-0.05, -0.05, 0.0], [0.05, 0.05, 0.05]) if randomize_pose else np.zeros(3)
        return TaskReset(tcp_pos=np.array([*xy, above]) + offset)

    def hole(self) -> tuple[np.ndarray, float]:
        """Centre of the hole's rim (world) and the hole's yaw."""
        mocap = self.model.body("fixture").mocapid[0]
        q = self.data.mocap_quat[mocap]
        yaw = 2 * np.arctan2(q[3], q[0])
        return self.data.site("hole_rim").xpos.copy(), float(yaw)

    def tip_in_hole_frame(self) -> np.ndarray:
        rim, yaw = self.hole()
        rel = self.data.site("peg_tip").xpos - rim
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2]])

    def success(self) -> bool:
        x, y, z = self.tip_in_hole_frame()
        inside = max(abs(x), abs(y)) < self.cfg.peg_half_size + self.cfg.clearance / 2
        return bool(inside and z <= -self.cfg.insert_depth)

    def dense_reward(self) -> float:
        x, y, z = self.tip_in_hole_frame()
        align = 1.0 - np.tanh(20.0 * np.hypot(x, y))
        # Depth counts only in proportion to alignment, so pressing beside the hole earns nothing.
        depth = np.clip(-z / self.cfg.insert_depth, 0.0, 1.0)
        return float(0.5 * align + 0.5 * align * depth)

    def object_body_names(self) -> list[str]:
        return ["peg", "fixture"]

    def state(self) -> np.ndarray:
        """Hole rim centre, cos/sin of its yaw, peg tip, then rim - tip."""
        rim, yaw = self.hole()
        tip = self.data.site("peg_tip").xpos
        return np.array([*rim, np.cos(yaw), np.sin(yaw), *tip, *(rim - tip)])
