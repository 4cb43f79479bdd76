"""RewardConfig: the base of every reward source's config (the Hydra `reward` group).

Each source's config subclasses it (as agents' configs subclass AgentConfig), so `reward=<name>`
on the command line swaps the whole dataclass and a misspelt key fails naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from robot_rl.sim.config import ConfigError, check_choice

ORACLE_REWARDS = ("oracle_sparse", "oracle_dense")


@dataclass
class RewardConfig:
    name: str = MISSING

    def validate(self, key: str = "reward") -> None:
        raise NotImplementedError

    @property
    def is_oracle(self) -> bool:
        return self.name in ORACLE_REWARDS


@dataclass
class OracleRewardConfig(RewardConfig):
    """The twin's ground truth (sparse success or the dense shaped reward): available only in
    simulation, and labelled as an oracle in every log and report."""

    def validate(self, key: str = "reward") -> None:
        check_choice(self.name, ORACLE_REWARDS, f"{key}.name")

    @property
    def oracle_type(self) -> str:
        return self.name.removeprefix("oracle_")


def validate_cameras_and_size(cameras: list[str], image_size: list[int], key: str) -> None:
    """The camera list and [H, W] image size of a reward model that reads images."""
    if len(set(cameras)) != len(cameras):
        raise ConfigError(f"{key}.cameras: lists a camera twice, got {cameras}")
    if not (len(image_size) == 2 and min(image_size) >= 8):
        raise ConfigError(f"{key}.image_size: needs [H, W] >= 8, got {image_size}")
