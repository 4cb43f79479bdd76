"""ROS 2 tests, with real rclpy (the ROS 2 Kilted wheels, installed by `make test`).

Two kinds of module:
- test_*.py run in the pytest process and start no node, so nothing goes on any network:
  message conversion, and test_scenarios.py, which runs the others:
- scenario_*.py start nodes. test_scenarios.py runs each in a child pytest inside a fresh network
  namespace that has only a loopback interface (`unshare --net`, plus `--map-root-user` when not
  root), with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a random ROS_DOMAIN_ID, so DDS traffic
  cannot leave the machine and parallel runs do not meet. The child's JUnit report must show at
  least one test, and no failure, error or skip. A scenario test started any other way (say
  `pytest tests/ros/scenario_twin_node.py` by hand) fails at set-up instead of touching a network:
  run it through test_scenarios.py (`pytest tests/ros/test_scenarios.py -k twin`).

Nothing here skips on its own: no rclpy, no `unshare` or no `ip`, or a kernel that refuses the
namespace all fail, saying what is missing. The one way out is explicit, for a workstation that
cannot run them (no ROS, no user namespaces): ROBOT_RL_SKIP_ROS_TESTS=1, which skips this
folder visibly (test_ros_available.py reports the skip) and which is refused when CI is set.

The scenarios share the `ros` fixture below (rclpy's default context, once per module) and the
client node in client.py.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

OPT_OUT = "ROBOT_RL_SKIP_ROS_TESTS"
ISOLATED = "ROBOT_RL_ROS_ISOLATED"  # set by test_scenarios.py in the namespaced child only


def opted_out() -> bool:
    if os.environ.get(OPT_OUT, "") in ("", "0"):
        return False
    if os.environ.get("CI"):
        raise pytest.UsageError(f"{OPT_OUT} is set in CI (CI={os.environ['CI']!r}): the ROS tests must run there")
    return True


def in_loopback_namespace() -> bool:
    """Whether this process is in the namespace test_scenarios.py made: only `lo`, DDS bound to it."""
    return (
        os.environ.get(ISOLATED) == "1"
        and [name for _, name in socket.if_nameindex()] == ["lo"]
        and os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
    )


# Opted out: collect only the module that reports the skip (the others import rclpy).
collect_ignore_glob = ["test_[!r]*.py", "scenario_*.py"] if opted_out() else []


def pytest_runtest_setup(item: pytest.Item) -> None:
    if Path(item.path).name.startswith("scenario_") and not in_loopback_namespace():
        pytest.fail(
            f"{item.path.name} starts ROS 2 nodes, which run only inside a loopback-only network namespace: "
            f"run it through tests/ros/test_scenarios.py"
        )


@pytest.fixture(scope="module")
def ros():
    """rclpy initialised for the module's tests, shut down after them (imported here, not at the top:
    an opted-out workstation may have no rclpy)."""
    import rclpy

    rclpy.init()
    yield
    rclpy.try_shutdown()
