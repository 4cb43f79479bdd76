"""The Cartesian impedance controller and the safety limits on its target, through SimTwinEnv.step."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_rl.sim.config import ROTATION_AXES, ReachConfig
from robot_rl.sim.env import HOME_TCP_ROTATION


def free_rotation_reach() -> ReachConfig:
    """reach with every rotation axis under the policy's control (the task's default has none)."""
    return ReachConfig(rotation_axes=list(ROTATION_AXES))


def _drive_to(env, goal_pos, goal_rotation, steps, gripper=-1.0):
    """Command the impedance target straight to a goal pose (as fast as the action scale allows),
    then keep commanding it: the remaining TCP error is the controller's, not the policy's."""
    r = env.robot_cfg
    obs = None
    for _ in range(steps):
        a = np.zeros(7)
        tcp_pos = env.data.site("tcp").xpos
        tcp_rotation = Rotation.from_matrix(env.data.site("tcp").xmat.reshape(3, 3))
        a[:3] = np.clip((goal_pos - tcp_pos) / r.max_translation_step, -1, 1)
        a[3:6] = np.clip((goal_rotation * tcp_rotation.inv()).as_rotvec() / r.max_rotation_step, -1, 1)
        a[6] = gripper
        obs, *_ = env.step(a)
    return obs


def _goals(n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        pos = rng.uniform([0.35, -0.2, 0.1], [0.65, 0.2, 0.35])
        rotation = Rotation.from_rotvec(rng.uniform(-0.3, 0.3, 3) * [1, 1, 2]) * HOME_TCP_ROTATION
        yield pos, rotation


def _tracking_errors(make_env, h, robot=None, n=6):
    env = make_env(free_rotation_reach(), robot=robot)
    errors = []
    for k, (pos, rotation) in enumerate(_goals(n)):
        env.reset(seed=k)
        obs = _drive_to(env, pos, rotation, steps=40)
        # The commanded target did reach the goal, so what is left is the controller's error.
        np.testing.assert_allclose(env.target_pos, pos, atol=1e-9)
        assert (rotation * env.target_rotation.inv()).magnitude() < 1e-6
        # Settled: the TCP has stopped moving.
        assert np.linalg.norm(obs["state"]["tcp_vel"][:3]) < 2e-3
        errors.append(
            (np.linalg.norm(h.tcp_pos(env) - pos), (rotation * h.tcp_rotation(env).inv()).magnitude()),
        )
    return np.array(errors)


def test_tcp_reaches_commanded_pose(make_env, h):
    """The posture torque acts only in the Jacobian's null space, so with the default gains the
    TCP settles on the commanded pose; a wrong sign or axis would miss by centimetres."""
    errors = _tracking_errors(make_env, h)
    assert errors[:, 0].max() < 1e-3, errors
    assert errors[:, 1].max() < 5e-3, errors


def test_posture_torque_does_not_move_the_tcp(make_env):
    from robot_rl.sim.panda import posture_torque

    env = make_env(free_rotation_reach())
    env.reset(seed=0)
    jac = np.zeros((6, env.model.nv))
    env.data.qpos[:7] += 0.2  # away from home, so there is a posture torque
    mujoco.mj_kinematics(env.model, env.data)
    mujoco.mj_comPos(env.model, env.data)
    mujoco.mj_jacSite(env.model, env.data, jac[:3], jac[3:], env.model.site("tcp").id)
    tau = posture_torque(env.model, env.data, stiffness=10.0)
    assert np.linalg.norm(tau) > 0.01
    # A null-space torque produces no force at the TCP: J^+T tau = 0.
    np.testing.assert_allclose(np.linalg.pinv(jac[:, :7].T) @ tau, 0.0, atol=1e-9)


def test_zero_action_holds_pose(make_env, h):
    env = make_env("pick_cube")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        start = obs["state"]["tcp_pose"].copy()
        for _ in range(20):
            obs, *_ = env.step(h.hold_action())
        pose = obs["state"]["tcp_pose"]
        assert np.linalg.norm(pose[:3] - start[:3]) < 1e-3
        angle = (
            Rotation.from_quat(pose[3:], scalar_first=True) * Rotation.from_quat(start[3:], scalar_first=True).inv()
        ).magnitude()
        assert angle < 5e-3
        assert np.linalg.norm(obs["state"]["tcp_vel"]) < 1e-2


def test_reset_pose_points_down(make_env, h):
    """After reset the TCP is where the task asked (IK + settling), pointing down."""
    env = make_env(free_rotation_reach())
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_allclose(obs["state"]["tcp_pose"][:3], env.target_pos, atol=3e-3)
        assert np.linalg.norm(h.tilt(h.tcp_rotation(env))) < 0.02


def test_action_moves_target_by_scaled_step(make_env, h):
    """An action puts the impedance target (the mocap body) at the measured TCP pose moved by
    action * max step, in the base frame."""
    env = make_env(free_rotation_reach())
    env.reset(seed=0)
    mocap = env.model.body("target").mocapid[0]
    tcp_pos, tcp_rotation = h.tcp_pos(env), h.tcp_rotation(env)
    a = np.array([0.5, -0.25, 0.2, 0.0, 0.0, 0.4, -1.0])
    env.step(a)
    r = env.robot_cfg
    np.testing.assert_allclose(env.data.mocap_pos[mocap] - tcp_pos, a[:3] * r.max_translation_step, atol=1e-9)
    expected = Rotation.from_rotvec(a[3:6] * r.max_rotation_step) * tcp_rotation
    got = Rotation.from_quat(env.data.mocap_quat[mocap], scalar_first=True)
    assert (got * expected.inv()).magnitude() < 1e-9


def test_translation_follows_action_direction(make_env, h):
    env = make_env(free_rotation_reach())
    for axis in range(3):
        for sign in (1.0, -1.0):
            env.reset(seed=0)
            start = h.tcp_pos(env)
            a = h.hold_action()
            a[axis] = 0.5 * sign
            for _ in range(3):
                env.step(a)
            moved = h.tcp_pos(env) - start
            assert sign * moved[axis] > 0.025  # 3 steps x 1.5 cm, less the arm's lag
            assert np.abs(np.delete(moved, axis)).max() < 0.2 * abs(moved[axis])


def test_rotation_follows_action_direction(make_env, h):
    env = make_env(free_rotation_reach())
    for axis in range(3):
        env.reset(seed=0)
        start = h.tcp_rotation(env)
        a = h.hold_action()
        a[3 + axis] = 0.5
        for _ in range(3):
            env.step(a)
        turned = (h.tcp_rotation(env) * start.inv()).as_rotvec()  # world frame
        assert turned[axis] > 0.12  # 3 steps x 0.075 rad, less lag
        assert np.abs(np.delete(turned, axis)).max() < 0.3 * turned[axis]


@pytest.mark.parametrize("axis, sign", [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)])
def test_workspace_box_clips_target(make_env, h, axis, sign):
    env = make_env(free_rotation_reach())
    env.reset(seed=1)
    r = env.robot_cfg
    a = h.hold_action()
    a[axis] = sign
    for _ in range(40):
        env.step(a)
        assert np.all(env.target_pos >= r.workspace_low) and np.all(env.target_pos <= r.workspace_high)
    bound = r.workspace_high[axis] if sign > 0 else r.workspace_low[axis]
    assert env.target_pos[axis] == pytest.approx(bound)
    tcp = h.tcp_pos(env)[axis]
    # The TCP gets to the wall and stops there (within the controller's steady-state error; on the
    # table at z = 0.005 the fingertips, 9 mm below the TCP, hold it up a few mm).
    assert abs(tcp - bound) < 0.015
    assert sign * (tcp - bound) < 0.005


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_tilt_limit(make_env, h, axis):
    env = make_env(free_rotation_reach())
    r = env.robot_cfg
    for sign in (1.0, -1.0):
        env.reset(seed=1)
        a = h.hold_action()
        a[3 + axis] = sign
        for _ in range(40):
            env.step(a)
            target_tilt = h.tilt(env.target_rotation)
            assert np.all(np.abs(target_tilt) <= np.array(r.max_tilt) + 1e-9)
        # The target sits at the limit on the commanded axis, and the TCP stays within it.
        assert sign * h.tilt(env.target_rotation)[axis] == pytest.approx(r.max_tilt[axis], abs=1e-6)
        tcp_tilt = h.tilt(h.tcp_rotation(env))
        assert sign * tcp_tilt[axis] > r.max_tilt[axis] - 0.08
        assert np.all(np.abs(tcp_tilt) <= np.array(r.max_tilt) + 0.02)


def test_target_stays_within_one_step_of_blocked_tcp(make_env, h):
    """Pushing into the table: the target never runs away from the blocked TCP, so the contact
    force stays near stiffness x max step (45 N) instead of winding up."""
    env = make_env("peg_insert")
    obs, info = env.reset(seed=0)
    r = env.robot_cfg
    # Move beside the fixture, then push down on the table for 3 s.
    rim, tip = info["task_state"][:3], info["task_state"][5:8]
    beside = rim + [0.07, 0.0, 0.0] + (obs["state"]["tcp_pose"][:3] - tip)
    for _ in range(10):
        a = h.hold_action()
        a[:2] = np.clip((beside[:2] - obs["state"]["tcp_pose"][:2]) / r.max_translation_step, -1, 1)
        obs, *_ = env.step(a)
    push = h.hold_action()
    push[2] = -1.0
    for _ in range(30):
        tcp_at_command = h.tcp_pos(env)
        obs, *_ = env.step(push)
        assert np.all(np.abs(env.target_pos - tcp_at_command) <= r.max_translation_step + 1e-9)
    assert tcp_at_command[2] > 0.03  # really blocked: the peg tip is on the table
    force, _ = h.world_wrench(env, obs["state"]["wrench"])
    limit = r.translational_stiffness * r.max_translation_step
    assert 0.7 * limit < abs(force[2]) < 1.1 * limit, force
    assert obs["state"]["wrench"][8] < 1.2 * limit  # max-abs z force over the period


def test_gripper_keeps_its_last_command_inside_the_deadband(make_env, h):
    """Gripper actions in [-0.5, 0.5] are "stay": the fingers hold the last open/close command."""
    env = make_env("pick_cube")
    obs, _ = env.reset(seed=0)
    assert obs["state"]["gripper"][0] == pytest.approx(1.0, abs=0.01)  # reset opens it
    for command, expected in ((0.0, 1.0), (0.45, 1.0), (0.55, 0.0), (0.0, 0.0), (-0.45, 0.0), (-0.55, 1.0)):
        for _ in range(5):
            obs, *_ = env.step(h.hold_action(gripper=command))
        assert obs["state"]["gripper"][0] == pytest.approx(expected, abs=0.02), command


@pytest.mark.parametrize("task", ["reach", "pick_cube"])
def test_gripper_closes_and_opens_fully_in_free_space(make_env, task):
    """Regression: the saturated gripper servo used to end in a +-2.6 m/s limit cycle at dt = 2 ms
    (reading 0.19 closed / 0.81 open), fixed by implicit finger joint damping."""
    env = make_env(task)
    for seed in range(4):
        env.reset(seed=seed)
        for gripper, expected in ((1.0, 0.0), (-1.0, 1.0)):
            for _ in range(5):
                obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, gripper]))
            assert obs["state"]["gripper"][0] == pytest.approx(expected, abs=0.02), (seed, gripper)
            assert np.abs(env.data.qvel[7:9]).max() < 0.01, (seed, gripper)  # fingers at rest


def test_peg_insert_ignores_gripper_action(make_env):
    """The peg is held in a firm grasp: the policy cannot open the gripper."""
    env = make_env("peg_insert")
    obs, _ = env.reset(seed=0)
    start = obs["state"]["gripper"][0]
    for _ in range(5):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    assert obs["state"]["gripper"][0] == pytest.approx(start, abs=1e-3)
    assert start == pytest.approx(env.task.cfg.peg_half_size / 0.04, abs=0.02)


def test_tcp_velocity_matches_finite_differences(make_env, h):
    """obs tcp_vel is [linear, angular] in the base frame: compare with central differences."""
    from robot_rl.sim.config import SimConfig

    env = make_env(free_rotation_reach(), sim=SimConfig(cameras=[], control_hz=100.0))
    env.reset(seed=0)
    a = np.array([0.05, -0.04, 0.03, 0.04, -0.05, 0.06, -1.0])
    poses, vels = [], []
    for _ in range(12):
        obs, *_ = env.step(a)
        poses.append((h.tcp_pos(env), h.tcp_rotation(env)))
        vels.append(obs["state"]["tcp_vel"].astype(float))
    dt = 1.0 / env.sim_cfg.control_hz
    for k in range(6, 11):  # past the start-up transient
        lin = (poses[k + 1][0] - poses[k - 1][0]) / (2 * dt)
        ang = (poses[k + 1][1] * poses[k - 1][1].inv()).as_rotvec() / (2 * dt)
        np.testing.assert_allclose(vels[k][:3], lin, atol=0.1 * np.linalg.norm(lin))
        np.testing.assert_allclose(vels[k][3:], ang, atol=0.15 * np.linalg.norm(ang))


@pytest.mark.parametrize("axes", [[], ["z"]])
def test_rotation_axes_outside_the_task_are_held_at_home(make_env, h, axes):
    """A task's rotation_axes: the TCP turns about those only; about the others the target and the
    TCP stay at the home orientation, whatever the action asks."""
    env = make_env(ReachConfig(rotation_axes=axes))
    env.reset(seed=0)
    a = h.hold_action()
    a[3:6] = [1.0, -1.0, 1.0]
    for _ in range(10):
        env.step(a)
    target_tilt, tcp_tilt = h.tilt(env.target_rotation), h.tilt(h.tcp_rotation(env))
    np.testing.assert_allclose(target_tilt[:2], 0.0, atol=1e-9)
    assert np.abs(tcp_tilt[:2]).max() < 0.01
    if "z" in axes:
        assert tcp_tilt[2] > 0.5  # 10 steps x 0.15 rad, less lag
    else:
        assert target_tilt[2] == pytest.approx(0.0, abs=1e-9) and abs(tcp_tilt[2]) < 0.01
