"""The twin as a gymnasium env: registration, env_checker, vector envs."""

from __future__ import annotations

import functools
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robot_rl.sim
from robot_rl.sim.config import SimConfig

# Box bounds of +-inf (tcp_vel, wrench, ...) are the honest bounds of those quantities.
BENIGN_CHECKER_WARNINGS = ("infinity",)


def _sim(cameras=(), size=32):
    sim = SimConfig(cameras=list(cameras))
    for rig in sim.camera_rigs.values():
        rig.width = rig.height = size
    return sim


@pytest.mark.parametrize("task, env_id", list(robot_rl.sim.ENV_IDS.items()))
def test_registered_ids_make_the_twin(task, env_id):
    env = gymnasium.make(env_id, sim=_sim())
    try:
        assert env.unwrapped.task.cfg.name == task
        assert env.spec.max_episode_steps is None  # the task truncates, not a TimeLimit wrapper
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        assert {"success", "oracle_dense_reward", "task_state"} <= set(info)
    finally:
        env.close()


@pytest.mark.parametrize("cameras", [(), ("front",)])
def test_check_env(cameras):
    env = gymnasium.make("robot_rl/PickCube-v0", sim=_sim(cameras), render_mode="rgb_array")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped, skip_render_check=False)
        unexpected = [str(w.message) for w in caught if not any(b in str(w.message) for b in BENIGN_CHECKER_WARNINGS)]
        assert not unexpected, unexpected
    finally:
        env.close()


def test_truncates_at_max_episode_steps():
    env = gymnasium.make("robot_rl/Reach-v0", sim=_sim())
    try:
        env.reset(seed=0)
        limit = env.unwrapped.task.cfg.max_episode_steps
        for t in range(1, limit + 1):
            _, _, terminated, truncated, _ = env.step(np.zeros(7, dtype=np.float32))
            assert not terminated
            assert truncated == (t == limit)
    finally:
        env.close()


def test_privileged_state_is_in_observation_and_space():
    sim = _sim()
    sim.privileged_state = True
    env = gymnasium.make("robot_rl/PegInsert-v0", sim=sim)
    try:
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        np.testing.assert_allclose(obs["state"]["task"], info["task_state"], rtol=1e-6)
    finally:
        env.close()


def test_sync_vector_env():
    fns = [functools.partial(gymnasium.make, "robot_rl/PickCube-v0", sim=_sim()) for _ in range(2)]
    envs = gymnasium.vector.SyncVectorEnv(fns)
    try:
        obs, infos = envs.reset(seed=[1, 2])
        assert obs["state"]["tcp_pose"].shape == (2, 7)
        assert not np.allclose(infos["task_state"][0], infos["task_state"][1])  # own seeds
        for _ in range(3):
            obs, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())
        assert rewards.shape == (2,) and terminated.shape == (2,)
        assert obs["state"]["wrench"].shape == (2, 12)
    finally:
        envs.close()


def test_async_vector_env_spawn_with_camera():
    """Worker processes render with their own EGL context. Spawn, not fork: a forked child of a
    parent that already made an EGL renderer hangs. Every wait has a timeout, so a hang fails."""
    make = functools.partial(gymnasium.make, "robot_rl/Reach-v0", sim=_sim(["wrist"], size=24))
    envs = gymnasium.vector.AsyncVectorEnv([make, make], context="spawn", shared_memory=False)
    try:
        envs.reset_async(seed=[0, 1])
        obs, _ = envs.reset_wait(timeout=120)
        images = obs["images"]["wrist"]
        assert images.shape == (2, 24, 24, 3) and images.dtype == np.uint8
        assert images.std() > 5
        envs.step_async(np.zeros((2, 7), dtype=np.float32))
        obs, rewards, *_ = envs.step_wait(timeout=60)
        assert obs["state"]["tcp_pose"].shape == (2, 7) and rewards.shape == (2,)
        # The workers match an in-process env with the same seed.
        local = gymnasium.make("robot_rl/Reach-v0", sim=_sim(["wrist"], size=24))
        local_obs, _ = local.reset(seed=1)
        local_obs, *_ = local.step(np.zeros(7, dtype=np.float32))
        local.close()
        np.testing.assert_array_equal(obs["state"]["tcp_pose"][1], local_obs["state"]["tcp_pose"])
        np.testing.assert_array_equal(obs["images"]["wrist"][1], local_obs["images"]["wrist"])
    finally:
        envs.close(timeout=30, terminate=True)
