"""Agents the learner trains: SAC in the RLPD recipe (agents/sac) and a BC baseline (agents/bc).

Each is a config dataclass beside the module that implements it (LeRobot's layout), and all
follow the contract in agents/common.py (act / update / state_dict / actor_state_dict).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from robot_rl.agents.bc import BCAgent, BCConfig
from robot_rl.agents.common import Agent
from robot_rl.agents.sac import SACAgent, SACConfig

__all__ = ["Agent", "BCAgent", "BCConfig", "SACAgent", "SACConfig", "make_agent"]


def make_agent(
    config: SACConfig | BCConfig,
    state_dim: int,
    action_dim: int,
    cameras: Mapping[str, tuple[int, int]] | None = None,
    device: torch.device | str = "cpu",
    controlled: Sequence[int] | None = None,
) -> SACAgent | BCAgent:
    """The agent for `config`; `cameras` maps each camera name to its image (height, width),
    {} or None for state-only; `controlled` lists the action entries it drives (default: all)."""
    if isinstance(config, SACConfig):
        return SACAgent(config, state_dim, action_dim, cameras, device, controlled)
    if isinstance(config, BCConfig):
        return BCAgent(config, state_dim, action_dim, cameras, device, controlled)
    raise TypeError(f"make_agent: no agent for config type {type(config).__name__}")
