"""CLIPRewardConfig: the zero-shot CLIP reward's settings (the model is in model.py).

Kept apart from the model so that composing a config does not import open_clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.rewards.config import RewardConfig
from robot_rl.sim.config import ConfigError

MODES = ("projection", "success_prob")
PRECISIONS = ("fp32", "bf16", "fp16")
SCHEMA_PREFIXES = ("local-dir:", "hf-hub:")  # open_clip model names that bring their own weights


@dataclass
class CLIPRewardConfig(RewardConfig):
    """A plain dataclass and a Hydra structured config. Weights come from exactly one of:
    `checkpoint` (a local file), `pretrained` (an open_clip tag, downloaded: needs network), or a
    `model` name with a schema ("local-dir:/path" with open_clip_config.json + weights, or
    "hf-hub:org/repo"). `random_init` is for tests and benchmarks only: its rewards mean nothing."""

    name: str = "clip"
    model: str = "ViT-B-32"  # open_clip architecture (open_clip.list_models()) or "local-dir:"/"hf-hub:" name
    checkpoint: str = ""  # local weights file (.pt/.bin/.safetensors); "" = none
    # open_clip pretrained tag (open_clip.list_pretrained()). Alone: downloaded when online. With
    # `checkpoint`: the file is that tag's weights; the tag supplies the preprocessing (mean, std,
    # resize mode) and QuickGELU setting it was trained with, from open_clip's table, offline.
    pretrained: str = ""
    random_init: bool = False
    goal_prompts: list[str] = field(default_factory=list)  # what success looks like; task-specific
    baseline_prompts: list[str] = field(default_factory=list)  # the scene without success
    alpha: float = 0.5  # goal-baseline regularisation strength in [0, 1] (0: plain CLIP cosine reward)
    camera: str = "front"  # the camera the reward looks at
    crop: list[int] = field(default_factory=list)  # [top, left, height, width] in pixels, applied first; [] = full
    mode: str = "projection"  # "projection" (VLM-RM reward) or "success_prob" (P(goal) of goal vs baseline)
    precision: str = "bf16"  # autocast dtype on CUDA: fp32, bf16 or fp16. On a CPU always fp32
    device: str = "cpu"
    batch_size: int = 64  # frames per forward pass; bounds the memory of a large relabelling call

    def validate(self, key: str = "reward") -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        check(self.name == "clip", "name", f"must be 'clip' for CLIPRewardConfig, got {self.name!r}")
        import open_clip  # here, not at the top: composing a config should not import open_clip

        has_schema = self.model.startswith(SCHEMA_PREFIXES)
        check(
            has_schema or self.model in open_clip.list_models(),
            "model",
            f"unknown open_clip architecture {self.model!r}; see open_clip.list_models(), e.g. 'ViT-B-32'",
        )
        has_weights = bool(self.checkpoint or self.pretrained or has_schema)
        check(
            has_weights or self.random_init,
            "checkpoint",
            "no CLIP weights: set checkpoint (a local file), pretrained (an open_clip tag; needs network) or "
            "model='local-dir:/path'; random_init=true is only for tests and benchmarks",
        )
        check(not (has_weights and self.random_init), "random_init", "must be false when weights are given")
        for name in ("checkpoint", "pretrained"):
            check(not (has_schema and getattr(self, name)), name, f"must be empty: model {self.model!r} has weights")
        check(len(self.goal_prompts) >= 1, "goal_prompts", "needs at least one prompt describing success")
        check(len(self.baseline_prompts) >= 1, "baseline_prompts", "needs at least one prompt (the scene, no success)")
        for name in ("goal_prompts", "baseline_prompts"):
            check(all(p.strip() for p in getattr(self, name)), name, "contains an empty prompt")
        check(0.0 <= self.alpha <= 1.0, "alpha", f"must be in [0, 1], got {self.alpha}")
        check(bool(self.camera), "camera", "needs a camera name")
        check(
            len(self.crop) == 0 or (len(self.crop) == 4 and min(self.crop[:2]) >= 0 and min(self.crop[2:]) >= 1),
            "crop",
            f"must be [] or [top, left, height, width] with top, left >= 0 and height, width >= 1, got {self.crop}",
        )
        check(self.mode in MODES, "mode", f"unknown value {self.mode!r}; valid: {', '.join(MODES)}")
        valid_precisions = ", ".join(PRECISIONS)
        check(self.precision in PRECISIONS, "precision", f"unknown value {self.precision!r}; valid: {valid_precisions}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
