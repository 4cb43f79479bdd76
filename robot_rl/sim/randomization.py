"""Domain randomisation of the twin, each kind switchable in `sim.randomize`.

Every episode starts from the nominal model (restored here) and then perturbs it, so the
effect of one episode never leaks into the next and a seed fully determines an episode.
"""

from __future__ import annotations

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.sim.config import RandomizationConfig
from robot_rl.sim.scene import TABLE_MATERIALS

# Model fields that randomisation writes, saved once and restored at every reset.
_FIELDS = (
    "light_pos",
    "light_dir",
    "light_diffuse",
    "geom_matid",
    "mat_rgba",
    "cam_pos",
    "cam_quat",
    "geom_friction",
    "body_mass",
    "body_inertia",
)


class DomainRandomizer:
    def __init__(self, model: mujoco.MjModel, cfg: RandomizationConfig, object_bodies: list[str]):
        self.model = model
        self.cfg = cfg
        self.nominal = {name: getattr(model, name).copy() for name in _FIELDS}
        self.table_geom = model.geom("table").id
        self.table_materials = [model.material(name).id for name in TABLE_MATERIALS]
        self.recolourable_materials = [model.material(name).id for name in ("object", "fixture", "floor")]
        self.object_bodies = [model.body(name).id for name in object_bodies]

    def apply(self, rng: np.random.Generator) -> None:
        m, cfg = self.model, self.cfg
        for name, value in self.nominal.items():
            getattr(m, name)[:] = value
        if cfg.lighting:
            m.light_pos[:] += rng.uniform(-0.3, 0.3, m.light_pos.shape)
            m.light_dir[:] += rng.uniform(-0.2, 0.2, m.light_dir.shape)
            m.light_dir[:] /= np.linalg.norm(m.light_dir, axis=1, keepdims=True)
            m.light_diffuse[:] *= rng.uniform(0.6, 1.4, (m.nlight, 1))
        if cfg.colors:
            m.geom_matid[self.table_geom] = rng.choice(self.table_materials)
            for mat in self.recolourable_materials:
                m.mat_rgba[mat, :3] = rng.uniform(0.1, 0.95, 3)
        if cfg.camera_pose:
            m.cam_pos[:] += rng.uniform(-cfg.camera_pos_jitter, cfg.camera_pos_jitter, m.cam_pos.shape)
            for cam in range(m.ncam):
                tilt = Rotation.from_rotvec(rng.uniform(-cfg.camera_rot_jitter, cfg.camera_rot_jitter, 3))
                quat_xyzw = (Rotation.from_quat(m.cam_quat[cam], scalar_first=True) * tilt).as_quat()
                m.cam_quat[cam] = np.roll(quat_xyzw, 1)
        if cfg.physics:
            for body in self.object_bodies:
                scale = rng.uniform(*cfg.mass_range)
                m.body_mass[body] *= scale
                m.body_inertia[body] *= scale
                geoms = m.geom_bodyid == body
                m.geom_friction[geoms, 0] *= rng.uniform(*cfg.friction_range)
