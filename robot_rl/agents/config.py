"""The base of every agent's config: Hydra picks one option of the `agent` group (sac, bc,
scripted_expert) and types it by its subclass."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class AgentConfig:
    name: str = MISSING

    def validate(self, key: str = "agent") -> None:
        raise NotImplementedError


@dataclass
class ScriptedExpertConfig(AgentConfig):
    """The twin's scripted expert (a ground-truth state machine, robot_rl/sim/experts.py)."""

    name: str = "scripted_expert"

    def validate(self, key: str = "agent") -> None:
        pass
