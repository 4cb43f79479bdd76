"""Each task's ground truth: success on scripted successes, no success on scripted failures, and
the dense oracle reward."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from scipy.stats import spearmanr

from robot_rl.sim.config import PegInsertConfig, PickCubeConfig, ReachConfig
from robot_rl.sim.experts import make_expert

TASKS = ["reach", "pick_cube", "peg_insert"]
SEEDS = range(4)


def _expert(env):
    expert = make_expert(env)
    return lambda obs, info, t: expert.act(obs, info)


def _run(env, policy, seed, steps=None):
    """Roll out `policy(obs, info, t)`; returns per-step rewards, infos and the final flags."""
    obs, info = env.reset(seed=seed)
    rewards, infos = [], [info]
    terminated = truncated = False
    for t in range(steps or env.task.cfg.max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(policy(obs, info, t))
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return np.array(rewards), infos, terminated, truncated


@pytest.mark.parametrize("task", TASKS)
def test_expert_succeeds_within_episode(make_env, task):
    env = make_env(task)
    for seed in SEEDS:
        rewards, infos, terminated, truncated = _run(env, _expert(env), seed)
        # Sparse reward is exactly the success flag; the episode ends on the first success.
        assert terminated and not truncated, (task, seed)
        assert infos[-1]["success"] and rewards[-1] == 1.0
        assert not any(i["success"] for i in infos[:-1]) and np.all(rewards[:-1] == 0.0)
        assert len(rewards) < env.task.cfg.max_episode_steps


@pytest.mark.parametrize("task", TASKS)
def test_dense_reward_rises_along_expert_trajectory(make_env, task):
    env = make_env(task, reward="dense")
    for seed in SEEDS:
        rewards, infos, terminated, _ = _run(env, _expert(env), seed)
        assert terminated
        shaped = np.array([i["oracle_dense_reward"] for i in infos[1:]])
        assert np.all((shaped >= 0.0) & (shaped <= 1.0))
        # what the learner gets: shifted to [-1, 0], and 0 at the success that ends the episode
        np.testing.assert_allclose(rewards[:-1], shaped[:-1] - 1.0)
        assert rewards[-1] == 0.0
        start = infos[0]["oracle_dense_reward"]
        assert shaped[-1] > start + 0.4, (seed, start, shaped[-1])
        assert shaped[-1] >= 0.6
        rho = spearmanr(np.arange(len(shaped) + 1), [start, *shaped]).statistic
        assert rho > 0.6, (seed, rho)


def _zero(o, i, t):
    return np.zeros(7, dtype=np.float32)


def _random(seed):
    rng = np.random.default_rng(seed)
    return lambda o, i, t: rng.uniform(-1, 1, 7).astype(np.float32)


def _away(o, i, t):
    """Straight up and back, gripper open: away from every task's goal."""
    return np.array([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0], dtype=np.float32)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("policy", ["zero", "random", "away"])
def test_failing_policies_never_succeed(make_env, task, policy):
    env = make_env(task, reward="dense")
    for seed in SEEDS:
        act = {"zero": _zero, "random": _random(seed), "away": _away}[policy]
        rewards, infos, terminated, truncated = _run(env, act, seed)
        assert not any(i["success"] for i in infos), (seed, policy)
        assert not terminated and truncated  # ran the whole episode
        assert len(rewards) == env.task.cfg.max_episode_steps
        assert np.all((rewards >= -1.0) & (rewards < 0.0))  # never the 0 of a success


@pytest.mark.parametrize("task", TASKS)
def test_dense_reward_in_unit_interval_on_random_states(make_env, task):
    """Teleport the arm to random joint configurations: the reward stays in [0, 1]."""
    env = make_env(task)
    rng = np.random.default_rng(0)
    m, d = env.model, env.data
    for seed in range(20):
        env.reset(seed=seed)
        d.qpos[:7] = rng.uniform(m.jnt_range[:7, 0], m.jnt_range[:7, 1])
        mujoco.mj_forward(m, d)
        assert 0.0 <= env.task.dense_reward() <= 1.0


# --- reach --------------------------------------------------------------------------------------


def test_reach_success_is_goal_distance(make_env):
    env = make_env(ReachConfig(terminate_on_success=False))
    _, info = env.reset(seed=0)
    goal = info["task_state"][:3]
    tol = env.task.cfg.goal_tolerance
    mocap = env.model.body("target").mocapid[0]
    for offset, inside in ((0.5 * tol, True), (1.5 * tol, False)):
        # Hold the TCP at a known offset from the goal (drive the target there, let it settle).
        for _ in range(30):
            a = np.zeros(7)
            wanted = goal + [0.0, 0.0, offset]
            a[:3] = np.clip((wanted - env.data.mocap_pos[mocap]) / env.robot_cfg.max_translation_step, -1, 1)
            a[6] = -1
            _, _, _, _, info = env.step(a)
        assert info["success"] == (env.task.distance() < tol) == inside, env.task.distance()


def test_reach_expert_settles_on_goal(make_env, h):
    env = make_env(ReachConfig(terminate_on_success=False))
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        act = _expert(env)
        errors = []
        for t in range(40):
            obs, _, _, _, info = env.step(act(obs, info, t))
            errors.append(
                (np.linalg.norm(h.tcp_pos(env) - info["task_state"][:3]), np.linalg.norm(h.tilt(h.tcp_rotation(env))))
            )
        late = np.array(errors[30:])
        assert late[:, 0].max() < 0.005 and late[:, 1].max() < 0.03, (seed, late.max(axis=0))


# --- pick_cube ----------------------------------------------------------------------------------


def _cube_qpos(env):
    adr = env.model.joint("cube_joint").qposadr[0]
    return slice(adr, adr + 7)


def test_pick_cube_success_needs_lift_and_grasp(make_env, h):
    """Success is the cube at least `lift_height` above the table AND held by both fingers: a
    cube flung into the air is not a pick. The dense reward still pays for the lift."""
    env = make_env(PickCubeConfig(terminate_on_success=False), reward="dense")
    env.reset(seed=0)
    cfg = env.task.cfg
    # Teleported high above the table, nothing holding it: lifted, but not a success.
    qpos = env.data.qpos[_cube_qpos(env)].copy()
    qpos[2] = 0.5
    env.data.qpos[_cube_qpos(env)] = qpos
    mujoco.mj_forward(env.model, env.data)
    assert env.task.lift() > cfg.lift_height and not env.task.grasped()
    assert not env.task.success()
    _, reward, _, _, info = env.step(h.hold_action())
    assert not info["success"]
    # Dense: full lift term (0.5) and the reach term, but no grasp bonus.
    reach = 1.0 - np.tanh(10.0 * np.linalg.norm(h.tcp_pos(env) - info["task_state"][:3]))
    assert reward == pytest.approx(0.5 + 0.25 * reach)


def test_pick_cube_success_threshold_on_a_held_cube(make_env, h):
    """With the expert holding the cube, success flips exactly at lift_height."""
    env = make_env(PickCubeConfig(terminate_on_success=False))
    obs, info = env.reset(seed=0)
    expert = make_expert(env)
    for _ in range(60):
        obs, _, _, _, info = env.step(expert.act(obs, info))
        if info["success"]:
            break
    assert info["success"] and env.task.grasped()
    lift = env.task.lift()
    assert lift >= env.task.cfg.lift_height
    env.task.cfg.lift_height = lift + 0.001
    assert not env.task.success()
    env.task.cfg.lift_height = lift - 0.001
    assert env.task.success()


def test_pick_cube_grasp_detection(make_env, h):
    env = make_env(PickCubeConfig(terminate_on_success=False))
    obs, info = env.reset(seed=1)
    expert = make_expert(env)
    grasped = []
    for _ in range(40):
        obs, _, _, _, info = env.step(expert.act(obs, info))
        grasped.append(env.task.grasped())
    assert grasped[-1] and info["success"]
    assert not grasped[0]  # approaching, nothing touched
    # Open the gripper: the cube drops and is no longer grasped.
    for _ in range(10):
        obs, _, _, _, info = env.step(h.hold_action(gripper=-1.0))
    assert not env.task.grasped() and not info["success"]


def test_pick_cube_pushing_is_not_lifting(make_env, h):
    """Sweep the closed gripper through the cube at table height: the cube moves, no success."""
    env = make_env(PickCubeConfig(terminate_on_success=False))
    obs, info = env.reset(seed=2)
    start = info["task_state"][:3].copy()
    r = env.robot_cfg
    behind = start + [-0.08, 0.0, 0.01]
    moved = False
    for t in range(40):
        tcp = obs["state"]["tcp_pose"][:3]
        goal = behind if t < 20 else start + [0.15, 0.0, 0.01]
        a = np.zeros(7)
        a[:3] = np.clip((goal - tcp) / r.max_translation_step, -0.5, 0.5)
        a[6] = 1.0
        obs, _, _, _, info = env.step(a)
        assert not info["success"]
        moved |= np.linalg.norm(info["task_state"][:2] - start[:2]) > 0.03
    assert moved


# --- peg_insert ---------------------------------------------------------------------------------


def _place_peg(env, h, obs, info, offset_xy, push_steps=25):
    """Bring the peg tip above rim + offset (hole frame), then press it down."""
    r = env.robot_cfg
    rim, cos_yaw, sin_yaw = info["task_state"][:3], info["task_state"][3], info["task_state"][4]
    rot = np.array([[cos_yaw, -sin_yaw], [sin_yaw, cos_yaw]])
    for t in range(20 + push_steps):
        tip = info["task_state"][5:8]
        tcp = obs["state"]["tcp_pose"][:3]
        goal = np.array([*(rim[:2] + rot @ offset_xy), rim[2] + 0.01]) + (tcp - tip)
        a = h.hold_action()
        a[:2] = np.clip((goal[:2] - tcp[:2]) / r.max_translation_step, -1, 1)
        a[2] = np.clip((goal[2] - tcp[2]) / r.max_translation_step, -1, 1) if t < 20 else -0.5
        obs, reward, _, _, info = env.step(a)
    return obs, reward, info


@pytest.mark.parametrize(
    "where, offset",
    [("beside the fixture, on the table", [0.07, 0.0]), ("on the fixture wall", [0.0255, 0.0])],
)
def test_peg_pressed_next_to_hole_is_not_success(make_env, h, where, offset):
    env = make_env(PegInsertConfig(terminate_on_success=False), reward="dense")
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        obs, reward, info = _place_peg(env, h, obs, info, np.array(offset))
        x, y, z = env.task.tip_in_hole_frame()
        assert np.hypot(x, y) > 0.02  # really off the hole ...
        assert z < 0.002  # ... and really pressed down on something
        assert not info["success"], where


def test_peg_success_needs_tip_inside_and_deep(make_env, h):
    """Teleport-free check of the geometry: the scripted insertion, then pulled back up."""
    env = make_env(PegInsertConfig(terminate_on_success=False))
    obs, info = env.reset(seed=0)
    expert = make_expert(env)
    for _ in range(60):
        obs, _, _, _, info = env.step(expert.act(obs, info))
        if info["success"]:
            break
    x, y, z = env.task.tip_in_hole_frame()
    cfg = env.task.cfg
    assert info["success"] and z <= -cfg.insert_depth and max(abs(x), abs(y)) < cfg.peg_half_size + cfg.clearance / 2
    up = h.hold_action()
    up[2] = 0.3
    while env.task.tip_in_hole_frame()[2] <= -cfg.insert_depth:
        obs, _, _, _, info = env.step(up)
    assert not info["success"]  # still in the hole, but not deep enough


def test_peg_dense_reward_prefers_aligned_over_pressed_beside(make_env, h):
    env = make_env(PegInsertConfig(terminate_on_success=False), reward="dense")
    obs, info = env.reset(seed=0)
    _, beside, _ = _place_peg(env, h, obs, info, np.array([0.07, 0.0]))
    obs, info = env.reset(seed=0)
    # Hover lined up, the tip just above the rim.
    r = env.robot_cfg
    for _ in range(30):
        rim, tip = info["task_state"][:3], info["task_state"][5:8]
        goal = rim + [0.0, 0.0, 0.005] + (obs["state"]["tcp_pose"][:3] - tip)
        a = h.hold_action()
        a[:3] = np.clip((goal - obs["state"]["tcp_pose"][:3]) / r.max_translation_step, -0.5, 0.5)
        obs, aligned, _, _, info = env.step(a)
    assert np.hypot(*env.task.tip_in_hole_frame()[:2]) < 0.003
    assert aligned > beside, (aligned, beside)
