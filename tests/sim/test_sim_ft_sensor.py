"""The wrist F/T sensor: the model (bias, noise, low-pass, tare, statistics) and what it measures
in the twin (a payload's weight and moment, contact forces)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.sim.config import FTSensorConfig, PickCubeConfig, RandomizationConfig, RobotConfig, SimConfig
from robot_rl.sim.experts import make_expert
from robot_rl.sim.ft_sensor import WristFTSensor

DT = 0.002


def _assert_within(actual, expected, tol) -> None:
    """Element-wise |actual - expected| < tol, with a per-element tolerance."""
    np.testing.assert_array_less(np.abs(np.asarray(actual) - expected), tol)


def _sensor(**kw) -> WristFTSensor:
    return WristFTSensor(FTSensorConfig(**kw), DT)


def _first_order_gain(alpha: float, freq_hz: float) -> float:
    """|H| of y[n] = y[n-1] + alpha (x[n] - y[n-1]) at freq_hz, sampled every DT."""
    z = np.exp(-1j * 2 * np.pi * freq_hz * DT)
    return float(abs(alpha / (1 - (1 - alpha) * z)))


# --- the sensor model ---------------------------------------------------------------------------


def test_noise_and_bias_statistics():
    cfg = dict(force_noise_std=0.05, torque_noise_std=0.002, force_bias_std=0.5, torque_bias_std=0.02)
    sensor = _sensor(lowpass_hz=0.0, **cfg)
    rng = np.random.default_rng(0)
    sensor.reset(rng, randomize_bias=True, first_raw_sample=np.zeros(6))
    bias = sensor.bias.copy()
    assert np.all(bias != 0)
    out = sensor.measure(np.zeros((20000, 6)), rng)
    expected_std = np.array([0.05] * 3 + [0.002] * 3)
    np.testing.assert_allclose(out.std(axis=0), expected_std, rtol=0.03)
    _assert_within(out.mean(axis=0), bias, 4 * expected_std / np.sqrt(20000))
    # Noise is white: no correlation between consecutive samples.
    lag1 = [np.corrcoef(out[:-1, i], out[1:, i])[0, 1] for i in range(6)]
    assert np.abs(lag1).max() < 0.05


def test_bias_is_drawn_per_reset_with_configured_std():
    sensor = _sensor(force_bias_std=0.5, torque_bias_std=0.02)
    rng = np.random.default_rng(1)
    biases = []
    for _ in range(3000):
        sensor.reset(rng, randomize_bias=True, first_raw_sample=np.zeros(6))
        biases.append(sensor.bias.copy())
    biases = np.array(biases)
    np.testing.assert_allclose(biases.std(axis=0), [0.5] * 3 + [0.02] * 3, rtol=0.05)
    _assert_within(biases.mean(axis=0), 0.0, [0.04] * 3 + [0.0016] * 3)
    sensor.reset(rng, randomize_bias=False, first_raw_sample=np.zeros(6))
    np.testing.assert_array_equal(sensor.bias, 0.0)


def test_lowpass_passes_dc_and_attenuates_high_frequency():
    sensor = _sensor(lowpass_hz=10.0, force_noise_std=0.0, torque_noise_std=0.0)
    rng = np.random.default_rng(0)
    t = np.arange(3000) * DT
    dc = np.array([3.0, -2.0, 1.0, 0.1, -0.2, 0.3])
    sine = np.sin(2 * np.pi * 200.0 * t)[:, None] * np.ones(6)
    sensor.reset(rng, randomize_bias=False, first_raw_sample=dc)
    out = sensor.measure(dc + sine, rng)
    steady = out[500:]  # after the filter's transient (time constant ~16 ms)
    np.testing.assert_allclose(steady.mean(axis=0), dc, atol=2e-3)  # DC passes at gain 1
    amplitude = (steady - dc).std(axis=0) * np.sqrt(2)
    expected = _first_order_gain(sensor.alpha, 200.0)
    assert expected < 0.1  # a 200 Hz sine through a 10 Hz low-pass: attenuated >10x
    np.testing.assert_allclose(amplitude, expected, rtol=0.05)


def test_lowpass_cutoff_matches_config():
    """At its configured cut-off the filter attenuates by about 3 dB; the noise it lets through
    is what a first-order filter's equivalent bandwidth predicts."""
    sensor = _sensor(lowpass_hz=20.0, force_noise_std=1.0, torque_noise_std=1.0)
    assert _first_order_gain(sensor.alpha, 20.0) == pytest.approx(1 / np.sqrt(2), rel=0.05)
    rng = np.random.default_rng(3)
    sensor.reset(rng, randomize_bias=False, first_raw_sample=np.zeros(6))
    out = sensor.measure(np.zeros((40000, 6)), rng)
    a = sensor.alpha
    np.testing.assert_allclose(out.std(axis=0), np.sqrt(a / (2 - a)), rtol=0.03)


def test_filter_is_continuous_across_control_periods():
    """Measuring a stream in 50-sample periods gives exactly what measuring it at once does."""
    rng = np.random.default_rng(0)
    raw = rng.normal(0.0, 1.0, (500, 6)).cumsum(axis=0)
    whole, chunked = (
        _sensor(force_noise_std=0.0, torque_noise_std=0.0),
        _sensor(force_noise_std=0.0, torque_noise_std=0.0),
    )
    for s in (whole, chunked):
        s.reset(rng, randomize_bias=False, first_raw_sample=raw[0])
    expected = whole.measure(raw, rng)
    got = np.concatenate([chunked.measure(raw[i : i + 50], rng) for i in range(0, 500, 50)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_reset_starts_filter_at_first_sample_without_transient():
    sensor = _sensor(lowpass_hz=5.0, force_noise_std=0.0, torque_noise_std=0.0)
    rng = np.random.default_rng(0)
    level = np.array([1.0, 2.0, 3.0, 0.1, 0.2, 0.3])
    sensor.reset(rng, randomize_bias=True, first_raw_sample=level)
    out = sensor.measure(np.tile(level, (50, 1)), rng)
    np.testing.assert_allclose(out, np.tile(level + sensor.bias, (50, 1)), atol=1e-12)


def test_tare_zeroes_the_mean():
    sensor = _sensor()
    rng = np.random.default_rng(0)
    load = np.array([4.0, -1.0, 9.0, 0.3, -0.2, 0.05])
    sensor.reset(rng, randomize_bias=True, first_raw_sample=load)
    sensor.tare(sensor.measure(np.tile(load, (200, 1)), rng))
    after = sensor.measure(np.tile(load, (2000, 1)), rng)
    _assert_within(after.mean(axis=0), 0.0, [0.01] * 3 + [5e-4] * 3)
    # A load added after the tare reads as itself.
    extra = np.array([0.0, 0.0, -1.5, 0.0, 0.02, 0.0])
    np.testing.assert_allclose(
        sensor.measure(np.tile(load + extra, (2000, 1)), rng)[200:].mean(axis=0), extra, atol=0.01
    )
    # A new episode forgets the old tare.
    sensor.reset(rng, randomize_bias=False, first_raw_sample=load)
    np.testing.assert_array_equal(sensor.offset, 0.0)


def test_period_statistics_layout():
    samples = np.array(
        [
            [1.0, -4.0, 0.0, 0.5, 0.0, -0.1],
            [3.0, 2.0, -6.0, -0.7, 0.0, 0.3],
        ]
    )
    stats = WristFTSensor.period_statistics(samples)
    assert stats.shape == (12,) and stats.dtype == np.float32
    np.testing.assert_allclose(stats[:6], [2.0, -1.0, -3.0, -0.1, 0.0, 0.1], atol=1e-7)  # mean F, mean T
    np.testing.assert_allclose(stats[6:], [3.0, 4.0, 6.0, 0.7, 0.0, 0.3], atol=1e-7)  # max |F|, max |T|


# --- the sensor in the twin ---------------------------------------------------------------------


def test_observed_wrench_is_tared_at_reset(make_env, h):
    env = make_env("peg_insert")
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        w = obs["state"]["wrench"]
        assert w.shape == (12,) and w.dtype == np.float32
        np.testing.assert_allclose(w[:6], 0.0, atol=1e-5)  # mean zeroed
        assert np.all(w[6:] < [0.5] * 3 + [0.02] * 3)  # only noise left in the max-abs
        # The max-abs statistic bounds the mean in every later period.
        for _ in range(5):
            obs, *_ = env.step(h.hold_action())
            w = obs["state"]["wrench"]
            assert np.all(w[6:] >= np.abs(w[:6]))


def _still_force_after_reset(env, h, seeds=range(4)) -> np.ndarray:
    """Largest |mean force| component over seconds 1-2 of holding still after each reset."""
    worst = []
    for seed in seeds:
        env.reset(seed=seed)
        means = []
        for _ in range(20):
            obs, *_ = env.step(h.hold_action())
            means.append(obs["state"]["wrench"][:3])
        worst.append(np.abs(np.mean(means[10:], axis=0)).max())
    return np.array(worst)


@pytest.mark.parametrize("task", ["reach", "pick_cube", "peg_insert"])
def test_tared_sensor_reads_near_zero_holding_still(make_env, h, task):
    assert _still_force_after_reset(make_env(task), h).max() < 0.15


@pytest.mark.parametrize("task", ["pick_cube", "peg_insert"])
def test_tare_is_taken_at_rest(make_env, h, task):
    assert _still_force_after_reset(make_env(task), h).max() < 0.03


def test_wrench_reads_payload_weight_and_moment(make_env, h):
    """Hang a known extra mass on the peg held in the hand, off-centre: the tared sensor reads its
    weight along gravity and the moment of the whole peg's weight about the sensor."""
    env = make_env("peg_insert")
    m, d = env.model, env.data
    peg = m.body("peg").id
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for _ in range(3):
            obs, *_ = env.step(h.hold_action())
        force0, torque0 = h.world_wrench(env, obs["state"]["wrench"])
        mass0, extra, offset = m.body_mass[peg], 0.5, np.array([0.05, 0.02, 0.0])
        m.body_inertia[peg] *= (mass0 + extra) / mass0
        m.body_mass[peg] += extra
        m.body_ipos[peg] = offset  # the payload's centre of mass, in the peg frame
        m.body_sameframe[peg] = 0
        for _ in range(10):
            obs, *_ = env.step(h.hold_action())
        force, torque = h.world_wrench(env, obs["state"]["wrench"])
        d_force, d_torque = force - force0, torque - torque0
        weight = extra * h.G
        assert np.linalg.norm(d_force) == pytest.approx(weight, rel=0.03)
        assert abs(d_force[2]) / np.linalg.norm(d_force) > 0.999  # along gravity
        # Moment of the whole peg's weight about the sensor (it was ~0 before: on the axis).
        lever = d.xipos[peg] - d.site("ft_site").xpos
        expected = np.cross(lever, [0.0, 0.0, np.sign(d_force[2]) * (mass0 + extra) * h.G])
        assert np.linalg.norm(expected) > 0.2
        np.testing.assert_allclose(d_torque, expected, atol=0.03 * np.linalg.norm(expected))
        m.body_ipos[peg], m.body_sameframe[peg] = 0.0, 1  # the randomiser restores mass, not these


def test_wrench_reads_lifted_cube_weight(make_env, h):
    cfg = PickCubeConfig(terminate_on_success=False)
    env = make_env(cfg)
    cube_weight = cfg.cube_mass * h.G
    for seed in range(2):
        obs, info = env.reset(seed=seed)
        expert = make_expert(env)
        for _ in range(40):
            obs, _, _, _, info = env.step(expert.act(obs, info))
        assert info["success"] and env.task.grasped()
        forces = []
        for _ in range(20):  # hold it still in the air
            obs, *_ = env.step(h.hold_action(gripper=1.0))
            forces.append(h.world_wrench(env, obs["state"]["wrench"])[0])
        force = np.mean(forces[10:], axis=0)
        assert abs(force[2]) == pytest.approx(cube_weight, rel=0.15), force
        assert np.linalg.norm(force[:2]) < 0.3 * cube_weight


@pytest.mark.parametrize(
    "posture_stiffness, rel",
    # The posture torque acts in the null space only, so with or without it the sensor reads the
    # impedance force to within 5%.
    [(None, 0.05), (0.0, 0.05)],
)
def test_wrench_reads_contact_force_opposite_to_payload(make_env, h, posture_stiffness, rel):
    """Pressing the peg down on the table reads a force along z of the opposite sign to a hanging
    weight (the load pushes up instead of pulling down), of the impedance's magnitude K (x_tcp - x_target)."""
    robot = RobotConfig() if posture_stiffness is None else RobotConfig(posture_stiffness=posture_stiffness)
    env = make_env("peg_insert", robot=robot)
    obs, _ = env.reset(seed=0)
    m = env.model
    m.body_mass[env.model.body("peg").id] += 0.5
    for _ in range(5):
        obs, *_ = env.step(h.hold_action())
    weight_sign = np.sign(h.world_wrench(env, obs["state"]["wrench"])[0][2])
    obs, info = env.reset(seed=0)
    rim, tip = info["task_state"][:3], info["task_state"][5:8]
    beside = rim[:2] + [0.07, 0.0] + (obs["state"]["tcp_pose"][:2] - tip[:2])
    for _ in range(10):
        a = h.hold_action()
        a[:2] = np.clip((beside - obs["state"]["tcp_pose"][:2]) / 0.03, -1, 1)
        obs, *_ = env.step(a)
    for _ in range(20):
        obs, *_ = env.step(np.array([0, 0, -0.5, 0, 0, 0, 0], dtype=np.float32))
    force, _ = h.world_wrench(env, obs["state"]["wrench"])
    pressing = env.robot_cfg.translational_stiffness * (h.tcp_pos(env)[2] - env.target_pos[2])
    assert pressing > 10.0  # really pressing
    assert np.sign(force[2]) == -weight_sign
    assert abs(force[2]) == pytest.approx(pressing, rel=rel)


@pytest.mark.parametrize("tare", [True, False])
def test_randomised_bias_shows_only_without_tare(make_env, tare):
    """randomize.ft_noise_bias draws a per-episode sensor bias; the reset tare removes it (as on the
    real robot), and without the tare it offsets the reading."""
    readings = {}
    for bias_on in (True, False):
        sim = SimConfig(
            cameras=[],
            ft_sensor=FTSensorConfig(tare_on_reset=tare),
            randomize=RandomizationConfig(ft_noise_bias=bias_on),
        )
        env = make_env("pick_cube", sim=sim)
        obs, _ = env.reset(seed=5)
        readings[bias_on] = (obs["state"]["wrench"][:6].astype(float), env.ft_sensor.bias.copy())
    (with_bias, bias), (without, zero) = readings[True], readings[False]
    np.testing.assert_array_equal(zero, 0.0)
    assert np.abs(bias[:3]).max() > 0.05  # a real draw (std 0.5 N)
    if tare:
        np.testing.assert_allclose(with_bias, 0.0, atol=1e-5)
        np.testing.assert_allclose(without, 0.0, atol=1e-5)
    else:
        _assert_within(with_bias - without, bias, [0.05] * 3 + [0.003] * 3)
