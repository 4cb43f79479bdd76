"""PreferenceRewardConfig: the preference reward's settings, online updates included (the model,
labellers, training and checkpoints are in model.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.agents.config import validate_image_encoder
from robot_rl.rewards.clip.config import CLIPRewardConfig
from robot_rl.rewards.config import RewardConfig, validate_cameras_and_size
from robot_rl.sim.config import ConfigError, check_choice

LABEL_SOURCES = ("oracle", "human", "vlm")
QUERY_SELECTIONS = ("random", "disagreement")
ORACLE_GROUND_TRUTHS = ("dense", "success")


@dataclass
class PreferenceRewardConfig(RewardConfig):
    """Hydra-friendly (plain fields only). Image sizes are [height, width], the same for every camera."""

    name: str = "preference"
    # inputs: the flattened state (robot_rl.spec.flatten_state) and/or camera images
    use_state: bool = True
    cameras: list[str] = field(default_factory=list)  # [] = state only
    image_size: list[int] = field(default_factory=lambda: [64, 64])  # [H, W]; score() resizes other frames to it
    encoder: str = "cnn"  # "cnn" (from scratch) | "resnet10" | "resnet18" (frozen, pretrained)
    encoder_weights: str | None = None  # local weights file of the pretrained ResNet
    cnn_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 32])
    image_feature_dim: int = 32  # per camera
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])
    ensemble_size: int = 3  # K members, each on its own bootstrap of the labels
    bootstrap: bool = True  # False: every member sees every label (the spread is then only from the initialisation)
    segment_length: int = 25  # observations per segment: 2.5 s at the twin's 10 Hz (Christiano et al.: 1-2 s clips)
    # training
    lr: float = 3e-4
    batch_size: int = 64  # labelled pairs per gradient step, per member
    steps_per_label_batch: int = 200  # gradient steps per update() (once per batch of new labels)
    normalize: bool = True  # standardise each member's reward over the labelled observations
    # labels
    label_source: str = "oracle"  # "oracle" (the twin's ground truth: simulation only), "human", "vlm"
    query_selection: str = "disagreement"  # "random" | "disagreement" (std of P across members)
    oracle_ground_truth: str = "dense"  # what the oracle compares: sum of info["oracle_dense_reward"] or of success
    oracle_mistake_prob: float = 0.0  # the simulated teacher flips a label with this probability
    oracle_equal_margin: float = 0.0  # |R1 - R2| <= margin (in ground-truth return): labelled equal
    # label_source "vlm": a zero-shot CLIP model labels the pairs (VLMLabeller in model.py): its
    # weights, its task prompts and the camera it looks at; vlm_equal_margin in mean VLM-RM reward
    vlm: CLIPRewardConfig = field(default_factory=CLIPRewardConfig)
    vlm_equal_margin: float = 0.0
    # label_source "human": a person at this terminal watches each pair's clips (written here, from
    # the camera human_camera) and answers (PersonLabeller in model.py)
    human_clips_dir: str = "preference_clips"
    human_camera: str = "front"
    checkpoint: str = ""  # a saved preference reward (.safetensors) to load
    seed: int = 0
    # online updates while the learner trains (robot_rl/train/reward_updates.py): every online_every
    # env steps, online_labels new labels on segments of the last online_episodes training episodes,
    # an update(), and the replay buffers relabelled in the background; 0 keeps the reward fixed
    online_every: int = 0
    online_labels: int = 50
    online_episodes: int = 50

    def validate(self, key: str = "reward") -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        check(self.name == "preference", "name", f"must be 'preference' for PreferenceRewardConfig, got {self.name!r}")
        check(self.use_state or len(self.cameras) >= 1, "use_state", "the reward reads nothing: no state, no camera")
        validate_cameras_and_size(self.cameras, self.image_size, key)
        validate_image_encoder(self, key)
        check(min(self.hidden_dims, default=1) >= 1, "hidden_dims", f"sizes must be >= 1, got {self.hidden_dims}")
        check(self.ensemble_size >= 1, "ensemble_size", f"must be >= 1, got {self.ensemble_size}")
        check(self.segment_length >= 1, "segment_length", f"must be >= 1, got {self.segment_length}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(
            self.steps_per_label_batch >= 1, "steps_per_label_batch", f"must be >= 1, got {self.steps_per_label_batch}"
        )
        check_choice(self.label_source, LABEL_SOURCES, f"{key}.label_source")
        check_choice(self.query_selection, QUERY_SELECTIONS, f"{key}.query_selection")
        check(
            self.query_selection != "disagreement" or self.ensemble_size >= 2,
            "query_selection",
            "'disagreement' needs ensemble_size >= 2 (one member cannot disagree with itself)",
        )
        check_choice(self.oracle_ground_truth, ORACLE_GROUND_TRUTHS, f"{key}.oracle_ground_truth")
        check(
            0 <= self.oracle_mistake_prob <= 0.5,
            "oracle_mistake_prob",
            f"must be in [0, 0.5], got {self.oracle_mistake_prob}",
        )
        check(self.oracle_equal_margin >= 0, "oracle_equal_margin", f"must be >= 0, got {self.oracle_equal_margin}")
        check(self.vlm_equal_margin >= 0, "vlm_equal_margin", f"must be >= 0, got {self.vlm_equal_margin}")
        if self.label_source == "vlm":
            self.vlm.validate(f"{key}.vlm")
        check(self.online_every >= 0, "online_every", f"must be >= 0 (0: no online updates), got {self.online_every}")
        check(self.online_labels >= 1, "online_labels", f"must be >= 1, got {self.online_labels}")
        check(self.online_episodes >= 1, "online_episodes", f"must be >= 1, got {self.online_episodes}")

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.image_size[0]), int(self.image_size[1])

    @property
    def uses_oracle_labels(self) -> bool:
        """The labels come from the twin's ground truth: say so in every log and report."""
        return self.label_source == "oracle"
