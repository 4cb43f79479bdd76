"""The `robot-rl` entry point: subcommands run end to end and bad configs exit 2 with a message."""

import json

import pytest

from robot_rl import cli

TINY_TRAINING = [
    "task=reach",
    "train.env_steps=60",
    "train.learning_starts=20",
    "train.eval_every=30",
    "train.eval_episodes=2",
    "train.video_episodes=1",
    "train.demo_episodes=2",
    "agent.batch_size=16",
    "agent.hidden_dims=[32,32]",
    "agent.num_critics=2",
]


def test_run_trains_evaluates_and_writes_report(tmp_path):
    rc = cli.main(["run", *TINY_TRAINING, f"output_dir={tmp_path}"])
    assert rc == 0
    (run_dir,) = (tmp_path / "run").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["agent"] == "sac"
    assert report["curve"]["env_steps"] == [30, 60]
    assert 0.0 <= report["final_eval"]["success_rate"] <= 1.0
    assert "name: reach" in (run_dir / "config.yaml").read_text()
    assert (run_dir / "eval.mp4").stat().st_size > 1000
    assert (run_dir / "learning_curve.png").exists()
    assert list((run_dir / "tensorboard").iterdir())


def test_eval_loads_a_trained_run(tmp_path):
    assert cli.main(["train", "sim=state", *TINY_TRAINING, f"output_dir={tmp_path}"]) == 0
    (train_dir,) = (tmp_path / "train").iterdir()
    rc = cli.main(
        ["eval", "sim=state", "task=reach", f"checkpoint={train_dir}", "episodes=2", f"output_dir={tmp_path}"]
    )
    assert rc == 0
    (eval_dir,) = (tmp_path / "eval").iterdir()
    report = json.loads((eval_dir / "report.json").read_text())
    assert report["episodes"] == 2 and "step 60" in report["what"]
    # The run was trained on the state-based sim; evaluating it with cameras must say what differs.
    with pytest.raises(ValueError, match="cameras: checkpoint has {}"):
        cli.main(
            [
                "eval",
                "task=reach",
                f"checkpoint={train_dir}",
                "episodes=1",
                "video_episodes=1",
                f"output_dir={tmp_path}",
            ]
        )


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
    assert cli.main(["train", "agent=scripted_expert", f"output_dir={tmp_path}"]) == 2
    assert "agent.name" in capsys.readouterr().err


def test_train_reward_then_reward_eval_then_train_on_it(tmp_path):
    """The reward workflow end to end on the twin: fit a perceptual reward from 2 expert demos,
    score it against ground truth, train a (tiny) agent on it."""
    camera = ["sim.cameras=[front]", "sim.camera_rigs.front.width=64", "sim.camera_rigs.front.height=64"]
    reward_dir, eval_dir = tmp_path / "reward", tmp_path / "eval"
    assert cli.main(["train-reward", "reward=perceptual", "task=pick_cube", "episodes=2", f"run_dir={reward_dir}"]) == 0
    checkpoint = reward_dir / "perceptual.safetensors"
    assert checkpoint.exists() and json.loads((reward_dir / "reward_report.json").read_text())
    common = ["reward=perceptual", f"reward.checkpoint={checkpoint}", "task=pick_cube", "task.max_episode_steps=30"]
    assert cli.main(["reward-eval", *common, *camera, "episodes=1", f"run_dir={eval_dir}"]) == 0
    summary = json.loads((eval_dir / "summary.json").read_text())
    assert summary["reward"] == "perceptual" and summary["all"]["steps"] == 3 * 30
    train = [t for t in TINY_TRAINING if not t.startswith("task=")]
    assert cli.main(["train", *common, *camera, *train, f"run_dir={tmp_path / 'train'}"]) == 0
    report = json.loads((tmp_path / "train" / "report.json").read_text())
    assert report["reward"].startswith("perceptual (learned")


def test_reward_commands_refuse_an_oracle_reward(capsys, tmp_path):
    assert cli.main(["reward-eval", "reward=oracle_sparse", f"output_dir={tmp_path}"]) == 2
    assert "reward.name" in capsys.readouterr().err
    assert cli.main(["train-reward", "reward=oracle_dense", f"output_dir={tmp_path}"]) == 2
    assert cli.main(["train-reward", "reward=ensemble", f"output_dir={tmp_path}"]) == 2
    assert "train each member with reward=classifier" in capsys.readouterr().err


def test_train_reward_classifier_then_reward_eval(tmp_path):
    small = ["reward=classifier", "reward.image_size=[32,32]", "task=pick_cube", "task.max_episode_steps=30"]
    assert cli.main(["train-reward", *small, "reward.steps=20", "episodes=4", f"run_dir={tmp_path / 'r'}"]) == 0
    report = json.loads((tmp_path / "r" / "reward_report.json").read_text())
    assert {"roc_auc", "precision", "recall", "threshold"} <= set(report)
    cameras = [f"sim.camera_rigs.{cam}.{side}=32" for cam in ("front", "wrist") for side in ("width", "height")]
    checkpoint = f"reward.checkpoint={tmp_path / 'r' / 'classifier.safetensors'}"
    assert cli.main(["reward-eval", *small, *cameras, checkpoint, "episodes=1", f"run_dir={tmp_path / 'e'}"]) == 0
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["reward"] == "classifier"


def test_calibrate_refuses_bad_arguments_before_touching_ros(capsys):
    assert cli.main(["calibrate", "crops", "--rect", "front=1,2,3"]) == 2
    assert "--rect 'front=1,2,3': expected CAM=x0,y0,x1,y1" in capsys.readouterr().err
    assert cli.main(["calibrate", "doctor", "robot=no_such_robot"]) == 2
    assert "robot" in capsys.readouterr().err
