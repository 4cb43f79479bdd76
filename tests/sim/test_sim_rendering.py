"""Image observations and video frames (MuJoCo offscreen rendering, EGL on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.sim.config import PickCubeConfig
from robot_rl.sim.scene import VIDEO_SIZE


def _check_image(image, height, width):
    assert image.shape == (height, width, 3)
    assert image.dtype == np.uint8
    assert image.std() > 5.0  # not blank
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # more than a few flat colours


@pytest.mark.parametrize("cameras", [["front", "wrist"], ["wrist"], ["front"]])
def test_image_shapes_per_camera_config(make_env, h, cameras):
    env = make_env("pick_cube", sim=h.sim_config(cameras=cameras, width=64, height=48))
    obs, _ = env.reset(seed=0)
    assert sorted(obs["images"]) == sorted(cameras)
    for cam in cameras:
        _check_image(obs["images"][cam], 48, 64)
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(np.zeros(7, dtype=np.float32))
    assert env.observation_space.contains(obs)


def test_state_only_env_has_no_images(make_env):
    env = make_env("pick_cube")
    obs, _ = env.reset(seed=0)
    assert "images" not in obs and "images" not in env.observation_space.spaces
    assert env.observation_space.contains(obs)


def test_cameras_see_different_views(make_env, h):
    env = make_env("pick_cube", sim=h.sim_config(cameras=["front", "wrist"], width=48, height=48))
    obs, _ = env.reset(seed=0)
    front, wrist = (obs["images"][c].astype(int) for c in ("front", "wrist"))
    assert np.abs(front - wrist).mean() > 10


def test_wrist_camera_moves_with_the_hand(make_env, h):
    env = make_env(
        PickCubeConfig(rotation_axes=["z"]), sim=h.sim_config(cameras=["front", "wrist"], width=48, height=48)
    )
    obs, _ = env.reset(seed=0)
    before = {c: obs["images"][c].astype(int) for c in obs["images"]}
    for _ in range(4):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 1, -1], dtype=np.float32))  # turn about z
    change = {c: np.abs(obs["images"][c].astype(int) - before[c]).mean() for c in before}
    assert change["wrist"] > 3 * change["front"], change  # the world camera sees only the small hand move


def test_cube_is_visible_in_front_image(make_env, h):
    """The red blob in the front image is the cube: teleport the cube away and it goes."""
    import mujoco

    env = make_env("pick_cube", sim=h.sim_config(cameras=["front"], width=64, height=64))
    obs, _ = env.reset(seed=0)

    def red_pixels(image):
        image = image.astype(int)
        return int(((image[..., 0] > 120) & (image[..., 1] < 90) & (image[..., 2] < 90)).sum())

    assert red_pixels(obs["images"]["front"]) > 4
    adr = env.model.joint("cube_joint").qposadr[0]
    env.data.qpos[adr : adr + 3] = [-2.0, 2.0, 0.02]  # behind the robot, out of view
    mujoco.mj_forward(env.model, env.data)
    assert red_pixels(env.render_camera("front", 64, 64)) == 0


@pytest.mark.parametrize("profile", ["fast", "pretty"])
def test_render_profiles(make_env, h, profile):
    env = make_env("pick_cube", sim=h.sim_config(cameras=["front"], width=48, height=48, render_profile=profile))
    obs, _ = env.reset(seed=0)
    _check_image(obs["images"]["front"], 48, 48)
    # The profiles differ where they claim: shadow map and multisampling.
    quality = env.model.vis.quality
    if profile == "fast":
        assert quality.shadowsize == 0 and quality.offsamples == 0
    else:
        assert quality.shadowsize > 0 and quality.offsamples > 0
        assert env.model.light_castshadow.any()


def test_profiles_render_differently(make_env, h):
    images = {}
    for profile in ("fast", "pretty"):
        sim = h.sim_config(cameras=["front"], width=48, height=48, render_profile=profile)
        images[profile] = make_env("pick_cube", sim=sim).reset(seed=0)[0]["images"]["front"].astype(int)
    assert np.abs(images["fast"] - images["pretty"]).mean() > 0.5


def test_render_returns_video_frame(make_env, h):
    env = make_env("pick_cube", render_mode="rgb_array")  # state-only observations still render video
    env.reset(seed=0)
    frame = env.render()
    _check_image(frame, VIDEO_SIZE, VIDEO_SIZE)
    env.step(np.array([0, 0, 1, 0, 0, 0, -1], dtype=np.float32))
    assert not np.array_equal(env.render(), frame)


def test_an_optimiser_can_be_built_after_rendering():
    """Regression: torch's lazy triton import segfaulted once an EGL context existed."""
    import subprocess
    import sys

    code = (
        "from robot_rl.sim.env import SimTwinEnv\n"
        "from robot_rl.sim.config import SimConfig\n"
        "env = SimTwinEnv('reach', sim=SimConfig(cameras=['wrist'])); env.reset(seed=0)\n"
        "import torch\n"
        "torch.optim.Adam([torch.zeros(3, requires_grad=True)])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
