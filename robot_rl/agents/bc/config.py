"""BCConfig: the behaviour-cloning baseline, trained on the same demos as SAC for comparison."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.agents.config import AgentConfig
from robot_rl.agents.networks import ENCODERS
from robot_rl.sim.config import ConfigError, check_choice


@dataclass
class BCConfig(AgentConfig):
    name: str = "bc"
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])  # Linear -> LayerNorm -> ReLU
    lr: float = 3e-4
    batch_size: int = 256
    # the same observation encoder as SAC's, here trained end to end by the imitation loss
    encoder: str = "cnn"  # "cnn" | "resnet10" | "resnet18" (frozen)
    encoder_weights: str | None = None
    cnn_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 32])  # "cnn": 3x3 stride-2 conv layers
    image_feature_dim: int = 50
    state_feature_dim: int = 64
    image_pad: int = 4  # DrQ random shift; 0 disables augmentation
    seed: int = 0

    def validate(self, key: str = "agent") -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        check(self.name == "bc", "name", f"must be 'bc' for BCConfig, got {self.name!r}")
        check(len(self.hidden_dims) >= 1 and min(self.hidden_dims) >= 1, "hidden_dims", "needs >= 1 positive size")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
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
