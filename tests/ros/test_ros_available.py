"""The ROS 2 stack the other tests need is there (or its absence is an explicit, visible opt-out:
conftest.py refuses that opt-out in CI and then collects only this module)."""

from __future__ import annotations

import os
import shutil

import pytest

OPT_OUT = "ROBOT_RL_SKIP_ROS_TESTS"  # the same name as in conftest.py


def test_ros_stack_is_installed():
    if os.environ.get(OPT_OUT, "") not in ("", "0"):
        pytest.skip(f"ROS tests skipped: {OPT_OUT}={os.environ[OPT_OUT]}")
    from rclpy.utilities import get_rmw_implementation_identifier

    assert get_rmw_implementation_identifier()  # rclpy fails here without an rmw implementation
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2")):
        assert shutil.which(tool), f"`{tool}` not found (Debian package {package}): the node tests need it"
