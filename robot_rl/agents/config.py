"""The base of every agent's config: Hydra picks one option of the `agent` group (sac, bc,
scripted_expert) and types it by its subclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from robot_rl.agents.networks import ENCODERS
from robot_rl.sim.config import ConfigError, check_choice
from robot_rl.spec import STATE_DIMS


@dataclass
class AgentConfig:
    name: str = MISSING

    def validate(self, key: str = "agent") -> None:
        raise NotImplementedError


@dataclass
class LearnedAgentConfig(AgentConfig):
    """What every learned agent (SAC, BC) configures the same way: what it observes and its encoder."""

    # The sim cameras the policy sees; None: all of sim.cameras. The others are rendered for the
    # reward model only (HIL-SERL's success classifier and policy read different cameras), e.g.
    # cameras: [] trains a state-based policy on an image-based learned reward.
    cameras: list[str] | None = None
    # State entries it does not read (spec.STATE_DIMS' keys, "task"): where one carries nothing the
    # task needs, its noise still costs learning (configs/task_agent/pick_cube_sac.yaml).
    ignored_state: list[str] = field(default_factory=list)
    encoder: str = "cnn"  # "cnn" (small, from scratch: CPU default) | "resnet10" | "resnet18" (frozen)
    encoder_weights: str | None = None  # local weights file of the pretrained ResNet
    cnn_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 32])  # "cnn": 3x3 stride-2 conv layers
    image_feature_dim: int = 50  # per camera (DrQ)
    state_feature_dim: int = 64  # proprio + wrench embedding beside images (state-only: no embedding)
    image_pad: int = 4  # DrQ random shift in pixels; 0 disables augmentation

    def validate_encoder(self, key: str) -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        validate_image_encoder(self, key)
        if self.cameras is not None:
            check(len(set(self.cameras)) == len(self.cameras), "cameras", f"lists a camera twice: {self.cameras}")
        for name in self.ignored_state:
            valid = [*STATE_DIMS, "task"]
            check(name in valid, "ignored_state", f"unknown entry {name!r}; valid: {', '.join(valid)}")
        check(self.state_feature_dim >= 1, "state_feature_dim", "must be >= 1")
        check(self.image_pad >= 0, "image_pad", f"must be >= 0, got {self.image_pad}")


@dataclass
class ScriptedExpertConfig(AgentConfig):
    """The twin's scripted expert (a ground-truth state machine, robot_rl/sim/experts.py)."""

    name: str = "scripted_expert"

    def validate(self, key: str = "agent") -> None:
        pass


def validate_image_encoder(config, key: str) -> None:
    """The checks of the image-encoder fields (encoder, encoder_weights, cnn_channels,
    image_feature_dim) that agents and learned reward models share."""
    check_choice(config.encoder, ENCODERS, f"{key}.encoder")
    if config.encoder_weights is not None and config.encoder == "cnn":
        raise ConfigError(f"{key}.encoder_weights: only a pretrained encoder (resnet10/resnet18) loads weights")
    if not (len(config.cnn_channels) >= 1 and min(config.cnn_channels) >= 1):
        raise ConfigError(f"{key}.cnn_channels: needs >= 1 positive size, got {config.cnn_channels}")
    if config.image_feature_dim < 1:
        raise ConfigError(f"{key}.image_feature_dim: must be >= 1, got {config.image_feature_dim}")
