"""`robot-rl`: the command line of the workflow. Each subcommand takes Hydra overrides.

  robot-rl run   [overrides]   the main job: demos, RLPD training and evaluation on the twin (CPU)
  robot-rl train [overrides]   train an agent (agent=sac|bc) on the twin; run_dir=... resumes
  robot-rl eval checkpoint=RUN_DIR [overrides]   evaluate a trained agent: success rate and video
  robot-rl sim   [overrides]   the twin with its scripted expert, recorded to a video
  robot-rl demos [overrides]   record teleoperated demos on the twin (bags for train.demo_bags)
  robot-rl label [overrides]   label success frames on the twin (for train-reward reward.labels)
  robot-rl train-reward reward=... [overrides]  train a reward model on data from the twin
  robot-rl reward-eval reward=... [overrides]   a reward model's fidelity to the twin's ground truth
  robot-rl graph [overrides]   the ROS 2 graph in one process (the nodes launch/*.launch.py start)
  robot-rl train train.transport=ros [overrides]   train on the steps of the ROS graph's actors
  robot-rl calibrate doctor|workspace|tare|crops [options] [overrides]   set-up tools on a robot's topics

Examples: `robot-rl sim task=peg_insert episodes=2`, `robot-rl train sim=state task=pick_cube`,
`robot-rl train run_dir=outputs/train/20261123-101500` (resume), `robot-rl run train.env_steps=2000`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from robot_rl.config import Config, ConfigError, load_config, to_yaml

log = logging.getLogger("robot_rl")


def _run_dir(config: Config, command: str) -> Path:
    run_dir = (
        Path(config.run_dir) if config.run_dir else Path(config.output_dir) / command / time.strftime("%Y%m%d-%H%M%S")
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    logging.getLogger().addHandler(logging.FileHandler(run_dir / "log.txt"))
    return run_dir


def cmd_sim(config: Config, run_dir: Path, overrides: list[str]) -> int:
    from robot_rl.rollout import make_env, run_episodes, write_report
    from robot_rl.sim.experts import make_expert

    env = make_env(config)
    results = run_episodes(
        env, make_expert(env), config.episodes, config.seed, run_dir / "episodes.mp4", config.video_episodes
    )
    report = write_report(results, config, run_dir, what="scripted expert on the simulation twin")
    log.info(
        "%s: expert success %.2f over %d episodes; video in %s",
        config.task.name,
        report["success_rate"],
        len(results),
        run_dir,
    )
    return 0


def cmd_train(config: Config, run_dir: Path, overrides: list[str]) -> dict:
    from robot_rl.rollout import reward_label
    from robot_rl.train.learner import Trainer

    log.info("reward: %s", reward_label(config))
    if config.train.transport == "ros":
        from ros_nodes.graph import train_over_ros  # rclpy only for this transport

        result = train_over_ros(config, run_dir, overrides)
    else:
        result = Trainer(config, run_dir).train()
    final = result["final_eval"]
    (run_dir / "report.json").write_text(
        json.dumps(
            {"agent": config.agent.name, "task": config.task.name, "reward": reward_label(config), **result}, indent=2
        )
    )
    log.info(
        "%s on %s: ground-truth success %.2f over %d eval episodes; curve, video, checkpoints in %s",
        config.agent.name,
        config.task.name,
        final["success_rate"],
        final["episodes"],
        run_dir,
    )
    return result


def cmd_eval(config: Config, run_dir: Path, overrides: list[str]) -> int:
    from robot_rl.rollout import AgentPolicy, make_env, run_episodes, write_report
    from robot_rl.train.learner import load_trained_agent

    if not config.checkpoint:
        raise ConfigError("checkpoint: give the run directory of a training run, e.g. checkpoint=outputs/train/<time>")
    env = make_env(config)
    agent, step = load_trained_agent(config, Path(config.checkpoint), env)
    results = run_episodes(
        env, AgentPolicy(agent), config.episodes, config.seed, run_dir / "episodes.mp4", config.video_episodes
    )
    report = write_report(results, config, run_dir, what=f"agent from {config.checkpoint} (step {step})")
    log.info(
        "ground-truth success %.2f, mean length %.1f over %d episodes; report and video in %s",
        report["success_rate"],
        report["mean_episode_length"],
        len(results),
        run_dir,
    )
    return 0


def cmd_train_reward(config: Config, run_dir: Path, overrides: list[str]) -> int:
    from robot_rl.rewards.train import train_reward_model

    path = train_reward_model(config, run_dir)
    log.info(
        "%s reward model in %s (report: reward_report.json); use it with reward=%s reward.checkpoint=%s",
        config.reward.name,
        path,
        config.reward.name,
        path,
    )
    return 0


def cmd_reward_eval(config: Config, run_dir: Path, overrides: list[str]) -> int:
    import torch

    from robot_rl.rewards import check_reward_cameras, make_reward_model
    from robot_rl.rewards.evaluate import evaluate_reward_model
    from robot_rl.rollout import make_env

    device = torch.device(config.train.device)
    model = make_reward_model(config.reward, device)
    check_reward_cameras(model, config.sim.cameras)
    env = make_env(config, learned_reward=True)  # full-length episodes: returns compare
    summary = evaluate_reward_model(env, model, config.reward.name, config.episodes, config.seed, run_dir, device)
    log.info("reward fidelity against the twin's ground truth:\n%s", (run_dir / "summary.md").read_text())
    log.info("per-episode plots, summary.json and summary.md in %s", run_dir)
    return 0 if summary else 1


def _operator_input(config: Config):
    """The operator's device at the twin: this terminal's keyboard, or a SpaceMouse over HID."""
    from robot_rl.hil.operator import JoyDeviceInput, KeyboardInput

    teleop = config.teleop
    if teleop.device == "keyboard":
        if not sys.stdin.isatty():
            raise ConfigError("teleop=keyboard reads this terminal's keys, but stdin is not a terminal")
        return KeyboardInput()
    if teleop.device == "twist":
        raise ConfigError(
            "teleop.device=twist comes from a ROS node (spacenav, teleop_twist_joy): on the twin use "
            "teleop=keyboard, or teleop=spacemouse for a SpaceMouse read over HID"
        )
    from hardware.spacemouse import SpaceMouseError, SpaceMouseReader, hid_opener

    try:
        opener = hid_opener()
    except SpaceMouseError as error:
        raise ConfigError(f"teleop=spacemouse on the twin reads the device over HID: {error}") from error
    reader = SpaceMouseReader(opener, on_status=lambda event, message: log.info("SpaceMouse %s: %s", event, message))
    return JoyDeviceInput(reader)


def _operator_session(config: Config, run_dir: Path, overrides: list[str], session: str) -> dict:
    """An operator's `session` ("demos" or "labels"): through the ROS graph (hil.operator.graph=true)
    or at the twin in this process; its summary."""
    if config.hil.operator.graph:
        from ros_nodes.graph import demos_on_graph, labels_on_graph, operator_session  # rclpy only here

        on_graph = {"demos": demos_on_graph, "labels": labels_on_graph}[session]
        return operator_session(on_graph, config, run_dir, overrides)
    from robot_rl.hil.operator import run_demo_session, run_label_session
    from robot_rl.robot.teleop import TeleopMapper

    at_twin = {"demos": run_demo_session, "labels": run_label_session}[session]
    with _operator_input(config) as device:
        return at_twin(config, run_dir, device, TeleopMapper(config.teleop))


def cmd_demos(config: Config, run_dir: Path, overrides: list[str]) -> int:
    summary = _operator_session(config, run_dir, overrides, "demos")
    log.info(
        "%d of %d episodes are successes; bags in %s: train with train.demo_bags=%s",
        summary["successes"],
        summary["episodes"],
        summary["bags"],
        summary["bags"],
    )
    return 0


def cmd_label(config: Config, run_dir: Path, overrides: list[str]) -> int:
    if config.teleop.device == "joy" and config.teleop.success_button < 0:
        raise ConfigError("teleop.success_button: labelling needs a button held for success (or teleop=keyboard)")
    summary = _operator_session(config, run_dir, overrides, "labels")
    log.info(
        "%d success and %d failure frames from %d episodes (%d frames labelled both ways); train with "
        "`robot-rl train-reward reward=classifier reward.labels=%s`",
        summary["positives"],
        summary["negatives"],
        summary["episodes"],
        summary.get("conflicting_frames", 0),
        summary["labels"],
    )
    return 0


def cmd_graph(config: Config, run_dir: Path, overrides: list[str]) -> int:
    from ros_nodes.graph import run_graph  # the composition root: only this command needs rclpy

    log.info("ROS graph for namespaces %s (twin: %s); Ctrl-C stops it", config.ros.namespaces, config.ros.twin)
    run_graph(config, overrides)
    return 0


# name -> (handler, help, overrides applied unless the user sets the same key)
COMMANDS: dict[str, tuple[Callable[[Config, Path, list[str]], object], str, dict[str, str]]] = {
    "run": (
        cmd_train,
        "the main job: demos, RLPD training and evaluation on the twin (CPU, no robot, no network)",
        # reach: the task whose learning curve rises within this CPU budget (~2 min)
        {"sim": "state", "train": "quick", "task": "reach"},
    ),
    "train": (cmd_train, "train an agent on the twin (run_dir=... resumes a run)", {}),
    "eval": (cmd_eval, "evaluate a trained agent (checkpoint=RUN_DIR): ground-truth success, video", {}),
    "demos": (
        cmd_demos,
        "record teleoperated demos on the twin (keyboard in this terminal, or teleop=spacemouse over HID) as bags",
        {"episodes": "10", "teleop": "keyboard", "video_episodes": "0"},
    ),
    "label": (
        cmd_label,
        "label success frames on the twin: hold the success key (Enter) while the scene shows success",
        {"teleop": "keyboard", "video_episodes": "0"},
    ),
    "train-reward": (
        cmd_train_reward,
        "train a reward model (reward=classifier|perceptual|preference) on data collected on the twin",
        {"episodes": "20", "video_episodes": "0"},
    ),
    "reward-eval": (
        cmd_reward_eval,
        "score a reward model (reward=...) on expert, partial and random episodes against ground truth",
        {"episodes": "5", "video_episodes": "0"},
    ),
    "graph": (
        cmd_graph,
        "start the ROS 2 graph (twin or robot topics, aggregator, safety, actor, teleop, recorder) in one process",
        {},
    ),
    "sim": (
        cmd_sim,
        "run the twin with its scripted expert and write a video",
        {"sim": "pretty", "agent": "scripted_expert", "episodes": "3", "video_episodes": "${episodes}"},
    ),
}


def cmd_calibrate(config: Config, args: argparse.Namespace) -> int:
    from ros_nodes import calibrate  # rclpy only for these tools

    if args.tool == "doctor":
        return calibrate.doctor(config, args.seconds)
    if args.tool == "workspace":
        return calibrate.record_workspace(config, args.output, args.margin, namespace=args.namespace)
    if args.tool == "tare":
        return calibrate.tare(config, args.service, args.seconds, args.tolerance, args.namespace)
    rectangles = dict(_rectangle(text) for text in args.rect) or None
    return calibrate.pick_crops(config, args.output, rectangles, args.namespace, args.frames_dir)


def _rectangle(text: str) -> tuple[str, list[float]]:
    """--rect CAM=x0,y0,x1,y1"""
    camera, _, numbers = text.partition("=")
    try:
        rectangle = [float(v) for v in numbers.split(",")]
    except ValueError:
        rectangle = []
    if not camera or len(rectangle) != 4:
        raise argparse.ArgumentTypeError(f"--rect {text!r}: expected CAM=x0,y0,x1,y1")
    return camera, rectangle


def _calibrate_parser(sub) -> None:
    calibrate = sub.add_parser("calibrate", help="set-up tools on a robot's topics (doctor, workspace, tare, crops)")
    tools = calibrate.add_subparsers(dest="tool", required=True)
    doctor = tools.add_parser("doctor", help="check that every sensor topic arrives, of its type, at its rate, sane")
    doctor.add_argument("--seconds", type=float, default=5.0, help="how long to listen")
    workspace = tools.add_parser("workspace", help="record the workspace box by guiding the arm to its corners")
    workspace.add_argument("--output", default="configs/cell/local.yaml", help="the cell file to write")
    workspace.add_argument("--margin", type=float, default=0.02, help="m the box is shrunk inward")
    tare = tools.add_parser("tare", help="zero the F/T sensor and check that it reads ~0")
    tare.add_argument("--service", default="ft_sensor/tare", help="its std_srvs/Trigger")
    tare.add_argument("--seconds", type=float, default=1.0, help="wrench read before and after")
    tare.add_argument("--tolerance", type=float, default=1.0, help="N the force may read after the tare")
    crops = tools.add_parser("crops", help="pick each camera's crop (a window, or --rect) into the cell file")
    crops.add_argument("--output", default="configs/cell/local.yaml", help="the cell file to write")
    crops.add_argument("--rect", action="append", default=[], help="CAM=x0,y0,x1,y1 in source pixels (repeatable)")
    crops.add_argument("--frames-dir", default="crop_frames", help="where frames go when there is no display")
    for tool in (doctor, workspace, tare, crops):
        tool.add_argument("--namespace", default=None, help="the robot's namespace (one of ros.namespaces)")
        tool.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. robot=franka cell=local")


def _with_defaults(overrides: list[str], defaults: dict[str, str]) -> list[str]:
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    return [f"{key}={value}" for key, value in defaults.items() if key not in given] + overrides


def _config_error_message(error: Exception) -> str:
    messages = [str(error)]
    cause = error.__cause__
    while cause is not None:
        messages.append(str(cause))
        cause = cause.__cause__
    return "\n".join(m.strip() for m in messages if m.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="robot-rl", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. task=peg_insert seed=3 sim.cameras=[front]")
    _calibrate_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "calibrate":
        try:
            return cmd_calibrate(load_config(args.overrides), args)
        except (argparse.ArgumentTypeError, ValueError, ConfigError, HydraException, OmegaConfBaseException) as error:
            print(f"robot-rl calibrate {args.tool}: {_config_error_message(error)}", file=sys.stderr)
            return 2
    handler, _, defaults = COMMANDS[args.command]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    try:
        overrides = _with_defaults(args.overrides, defaults)
        config = load_config(overrides)
        if args.command in ("train", "run") and config.agent.name == "scripted_expert":
            raise ConfigError("agent.name: train needs a learning agent (agent=sac or agent=bc)")
        if args.command in ("reward-eval", "train-reward") and config.reward.is_oracle:
            raise ConfigError(
                "reward.name: reward-eval scores a reward model against the oracle: pick one (reward=clip, ...)"
            )
    except (ConfigError, HydraException, OmegaConfBaseException) as error:
        print(f"robot-rl {args.command}: invalid config:\n{_config_error_message(error)}", file=sys.stderr)
        return 2
    try:
        handler(config, _run_dir(config, args.command), overrides)
    except ConfigError as error:  # found once the run starts: a device, recorded data that does not fit
        print(f"robot-rl {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
