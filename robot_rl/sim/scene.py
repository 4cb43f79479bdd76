"""Assembles the twin's MJCF: the Panda on a table, lights, cameras and the task's objects."""

from __future__ import annotations

import mujoco
import numpy as np

from robot_rl.sim.config import CameraConfig, RobotConfig, SimConfig
from robot_rl.sim.panda import panda_mjcf
from robot_rl.sim.tasks import Task

# Materials the colour/texture randomisation picks from for the table top.
TABLE_MATERIALS = ("table_wood", "table_grey", "table_grid", "table_dark")

# The fast profile is what ../../shared/ARCHITECTURE.md measured at 0.5-3 ms per 128x128 frame
# on the CPU renderer: no shadow map, no multisampling, coarse tessellation of round shapes.
_QUALITY = {
    "fast": '<quality shadowsize="0" offsamples="0" numslices="12" numstacks="6"/>',
    "pretty": '<quality shadowsize="4096" offsamples="4" numslices="28" numstacks="16"/>',
}

VIDEO_SIZE = 480  # offscreen buffer side used for videos


def camera_xyaxes(pos: np.ndarray, lookat: np.ndarray, up: np.ndarray) -> np.ndarray:
    """MuJoCo camera x and y axes (the camera looks along its -z) for a look-at pose."""
    forward = np.asarray(lookat, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:
        raise ValueError(f"camera 'up' {up} is parallel to its viewing direction")
    right /= np.linalg.norm(right)
    return np.concatenate([right, np.cross(right, forward)])


def _camera_xml(name: str, cam: CameraConfig) -> str:
    xyaxes = " ".join(f"{v:.6f}" for v in camera_xyaxes(cam.pos, cam.lookat, cam.up))
    pos = " ".join(f"{v:.6f}" for v in cam.pos)
    return f'<camera name="{name}" pos="{pos}" xyaxes="{xyaxes}" fovy="{cam.fovy}"/>'


def scene_xml(task: Task, sim: SimConfig, robot: RobotConfig) -> str:
    task_xml = task.mjcf()
    world_cams = "\n".join(_camera_xml(n, c) for n, c in sim.camera_rigs.items() if c.mount == "world")
    hand_cams = "\n".join(_camera_xml(n, c) for n, c in sim.camera_rigs.items() if c.mount == "hand")
    panda = panda_mjcf(robot, hand_payload=task_xml.hand_payload, wrist_cameras=hand_cams)
    shadows = "true" if sim.render_profile == "pretty" else "false"
    offsize = max([VIDEO_SIZE] + [max(c.width, c.height) for c in sim.camera_rigs.values()])
    return f"""
<mujoco model="robot_rl_twin_{task.cfg.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{sim.physics_dt}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    {_QUALITY[sim.render_profile]}
    <global offwidth="{offsize}" offheight="{offsize}"/>
    <headlight ambient="0.3 0.3 0.3" diffuse="0.4 0.4 0.4" specular="0.1 0.1 0.1"/>
  </visual>
  <default>{panda["default"]}</default>
  <asset>
    {panda["asset"]}
    <texture name="grid" type="2d" builtin="checker" rgb1="0.55 0.55 0.57" rgb2="0.45 0.45 0.47"
             width="64" height="64"/>
    <texture name="wood" type="2d" builtin="gradient" rgb1="0.62 0.48 0.33" rgb2="0.5 0.37 0.24"
             width="64" height="64"/>
    <material name="table_wood" texture="wood" texrepeat="1 1" rgba="1 1 1 1"/>
    <material name="table_grey" rgba="0.6 0.6 0.62 1"/>
    <material name="table_grid" texture="grid" texrepeat="8 8" rgba="1 1 1 1"/>
    <material name="table_dark" rgba="0.25 0.26 0.3 1"/>
    <material name="floor" rgba="0.3 0.32 0.35 1"/>
    <material name="object" rgba="0.85 0.2 0.15 1"/>
    <material name="fixture" rgba="0.2 0.35 0.8 1"/>
    {task_xml.asset}
  </asset>
  <worldbody>
    <light name="key" pos="0.6 -0.6 1.6" dir="-0.2 0.4 -1" diffuse="0.6 0.6 0.6"
           castshadow="{shadows}"/>
    <light name="fill" pos="-0.4 0.8 1.4" dir="0.4 -0.5 -1" diffuse="0.25 0.25 0.25"
           castshadow="false"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" material="floor" contype="0" conaffinity="0"/>
    <geom name="table" type="box" pos="0.35 0 -0.025" size="0.6 0.6 0.025" material="table_grey"
          contype="1" conaffinity="3" friction="1 0.005 0.0001"/>
    {world_cams}
    {panda["worldbody"]}
    {task_xml.worldbody}
  </worldbody>
  <contact>{panda["contact"]}{task_xml.contact}</contact>
  <tendon>{panda["tendon"]}</tendon>
  <equality>{panda["equality"]}</equality>
  <actuator>{panda["actuator"]}</actuator>
  <sensor>{panda["sensor"]}</sensor>
</mujoco>"""


def build_model(task: Task, sim: SimConfig, robot: RobotConfig) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(scene_xml(task, sim, robot))
