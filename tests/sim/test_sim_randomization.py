"""Domain randomisation: each switch in sim.randomize changes what it claims and nothing when
off, and nothing accumulates across resets."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.sim.randomization import _FIELDS

# switch -> model fields it claims to change
CLAIMS = {
    "lighting": ("light_pos", "light_dir", "light_diffuse"),
    "colors": ("geom_matid", "mat_rgba"),
    "camera_pose": ("cam_pos", "cam_quat"),
    "physics": ("body_mass", "body_inertia", "geom_friction"),
}
SWITCHES = (*CLAIMS, "object_pose", "ft_noise_bias")


def _sim(h, on=(), cameras=None):
    sim = h.sim_config(cameras=cameras)
    for switch in SWITCHES:
        setattr(sim.randomize, switch, switch in on)
    return sim


def _snapshot(model):
    return {name: getattr(model, name).copy() for name in _FIELDS}


def _changed(before, after):
    return {name for name in before if not np.array_equal(before[name], after[name])}


@pytest.mark.parametrize("switch", list(CLAIMS))
def test_each_switch_changes_only_its_fields(make_env, h, switch):
    env = make_env("pick_cube", sim=_sim(h, on=[switch]))
    nominal = _snapshot(env.model)
    seen = set()
    for seed in range(6):
        env.reset(seed=seed)
        changed = _changed(nominal, _snapshot(env.model))
        assert changed <= set(CLAIMS[switch]), seed
        assert changed, seed
        seen |= changed
    # (A draw may repeat a nominal value, e.g. the table keeping its material: over six it does not.)
    assert seen == set(CLAIMS[switch])


def test_all_switches_off_leave_model_nominal(make_env, h):
    env = make_env("pick_cube", sim=_sim(h))
    nominal = _snapshot(env.model)
    for seed in range(3):
        env.reset(seed=seed)
        assert _changed(nominal, _snapshot(env.model)) == set()
        np.testing.assert_array_equal(env.ft_sensor.bias, 0.0)


def test_lighting_moves_every_light_and_keeps_directions_unit(make_env, h):
    env = make_env("pick_cube", sim=_sim(h, on=["lighting"]))
    nominal = env.model.light_pos.copy()
    env.reset(seed=0)
    moved = np.linalg.norm(env.model.light_pos - nominal, axis=1)
    assert np.all(moved > 1e-3) and np.all(np.abs(env.model.light_pos - nominal) <= 0.3)
    np.testing.assert_allclose(np.linalg.norm(env.model.light_dir, axis=1), 1.0, atol=1e-6)


def test_colors_change_table_material_and_object_colour(make_env, h):
    env = make_env("pick_cube", sim=_sim(h, on=["colors"]))
    table = env.model.geom("table").id
    obj = env.model.material("object").id
    nominal_rgba = env.model.mat_rgba[obj].copy()
    table_materials, cube_colours = set(), []
    for seed in range(12):
        env.reset(seed=seed)
        table_materials.add(int(env.model.geom_matid[table]))
        cube_colours.append(env.model.mat_rgba[obj].copy())
        assert env.model.mat_rgba[obj, 3] == nominal_rgba[3]  # opacity untouched
    assert len(table_materials) >= 3
    assert all(not np.allclose(c[:3], nominal_rgba[:3]) for c in cube_colours)


def test_camera_pose_jitter_within_configured_bounds(make_env, h):
    sim = _sim(h, on=["camera_pose"])
    env = make_env("pick_cube", sim=sim)
    nominal_pos, nominal_quat = env.model.cam_pos.copy(), env.model.cam_quat.copy()
    cfg = sim.randomize
    for seed in range(5):
        env.reset(seed=seed)
        shift = np.abs(env.model.cam_pos - nominal_pos)
        assert shift.max() <= cfg.camera_pos_jitter and shift.max() > 0.1 * cfg.camera_pos_jitter
        for cam in range(env.model.ncam):
            dot = abs(np.dot(env.model.cam_quat[cam], nominal_quat[cam]))
            angle = 2 * np.arccos(min(1.0, dot))
            assert 1e-4 < angle <= np.sqrt(3) * cfg.camera_rot_jitter + 1e-9


def test_camera_pose_randomisation_changes_images(make_env, h):
    images = {}
    for on in (False, True):
        env = make_env("pick_cube", sim=_sim(h, on=["camera_pose"] if on else [], cameras=["front"]))
        obs, _ = env.reset(seed=0)
        images[on] = obs["images"]["front"].astype(int)
    assert np.abs(images[True] - images[False]).mean() > 1.0


def test_physics_scales_object_mass_inertia_friction(make_env, h):
    sim = _sim(h, on=["physics"])
    env = make_env("pick_cube", sim=sim)
    cube = env.model.body("cube").id
    geom = env.model.geom("cube").id
    mass0, inertia0 = env.model.body_mass[cube], env.model.body_inertia[cube].copy()
    friction0 = env.model.geom_friction[geom].copy()
    lo_m, hi_m = sim.randomize.mass_range
    lo_f, hi_f = sim.randomize.friction_range
    scales = []
    for seed in range(10):
        env.reset(seed=seed)
        scale = env.model.body_mass[cube] / mass0
        assert lo_m <= scale <= hi_m
        np.testing.assert_allclose(env.model.body_inertia[cube], inertia0 * scale)
        f = env.model.geom_friction[geom]
        assert lo_f <= f[0] / friction0[0] <= hi_f
        np.testing.assert_array_equal(f[1:], friction0[1:])  # only sliding friction
        scales.append(scale)
    assert np.ptp(scales) > 0.3
    # The robot is never touched.
    link = env.model.body("link3").id
    assert env.model.body_mass[link] == pytest.approx(3.228604)


def test_physics_randomisation_reaches_peg_insert_objects(make_env, h):
    env = make_env("peg_insert", sim=_sim(h, on=["physics"]))
    nominal = _snapshot(env.model)
    env.reset(seed=0)
    assert _changed(nominal, _snapshot(env.model)) & {"body_mass", "geom_friction"}


def test_ft_bias_switch(make_env, h):
    for on in (True, False):
        env = make_env("peg_insert", sim=_sim(h, on=["ft_noise_bias"] if on else []))
        biases = []
        for seed in range(3):
            env.reset(seed=seed)
            biases.append(env.ft_sensor.bias.copy())
        if on:
            assert all(np.abs(b).min() > 0 for b in biases)
            assert not np.allclose(biases[0], biases[1])
        else:
            np.testing.assert_array_equal(biases, 0.0)


def test_randomisation_does_not_accumulate(make_env, h):
    env = make_env("pick_cube", sim=_sim(h, on=list(CLAIMS)))
    nominal = _snapshot(env.model)
    env.reset(seed=42)
    first = _snapshot(env.model)
    for seed in range(30):
        env.reset(seed=seed)
    # Many resets later, the same seed gives the same model: each reset starts from nominal.
    env.reset(seed=42)
    again = _snapshot(env.model)
    assert _changed(first, again) == set()
    # And the perturbations stay bounded (no drift): mass within its range of the nominal.
    cube = env.model.body("cube").id
    lo, hi = env.sim_cfg.randomize.mass_range
    assert lo <= again["body_mass"][cube] / nominal["body_mass"][cube] <= hi
    # Turning every switch off: the next reset restores the nominal model exactly.
    env.randomizer.cfg = _sim(h).randomize
    env.reset(seed=1)
    assert _changed(nominal, _snapshot(env.model)) == set()
