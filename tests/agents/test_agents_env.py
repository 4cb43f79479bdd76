"""act() on real observations of the simulation twin, state-only and with a 32x32 camera."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.agents import make_agent
from robot_rl.sim.config import PegInsertConfig, PickCubeConfig, SimConfig
from robot_rl.sim.env import SimTwinEnv
from robot_rl.spec import ACTION_DIM, STATE_DIMS, flatten_state


@pytest.mark.parametrize("cameras", [[], ["wrist"]])
@pytest.mark.parametrize("agent_kind", ["sac", "sac_hybrid", "bc"])
def test_act_on_a_sim_twin_observation(sac_config, bc_config, cameras, agent_kind):
    sim = SimConfig(cameras=cameras)
    for rig in sim.camera_rigs.values():
        rig.width = rig.height = 32
    env = SimTwinEnv("pick_cube", sim=sim)
    try:
        obs, _ = env.reset(seed=0)
        config = {"sac": sac_config(), "sac_hybrid": sac_config(hybrid_gripper=True), "bc": bc_config()}[agent_kind]
        agent = make_agent(config, flatten_state(obs["state"]).shape[0], ACTION_DIM, {cam: (32, 32) for cam in cameras})
        for deterministic in (True, False):
            action = agent.act(obs, deterministic=deterministic)
            assert action.dtype == np.float32 and action.shape == (ACTION_DIM,)
            assert np.all(np.abs(action) <= 1.0)
            obs, *_ = env.step(action)  # the env accepts it
    finally:
        env.close()


def test_act_names_a_missing_camera(sac_config):
    agent = make_agent(sac_config(), sum(STATE_DIMS.values()), ACTION_DIM, {"front": (32, 32)})
    with pytest.raises(KeyError, match="front"):
        agent.act(
            {"state": {"tcp_pose": np.zeros(7), "tcp_vel": np.zeros(6), "gripper": [1.0], "wrench": np.zeros(12)}}
        )


@pytest.mark.parametrize("agent_kind", ["sac", "sac_hybrid", "bc"])
def test_agents_drive_only_the_tasks_action_entries(sac_config, bc_config, make_batch, agent_kind):
    """pick_cube's policy drives x, y, z and the gripper: the rotation entries stay 0, the networks
    are sized to the 4 entries, and an update trains on those."""
    controlled = PickCubeConfig().controlled_actions()
    config = {"sac": sac_config(), "sac_hybrid": sac_config(hybrid_gripper=True), "bc": bc_config()}[agent_kind]
    state_dim = sum(STATE_DIMS.values())
    agent = make_agent(config, state_dim, ACTION_DIM, controlled=controlled)
    obs = {"state": {"tcp_pose": np.zeros(7), "tcp_vel": np.zeros(6), "gripper": [1.0], "wrench": np.zeros(12)}}
    for deterministic in (True, False):
        action = agent.act(obs, deterministic=deterministic)
        assert action.shape == (ACTION_DIM,) and np.all(action[3:6] == 0.0)
    if agent_kind != "bc":
        assert agent.continuous_dim == (3 if agent_kind == "sac_hybrid" else 4)
    batch = make_batch(batch_size=8)
    agent.update([batch] * getattr(config, "utd_ratio", 1))


def test_the_hybrid_gripper_needs_a_task_that_grips(sac_config):
    with pytest.raises(ValueError, match="gripper"):
        make_agent(sac_config(hybrid_gripper=True), 10, ACTION_DIM, controlled=PegInsertConfig().controlled_actions())
