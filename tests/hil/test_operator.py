"""The operator at the twin (robot_rl/hil/operator.py): teleoperated demos recorded as bags and used
as a run's demos, success labelling with its quotas, labels files, conflicting labels, training the
classifier from recorded labels, bad device input, and the CLI's refusals. The operator is scripted:
keys per control tick, on a virtual clock."""

from __future__ import annotations

import json
import logging
import os
import pty
import time

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.config import ConfigError, load_config
from robot_rl.data.bags import read_episode_bags
from robot_rl.data.demos import read_demo_bags
from robot_rl.data.labels import LabelledFrames, conflicting_labels, load_labelled_frames, save_label_episode
from robot_rl.hil.operator import (
    BadInputLog,
    JoyDeviceInput,
    KeyboardInput,
    run_demo_session,
    run_label_session,
)
from robot_rl.robot.teleop import NS, TeleopMapper
from robot_rl.train.learner import Trainer

AT_TWIN = ["hil.operator.realtime=false", "hil.operator.viewer=off", "teleop=keyboard", "video_episodes=0"]


class ScriptedKeys:
    """The operator's key presses by control tick, counted over the whole session (every episode)."""

    def __init__(self, keys_at: dict[int, list[str]]):
        self.keys_at, self.tick = keys_at, -1

    def feed(self, mapper: TeleopMapper, now: int):
        self.tick += 1
        return [mapper.on_key(key, now) for key in self.keys_at.get(self.tick, [])]


def demo_config(*overrides):
    return load_config(["task=reach", "sim=state", *AT_TWIN, *overrides])


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """A session asking for 1 demo: the first episode ended without success (e at tick 3), the second
    driven up (r) then forward (w) and marked a success (Enter) at its 6th tick (session tick 9)."""
    run_dir = tmp_path_factory.mktemp("demos")
    config = demo_config("episodes=1")
    keys = ScriptedKeys({3: ["e"], 4: ["r"], 6: ["w"], 9: ["enter"]})
    summary = run_demo_session(config, run_dir, keys, TeleopMapper(config.teleop))
    return run_dir, summary


def test_demo_session_records_every_episode_with_the_operators_mark(demos):
    run_dir, summary = demos
    assert (summary["episodes"], summary["successes"]) == (2, 1)
    failed, demo = read_episode_bags(run_dir / "demos")
    assert (len(failed), failed.success, failed.truncated, failed.terminated) == (4, False, True, False)
    # the mark labels and ends it; reward and termination stay the twin's oracle's (the goal was not reached)
    assert (len(demo), demo.success, demo.terminated, demo.truncated) == (6, True, False, True)
    assert not demo.rewards.any() and summary["true_successes"] == 0
    assert demo.intervened.all() and np.array_equal(demo.policy_actions, demo.actions)
    # r moves +z for key_motion_s (0.4 s = 4 ticks at 10 Hz) after its press, w +x from tick 2 on
    np.testing.assert_array_equal(demo.actions[:, 2], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(demo.actions[:, 0], [0, 0, 1, 1, 1, 1])
    # the twin moved as commanded: the TCP rose while +z was held
    heights = [obs["state"]["tcp_pose"][2] for obs in demo.observations]
    assert heights[4] > heights[0] + 0.05
    assert summary["per_episode"][1]["bag"].endswith("demo_001")


def test_recorded_demos_fill_a_runs_demo_buffer(demos, tmp_path, tiny):
    run_dir, _ = demos
    (demo,) = read_demo_bags(run_dir / "demos")  # successes only
    trainer = Trainer(load_config([*tiny, f"train.demo_bags={run_dir / 'demos'}"]), tmp_path)
    rows = np.flatnonzero(trainer.demos.has_next)
    np.testing.assert_array_equal(trainer.demos.action[rows], demo.actions)
    np.testing.assert_array_equal(trainer.demos.reward[rows], demo.rewards)


def test_demos_recorded_with_another_observation_layout_are_refused(demos, tmp_path, tiny):
    run_dir, _ = demos
    pixels = [*tiny, "sim=fast", "sim.cameras=[front]", f"train.demo_bags={run_dir / 'demos'}"]
    with pytest.raises(ConfigError, match=r"demo 0 has a 32-D state, this run's is 26-D"):
        Trainer(load_config(pixels), tmp_path)


def test_a_folder_without_successful_demos_is_refused(tmp_path, tiny):
    with pytest.raises(ConfigError, match="train.demo_bags: no successful episode"):
        Trainer(load_config([*tiny, f"train.demo_bags={tmp_path}"]), tmp_path / "run")


# --- labels ----------------------------------------------------------------------------------------
LABELS = [
    "task=pick_cube",
    "reward=classifier",
    "reward.cameras=[front]",
    "reward.image_size=[32,32]",
    "hil.operator.positives=3",
    "hil.operator.negatives_per_positive=2",
]


def test_label_session_stores_frames_until_both_quotas_are_met(tmp_path):
    # a held key repeats: Enter counts as held for key_motion_s (0.2 s: 2 ticks) after each press
    config = load_config([*AT_TWIN, *LABELS, "teleop.key_motion_s=0.2"])
    # episode 0 ends at tick 4 with successes held at ticks 1, 2; in episode 1 at ticks 7, 8
    keys = ScriptedKeys({0: ["r"], 1: ["enter"], 4: ["e"], 5: ["w"], 7: ["enter"]})
    summary = run_label_session(config, tmp_path, keys, TeleopMapper(config.teleop))
    assert (summary["episodes"], summary["positives"]) == (2, 4)
    assert summary["negatives"] == 8  # the session stops at tick 11, exactly 2 failures per success
    frames, truth = load_labelled_frames(tmp_path / "labels")
    assert frames.images["front"].shape == (12, 32, 32, 3)
    assert frames.labels.tolist() == [False, True, True, False, False] + [False, False, True, True, False, False, False]
    assert frames.episode_ids.tolist() == [0] * 5 + [1] * 7
    assert truth is not None and not truth.any()  # nothing was picked: the twin agrees on the failures
    assert summary["agreement_with_twin"] == pytest.approx(8 / 12)


def test_label_files_round_trip_and_refuse_a_mixed_setup(tmp_path):
    rng = np.random.default_rng(0)
    images = {"front": rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)}
    save_label_episode(tmp_path, 0, images, np.zeros((3, 5)), np.array([1, 0, 0], bool), None, "pick_cube")
    save_label_episode(tmp_path, 1, images, np.ones((3, 5)), np.array([0, 1, 0], bool), None, "pick_cube")
    frames, truth = load_labelled_frames(tmp_path)
    assert truth is None and frames.episode_ids.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(frames.images["front"][3:], images["front"])
    assert not list(tmp_path.glob("*.partial"))
    wider = {"front": np.zeros((2, 8, 9, 3), np.uint8)}
    save_label_episode(tmp_path, 2, wider, np.zeros((2, 5)), np.array([0, 1], bool), None, "pick_cube")
    with pytest.raises(ValueError, match=r"labels_0002.safetensors: cameras/frame sizes/state size"):
        load_labelled_frames(tmp_path)
    with pytest.raises(ValueError, match="no such labels file or folder"):
        load_labelled_frames(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no labels_\*.safetensors in this folder"):
        load_labelled_frames(tmp_path / "empty")


def test_the_same_frame_labelled_both_ways_is_a_conflict():
    rng = np.random.default_rng(1)
    front = rng.integers(0, 255, (6, 4, 4, 3), dtype=np.uint8)
    front[4] = front[1]  # frame 1 again, labelled the other way
    front[5] = front[2]  # frame 2 again, the same label: no conflict
    labels = np.array([0, 1, 0, 0, 0, 0], bool)
    frames = LabelledFrames({"front": front}, np.zeros((6, 1), np.float32), labels, np.zeros(6, np.int64))
    (conflict,) = conflicting_labels(frames)
    assert conflict.tolist() == [1, 4]
    # a second camera that differs makes them different frames
    wrist = rng.integers(0, 255, (6, 4, 4, 3), dtype=np.uint8)
    frames.images["wrist"] = wrist
    assert conflicting_labels(frames) == []


def test_train_reward_on_recorded_labels_leaves_conflicts_out(tmp_path):
    rng = np.random.default_rng(2)
    for episode in range(8):  # 48x48 frames, fitted to the model's 32x32: a bright square is a success
        labels = np.arange(6) % 3 == 0
        frames = rng.integers(90, 160, (6, 48, 48, 3), dtype=np.uint8)
        for i, positive in enumerate(labels):
            frames[i, 10:30, 10:30] = 250 if positive else 10
        if episode == 0:
            frames[1], labels[1] = frames[0], False  # the operator let go while the scene stood still
        truth = np.arange(6) % 3 == 0
        save_label_episode(tmp_path / "labels", episode, {"front": frames}, np.zeros((6, 17)), labels, truth, "pick")
    code = main(
        [
            "train-reward",
            *LABELS,
            f"reward.labels={tmp_path / 'labels'}",
            "reward.steps=60",
            "reward.batch_size=16",
            "reward.cnn_channels=[8,8]",
            f"run_dir={tmp_path / 'reward'}",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "reward" / "reward_report.json").read_text())
    assert (report["recorded_frames"], report["conflicting_frames"]) == (48, 2)
    assert report["operator_label_agreement"] == 1.0  # the conflicting pair was the only disagreement
    assert report["train"]["frames"] + report["heldout"]["frames"] == 46 and report["roc_auc"] > 0.9


# --- devices and bad input ---------------------------------------------------------------------------
class FakeSpaceMouse:
    def __init__(self, axes, buttons):
        self.state = type("State", (), {"axes": axes, "buttons": buttons})()

    def start(self):
        pass

    def stop(self):
        pass


def test_a_joy_device_with_nan_axes_is_zeroed_and_logged_once(caplog):
    config = load_config(["teleop=spacemouse", "teleop.success_button=2"])
    mapper = TeleopMapper(config.teleop)
    device = JoyDeviceInput(FakeSpaceMouse((float("nan"), 0.5, 0.0, 0.0, 0.0, 0.0), (0, 0, 1)))
    with device:
        (output,) = device.feed(mapper, 0)
    assert output.success_held  # button 2, the success button, is down
    assert output.nonfinite == ("Joy.axes[0]",) and output.action[0] == 0.0 and output.action[1] > 0.4
    bad_input = BadInputLog()
    with caplog.at_level(logging.WARNING, logger="robot_rl.hil.operator"):
        bad_input.check(output)
        bad_input.check(output)
    assert [r.getMessage() for r in caplog.records] == ["teleop input not finite, read as 0: Joy.axes[0]"]


def test_keyboard_success_counts_as_held_for_the_key_motion_time():
    leader, follower = pty.openpty()
    mapper = TeleopMapper(load_config(["teleop=keyboard", "teleop.key_motion_s=0.4"]).teleop)
    try:
        with KeyboardInput(fd=follower) as keyboard:
            os.write(leader, b"\r")
            outputs = []
            for _ in range(200):  # the reader thread queues the key within a few ms
                outputs = keyboard.feed(mapper, 10 * NS)
                if outputs:
                    break
                time.sleep(0.005)
        assert [o.success for o in outputs] == [True]
        assert mapper.tick(10 * NS + 390_000_000).success_held and not mapper.tick(10 * NS + 400_000_000).success_held
    finally:
        os.close(leader)
        os.close(follower)


def test_demos_and_label_refuse_devices_they_cannot_read(capsys, tmp_path):
    out = [f"output_dir={tmp_path}"]
    assert main(["demos", *out]) == 2  # pytest's stdin is no terminal
    assert "stdin is not a terminal" in capsys.readouterr().err
    assert main(["demos", "teleop=spacenav_twist", *out]) == 2
    assert "comes from a ROS node" in capsys.readouterr().err
    assert main(["label", "teleop=spacemouse", *out]) == 2
    assert "teleop.success_button: labelling needs a button" in capsys.readouterr().err
