"""The base of every agent's config: Hydra picks one option of the `agent` group (sac, bc,
scripted_expert) and types it by its subclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from robot_rl.agents.networks import ENCODERS
from robot_rl.sim.config import ConfigError, check_choice


@dataclass
class AgentConfig:
    name: str = MISSING

    def validate(self, key: str = "agent") -> None:
        raise NotImplementedError


@dataclass
class LearnedAgentConfig(AgentConfig):
    """What every learned agent (SAC, BC) configures the same way: its observation encoder."""

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

        check_choice(self.encoder, ENCODERS, f"{key}.encoder")
        check(
            self.encoder_weights is None or self.encoder != "cnn",
            "encoder_weights",
            "only a pretrained encoder (resnet10/resnet18) loads weights",
        )
        check(len(self.cnn_channels) >= 1 and min(self.cnn_channels) >= 1, "cnn_channels", "needs >= 1 positive size")
        check(self.image_feature_dim >= 1, "image_feature_dim", "must be >= 1")
        check(self.state_feature_dim >= 1, "state_feature_dim", "must be >= 1")
        check(self.image_pad >= 0, "image_pad", f"must be >= 0, got {self.image_pad}")


@dataclass
class ScriptedExpertConfig(AgentConfig):
    """The twin's scripted expert (a ground-truth state machine, robot_rl/sim/experts.py)."""

    name: str = "scripted_expert"

    def validate(self, key: str = "agent") -> None:
        pass
