"""Shared fixtures for the simulation-twin tests.

Envs are cheap to build (a few ms, the MJCF is compiled from a string), so every test gets
fresh ones from `make_env` and nothing leaks between tests; `make_env` closes them (and their
offscreen renderers) at teardown. State-only envs (cameras=[]) unless a test is about images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_rl.sim.config import RobotConfig, SimConfig, TaskConfig
from robot_rl.sim.env import HOME_TCP_ROTATION, SimTwinEnv

G = 9.81  # MuJoCo's default gravity magnitude [m/s^2]


def sim_config(
    cameras: list[str] | None = None, width: int | None = None, height: int | None = None, **kw
) -> SimConfig:
    """A SimConfig, state-only unless `cameras` is given; width/height resize every rig."""
    cfg = SimConfig(cameras=[] if cameras is None else list(cameras), **kw)
    for rig in cfg.camera_rigs.values():
        rig.width = width or rig.width
        rig.height = height or rig.height
    return cfg


@pytest.fixture
def make_env() -> Iterator[Callable[..., SimTwinEnv]]:
    envs: list[SimTwinEnv] = []

    def factory(
        task: TaskConfig | str = "reach",
        sim: SimConfig | None = None,
        robot: RobotConfig | None = None,
        reward: str = "sparse",
        **kw,
    ) -> SimTwinEnv:
        env = SimTwinEnv(task, sim=sim if sim is not None else sim_config(), robot=robot, reward=reward, **kw)
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.close()


def tcp_pos(env: SimTwinEnv) -> np.ndarray:
    return env.data.site("tcp").xpos.copy()


def tcp_rotation(env: SimTwinEnv) -> Rotation:
    return Rotation.from_matrix(env.data.site("tcp").xmat.reshape(3, 3))


def tilt(rotation: Rotation) -> np.ndarray:
    """Rotation vector from the home orientation (TCP pointing down) to `rotation`, world frame."""
    return (rotation * HOME_TCP_ROTATION.inv()).as_rotvec()


def world_wrench(env: SimTwinEnv, wrench: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean force and torque of an observation's wrench (sensor frame) rotated into the world."""
    rot = env.data.site("ft_site").xmat.reshape(3, 3)
    return rot @ wrench[:3], rot @ wrench[3:6]


def hold_action(gripper: float = -1.0) -> np.ndarray:
    a = np.zeros(7, dtype=np.float32)
    a[6] = gripper
    return a


@pytest.fixture
def h() -> SimpleNamespace:
    """The helpers above, for test modules (tests/sim is not a package, so they cannot import them)."""
    fns = (sim_config, tcp_pos, tcp_rotation, tilt, world_wrench, hold_action)
    return SimpleNamespace(G=G, **{fn.__name__: fn for fn in fns})
