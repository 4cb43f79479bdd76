"""SuccessClassifierConfig: the learned success classifier's settings (the model, its training,
checkpoints and the collection of labelled frames are in model.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.agents.config import validate_image_encoder
from robot_rl.rewards.config import RewardConfig, validate_cameras_and_size
from robot_rl.sim.config import ConfigError


@dataclass
class SuccessClassifierConfig(RewardConfig):
    """Hydra-friendly (plain fields only). Image sizes are [height, width], the same for every camera."""

    name: str = "classifier"
    cameras: list[str] = field(default_factory=lambda: ["front", "wrist"])  # HIL-SERL reads both
    image_size: list[int] = field(default_factory=lambda: [128, 128])  # [H, W]; score() resizes other frames to it
    # the image encoder, as the agents have it (robot_rl/agents/networks.py)
    encoder: str = "cnn"  # "cnn" (from scratch) | "resnet10" | "resnet18" (frozen, pretrained: HIL-SERL's choice)
    encoder_weights: str | None = None  # local weights file of the pretrained ResNet
    cnn_channels: list[int] = field(default_factory=lambda: [16, 32, 32, 32])  # "cnn": 3x3 stride-2 convolutions
    image_feature_dim: int = 64  # per camera
    hidden_dims: list[int] = field(default_factory=lambda: [256])  # the head after the concatenated features
    # training
    lr: float = 3e-4
    steps: int = 2000  # gradient steps
    batch_size: int = 128
    # Negatives per positive in each batch: the frames are mostly negatives (an episode succeeds at
    # its end, if at all), and an unbalanced batch teaches "always no".
    negative_ratio: float = 1.0
    image_pad: int = 4  # DrQ random shift in pixels during training; 0 disables it
    heldout_fraction: float = 0.2  # of the episodes (of each class), when no separate held-out set is given
    target_precision: float = 0.95  # the threshold is the highest-recall one reaching this on held-out data
    # Proprio gate: success is forced to 0 unless gate_min <= state[gate_state_index] <= gate_max
    # (flatten_state layout: index 2 is the TCP height, so gate_min=0.05 reads "gripper above the
    # table"). None: no gate / no bound on that side.
    gate_state_index: int | None = None
    gate_min: float | None = None
    gate_max: float | None = None
    checkpoint: str = ""  # a saved classifier (.safetensors) to load as the reward
    # train-reward: a labels file or folder recorded by `robot-rl label` (robot_rl/data/labels.py) to
    # train on; "" collects frames labelled by the twin's ground truth instead
    labels: str = ""
    seed: int = 0

    def validate(self, key: str = "reward") -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        check(self.name == "classifier", "name", f"must be 'classifier' for SuccessClassifierConfig, got {self.name!r}")
        check(len(self.cameras) >= 1, "cameras", "needs at least one camera")
        validate_cameras_and_size(self.cameras, self.image_size, key)
        validate_image_encoder(self, key)
        check(min(self.hidden_dims, default=1) >= 1, "hidden_dims", f"sizes must be >= 1, got {self.hidden_dims}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        check(self.batch_size >= 2, "batch_size", f"must be >= 2 (a positive and a negative), got {self.batch_size}")
        check(self.negative_ratio > 0, "negative_ratio", f"must be > 0, got {self.negative_ratio}")
        check(self.image_pad >= 0, "image_pad", f"must be >= 0, got {self.image_pad}")
        check(0 < self.heldout_fraction < 1, "heldout_fraction", f"must be in (0, 1), got {self.heldout_fraction}")
        check(0 < self.target_precision <= 1, "target_precision", f"must be in (0, 1], got {self.target_precision}")
        if self.gate_state_index is None:
            check(self.gate_min is None and self.gate_max is None, "gate_state_index", "gate_min/max need an index")
        else:
            check(self.gate_state_index >= 0, "gate_state_index", f"must be >= 0, got {self.gate_state_index}")
            check(
                self.gate_min is not None or self.gate_max is not None, "gate_min", "a gate needs gate_min or gate_max"
            )
            if self.gate_min is not None and self.gate_max is not None:
                check(self.gate_min < self.gate_max, "gate_max", f"must be above gate_min={self.gate_min}")

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.image_size[0]), int(self.image_size[1])
