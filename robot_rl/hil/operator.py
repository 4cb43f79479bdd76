"""An operator at the twin, with no ROS: teleoperated demonstrations (`robot-rl demos`) and success
labels (`robot-rl label`), as HIL-SERL's record_demos and record_success_fail scripts do on a robot.

The operator drives with the teleop device of the config (robot_rl/robot/teleop.py: keyboard in
this terminal, or a SpaceMouse read over HID by hardware/spacemouse.py); the twin steps at its
control rate in real time, and a MuJoCo viewer window shows the scene when a display exists.

  demos   every episode the operator drives is recorded as a bag (robot_rl/data/bags.py, the format
          the ROS episode recorder writes) exactly as the graph's actor records it: the reward and
          the termination are the configured reward's (the twin's oracle ends the episode at its
          ground-truth success), the success key labels the episode a success and ends it
          (truncated, unless the reward ended it), the end key ends it without one, the task's step
          limit truncates it. The demos train with `train.demo_bags=<folder>` (read_demo_bags
          keeps the successes; a learned reward relabels them).
  label   the operator drives the scene into and out of success and holds the success key while
          it shows success: every control tick stores the frame of the classifier's cameras with
          that label (robot_rl/data/labels.py, a file per episode). Sessions go on until
          `positives` successes and `negatives_per_positive` times as many failures are stored:
          negatives outnumber positives, as a success classifier needs. Frames stored with both
          labels are reported at the end. Train with `robot-rl train-reward reward=classifier
          reward.labels=<folder>`.

Held keys: a terminal reports no key releases, only its auto-repeat while a key is held, so the
success key counts as held for teleop.key_motion_s after its last press, as motion keys move
(TeleopOutput.success_held).

Bad input: NaN/inf or beyond-full-scale device values are zeroed or clipped by the mapper and
logged here, once per episode and field.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from robot_rl.data.bags import EpisodeRecorder
from robot_rl.data.labels import save_label_episode
from robot_rl.robot.messages import StepMessage
from robot_rl.robot.teleop import NS, KeyboardReader, TeleopMapper, TeleopOutput
from robot_rl.sim.config import ConfigError
from robot_rl.spec import flatten_state

log = logging.getLogger(__name__)


# inputs ------------------------------------------------------------------------------------------
class OperatorInput(Protocol):
    def feed(self, mapper: TeleopMapper, now: int) -> list[TeleopOutput]:
        """Pass what the device said since the last call to the mapper; its outputs."""


class KeyboardInput:
    """This terminal's keys (KeyboardReader's thread queues them; feed hands them to the mapper)."""

    def __init__(self, fd: int | None = None):
        self._keys: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._reader = KeyboardReader(self._keys.put, fd)

    def __enter__(self) -> KeyboardInput:
        self._reader.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._reader.stop()

    def feed(self, mapper: TeleopMapper, now: int) -> list[TeleopOutput]:
        outputs = []
        while not self._keys.empty():
            outputs.append(mapper.on_key(self._keys.get(), now))
        return outputs


class JoyDeviceInput:
    """A device that keeps a Joy-like state current (hardware/spacemouse.py's SpaceMouseReader:
    `state.axes`, `state.buttons`), read once per control tick."""

    def __init__(self, reader):
        self._reader = reader

    def __enter__(self) -> JoyDeviceInput:
        self._reader.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._reader.stop()

    def feed(self, mapper: TeleopMapper, now: int) -> list[TeleopOutput]:
        state = self._reader.state
        return [mapper.on_joy(state.axes, state.buttons, now)]


# pacing and viewing ----------------------------------------------------------------------------------
class ControlClock:
    """Control ticks in integer ns: real time at `period_s` (sleeping to each tick), or, with
    realtime False, a virtual clock that advances one period per tick."""

    def __init__(self, period_s: float, realtime: bool):
        self.period_ns, self.realtime = round(period_s * NS), realtime
        self._now = time.monotonic_ns() if realtime else 0
        self._next = self._now

    def tick(self) -> int:
        """Wait for the next tick; its time."""
        self._next += self.period_ns
        if self.realtime:
            delay = self._next - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / NS)
            else:  # fell behind (a slow render): start counting again from now, no burst of catch-up ticks
                self._next = time.monotonic_ns()
        self._now = self._next
        return self._now


def has_display() -> bool:
    """Whether a window can be shown to the operator (an X11 or Wayland session)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_viewer(env, mode: str):
    """The MuJoCo viewer on env's scene (call .sync() after each step, .close() at the end), or None:
    mode off, or auto without a display, or a viewer that fails to open (logged: recording goes on)."""
    if mode == "off" or (mode == "auto" and not has_display()):
        return None
    try:
        import mujoco.viewer

        return mujoco.viewer.launch_passive(env.model, env.data, show_left_ui=False, show_right_ui=False)
    except Exception as error:  # no GLFW, no display server: the session works without a window
        if mode == "on":
            raise RuntimeError(f"hil.operator.viewer=on, but the MuJoCo viewer did not open: {error}") from error
        log.warning("no viewer window (%s): recording without one", error)
        return None


# one episode -----------------------------------------------------------------------------------------
@dataclass
class OperatedStep:
    obs: dict  # before the action
    action: np.ndarray  # the operator's, executed
    next_obs: dict
    success_mark: bool  # the success key was pressed in this tick
    success_held: bool  # ... or is held (label)
    end_mark: bool
    true_success: bool  # the twin's ground truth for next_obs
    reward: float  # the twin's (the config's oracle reward)
    terminated: bool  # the twin's: its ground-truth success, where the task ends episodes on it
    truncated: bool  # the task's step limit or the twin (physics diverged)
    stamp_ns: int


class BadInputLog:
    """Logs non-finite and out-of-range device fields once per field per episode."""

    def __init__(self):
        self._seen: set[str] = set()

    def new_episode(self) -> None:
        self._seen.clear()

    def check(self, output: TeleopOutput) -> None:
        for what, fields in (
            ("not finite, read as 0", output.nonfinite),
            ("beyond full scale, clipped", output.out_of_range),
        ):
            for name in fields:
                if name.split("=")[0] not in self._seen:
                    self._seen.add(name.split("=")[0])
                    log.warning("teleop input %s: %s", what, name)
        if output.note:
            log.warning("%s", output.note)


def operate_episode(
    env,
    mapper: TeleopMapper,
    device: OperatorInput,
    clock: ControlClock,
    seed: int,
    on_step: Callable[[OperatedStep], bool],
    bad_input: BadInputLog,
    viewer=None,
) -> None:
    """Reset the twin, then tick by tick: the device's input into the mapper, the operator's action
    into the twin, the step to on_step, which returns whether the episode is over (the end key and
    the step limit also end it)."""
    obs, _ = env.reset(seed=seed)
    bad_input.new_episode()
    if viewer is not None:
        viewer.sync()
    while True:
        now = clock.tick()
        outputs = [*device.feed(mapper, now), mapper.tick(now)]
        for output in outputs:
            bad_input.check(output)
        action = mapper.action(now)
        if action[6] != 0.0:  # the mapper's gripper toggle needs the robot's last command
            mapper.observe_gripper_command(float(action[6]))
        next_obs, reward, terminated, truncated, info = env.step(action)
        if viewer is not None:
            viewer.sync()
        step = OperatedStep(
            obs,
            action,
            next_obs,
            success_mark=any(o.success for o in outputs),
            success_held=outputs[-1].success_held,  # the tick's: after every input of the period
            end_mark=any(o.end_episode for o in outputs),
            true_success=bool(info["success"]),
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(truncated),
            stamp_ns=now,
        )
        if on_step(step) or step.end_mark or step.terminated or step.truncated:
            return
        obs = next_obs


# demos ------------------------------------------------------------------------------------------------
@dataclass
class DemoResult:
    path: Path
    steps: int
    success: bool  # the episode's success label: the operator's mark, or the twin's ground truth
    true_success: bool  # the twin's ground truth at any step


def record_demo(
    env,
    mapper: TeleopMapper,
    device: OperatorInput,
    clock: ControlClock,
    recorder: EpisodeRecorder,
    episode: str,
    seed: int,
    viewer=None,
    bad_input: BadInputLog | None = None,
) -> DemoResult:
    """One teleoperated episode into a bag (see the module docstring)."""
    index = 0
    success = true_success = False

    def store(step: OperatedStep) -> bool:
        nonlocal index, success, true_success
        true_success |= step.true_success
        success |= step.success_mark or step.true_success
        terminated = step.terminated
        truncated = not terminated and (step.success_mark or step.end_mark or step.truncated)
        recorder.record(
            StepMessage(
                episode=episode,
                step=index,
                stamp_ns=step.stamp_ns,
                obs=step.obs,
                action=step.action,
                policy_action=step.action,  # no policy: the operator's action is the only one
                intervened=True,
                reward=step.reward,
                next_obs=step.next_obs,
                terminated=terminated,
                truncated=truncated,
                success=success,
            )
        )
        index += 1
        return terminated or truncated

    operate_episode(env, mapper, device, clock, seed, store, bad_input or BadInputLog(), viewer)
    return DemoResult(recorder.saved[-1], index, success, true_success)


# labels -----------------------------------------------------------------------------------------------
@dataclass
class LabelEpisode:
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)
    states: list[np.ndarray] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    true_labels: list[bool] = field(default_factory=list)  # the twin's ground truth; empty where unknown

    @property
    def positives(self) -> int:
        return sum(self.labels)

    def add(self, obs: dict, label: bool, true_label: bool | None = None) -> None:
        missing = [cam for cam in self.images if cam not in obs.get("images", {})]
        if missing:
            raise ValueError(f"labelling stores cameras {missing}, the observation has {sorted(obs.get('images', {}))}")
        for cam, frames in self.images.items():
            frames.append(obs["images"][cam])
        self.states.append(flatten_state(obs["state"]))
        self.labels.append(bool(label))
        if true_label is not None:
            self.true_labels.append(bool(true_label))


@dataclass
class LabelQuota:
    """`robot-rl label` stores frames until `positives` successes and negatives_per_positive times as
    many failures are in."""

    positives: int
    negatives_per_positive: float
    stored_positives: int = 0
    stored_negatives: int = 0

    def met(self, episode: LabelEpisode | None = None) -> bool:
        """Whether the stored frames, and those of an episode being recorded, meet it."""
        pos = self.stored_positives + (episode.positives if episode else 0)
        neg = self.stored_negatives + (len(episode.labels) - episode.positives if episode else 0)
        return pos >= self.positives and neg >= self.negatives_per_positive * pos

    def store(self, episode: LabelEpisode) -> None:
        self.stored_positives += episode.positives
        self.stored_negatives += len(episode.labels) - episode.positives


def record_label_episode(
    env,
    cameras: list[str],
    mapper: TeleopMapper,
    device: OperatorInput,
    clock: ControlClock,
    seed: int,
    viewer=None,
    bad_input: BadInputLog | None = None,
    enough: Callable[[LabelEpisode], bool] = lambda _: False,
) -> LabelEpisode:
    """One episode of labelled frames: every tick's observation (after the action) with whether the
    success key is held. Ends with the end key, the step limit, or once `enough` says so."""
    episode = LabelEpisode({cam: [] for cam in cameras})

    def store(step: OperatedStep) -> bool:
        episode.add(step.next_obs, step.success_held, step.true_success)
        return enough(episode)

    operate_episode(env, mapper, device, clock, seed, store, bad_input or BadInputLog(), viewer)
    return episode


def save_labels(folder: Path, index: int, episode: LabelEpisode, task: str) -> Path | None:
    """The episode's frames as a labels file (none for an episode without a frame)."""
    if not episode.labels:
        return None
    return save_label_episode(
        folder,
        index,
        {cam: np.stack(frames) for cam, frames in episode.images.items()},
        np.stack(episode.states),
        np.array(episode.labels),
        np.array(episode.true_labels) if episode.true_labels else None,
        task,
    )


# sessions ---------------------------------------------------------------------------------------------
def run_demo_session(config, run_dir: Path, device: OperatorInput, mapper: TeleopMapper) -> dict:
    """Record teleoperated episodes on the twin until `config.episodes` of them are marked successes;
    bags in run_dir/demos, a summary in run_dir/demos.json (also returned). Ctrl-C stops: the open
    episode's bag is closed as cut short, every earlier one is kept."""
    from robot_rl.rollout import make_env

    operator = config.hil.operator
    env = make_env(config)
    recorder = EpisodeRecorder(replace(config.ros.recorder, directory=str(run_dir / "demos")))
    clock = ControlClock(1.0 / config.sim.control_hz, operator.realtime)
    viewer = open_viewer(env, operator.viewer)
    results: list[DemoResult] = []
    stopped = ""
    try:
        while sum(r.success for r in results) < config.episodes:
            episode = f"demo_{len(results):03d}"
            log.info("%s: drive the robot; the success key ends it as a success, the end key without one", episode)
            result = record_demo(env, mapper, device, clock, recorder, episode, config.seed + len(results), viewer)
            results.append(result)
            log.info(
                "%s: %d steps, %s (twin's ground truth: %s) -> %s",
                episode,
                result.steps,
                "success" if result.success else "no success",
                "success" if result.true_success else "no success",
                result.path,
            )
    except KeyboardInterrupt:
        stopped = "stopped by the operator (Ctrl-C)"
        recorder.close(stopped)
    finally:
        if viewer is not None:
            viewer.close()
        env.close()
    summary = {
        "task": config.task.name,
        "bags": str(run_dir / "demos"),
        "episodes": len(results),
        "successes": sum(r.success for r in results),
        "true_successes": sum(r.true_success for r in results),
        "stopped": stopped,
        "per_episode": [
            {"bag": str(r.path), "steps": r.steps, "success": r.success, "true_success": r.true_success}
            for r in results
        ],
    }
    (run_dir / "demos.json").write_text(json.dumps(summary, indent=2))
    return summary


def label_cameras(config) -> tuple[list[str], list[int] | None]:
    """The cameras (and image size) to label: the success classifier's when reward=classifier, else
    every camera the twin renders."""
    cameras = getattr(config.reward, "cameras", None) if config.reward.name == "classifier" else None
    if cameras:
        return list(cameras), list(config.reward.image_size)
    if not config.sim.cameras:
        raise ConfigError("sim.cameras: labelling stores frames, and no camera is rendered (sim=state?)")
    return list(config.sim.cameras), None


def run_label_session(config, run_dir: Path, device: OperatorInput, mapper: TeleopMapper) -> dict:
    """Label frames on the twin until the quotas of hil.operator are met; files in run_dir/labels, a
    summary (counts, conflicting labels, agreement with the twin's ground truth) in
    run_dir/labels.json, also returned. Ctrl-C stops, keeping every episode stored so far."""
    from robot_rl.rewards.train import env_for_reward

    operator = config.hil.operator
    cameras, image_size = label_cameras(config)
    env = env_for_reward(config, cameras, image_size)
    clock = ControlClock(1.0 / config.sim.control_hz, operator.realtime)
    viewer = open_viewer(env, operator.viewer)
    folder = run_dir / "labels"
    quota = LabelQuota(operator.positives, operator.negatives_per_positive)
    episodes, stopped = 0, ""
    try:
        while not quota.met():
            log.info(
                "label episode %d: hold the success key while the scene shows success (%d/%d successes, %d failures)",
                episodes,
                quota.stored_positives,
                quota.positives,
                quota.stored_negatives,
            )
            episode = record_label_episode(
                env, cameras, mapper, device, clock, config.seed + episodes, viewer, enough=quota.met
            )
            save_labels(folder, episodes, episode, config.task.name)
            quota.store(episode)
            episodes += 1
    except KeyboardInterrupt:
        stopped = "stopped by the operator (Ctrl-C)"
    finally:
        if viewer is not None:
            viewer.close()
        env.close()
    return write_label_summary(config, run_dir, cameras, episodes, quota, stopped)


def write_label_summary(
    config, run_dir: Path, cameras: list[str], episodes: int, quota: LabelQuota, stopped: str
) -> dict:
    """run_dir/labels.json (returned too): the counts, the frames labelled both ways, and where the
    twin's ground truth was recorded, how often the operator agreed with it."""
    from robot_rl.data.labels import conflicting_labels, load_labelled_frames

    folder = run_dir / "labels"
    summary = {"task": config.task.name, "labels": str(folder), "cameras": cameras, "episodes": episodes}
    summary |= {"positives": quota.stored_positives, "negatives": quota.stored_negatives, "stopped": stopped}
    if episodes:
        frames, truth = load_labelled_frames(folder)
        conflicts = conflicting_labels(frames)
        summary["conflicting_frames"] = int(sum(len(c) for c in conflicts))
        summary["conflicts"] = [
            {"episode": int(frames.episode_ids[c[0]]), "frames": c.tolist()} for c in conflicts[:20]
        ]
        if conflicts:
            log.warning(
                "%d frames are labelled both success and failure (the same image, e.g. the robot standing still "
                "while the key was pressed or released); train-reward leaves them out",
                summary["conflicting_frames"],
            )
        if truth is not None:
            summary["agreement_with_twin"] = float((frames.labels == truth).mean())
    (run_dir / "labels.json").write_text(json.dumps(summary, indent=2))
    return summary
