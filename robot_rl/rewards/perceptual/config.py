"""PerceptualRewardConfig: the perceptual reward's settings (the method, its feature extractors and
the choices behind them are described in model.py, which fits and scores it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.rewards.config import RewardConfig, validate_cameras_and_size
from robot_rl.sim.config import ConfigError, check_choice

FEATURE_EXTRACTORS = ("image_stats", "pixels", "resnet10", "resnet18")
RESNET_POOL = 2  # the ResNet feature map is average-pooled to RESNET_POOL x RESNET_POOL cells
RESNET_CHANNELS = 512  # channels of ResNet-10/18's last stage


@dataclass
class PerceptualRewardConfig(RewardConfig):
    """Hydra-friendly (plain fields only). Image sizes are [height, width], the same for every camera."""

    name: str = "perceptual"
    cameras: list[str] = field(default_factory=lambda: ["front"])  # a fixed camera sees the whole task
    image_size: list[int] = field(default_factory=lambda: [64, 64])  # [H, W]; score() resizes other frames to it
    feature_extractor: str = "image_stats"  # "image_stats" | "pixels" | "resnet10" | "resnet18" (model.py's docstring)
    row_bands: int = 32  # "image_stats": horizontal bands of the row profile (3 features each)
    histogram_strips: int = 4  # "image_stats": horizontal strips with a colour histogram each
    histogram_levels: int = 4  # "image_stats": levels per channel (histogram_levels^3 bins per strip)
    pixel_grid: int = 16  # "pixels": cells per side (3 * pixel_grid^2 features per camera)
    extractor_weights: str = ""  # "resnet10"/"resnet18": local weights file (.safetensors or a state dict)
    # K: steps each demo is split into. The steps are what the frames' features say, not named
    # phases; on pick_cube 4 and 5 score alike, 6 and more split the approach ever finer.
    num_steps: int = 4
    features_per_step: int = 16  # M: features selected per step (16 to 64 score alike on pick_cube)
    checkpoint: str = ""  # a fitted model (.safetensors): load_perceptual_reward(config.checkpoint, config)
    # train-reward: a folder of demo bags (`robot-rl demos`, the episode recorder) to fit on; ""
    # records `episodes` scripted-expert demos on the twin instead
    demos: str = ""
    # Nothing in the fit draws random numbers (exact segmentation, sorted selection): the seed only
    # seeds torch while the extractors are built, and travels with the config into the checkpoint.
    seed: int = 0
    batch_size: int = 256  # frames per feature-extraction pass

    def validate(self, key: str = "reward") -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        check(self.name == "perceptual", "name", f"must be 'perceptual' for PerceptualRewardConfig, got {self.name!r}")
        check(len(self.cameras) >= 1, "cameras", "needs at least one camera")
        validate_cameras_and_size(self.cameras, self.image_size, key)
        check_choice(self.feature_extractor, FEATURE_EXTRACTORS, f"{key}.feature_extractor")
        height = self.image_size[0]
        if self.feature_extractor == "image_stats":
            check(1 <= self.row_bands <= height, "row_bands", f"must be in [1, {height}] (rows), got {self.row_bands}")
            check(
                1 <= self.histogram_strips <= height,
                "histogram_strips",
                f"must be in [1, {height}] (rows), got {self.histogram_strips}",
            )
            check(
                2 <= self.histogram_levels <= 16,
                "histogram_levels",
                f"must be in [2, 16], got {self.histogram_levels}",
            )
        if self.feature_extractor == "pixels":
            check(
                1 <= self.pixel_grid <= min(self.image_size),
                "pixel_grid",
                f"must be in [1, {min(self.image_size)}] (the image size), got {self.pixel_grid}",
            )
        if self.feature_extractor in ("image_stats", "pixels"):
            check(not self.extractor_weights, "extractor_weights", f"{self.feature_extractor!r} loads no weights")
        else:
            check(
                bool(self.extractor_weights),
                "extractor_weights",
                f"{self.feature_extractor} needs a local weights file: a random network's features mean nothing",
            )
        check(
            self.num_steps >= 2,
            "num_steps",
            f"must be >= 2 (one step has nothing to progress through), got {self.num_steps}",
        )
        check(
            1 <= self.features_per_step <= self.feature_dim,
            "features_per_step",
            f"must be in [1, {self.feature_dim}] ({self.feature_extractor}'s features), got {self.features_per_step}",
        )
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.image_size[0]), int(self.image_size[1])

    @property
    def feature_dim(self) -> int:
        """D: features per frame, all cameras together."""
        per_camera = {
            "image_stats": 3 * self.row_bands + self.histogram_strips * self.histogram_levels**3,
            "pixels": 3 * self.pixel_grid**2,
        }.get(self.feature_extractor, RESNET_CHANNELS * RESNET_POOL**2)
        return per_camera * len(self.cameras)
