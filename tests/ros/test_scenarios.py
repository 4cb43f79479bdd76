"""Runs every scenario_*.py (tests that start ROS 2 nodes) in a child pytest inside a fresh
loopback-only network namespace (see conftest.py): DDS never leaves the machine."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCENARIOS = sorted(HERE.glob("scenario_*.py"))
TIMEOUT_S = 300


def loopback_namespace_command(argv: list[str]) -> list[str]:
    """`argv` run in a new network namespace whose only interface is `lo`, brought up. Root makes
    it with `unshare --net`; anyone else needs a user namespace too (`--map-root-user`)."""
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    return [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def ros_environment(log_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS")}
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        # 1..101: with Fast DDS's default ports any id up to 232 works; parallel runs pick apart
        ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 101)),
        ROS_LOG_DIR=str(log_dir),  # not ~/.ros/log
        ROBOT_RL_ROS_ISOLATED="1",
    )
    return env


def test_there_are_scenarios():
    assert SCENARIOS, f"no scenario_*.py in {HERE}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario_in_loopback_namespace(scenario: Path, tmp_path: Path):
    report = tmp_path / "report.xml"
    child = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", str(scenario)]
    process = subprocess.Popen(
        loopback_namespace_command(child),
        cwd=REPO,
        env=ros_environment(tmp_path / "ros_log"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{scenario.name} ran past {TIMEOUT_S} s:\n{output[-8000:]}")
    print(output)  # shown by pytest on failure, with -s or -rP otherwise
    assert report.exists(), f"{scenario.name}: the child pytest did not run (exit {process.returncode}):\n{output}"
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    assert process.returncode == 0 and counts["tests"] > 0, f"{scenario.name}: {counts}:\n{output[-8000:]}"
    assert counts["skipped"] == 0, f"{scenario.name}: a node test skipped, which CI must never do:\n{output[-8000:]}"
