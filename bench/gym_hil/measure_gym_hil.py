"""Baseline env speed: gym-hil's PandaPickCube, single process, CPU.

Runs inside bench/gym_hil/.venv (see setup_venv.sh), not the project venv:

    bash bench/gym_hil/setup_venv.sh
    bench/gym_hil/.venv/bin/python bench/gym_hil/measure_gym_hil.py --steps 300
    # the 2-camera mode runs ~2 steps/s: give it fewer steps, repeat each mode 3 times
    ... measure_gym_hil.py --steps-state-only 300 --steps-two-cameras 20 --repeats 3

Measures env steps per second with random actions in two modes:
  state-only   image_obs=False: no rendering in step()
  two cameras  image_obs=True: "front" and "handcam_rgb" (wrist) rendered
               every step at --image-size, through gym-hil's own renderer

Episodes that end (terminated, or truncated by the 100-step time limit) are
reset inside the timed loop, as in a real rollout; the reset count is
reported. With --repeats N each mode is timed N times on the same env (one
warm-up before the first) and `<mode>_steps_per_s` is the median, with every
run in `<mode>_steps_per_s_runs`. Prints one JSON object on stdout; everything
else goes to stderr.
"""

import argparse
import json
import os
import statistics
import sys
import time

# mujoco picks its GL backend at import time; EGL runs headless (Mesa llvmpipe
# on a machine without a GPU).
os.environ.setdefault("MUJOCO_GL", "egl")

from importlib.metadata import version  # noqa: E402

import gym_hil  # noqa: E402,F401  (registers the gym_hil/* env ids)
import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
from gym_hil import GymRenderingSpec  # noqa: E402

ENV_ID = "gym_hil/PandaPickCube-v0"
PHYSICS_DT = 0.002  # 500 Hz physics
CONTROL_DT = 0.1  # 10 Hz control -> 50 substeps per env step
WARMUP_STEPS = 5


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def make_env(image_obs, image_size, seed):
    # PandaPickCube-v0 is the task env as registered by gym-hil: the base
    # PandaPickCubeGymEnv plus its gripper-penalty, end-effector-action and
    # reset-delay wrappers, with gymnasium's 100-step time limit.
    # reset_delay_seconds=0 turns off the reset wrapper's time.sleep(1.0),
    # which is there for human teleoperation, not simulation.
    return gym.make(
        ENV_ID,
        seed=seed,
        control_dt=CONTROL_DT,
        physics_dt=PHYSICS_DT,
        render_spec=GymRenderingSpec(height=image_size, width=image_size),
        image_obs=image_obs,
        reset_delay_seconds=0.0,
    )


def check_rates(env):
    """Read back what the simulation really uses; fail if it is not 500/10 Hz."""
    base = env.unwrapped
    physics_dt = float(base.model.opt.timestep)
    substeps = int(base._n_substeps)  # the mj_step loop count in apply_action()
    control_dt = physics_dt * substeps
    if abs(physics_dt - PHYSICS_DT) > 1e-12 or substeps != round(CONTROL_DT / PHYSICS_DT):
        raise SystemExit(f"unexpected rates: physics_dt={physics_dt} substeps={substeps}")
    return physics_dt, control_dt, substeps


def gl_renderer_name():
    """The OpenGL renderer string of the current context, e.g. 'llvmpipe (...)'."""
    try:
        from OpenGL import GL

        return GL.glGetString(GL.GL_RENDERER).decode()
    except Exception as exc:  # informational only
        return f"unknown ({exc})"


def warm_up(env, seed):
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(WARMUP_STEPS):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


def time_steps(env, steps):
    """Steps per second over `steps` random-action steps, resets included."""
    obs = None
    resets = 0
    start = time.perf_counter()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
            resets += 1
    elapsed = time.perf_counter() - start
    return steps / elapsed, elapsed, resets, obs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per mode (default for both)")
    parser.add_argument("--steps-state-only", type=int, default=None, help="timed steps, state-only mode")
    parser.add_argument("--steps-two-cameras", type=int, default=None, help="timed steps, two-camera mode")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per mode; the median is reported")
    parser.add_argument("--image-size", type=int, default=128, help="camera width and height")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    notes = [
        f"env id {ENV_ID} with reset_delay_seconds=0 (gym-hil default sleeps 1 s per reset for teleoperation)",
        "actions: random samples from the wrapped 4-D action space (xyz end-effector delta, gripper)",
        "rendering as shipped: full visual meshes, scene lights, offsamples=8; only size set",
        f"MUJOCO_GL={os.environ['MUJOCO_GL']}",
    ]
    result = {
        "env": "gym-hil PandaPickCube",
        "gym_hil_version": version("gym-hil"),
        "mujoco_version": mujoco.__version__,
        "image_size": args.image_size,
        "seed": args.seed,
        "repeats": args.repeats,
    }
    steps = {
        "state_only": args.steps_state_only or args.steps,
        "two_cameras": args.steps_two_cameras or args.steps,
    }

    for mode, image_obs in (("state_only", False), ("two_cameras", True)):
        log(f"[{mode}] building env")
        env = make_env(image_obs, args.image_size, args.seed)
        physics_dt, control_dt, substeps = check_rates(env)
        result.update(physics_dt=physics_dt, control_dt=control_dt, substeps=substeps)
        if image_obs:
            cameras = [
                mujoco.mj_id2name(env.unwrapped.model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in env.unwrapped.camera_id
            ]
        warm_up(env, args.seed)
        rates, seconds, resets = [], [], []
        for run in range(args.repeats):
            log(f"[{mode}] run {run + 1}/{args.repeats}: timing {steps[mode]} steps")
            rate, elapsed, run_resets, obs = time_steps(env, steps[mode])
            log(f"[{mode}] {rate:.2f} steps/s ({elapsed:.1f} s, {run_resets} resets)")
            rates.append(round(rate, 3))
            seconds.append(round(elapsed, 3))
            resets.append(run_resets)
        if image_obs:
            shapes = {name: img.shape for name, img in obs["pixels"].items()}
            expected = (args.image_size, args.image_size, 3)
            if any(shape != expected for shape in shapes.values()):
                raise SystemExit(f"unexpected image shapes {shapes}")
            notes.append(f"cameras rendered: {cameras} -> pixels {sorted(shapes)}")
            notes.append(f"GL renderer: {gl_renderer_name()}")
        result[f"{mode}_steps"] = steps[mode]
        result[f"{mode}_steps_per_s"] = round(statistics.median(rates), 3)
        result[f"{mode}_steps_per_s_runs"] = rates
        result[f"{mode}_seconds"] = round(sum(seconds), 3)
        result[f"{mode}_resets"] = sum(resets)
        env.close()

    if result["state_only_resets"] or result["two_cameras_resets"]:
        notes.append("resets happen inside the timed loop (100-step time limit or block out of bounds)")
    result["notes"] = notes
    print(json.dumps(result))


if __name__ == "__main__":
    main()
