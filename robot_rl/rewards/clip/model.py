"""CLIPReward: the zero-shot vision-language reward VLM-RM (Rocamonde et al. 2023) with open_clip.

A camera frame and a task described in words give a reward with no training:

    x = CLIP_image(frame) / ||.||                  the frame's unit embedding
    g = normalise(mean_i CLIP_text(goal_i) / ||.||)          the goal ("a gripper holding a red cube")
    b = normalise(mean_j CLIP_text(baseline_j) / ||.||)      the baseline ("a gripper and a red cube")
    d = g - b,   P = alpha d d^T / ||d||^2 + (1 - alpha) I
    reward = 1 - 0.5 ||(x - g) P||^2

alpha = 0 is the plain CLIP reward x . g (cosine similarity: for unit x and g,
1 - 0.5 ||x - g||^2 = x . g). alpha = 1 keeps only the component of x - g along the goal-baseline
direction d ("goal-baseline regularisation": the parts of the embedding that do not tell goal from
baseline, such as background and lighting, no longer move the reward).

Prompt ensembles. The paper defines g for one prompt as a unit vector. For several prompts we take
the mean of the unit prompt embeddings and *normalise it again*, as CLIP's zero-shot classifier
does with prompt ensembles (Radford et al. 2021), so g and b stay unit vectors and every property
above holds for any number of prompts. The authors' code (AlignmentResearch/vlmrm) averages without
normalising again; with one prompt per side (the paper's experiments) both are the same, with
several the two differ by a scale and an offset at alpha = 0 (x . g_mean + (1 - ||g_mean||^2) / 2).

mode="success_prob" gives the zero-shot classifier's probability of "goal" instead: a softmax
over the logits s * [x . g, x . b] with the model's learned logit scale s. It is filled into
RewardOutput.success_prob in both modes.

Frames are preprocessed on the model's device as one batched tensor op (crop, resize, center crop,
normalise) that reproduces open_clip's own (PIL) inference transform from the model's
preprocessing config, so any open_clip architecture or checkpoint gets the image size, mean, std,
interpolation and resize mode it was trained with.
"""

from __future__ import annotations

import logging
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F

from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.clip.config import SCHEMA_PREFIXES, CLIPRewardConfig
from robot_rl.sim.config import ConfigError

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def goal_baseline_projection(goal: torch.Tensor, baseline: torch.Tensor, alpha: float) -> torch.Tensor:
    """P = alpha d d^T / ||d||^2 + (1 - alpha) I with d = goal - baseline: [D, D]."""
    d = goal - baseline
    identity = torch.eye(d.shape[-1], dtype=d.dtype, device=d.device)
    if alpha == 0.0:
        return identity  # d is not used (and may be zero)
    norm2 = d.dot(d)
    if float(norm2) < 1e-12:
        raise ValueError("goal and baseline embed to the same vector: the projection direction is undefined")
    return alpha * torch.outer(d, d) / norm2 + (1.0 - alpha) * identity


def vlm_rm_reward(
    image_embeddings: torch.Tensor, goal: torch.Tensor, baseline: torch.Tensor, alpha: float
) -> torch.Tensor:
    """VLM-RM reward 1 - 0.5 ||(x - g) P||^2 for image embeddings [B, D] (normalised here) and unit
    goal and baseline embeddings [D]. Returns [B]."""
    x = F.normalize(image_embeddings.float(), dim=-1)
    projection = goal_baseline_projection(goal.float(), baseline.float(), alpha)
    return 1.0 - 0.5 * ((x - goal.float()) @ projection).pow(2).sum(dim=-1)


def goal_probability(
    image_embeddings: torch.Tensor, goal: torch.Tensor, baseline: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """P(goal) of CLIP's zero-shot classifier over {goal, baseline}: softmax(s [x.g, x.b])[0] [B].
    Written as sigmoid(s (x.g - x.b)), the same number without overflow."""
    x = F.normalize(image_embeddings.float(), dim=-1)
    return torch.sigmoid(logit_scale * (x @ goal.float() - x @ baseline.float()))


def _pair(size: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[-1]))


class ClipImagePreprocess(torch.nn.Module):
    """open_clip's inference transform (open_clip.transform.image_transform, is_train=False) as one
    batched tensor op: uint8 [B, H, W, 3] -> float [B, 3, S_h, S_w], normalised. Built from a model's
    preprocess config (`model.visual.preprocess_cfg`: size, mean, std, interpolation, resize_mode,
    fill_color), so nothing is hard-coded. open_clip resizes PIL images; torch's antialiased
    bicubic/bilinear kernels are PIL's, so the two agree to within about one grey level (tested)."""

    def __init__(self, preprocess_cfg: dict):
        super().__init__()
        self.size = _pair(preprocess_cfg.get("size", 224))
        self.resize_mode = preprocess_cfg.get("resize_mode") or "shortest"
        # open_clip maps anything but "bilinear" to bicubic at inference ("random" is a training option)
        self.interpolation = "bilinear" if preprocess_cfg.get("interpolation") == "bilinear" else "bicubic"
        self.fill = float(preprocess_cfg.get("fill_color", 0)) / 255.0
        if self.resize_mode not in ("shortest", "longest", "squash"):
            raise ValueError(f"unknown open_clip resize_mode {self.resize_mode!r}")
        mean, std = preprocess_cfg["mean"], preprocess_cfg["std"]
        mean = [mean] * 3 if isinstance(mean, (int, float)) else list(mean)
        std = [std] * 3 if isinstance(std, (int, float)) else list(std)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def resized_shape(self, height: int, width: int) -> tuple[int, int]:
        """The size the frame is resized to before the center crop (or pad), as open_clip computes it."""
        target_h, target_w = self.size
        if self.resize_mode == "squash":
            return target_h, target_w
        if self.resize_mode == "shortest" and target_h == target_w:
            # torchvision Resize(int): the short side becomes S, the long side int(S * long / short)
            short, long = min(height, width), max(height, width)
            new_short, new_long = target_h, int(target_h * long / short)
            return (new_short, new_long) if height <= width else (new_long, new_short)
        # open_clip ResizeKeepRatio: shortest side (non-square target) or longest side fits the target
        ratio_h, ratio_w = height / target_h, width / target_w
        ratio = max(ratio_h, ratio_w) if self.resize_mode == "longest" else min(ratio_h, ratio_w)
        return round(height / ratio), round(width / ratio)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float().div_(255.0)  # [B, 3, H, W] in [0, 1]
        height, width = x.shape[-2:]
        new_shape = self.resized_shape(height, width)
        # PIL resizes the width, then the height, with a uint8 image in between: doing the same (one
        # axis at a time, clamped and rounded to 8 bits) keeps bicubic overshoot at sharp edges as PIL has it.
        # antialias=True selects PIL's kernels (bicubic a = -0.5, support widened when shrinking).
        for shape in ((height, new_shape[1]), new_shape):
            if shape != tuple(x.shape[-2:]):
                x = F.interpolate(x, size=shape, mode=self.interpolation, antialias=True, align_corners=False)
                x = x.mul_(255.0).round_().clamp_(0.0, 255.0).div_(255.0)
        x = self._center_crop_or_pad(x)
        return (x - self.mean) / self.std

    def _center_crop_or_pad(self, x: torch.Tensor) -> torch.Tensor:
        crop_h, crop_w = self.size
        height, width = x.shape[-2:]
        if crop_h > height or crop_w > width:  # only in "longest" mode; open_clip pads with fill_color
            pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
            x = F.pad(x, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2), value=self.fill)
            height, width = x.shape[-2:]
        top, left = int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))
        return x[..., top : top + crop_h, left : left + crop_w]


def load_open_clip(config: CLIPRewardConfig, device: torch.device) -> torch.nn.Module:
    """The open_clip model named by the config, in eval mode with frozen weights (see CLIPRewardConfig
    for where the weights come from). A missing checkpoint file raises FileNotFoundError."""
    weights, overrides = None, {}
    if config.checkpoint:
        path = Path(config.checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"reward.checkpoint: no CLIP weights file at {str(path)!r} (an open_clip/OpenAI checkpoint for "
                f"model {config.model!r}; see the README section on CLIP weights)"
            )
        weights = str(path)
        if config.pretrained:
            tag = open_clip.get_pretrained_cfg(config.model, config.pretrained)
            if not tag:
                raise ConfigError(
                    f"reward.pretrained: {config.pretrained!r} is not an open_clip tag of {config.model!r}; "
                    f"known: {open_clip.list_pretrained_tags_by_model(config.model)}"
                )
            # Weights from the file, everything the weights were trained with from the tag's entry. A
            # QuickGELU mismatch (OpenAI's weights in a GELU model) runs but gives wrong embeddings.
            overrides = dict(
                image_mean=tag.get("mean"),
                image_std=tag.get("std"),
                image_interpolation=tag.get("interpolation"),
                image_resize_mode=tag.get("resize_mode"),
                force_quick_gelu=bool(tag.get("quick_gelu", False)),
            )
    elif config.pretrained:
        weights = config.pretrained  # a tag: open_clip downloads it (needs network)
    if weights is None and not config.model.startswith(SCHEMA_PREFIXES):
        log.warning("CLIPReward: random-init %s (random_init=true): its rewards carry no meaning", config.model)
    model, _, _ = open_clip.create_model_and_transforms(config.model, pretrained=weights, device=device, **overrides)
    model.eval().requires_grad_(False)
    return model


class CLIPReward(RewardModel):
    """VLM-RM zero-shot reward from one camera (see the module docstring for the math).

    forward() returns rewards on the device the camera frames came from. Text embeddings are
    computed once here; a call costs one image-encoder pass per frame.
    """

    def __init__(self, config: CLIPRewardConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.cameras = (config.camera,)
        device = torch.device(config.device)
        self.clip = load_open_clip(config, device)
        self.preprocess = ClipImagePreprocess(open_clip.get_model_preprocess_cfg(self.clip)).to(device)
        tokenizer = open_clip.get_tokenizer(config.model)
        self.register_buffer("goal", self._embed_prompts(config.goal_prompts, tokenizer, device))
        self.register_buffer("baseline", self._embed_prompts(config.baseline_prompts, tokenizer, device))
        if config.mode == "projection" and config.alpha > 0:
            goal_baseline_projection(self.goal, self.baseline, config.alpha)  # fail now if goal == baseline
        # CLIP's learned softmax temperature, capped at 100 as in CLIP training
        self.register_buffer("logit_scale", self.clip.logit_scale.detach().float().exp().clamp(max=100.0).reshape(()))

    @torch.no_grad()
    def _embed_prompts(self, prompts: list[str], tokenizer, device: torch.device) -> torch.Tensor:
        """Unit mean of the prompts' unit text embeddings [D] (fp32, once: no autocast needed)."""
        tokens = tokenizer(prompts).to(device)
        embeddings = F.normalize(self.clip.encode_text(tokens).float(), dim=-1)
        return F.normalize(embeddings.mean(dim=0), dim=0)

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """The configured [top, left, height, width] window of uint8 [B, H, W, 3] frames."""
        if not self.config.crop:
            return images
        top, left, height, width = self.config.crop
        if top + height > images.shape[1] or left + width > images.shape[2]:
            raise ValueError(
                f"{self.config.camera}: crop {self.config.crop} does not fit {images.shape[1]}x{images.shape[2]} frames"
            )
        return images[:, top : top + height, left : left + width]

    @property
    def device(self) -> torch.device:
        return self.goal.device

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] frames (already cropped) -> unit image embeddings [B, D], fp32."""
        pixels = self.preprocess(images.to(self.device, non_blocking=True))  # fp32 preprocessing, as open_clip's
        # Autocast only on CUDA: on a CPU bf16 is slower than fp32 on most chips, and fp16 matmuls are unsupported.
        use_autocast = self.device.type == "cuda" and self.config.precision != "fp32"
        with torch.autocast("cuda", dtype=DTYPES[self.config.precision], enabled=use_autocast):
            features = self.clip.encode_image(pixels)
        return F.normalize(features.float(), dim=-1)

    @torch.no_grad()
    def forward(self, inputs: RewardInput) -> RewardOutput:
        frames = self.crop(inputs.images[self.config.camera])
        embeddings = torch.cat([self.embed_images(chunk) for chunk in frames.split(self.config.batch_size)])
        success_prob = goal_probability(embeddings, self.goal, self.baseline, self.logit_scale)
        if self.config.mode == "projection":
            reward = vlm_rm_reward(embeddings, self.goal, self.baseline, self.config.alpha)
        else:
            reward = success_prob
        return RewardOutput(reward=reward.to(frames.device), success_prob=success_prob.to(frames.device))

    def extra_repr(self) -> str:
        c = self.config
        return f"model={c.model!r}, camera={c.camera!r}, mode={c.mode!r}, alpha={c.alpha}, device={self.device}"
