"""Episode bags (robot_rl/data/bags.py): twin episodes written step by step come back as the same
Episode; the bags are standard rosbag2 + MCAP that rosbags' AnyReader opens with every message of its
declared type; a writer SIGKILLed mid-episode leaves a bag whose written steps read back (and a file cut
anywhere reads back the steps wholly in it); bags fill a demo buffer; bad steps and bad bags are refused
with the field or file named; the recorder's episode bookkeeping."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from robot_rl.config import load_config
from robot_rl.data.bags import (
    TYPESTORE,
    EmptyBagError,
    EpisodeBagWriter,
    EpisodeRecorder,
    RecorderConfig,
    read_episode_bag,
    read_episode_bags,
)
from robot_rl.data.demos import Episode, add_episodes, read_demo_bags, record_episode
from robot_rl.data.replay import ReplayBuffer
from robot_rl.robot.messages import StepMessage
from robot_rl.rollout import make_env
from robot_rl.sim.config import ConfigError
from robot_rl.sim.experts import make_expert
from robot_rl.spec import flatten_state

MS = 1_000_000
PERIOD = 100 * MS
TWIN = ["task=reach", "sim.cameras=[front]", "sim.camera_rigs.front.width=32", "sim.camera_rigs.front.height=24"]


# synthetic and twin episodes as the actor's steps --------------------------------------------------
def synthetic_observation(seed: int, cameras=("front", "wrist"), task: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    state = {
        "tcp_pose": rng.standard_normal(7).astype(np.float32),
        "tcp_vel": rng.standard_normal(6).astype(np.float32),
        "gripper": rng.uniform(0, 1, 1).astype(np.float32),
        "wrench": rng.standard_normal(12).astype(np.float32),
    }
    if task:
        state["task"] = rng.standard_normal(3).astype(np.float32)
    images = {cam: rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for cam in cameras}
    return {"images": images, "state": state}


def synthetic_episode(seed: int, steps: int, terminated: bool, truncated: bool = False, **obs_kwargs) -> Episode:
    rng = np.random.default_rng(1000 + seed)
    successes = np.arange(steps) >= steps - 2 if terminated else np.zeros(steps, bool)
    return Episode(
        [synthetic_observation(100 * seed + t, **obs_kwargs) for t in range(steps + 1)],
        rng.uniform(-1, 1, (steps, 7)).astype(np.float32),
        rng.standard_normal(steps).astype(np.float32),
        terminated,
        truncated,
        bool(successes[-1]),
        policy_actions=rng.uniform(-1, 1, (steps, 7)).astype(np.float32),
        intervened=np.arange(steps) % 3 == 1,
        successes=successes,
    )


def to_steps(name: str, episode: Episode, first_stamp: int = PERIOD) -> list[StepMessage]:
    """What the actor publishes for `episode`: one StepMessage per step, stamped every PERIOD."""
    last = len(episode) - 1
    policy = episode.policy_actions if episode.policy_actions is not None else -episode.actions
    intervened = episode.intervened if episode.intervened is not None else np.arange(len(episode)) % 2 == 0
    successes = episode.successes if episode.successes is not None else np.arange(len(episode)) == last
    return [
        StepMessage(
            episode=name,
            step=t,
            stamp_ns=first_stamp + t * PERIOD,
            obs=episode.observations[t],
            action=episode.actions[t],
            policy_action=policy[t],
            intervened=bool(intervened[t]),
            reward=float(episode.rewards[t]),
            next_obs=episode.observations[t + 1],
            terminated=episode.terminated and t == last,
            truncated=episode.truncated and t == last,
            success=bool(successes[t]),
        )
        for t in range(len(episode))
    ]


def write_bag(path: Path, steps: list[StepMessage], close: bool = True, **kwargs) -> EpisodeBagWriter:
    writer = EpisodeBagWriter(path, **kwargs)
    for step in steps:
        writer.write_step(step)
    if close:
        writer.close()
    return writer


def assert_same_observation(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    assert sorted(got.get("images", {})) == sorted(expected.get("images", {}))
    for cam, frame in expected.get("images", {}).items():
        assert got["images"][cam].dtype == np.uint8 and np.array_equal(got["images"][cam], frame)
    assert sorted(got["state"]) == sorted(expected["state"])
    for key, value in expected["state"].items():
        assert got["state"][key].dtype == np.float32 and np.array_equal(got["state"][key], value), key


def assert_same_steps(got: Episode, steps: list[StepMessage], expected: Episode | None = None) -> None:
    """`got` holds exactly `steps` (and, given, the observations and flags of `expected`)."""
    assert len(got) == len(steps) and len(got.observations) == len(steps) + 1
    assert_same_observation(got.observations[0], steps[0].obs)
    for t, step in enumerate(steps):
        assert_same_observation(got.observations[t + 1], step.next_obs)
        assert np.array_equal(got.actions[t], step.action) and got.actions.dtype == np.float32
        assert np.array_equal(got.policy_actions[t], step.policy_action)
        assert got.rewards[t] == np.float32(step.reward) and got.rewards.dtype == np.float32
        assert got.intervened[t] == step.intervened and got.successes[t] == step.success
    if expected is not None:
        assert (got.terminated, got.truncated, got.success) == (
            expected.terminated,
            expected.truncated,
            expected.success,
        )


@pytest.fixture(scope="module")
def twin_episodes() -> list[Episode]:
    """Two scripted-expert episodes of the twin (small front camera, with its task state)."""
    env = make_env(load_config([*TWIN, "sim.privileged_state=true"]))
    try:
        expert = make_expert(env)
        episodes = []
        for seed in (3, 4):
            expert.reset()
            episodes.append(record_episode(env, expert.act, seed=seed))
    finally:
        env.close()
    assert all(ep.success and ep.terminated for ep in episodes)
    return episodes


# round trip -------------------------------------------------------------------------------------------
def test_a_twin_episode_round_trips_through_a_bag(tmp_path, twin_episodes):
    episode = twin_episodes[0]
    assert "task" in episode.observations[0]["state"] and episode.observations[0]["images"]["front"].shape == (
        24,
        32,
        3,
    )
    steps = to_steps("episode_000000", episode)
    write_bag(tmp_path / "episode_000000", steps)
    got = read_episode_bag(tmp_path / "episode_000000")
    assert_same_steps(got, steps, episode)
    for got_obs, obs in zip(got.observations, episode.observations, strict=True):
        assert_same_observation(got_obs, obs)
    assert np.array_equal(got.actions, episode.actions) and np.array_equal(got.rewards, episode.rewards)
    assert got.ended and got.terminated and got.success and got.seed is None


def test_the_bag_is_standard_rosbag2_mcap_that_anyreader_opens(tmp_path):
    steps = to_steps("ep", synthetic_episode(0, 4, terminated=True))
    write_bag(tmp_path / "ep", steps, base_frame="base", ft_frame="ft")
    assert sorted(p.name for p in (tmp_path / "ep").iterdir()) == ["ep.mcap", "metadata.yaml"]
    info = yaml.safe_load((tmp_path / "ep" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 8 and info["storage_identifier"] == "mcap"
    assert info["custom_data"] == {"robot_rl.episode": "ep"}

    expected_types = {
        "/episode/cameras/front": "sensor_msgs/msg/Image",
        "/episode/cameras/wrist": "sensor_msgs/msg/Image",
        "/episode/tcp_pose": "geometry_msgs/msg/PoseStamped",
        "/episode/tcp_vel": "geometry_msgs/msg/TwistStamped",
        "/episode/wrench": "geometry_msgs/msg/WrenchStamped",
        "/episode/state": "std_msgs/msg/Float32MultiArray",
        "/episode/action": "std_msgs/msg/Float32MultiArray",
        "/episode/policy_action": "std_msgs/msg/Float32MultiArray",
        "/episode/reward": "std_msgs/msg/Float32",
        "/episode/intervened": "std_msgs/msg/Bool",
        "/episode/success": "std_msgs/msg/Bool",
        "/episode/end": "std_msgs/msg/String",
    }
    counts = dict.fromkeys(expected_types, 0)
    with AnyReader([tmp_path / "ep"], default_typestore=TYPESTORE) as reader:
        assert {topic: info.msgtype for topic, info in reader.topics.items()} == expected_types
        for connection, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            assert msg.__msgtype__ == expected_types[connection.topic]
            counts[connection.topic] += 1
            if hasattr(msg, "header"):  # stamped at its own time (see the module docstring)
                assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
            if connection.topic == "/episode/tcp_pose":
                assert msg.header.frame_id == "base"
            if connection.topic == "/episode/wrench":
                assert msg.header.frame_id == "ft"
                obs = [steps[0].obs, *(s.next_obs for s in steps)][counts["/episode/wrench"] - 1]
                assert msg.wrench.force.z == obs["state"]["wrench"][2]  # the mean part
            if connection.topic == "/episode/state":
                assert msg.layout.dim[0].label == "wrench:12,gripper:1,task:3" and len(msg.data) == 16
            if connection.topic == "/episode/end":
                end = json.loads(msg.data)
                assert end == {
                    "episode": "ep",
                    "steps": 4,
                    "terminated": True,
                    "truncated": False,
                    "success": True,
                    "ended": True,
                    "reason": "",
                }
    observations, step_topics = 5, 4  # obs_0 .. obs_4; 4 steps
    assert counts == {t: (observations if t.startswith("/episode/cameras") else step_topics) for t in counts} | {
        "/episode/tcp_pose": observations,
        "/episode/tcp_vel": observations,
        "/episode/wrench": observations,
        "/episode/state": observations,
        "/episode/end": 1,
    }


def test_state_only_episodes_and_a_chosen_camera(tmp_path):
    episode = synthetic_episode(1, 3, terminated=False, truncated=True, cameras=(), task=False)
    episode.observations = [{"state": obs["state"]} for obs in episode.observations]
    steps = to_steps("state_only", episode)
    write_bag(tmp_path / "state_only", steps)
    got = read_episode_bag(tmp_path / "state_only")
    assert "images" not in got.observations[0]
    assert_same_steps(got, steps, episode)

    two_cameras = to_steps("one_camera", synthetic_episode(2, 2, terminated=True))
    write_bag(tmp_path / "one_camera", two_cameras, cameras=["wrist"])
    got = read_episode_bag(tmp_path / "one_camera")
    assert sorted(got.observations[0]["images"]) == ["wrist"]
    assert np.array_equal(got.observations[2]["images"]["wrist"], two_cameras[1].next_obs["images"]["wrist"])


def test_an_episode_closed_before_it_ended_reads_as_cut_short(tmp_path):
    episode = synthetic_episode(3, 5, terminated=True)
    steps = to_steps("cut", episode)[:3]
    writer = write_bag(tmp_path / "cut", steps, close=False)
    writer.mark_success()  # the operator's teleop/success: the end record carries it
    writer.close("the recorder shut down")
    got = read_episode_bag(tmp_path / "cut")
    assert_same_steps(got, steps)
    assert (got.terminated, got.truncated, got.ended, got.success) == (False, True, False, True)
    with AnyReader([tmp_path / "cut"], default_typestore=TYPESTORE) as reader:
        [(connection, _, raw)] = [m for m in reader.messages() if m[0].topic == "/episode/end"]
        end = json.loads(reader.deserialize(raw, connection.msgtype).data)
    assert end["reason"] == "the recorder shut down" and not end["ended"] and end["steps"] == 3


# crash safety -------------------------------------------------------------------------------------
CHILD = """
import sys
sys.path.insert(0, {here!r})
from test_bags import crash_child
crash_child(sys.argv[1])
"""


def crash_child(folder: str) -> None:
    """Runs in a child process: records an episode cut mid-way (5 of 8 steps) and one whose last step
    is terminal, closes neither, says "ready" and waits for its SIGKILL."""
    write_bag(Path(folder) / "unfinished", to_steps("unfinished", synthetic_episode(4, 8, terminated=True))[:5], False)
    write_bag(Path(folder) / "ended", to_steps("ended", synthetic_episode(5, 3, terminated=True)), close=False)
    print("ready", flush=True)
    signal.pause()


def run_and_kill(folder: Path) -> None:
    code = CHILD.format(here=str(Path(__file__).parent))
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", f"the child exited early with code {child.wait()}"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def test_a_writer_killed_mid_episode_leaves_every_written_step_readable(tmp_path):
    run_and_kill(tmp_path)
    for name in ("unfinished", "ended"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [f"{name}.mcap"]  # close never ran

    unfinished = read_episode_bag(tmp_path / "unfinished")
    assert_same_steps(unfinished, to_steps("unfinished", synthetic_episode(4, 8, terminated=True))[:5])
    # never ended: truncated, marked as such, its success label the last step's
    assert (unfinished.terminated, unfinished.truncated, unfinished.ended, unfinished.success) == (
        False,
        True,
        False,
        False,
    )

    # The end record went to disk in the chunk of the last step: the episode is whole.
    ended_episode = synthetic_episode(5, 3, terminated=True)
    ended = read_episode_bag(tmp_path / "ended")
    assert_same_steps(ended, to_steps("ended", ended_episode), ended_episode)
    assert ended.ended

    assert [len(ep) for ep in read_episode_bags(tmp_path)] == [3, 5]  # name order: ended, unfinished


def test_a_file_cut_anywhere_reads_back_the_steps_wholly_in_it(tmp_path):
    """What a crash inside a write leaves: the file ends at an arbitrary byte."""
    steps = to_steps("whole", synthetic_episode(6, 4, terminated=False, truncated=True))
    writer = EpisodeBagWriter(tmp_path / "whole")
    sizes = []  # of the file when each write_step returned
    for step in steps:
        writer.write_step(step)
        sizes.append((tmp_path / "whole" / "whole.mcap").stat().st_size)
    data = (tmp_path / "whole" / "whole.mcap").read_bytes()
    assert sizes[-1] == len(data)

    def read_cut(length: int, tail: bytes = b"") -> Episode:
        bag = tmp_path / f"cut_{length}_{len(tail)}"
        bag.mkdir()
        (bag / f"{bag.name}.mcap").write_bytes(data[:length] + tail)
        return read_episode_bag(bag)

    for length in (0, 5, 8, 30, sizes[0] // 2):  # before the first step is whole
        with pytest.raises(EmptyBagError, match="no step recorded"):
            read_cut(length)
    for k, size in enumerate(sizes):
        last = k == len(sizes) - 1
        for length in {size, size + 40, size if last else (size + sizes[k + 1]) // 2}:  # then into the next step
            got = read_cut(length)
            assert_same_steps(got, steps[: k + 1])
            # truncated either way; ended only with the last step, whose chunk holds the end record
            assert (got.truncated, got.ended) == (True, last)
    # a machine crash can leave blocks the OS had not written as zeros
    assert len(read_cut(sizes[1], bytes(4096))) == 2

    # A closed bag whose metadata.yaml never came (killed inside close) reads up to its summary.
    writer.close()
    (tmp_path / "whole" / "metadata.yaml").unlink()
    got = read_episode_bag(tmp_path / "whole")
    assert_same_steps(got, steps) and got.ended and got.truncated


def test_a_folder_of_bags_fills_a_demo_buffer(tmp_path, twin_episodes):
    names = ["episode_000000", "episode_000001"]
    for name, episode in zip(names, twin_episodes, strict=True):
        write_bag(tmp_path / name, to_steps(name, episode))
    failed = synthetic_episode(7, 3, terminated=False, truncated=True, cameras=("front",), task=True)
    write_bag(tmp_path / "episode_000002", to_steps("episode_000002", failed))
    (tmp_path / "notes").mkdir()  # not a bag: ignored

    assert [len(ep) for ep in read_demo_bags(tmp_path, only_successes=False)] == [*map(len, twin_episodes), 3]
    demos = read_demo_bags(tmp_path)  # successes only
    assert [len(ep) for ep in demos] == [len(ep) for ep in twin_episodes]

    env = make_env(load_config([*TWIN, "sim.privileged_state=true"]))
    try:
        buffer = ReplayBuffer.from_spaces(env.observation_space, env.action_space, capacity=500)
    finally:
        env.close()
    add_episodes(buffer, demos)
    assert len(buffer) == sum(len(ep) for ep in twin_episodes)
    start = 0  # a fresh buffer fills slots in order: an episode's T transitions, then its last observation
    for episode in twin_episodes:
        batch = buffer.transitions_at(start + np.arange(len(episode)))
        for t in range(len(episode)):
            obs, next_obs = episode.observations[t], episode.observations[t + 1]
            assert torch.equal(batch.state[t], torch.from_numpy(flatten_state(obs["state"])))
            assert torch.equal(batch.next_state[t], torch.from_numpy(flatten_state(next_obs["state"])))
            assert np.array_equal(batch.images["front"][t].numpy(), obs["images"]["front"])
            assert np.array_equal(batch.action[t].numpy(), episode.actions[t])
            assert batch.reward[t].item() == episode.rewards[t]
        assert batch.terminated.tolist() == [0.0] * (len(episode) - 1) + [1.0]
        start += len(episode) + 1


# bad input --------------------------------------------------------------------------------------------
def test_steps_that_do_not_continue_the_episode_are_refused_and_nothing_is_written(tmp_path):
    steps = to_steps("ep", synthetic_episode(8, 4, terminated=True))
    writer = EpisodeBagWriter(tmp_path / "ep")
    with pytest.raises(ValueError, match="step.stamp_ns: the first step must be stamped after 0"):
        writer.write_step(to_steps("ep", synthetic_episode(8, 1, terminated=True), first_stamp=0)[0])
    with pytest.raises(ValueError, match="step.episode: 'a/b' is not usable as a folder name"):
        writer.write_step(to_steps("a/b", synthetic_episode(8, 1, terminated=True))[0])
    assert not (tmp_path / "ep").exists()  # refused first steps leave nothing on disk
    writer.write_step(steps[0])

    def refused(step: StepMessage, match: str) -> None:
        size = (tmp_path / "ep" / "ep.mcap").stat().st_size
        with pytest.raises(ValueError, match=match):
            writer.write_step(step)
        assert (tmp_path / "ep" / "ep.mcap").stat().st_size == size

    def changed(**fields) -> StepMessage:
        return StepMessage(**{**steps[1].__dict__, **fields})

    refused(changed(episode="other"), "step.episode: 'other', but this bag records 'ep'")
    refused(changed(step=2), r"step.step: expected step 1 of 'ep', got 2")
    refused(changed(stamp_ns=steps[0].stamp_ns), "step.stamp_ns: .* is not after the previous step's")
    refused(changed(action=np.zeros(6, np.float32)), r"step.action: expected 7 finite numbers")
    refused(changed(policy_action=np.full(7, np.nan, np.float32)), r"step.policy_action: expected 7 finite")
    refused(changed(reward=float("inf")), "step.reward: not finite")
    no_wrist = {"images": {"front": steps[1].next_obs["images"]["front"]}, "state": steps[1].next_obs["state"]}
    refused(changed(next_obs=no_wrist), r"step.next_obs.images: no camera 'wrist'")
    no_task = {**steps[1].next_obs, "state": {k: v for k, v in steps[1].next_obs["state"].items() if k != "task"}}
    refused(changed(next_obs=no_task), r"step.next_obs.state: its layout wrench:12,gripper:1 differs")
    extra = {**steps[1].next_obs, "state": {**steps[1].next_obs["state"], "joints": np.zeros(7, np.float32)}}
    refused(changed(next_obs=extra), r"step.next_obs.state.joints: not a state of the spec")
    bad_pose = {**steps[1].next_obs, "state": {**steps[1].next_obs["state"], "tcp_pose": np.zeros(3, np.float32)}}
    refused(changed(next_obs=bad_pose), r"step.next_obs.state.tcp_pose: expected float32\[7\]")

    for step in steps[1:]:
        writer.write_step(step)
    refused(steps[3], "step.episode: 'ep' already ended with step 3")
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.write_step(steps[0])
    assert_same_steps(read_episode_bag(tmp_path / "ep"), steps)
    with pytest.raises(ValueError, match="exists already"):
        EpisodeBagWriter(tmp_path / "ep")


def test_what_is_not_an_episode_bag_is_refused_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match="not a bag folder"):
        read_episode_bag(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a folder"):
        read_episode_bags(tmp_path / "missing")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "a.mcap").write_bytes(b"")
    (tmp_path / "two" / "b.mcap").write_bytes(b"")
    with pytest.raises(ValueError, match="2 .mcap files instead of one"):
        read_episode_bag(tmp_path / "two")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "garbage.mcap").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="garbage.mcap: not an MCAP file"):
        read_episode_bag(tmp_path / "garbage")

    write_bag(tmp_path / "ep", to_steps("ep", synthetic_episode(9, 2, terminated=True)))
    metadata = tmp_path / "ep" / "metadata.yaml"
    metadata.write_text(metadata.read_text().replace("version: 8", "version: 99"))
    with pytest.raises(ValueError, match="ep: Rosbag2 version 99 not supported"):
        read_episode_bag(tmp_path / "ep")

    # a rosbag2 bag, but not of an episode
    with Writer(tmp_path / "other", version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=TYPESTORE)
        writer.write(
            connection,
            1,
            TYPESTORE.serialize_cdr(TYPESTORE.types["std_msgs/msg/String"](data="hi"), "std_msgs/msg/String"),
        )
    with pytest.raises(ValueError, match="other: topic /chatter is not part of an episode bag"):
        read_episode_bag(tmp_path / "other")

    # an empty bag (its recorder died before the first step reached the file) is skipped in a folder
    (tmp_path / "folder" / "empty").mkdir(parents=True)
    (tmp_path / "folder" / "empty" / "empty.mcap").write_bytes(b"\x89MCAP")
    write_bag(tmp_path / "folder" / "ep", to_steps("ep", synthetic_episode(9, 2, terminated=True)))
    assert [len(ep) for ep in read_episode_bags(tmp_path / "folder")] == [2]


def test_recorder_config_names_the_bad_key():
    RecorderConfig().validate()
    with pytest.raises(ConfigError, match="recorder.directory: must name a folder"):
        RecorderConfig(directory="").validate()
    with pytest.raises(ConfigError, match="recorder.cameras: 'front/x' is not usable in a topic name"):
        RecorderConfig(cameras=["front/x"]).validate()
    with pytest.raises(ConfigError, match="rec.cameras: repeats a camera"):
        RecorderConfig(cameras=["front", "front"]).validate("rec")
    with pytest.raises(ConfigError, match="recorder.ft_frame: must name a frame"):
        RecorderConfig(ft_frame="").validate()


# the recorder's bookkeeping ---------------------------------------------------------------------------
def test_recorder_writes_one_bag_per_episode_and_cuts_one_a_new_episode_interrupts(tmp_path):
    lines = []
    recorder = EpisodeRecorder(
        RecorderConfig(directory=str(tmp_path / "bags"), cameras=["front"]),
        lambda level, text: lines.append((level, text)),
    )
    first = synthetic_episode(10, 4, terminated=False, truncated=True, cameras=("front",))  # all success labels False
    second = synthetic_episode(11, 3, terminated=False, truncated=True, cameras=("front",))
    first_steps, second_steps = to_steps("episode_000000", first), to_steps("episode_000001", second, 10 * PERIOD)
    for step in first_steps[:2]:
        recorder.record(step)
    assert recorder.recording == "episode_000000"
    recorder.mark_success()
    with pytest.raises(ValueError, match="step.step: expected step 2"):
        recorder.record(first_steps[3])  # a gap: refused, the bag goes on
    recorder.record(first_steps[2])
    for step in second_steps:  # the actor moved on before episode 0 ended
        recorder.record(step)
    assert recorder.recording is None  # episode 1 was truncated: its bag is closed
    assert not recorder.mark_success()

    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO]
    assert "episode episode_000000: 3 steps, cut short (a step of episode 'episode_000001' arrived" in lines[0][1]
    assert "episode episode_000001: 3 steps, ended, no success" in lines[1][1]
    cut, ended = read_demo_bags(tmp_path / "bags", only_successes=False)
    # marked by the operator after step 1: the steps after the mark and the end record carry it
    assert_same_steps(cut, [*first_steps[:2], StepMessage(**{**first_steps[2].__dict__, "success": True})])
    assert (cut.truncated, cut.ended, cut.success) == (True, False, True)
    assert_same_steps(ended, second_steps, second)

    # the actor restarted and counts from 0 again: the bag beside the first is episode_000000-2
    recorder.record(first_steps[0])
    recorder.close("the recorder shut down")
    assert "cut short (the recorder shut down)" in lines[-1][1]
    assert recorder.saved == [tmp_path / "bags" / n for n in ("episode_000000", "episode_000001", "episode_000000-2")]
    assert len(read_episode_bag(tmp_path / "bags" / "episode_000000-2")) == 1


def test_recorder_refuses_a_bad_first_step_and_keeps_going(tmp_path):
    recorder = EpisodeRecorder(RecorderConfig(directory=str(tmp_path)), lambda level, text: None)
    steps = to_steps("ep", synthetic_episode(12, 2, terminated=True))
    with pytest.raises(ValueError, match=r"step.action: expected 7 finite numbers"):
        recorder.record(StepMessage(**{**steps[0].__dict__, "action": np.zeros(3)}))
    assert recorder.recording is None and not (tmp_path / "ep").exists()
    with pytest.raises(ValueError, match="step.episode: '../x' is not usable as a folder name"):
        recorder.record(StepMessage(**{**steps[0].__dict__, "episode": "../x"}))
    for step in steps:
        recorder.record(step)
    assert recorder.saved == [tmp_path / "ep"] and len(read_episode_bag(tmp_path / "ep")) == 2
