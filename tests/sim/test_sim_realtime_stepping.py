"""The pieces of a step (set_command, advance, observe) that a real-time driver uses: a control
period advanced in any slices is step() bit for bit, the F/T samples they return are the ones the
observation's wrench statistic is taken over, and the controller keeps running between commands."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from robot_rl.sim.config import FTSensorConfig
from robot_rl.sim.ft_sensor import WristFTSensor
from robot_rl.sim.panda import posture_torque

SLICES = [[1, 7, 0, 30, 12], [50], [25, 25], [3] * 16 + [2]]  # each adds up to one control period (50 steps)


def _actions(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.append(rng.uniform(-1, 1, 6), gripper) for gripper in rng.choice([-1.0, 0.0, 1.0], n)]


def _assert_same_obs(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a["state"]:
        np.testing.assert_array_equal(a["state"][key], b["state"][key], err_msg=key)
    for cam in a.get("images", {}):
        np.testing.assert_array_equal(a["images"][cam], b["images"][cam], err_msg=cam)


@pytest.mark.parametrize("task", ["pick_cube", "peg_insert"])
def test_a_period_advanced_in_slices_is_step(make_env, h, task):
    sim = h.sim_config(cameras=["front", "wrist"], width=32, height=24)
    stepped, sliced = make_env(task, sim=sim), make_env(task, sim=sim)
    assert stepped.sim_cfg.substeps == 50
    obs_a, _ = stepped.reset(seed=5)
    obs_b, _ = sliced.reset(seed=5)
    _assert_same_obs(obs_a, obs_b)
    for i, action in enumerate(_actions(8)):
        obs_a, *_ = stepped.step(action)
        sliced.set_command(action)
        samples = [sliced.advance(n) for n in SLICES[i % len(SLICES)]]
        obs_b = sliced.observe()
        _assert_same_obs(obs_a, obs_b)
        np.testing.assert_array_equal(stepped.data.qpos, sliced.data.qpos)
        np.testing.assert_array_equal(stepped.data.qvel, sliced.data.qvel)

        # one output sample per physics step, and the observation's statistic is over exactly them
        period = np.concatenate(samples)
        assert period.shape == (50, 6)
        assert sliced.data.time == pytest.approx(stepped.data.time)
        np.testing.assert_array_equal(obs_b["state"]["wrench"][:6], period.mean(axis=0).astype(np.float32))
        np.testing.assert_array_equal(obs_b["state"]["wrench"][6:], np.abs(period).max(axis=0).astype(np.float32))


def test_the_wrench_statistic_covers_the_last_period_across_commands(make_env):
    env = make_env("pick_cube")
    env.reset(seed=2)
    env.set_command(_actions(1)[0])
    first = env.advance(50)
    env.set_command(np.array([0, 0, -1, 0, 0, 0, 1.0]))
    second = env.advance(20)  # a new command 20 steps ago: the window reaches back into the last period
    window = np.concatenate([first[20:], second])
    wrench = env.observe()["state"]["wrench"]
    np.testing.assert_array_equal(wrench, WristFTSensor.period_statistics(window))
    assert not np.array_equal(wrench, WristFTSensor.period_statistics(first))


def test_without_commands_the_target_holds_and_the_posture_torque_follows(make_env):
    """A controller that keeps running: the target stays where the last command put it, and the
    null-space posture torque is recomputed once per control period, not only at a command."""
    env = make_env("reach")
    env.reset(seed=0)
    env.set_command(np.array([1.0, -1.0, -1.0, 0, 0, 0, 0]))
    target = (env.data.mocap_pos.copy(), env.data.mocap_quat.copy())
    torque_at_command = env.data.qfrc_applied[:7].copy()
    env.advance(50)
    np.testing.assert_array_equal(env.data.qfrc_applied[:7], torque_at_command)  # within the period: as step()
    expected = posture_torque(env.model, env.data, env.robot_cfg.posture_stiffness)
    env.advance(1)  # the next period starts with no new command: the controller refreshes its torque
    np.testing.assert_array_equal(env.data.qfrc_applied[:7], expected)
    assert np.abs(expected - torque_at_command).max() > 1e-6  # the arm moved: a refresh is visible

    samples = env.advance(3 * 50 + 7)
    assert samples.shape == (157, 6)
    np.testing.assert_array_equal(env.data.mocap_pos, target[0])
    np.testing.assert_array_equal(env.data.mocap_quat, target[1])
    assert np.linalg.norm(env.data.site("tcp").xpos - target[0][0]) < 0.01  # it got there and holds


def test_advance_zero_changes_nothing_and_bad_counts_are_refused(make_env):
    env = make_env("reach")
    env.reset(seed=0)
    time, qpos = env.data.time, env.data.qpos.copy()
    assert env.advance(0).shape == (0, 6)
    assert env.data.time == time
    np.testing.assert_array_equal(env.data.qpos, qpos)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="n_physics_steps"):
            env.advance(bad)
    assert env.advance(np.int64(2)).shape == (2, 6)
    with pytest.raises(ValueError, match="action must have shape"):
        env.set_command(np.zeros(6))


def test_the_sensor_model_streams_chunks_as_one_call():
    raw = np.random.default_rng(0).normal(3.0, 2.0, (60, 6))
    whole, chunked = (WristFTSensor(FTSensorConfig(), 0.002) for _ in range(2))
    for sensor in (whole, chunked):
        sensor.reset(np.random.default_rng(9), randomize_bias=True, first_raw_sample=raw[0])
    rng_whole, rng_chunked = np.random.default_rng(1), np.random.default_rng(1)
    expected = whole.measure(raw, rng_whole)
    bounds = [0, 1, 8, 8, 40, 60]
    got = np.concatenate([chunked.measure(raw[a:b], rng_chunked) for a, b in pairwise(bounds)])
    np.testing.assert_array_equal(got, expected)
