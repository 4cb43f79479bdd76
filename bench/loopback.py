"""Benchmarks that start ROS 2 nodes run inside a loopback-only network namespace, as the node
tests do (tests/ros/test_scenarios.py), so that no DDS traffic leaves the machine: started anywhere
else, a bench re-executes itself in a new one (`unshare --net`, only `lo`, brought up) with
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a random ROS_DOMAIN_ID."""

from __future__ import annotations

import os
import random
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ISOLATED = "ROBOT_RL_ROS_ISOLATED"  # set in the re-executed bench only, as tests/ros/test_scenarios.py does
REPO = Path(__file__).resolve().parent.parent


def in_loopback_namespace() -> bool:
    return (
        os.environ.get(ISOLATED) == "1"
        and [name for _, name in socket.if_nameindex()] == ["lo"]
        and os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
    )


def loopback_namespace_command(argv: list[str]) -> list[str]:
    """`argv` in a new network namespace whose only interface is `lo` (root: unshare --net; anyone
    else also needs a user namespace)."""
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    return [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def reexecute_isolated(script: str) -> int:
    """bench/<script> with this process's arguments in a new loopback-only namespace; its exit status."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS")}
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 101)),
        ROS_LOG_DIR=tempfile.mkdtemp(prefix=f"{Path(script).stem}_log_"),
        ROBOT_RL_BENCH_COMMAND=shlex.join([".venv/bin/python", f"bench/{script}", *sys.argv[1:]]),
    )
    env[ISOLATED] = "1"
    argv = [sys.executable, str(REPO / "bench" / script), *sys.argv[1:]]
    return subprocess.run(loopback_namespace_command(argv), cwd=REPO, env=env).returncode
