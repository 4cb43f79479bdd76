"""BCConfig: the behaviour-cloning baseline, trained on the same demos as SAC for comparison."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.agents.config import LearnedAgentConfig
from robot_rl.sim.config import ConfigError


@dataclass
class BCConfig(LearnedAgentConfig):
    name: str = "bc"
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])  # Linear -> LayerNorm -> ReLU
    lr: float = 3e-4
    batch_size: int = 256
    # The observation encoder (fields in LearnedAgentConfig) is SAC's, here trained end to end by
    # the imitation loss.
    seed: int = 0

    def validate(self, key: str = "agent") -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        check(self.name == "bc", "name", f"must be 'bc' for BCConfig, got {self.name!r}")
        check(len(self.hidden_dims) >= 1 and min(self.hidden_dims) >= 1, "hidden_dims", "needs >= 1 positive size")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        self.validate_encoder(key)
