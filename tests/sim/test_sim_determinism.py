"""Seeding: a seed fully determines an episode (observations, images, rewards); seeds differ."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.sim.config import PickCubeConfig


def _episode(env, seed, steps=12, action_seed=7):
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    trace = [(obs, 0.0, info)]
    for _ in range(steps):
        obs, reward, _, _, info = env.step(rng.uniform(-1, 1, 7).astype(np.float32))
        trace.append((obs, reward, info))
    return trace


def _assert_same(a, b):
    for (obs_a, r_a, info_a), (obs_b, r_b, info_b) in zip(a, b, strict=True):
        assert r_a == r_b
        np.testing.assert_array_equal(info_a["task_state"], info_b["task_state"])
        assert obs_a.keys() == obs_b.keys()
        for key in obs_a["state"]:
            np.testing.assert_array_equal(obs_a["state"][key], obs_b["state"][key], err_msg=key)
        for cam in obs_a.get("images", {}):
            np.testing.assert_array_equal(obs_a["images"][cam], obs_b["images"][cam], err_msg=cam)


@pytest.mark.parametrize("task", ["reach", "pick_cube", "peg_insert"])
def test_same_seed_same_state_episode(make_env, task):
    env_a, env_b = make_env(task, reward="dense"), make_env(task, reward="dense")
    first = _episode(env_a, seed=3)
    _assert_same(first, _episode(env_b, seed=3))  # a second env
    _episode(env_a, seed=4)
    _assert_same(first, _episode(env_a, seed=3))  # the same env, after another episode


def test_same_seed_same_images_with_all_randomisation(make_env, h):
    sim = h.sim_config(cameras=["front", "wrist"], width=48, height=40)
    for switch in ("lighting", "colors", "camera_pose", "physics"):
        setattr(sim.randomize, switch, True)
    env_a, env_b = make_env("pick_cube", sim=sim), make_env("pick_cube", sim=sim)
    first = _episode(env_a, seed=11, steps=6)
    assert first[0][0]["images"]["front"].std() > 5  # a real picture
    _assert_same(first, _episode(env_b, seed=11, steps=6))
    _episode(env_a, seed=12, steps=2)
    _assert_same(first, _episode(env_a, seed=11, steps=6))


@pytest.mark.parametrize("task", ["reach", "pick_cube", "peg_insert"])
def test_different_seeds_different_initial_poses(make_env, task):
    env = make_env(task)
    states, tcps = [], []
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        states.append(info["task_state"].copy())
        tcps.append(obs["state"]["tcp_pose"][:3].copy())
    for i in range(5):
        for j in range(i):
            assert np.linalg.norm(states[i][:3] - states[j][:3]) > 1e-3, (i, j)  # goal / cube / hole
            assert np.linalg.norm(tcps[i] - tcps[j]) > 1e-3, (i, j)


def test_object_pose_randomisation_off_gives_nominal_pose(make_env, h):
    sim = h.sim_config()
    sim.randomize.object_pose = False
    env = make_env(PickCubeConfig(), sim=sim)
    cfg = env.task.cfg
    for seed in range(3):
        _, info = env.reset(seed=seed)
        centre = (np.array(cfg.cube_low) + np.array(cfg.cube_high)) / 2
        np.testing.assert_allclose(info["task_state"][:2], centre, atol=1e-4)
        np.testing.assert_allclose(info["task_state"][3:7], [1, 0, 0, 0], atol=1e-4)


def test_initial_poses_within_configured_ranges(make_env):
    env = make_env(PickCubeConfig())
    cfg = env.task.cfg
    xy = np.array([env.reset(seed=s)[1]["task_state"][:2] for s in range(30)])
    assert np.all(xy >= np.array(cfg.cube_low) - 1e-3) and np.all(xy <= np.array(cfg.cube_high) + 1e-3)
    assert np.ptp(xy, axis=0).min() > 0.5 * (np.array(cfg.cube_high) - np.array(cfg.cube_low)).min()


def test_unseeded_resets_continue_the_stream(make_env):
    """reset(seed=s) then reset() twice: two new episodes, the same two as in another env."""
    env_a, env_b = make_env("reach"), make_env("reach")
    goals = []
    for env in (env_a, env_b):
        env.reset(seed=0)
        goals.append([env.reset()[1]["task_state"].copy() for _ in range(2)])
    np.testing.assert_array_equal(goals[0], goals[1])
    assert np.linalg.norm(goals[0][0] - goals[0][1]) > 1e-3


def test_observation_arrays_are_not_aliased(make_env, h):
    """An observation kept (e.g. in a replay buffer) does not change when the env steps on."""
    env = make_env("pick_cube", sim=h.sim_config(cameras=["front"], width=32, height=32))
    obs, _ = env.reset(seed=0)
    kept = {k: v.copy() for k, v in obs["state"].items()}
    image = obs["images"]["front"].copy()
    for _ in range(3):
        new, *_ = env.step(np.array([1, 0, -1, 0, 0, 0, 1], dtype=np.float32))
    assert not np.array_equal(new["images"]["front"], image)  # the scene did change
    np.testing.assert_array_equal(obs["images"]["front"], image)
    for key, value in kept.items():
        np.testing.assert_array_equal(obs["state"][key], value, err_msg=key)
