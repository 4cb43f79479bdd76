"""The `robot-rl` entry point: subcommands run end to end and bad configs exit 2 with a message."""

import json

from robot_rl import cli


def test_run_writes_report_config_and_video(tmp_path):
    rc = cli.main(["run", "task=reach", "episodes=2", "video_episodes=1", f"output_dir={tmp_path}"])
    assert rc == 0
    (run_dir,) = (tmp_path / "run").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["episodes"] == 2
    assert report["success_rate"] == 1.0
    assert "oracle" in report["reward"]
    assert "name: reach" in (run_dir / "config.yaml").read_text()
    assert (run_dir / "episodes.mp4").stat().st_size > 1000


def test_sim_records_every_episode_in_pretty_profile(tmp_path):
    rc = cli.main(["sim", "task=reach", "episodes=1", "task.max_episode_steps=5", f"output_dir={tmp_path}"])
    assert rc == 0
    (run_dir,) = (tmp_path / "sim").iterdir()
    assert "render_profile: pretty" in (run_dir / "config.yaml").read_text()
    import imageio.v2 as imageio

    reader = imageio.get_reader(run_dir / "episodes.mp4")
    frame = reader.get_data(0)
    assert frame.shape == (480, 960, 3)  # front and wrist views side by side
    assert reader.count_frames() >= 2


def test_bad_config_exits_2_naming_the_key(capsys, tmp_path):
    assert cli.main(["run", "sim.physics_dt=abc", f"output_dir={tmp_path}"]) == 2
    assert "sim.physics_dt" in capsys.readouterr().err
    assert cli.main(["sim", "task=stack_blocks", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "pick_cube" in err and "peg_insert" in err
    assert not (tmp_path / "run").exists()
