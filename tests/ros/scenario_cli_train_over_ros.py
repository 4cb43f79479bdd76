"""`robot-rl train train.transport=ros`: the command line starts the graph and the learner in one
process and writes the same report as an in-process run. Runs only inside a loopback-only network
namespace (test_scenarios.py; see conftest.py)."""

from __future__ import annotations

import json

from robot_rl import cli


def test_train_over_ros_from_the_command_line(tmp_path):
    overrides = [
        "sim=state",
        "task=reach",
        "task.max_episode_steps=20",
        "train.transport=ros",
        "train.env_steps=40",
        "train.learning_starts=20",
        "train.eval_every=40",
        "train.eval_episodes=1",
        "train.video_episodes=0",
        "train.demo_episodes=1",
        "agent.batch_size=8",
        "agent.hidden_dims=[16,16]",
        "agent.num_critics=2",
        f"output_dir={tmp_path}",
    ]
    assert cli.main(["train", *overrides]) == 0
    (run_dir,) = (tmp_path / "train").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["curve"]["env_steps"] == [40]
    assert "transport: ros" in (run_dir / "config.yaml").read_text()
