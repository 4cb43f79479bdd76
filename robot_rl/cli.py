"""`robot-rl`: the command line of the workflow. Each subcommand takes Hydra overrides.

  robot-rl run  [overrides]   the main job on its default: the simulation twin, CPU only
  robot-rl sim  [overrides]   the twin with its scripted expert, recorded to a video

Examples: `robot-rl sim task=peg_insert episodes=2`, `robot-rl run sim=randomized seed=7`.
"""

from __future__ import annotations

import argparse
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
    run_dir = Path(config.output_dir) / command / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(to_yaml(config))
    logging.getLogger().addHandler(logging.FileHandler(run_dir / "log.txt"))
    return run_dir


def run_scripted_expert(config: Config, command: str) -> int:
    """Episodes of the twin's scripted expert: a video, a report and the config in the run dir.
    Until the learner lands this is also the main job (`run`)."""
    from robot_rl.rollout import run_expert_episodes, write_report

    run_dir = _run_dir(config, command)
    log.info("reward: %s (ground truth from the twin: an oracle)", config.reward.name)
    results = run_expert_episodes(config, run_dir / "episodes.mp4")
    report = write_report(results, config, run_dir, what="scripted expert on the simulation twin")
    log.info(
        "%s: success %.2f, mean length %.1f over %d episodes; report, video and config in %s",
        config.task.name,
        report["success_rate"],
        report["mean_episode_length"],
        len(results),
        run_dir,
    )
    return 0


# name -> (handler, help, overrides applied unless the user sets the same key)
COMMANDS: dict[str, tuple[Callable[[Config, str], int], str, dict[str, str]]] = {
    "run": (run_scripted_expert, "the main job on the simulation twin (CPU, no robot, no network)", {}),
    "sim": (
        run_scripted_expert,
        "run the twin with its scripted expert and write a video",
        {"sim": "pretty", "episodes": "3", "video_episodes": "${episodes}"},
    ),
}


def _with_defaults(overrides: list[str], defaults: dict[str, str]) -> list[str]:
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    extra = [f"{key}={value}" for key, value in defaults.items() if key not in given]
    return extra + overrides


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
    args = parser.parse_args(argv)
    handler, _, defaults = COMMANDS[args.command]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    try:
        config = load_config(_with_defaults(args.overrides, defaults))
    except (ConfigError, HydraException, OmegaConfBaseException) as error:
        print(f"robot-rl {args.command}: invalid config:\n{_config_error_message(error)}", file=sys.stderr)
        return 2
    return handler(config, args.command)


if __name__ == "__main__":
    sys.exit(main())
