"""Bad actions and bad configuration fail loudly, name the culprit, and never reach the physics."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from robot_rl.sim.config import (
    CameraConfig,
    ConfigError,
    FTSensorConfig,
    PegInsertConfig,
    PickCubeConfig,
    RandomizationConfig,
    RobotConfig,
    SimConfig,
)
from robot_rl.sim.env import SimTwinEnv

BAD_VALUES = [np.nan, np.inf, -np.inf]


def _physics_state(env):
    d = env.data
    return d.qpos.copy(), d.qvel.copy(), d.mocap_pos.copy(), d.mocap_quat.copy(), d.ctrl.copy(), d.time


def _assert_untouched(before, after):
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize("index", [0, 4, 6])
def test_non_finite_action_raises_before_physics(make_env, bad, index):
    env = make_env("pick_cube")
    env.reset(seed=0)
    env.step(np.array([0.3, 0, 0, 0, 0, 0, 0.5], dtype=np.float32))  # mid-motion, gripper half closed
    before = _physics_state(env)
    target = env.target_pos.copy()
    action = np.zeros(7)
    action[index] = bad
    with pytest.raises(ValueError, match="NaN/inf"):
        env.step(action)
    _assert_untouched(before, _physics_state(env))
    np.testing.assert_array_equal(env.target_pos, target)
    # The env is still usable afterwards.
    obs, *_ = env.step(np.zeros(7, dtype=np.float32))
    assert np.all(np.isfinite(obs["state"]["tcp_pose"]))


def test_hold_policy_warns_and_holds_still(make_env, h, caplog):
    sim = h.sim_config(invalid_action="hold")
    env = make_env("pick_cube", sim=sim)
    env.reset(seed=0)
    for _ in range(3):  # gripper half closed, arm moved, then let it settle
        env.step(np.array([0.3, 0, 0, 0, 0, 0, 0.0], dtype=np.float32))
    for _ in range(10):
        env.step(np.zeros(7, dtype=np.float32))
    mocap = env.data.mocap_pos.copy(), env.data.mocap_quat.copy()
    ctrl = env.data.ctrl.copy()
    tcp = h.tcp_pos(env)
    gripper = env.data.qpos[7:9].copy()
    caplog.set_level(logging.WARNING, logger="robot_rl.sim.env")
    for bad in BAD_VALUES:
        action = np.array([1.0, -1.0, bad, 1.0, 0.0, bad, bad])
        obs, reward, terminated, truncated, info = env.step(action)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "non-finite" in r.getMessage()]
    assert len(warnings) == len(BAD_VALUES)
    # Held still: the target did not move (not even the finite components), nor did the gripper command.
    np.testing.assert_allclose(env.data.mocap_pos, mocap[0], atol=1e-5)
    np.testing.assert_allclose(env.data.mocap_quat, mocap[1], atol=1e-5)
    np.testing.assert_allclose(env.data.ctrl, ctrl, atol=1e-12)
    assert np.linalg.norm(h.tcp_pos(env) - tcp) < 1e-3
    np.testing.assert_allclose(env.data.qpos[7:9], gripper, atol=1e-3)
    assert np.all(np.isfinite(obs["state"]["tcp_pose"])) and np.isfinite(reward)


@pytest.mark.parametrize("invalid_action", ["raise", "hold"])
@pytest.mark.parametrize("shape", [(6,), (8,), (1, 7), (7, 1), (), (0,)])
def test_wrong_action_shape_always_raises(make_env, h, invalid_action, shape):
    env = make_env("reach", sim=h.sim_config(invalid_action=invalid_action))
    env.reset(seed=0)
    before = _physics_state(env)
    with pytest.raises(ValueError, match=r"shape \(7,\)") as excinfo:
        env.step(np.zeros(shape))
    assert str(shape).replace(" ", "") in str(excinfo.value).replace(" ", "")  # says what it got
    _assert_untouched(before, _physics_state(env))


def test_out_of_range_finite_action_is_clipped_not_rejected(make_env):
    """A finite action outside [-1, 1] acts exactly like the clipped one."""
    clipped, unclipped = make_env("reach"), make_env("reach")
    for env, action in (
        (clipped, [-1.0, 1.0, 0.5, 0.0, 0.0, -1.0, 1.0]),
        (unclipped, [-10.0, 3.0, 0.5, 0.0, 0.0, -7.0, 2.0]),
    ):
        env.reset(seed=0)
        env.step(np.array(action))
    np.testing.assert_array_equal(unclipped.target_pos, clipped.target_pos)
    np.testing.assert_array_equal(unclipped.data.qpos, clipped.data.qpos)


def test_list_action_is_accepted(make_env):
    env = make_env("reach")
    env.reset(seed=0)
    obs, *_ = env.step([0.0] * 7)
    assert obs["state"]["tcp_pose"].shape == (7,)


# --- configuration errors -----------------------------------------------------------------------


def _raises_config_error(make, key, valid=()):
    with pytest.raises(ConfigError) as excinfo:
        make()
    message = str(excinfo.value)
    assert key in message, message
    for name in valid:
        assert name in message, message
    return message


def test_unknown_task_name():
    _raises_config_error(
        lambda: SimTwinEnv("push_cube", sim=SimConfig(cameras=[])), "task", ["reach", "pick_cube", "peg_insert"]
    )
    cfg = PickCubeConfig()
    cfg.name = "stack"
    _raises_config_error(lambda: SimTwinEnv(cfg, sim=SimConfig(cameras=[])), "task.name", ["reach", "pick_cube"])


def test_unknown_camera():
    msg = _raises_config_error(
        lambda: SimTwinEnv("reach", sim=SimConfig(cameras=["top"])), "sim.cameras", ["front", "wrist"]
    )
    assert "top" in msg


def test_duplicate_camera():
    _raises_config_error(lambda: SimTwinEnv("reach", sim=SimConfig(cameras=["front", "front"])), "sim.cameras")


def test_unknown_robot():
    msg = _raises_config_error(
        lambda: SimTwinEnv("reach", sim=SimConfig(cameras=[]), robot=RobotConfig(name="ur5e")), "robot.name", ["panda"]
    )
    assert "ur5e" in msg


def test_unknown_render_profile():
    sim = SimConfig(cameras=[], render_profile="ugly")
    _raises_config_error(lambda: SimTwinEnv("reach", sim=sim), "sim.render_profile", ["fast", "pretty"])


def test_unknown_invalid_action_policy_reward_and_render_mode():
    _raises_config_error(
        lambda: SimTwinEnv("reach", sim=SimConfig(cameras=[], invalid_action="ignore")),
        "sim.invalid_action",
        ["raise", "hold"],
    )
    _raises_config_error(
        lambda: SimTwinEnv("reach", sim=SimConfig(cameras=[]), reward="shaped"), "reward", ["sparse", "dense"]
    )
    _raises_config_error(
        lambda: SimTwinEnv("reach", sim=SimConfig(cameras=[]), render_mode="human"), "render_mode", ["rgb_array"]
    )


@pytest.mark.parametrize(
    "make, key",
    [
        (lambda: SimConfig(cameras=[], physics_dt=0.0), "sim.physics_dt"),
        (lambda: SimConfig(cameras=[], control_hz=7.0), "sim.control_hz"),  # 71.4 physics steps
        (
            lambda: SimConfig(
                cameras=[],
                camera_rigs={"front": CameraConfig(width=4)},
            ),
            "sim.camera_rigs.front.width",
        ),
        (
            lambda: SimConfig(cameras=[], camera_rigs={"cam": CameraConfig(mount="shoulder")}),
            "sim.camera_rigs.cam.mount",
        ),
        (
            lambda: SimConfig(cameras=[], ft_sensor=FTSensorConfig(force_noise_std=-1.0)),
            "sim.ft_sensor.force_noise_std",
        ),
        (
            lambda: SimConfig(cameras=[], randomize=RandomizationConfig(mass_range=[2.0, 1.0])),
            "sim.randomize.mass_range",
        ),
    ],
)
def test_bad_sim_values_name_their_key(make, key):
    _raises_config_error(lambda: SimTwinEnv("reach", sim=make()), key)


@pytest.mark.parametrize(
    "robot, key",
    [
        (RobotConfig(translational_stiffness=-1.0), "robot.translational_stiffness"),
        (RobotConfig(workspace_low=[0.8, -0.3, 0.0]), "robot.workspace_high"),
        (RobotConfig(max_tilt=[0.5, 0.5]), "robot.max_tilt"),
    ],
)
def test_bad_robot_values_name_their_key(robot, key):
    _raises_config_error(lambda: SimTwinEnv("reach", sim=SimConfig(cameras=[]), robot=robot), key)


@pytest.mark.parametrize(
    "task, key",
    [
        (PickCubeConfig(cube_half_size=0.05), "task.cube_half_size"),
        (PegInsertConfig(clearance=0.0), "task.clearance"),
        (PegInsertConfig(insert_depth=0.05), "task.insert_depth"),
        (PickCubeConfig(max_episode_steps=0), "task.max_episode_steps"),
    ],
)
def test_bad_task_values_name_their_key(task, key):
    _raises_config_error(lambda: SimTwinEnv(task, sim=SimConfig(cameras=[])), key)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_a_physics_blow_up_truncates_the_episode_visibly(make_env, h, caplog):
    """An object flung away at absurd speed (a contact that blew up) ends the episode with
    info["physics_diverged"] and a warning, instead of going on from MuJoCo's silent reset."""
    env = make_env("pick_cube")
    env.reset(seed=0)
    _, _, _, truncated, info = env.step(h.hold_action())
    assert not truncated and not info["physics_diverged"]
    env.data.qvel[9:12] = [0.0, 0.0, 500.0]  # the cube's free joint, launched upwards
    with caplog.at_level("WARNING"):
        _, _, terminated, truncated, info = env.step(h.hold_action())
    assert truncated and not terminated and info["physics_diverged"]
    assert "physics diverged" in caplog.text
