"""The perceptual reward from a few demonstrations (Sermanet et al. 2017, "Unsupervised Perceptual
Rewards for Imitation Learning"): split the demos into K steps without labels, pick the features
that tell each step apart, and score new frames by how far along the steps they look.

    fit, from N <= 5 demos (uint8 frames, no labels):
      1. x_t = standardise(phi(frame_t))        phi: a fixed feature extractor (below), D features
      2. each demo alone is split into K contiguous steps minimising the within-step scatter
             sum_k sum_{t in step k} ||x_t - mean_{step k}(x)||^2        (exact, dynamic programming)
      3. per step k, every feature i gets the score  z_ki = |mu_ki - mu'_ki| / sqrt(s_ki^2 + s'_ki^2)
         (mu, s: mean and std over the step's frames of all demos; mu', s': over all other frames);
         the M features with the highest z_ki are step k's features S_k
      4. per step k and feature i in S_k, two Gaussians: N(mu_ki, s_ki) in the step, N(mu'_ki, s'_ki) outside

    score a frame x:
      l_k = (1 / M) sum_{i in S_k} [log N(x_i; mu_ki, s_ki) - log N(x_i; mu'_ki, s'_ki)]   step k's log-odds
      q   = softmax_k(l_k)                                                  which step the frame is in
      reward       = sum_k q_k * k / (K - 1)                                expected step, in [0, 1]
      success_prob = sigmoid(l_{K-1})                                       "in the last step" vs not

Choices, and why:
- Step 2 weights each step's feature variance by its length (the squared error of the best
  piecewise-constant fit). Summed unweighted (the plain reading of the paper's within-step
  variance), a 1-frame step has zero variance, so noisy or gradual demos get degenerate splits.
  Dynamic programming finds the exact optimum in O(K T^2) (T frames); the T^2 segment costs come
  from prefix sums and one [T+1, D] x [D, T+1] product, never a [T, T, D] array.
- Step 3 is a Fisher-like separation score of "this step" against "the rest" (the paper: features
  whose distribution within a step differs most from the other steps). Its blind spot: a feature
  that sets a step apart from the rest may not set it apart from a neighbour (red and green frames
  are both "not blue"). Scoring the least separation from any single other step fixes that on
  synthetic frames but did worse on pick_cube (held-out expert Spearman 0.73-0.87 against 0.77-0.85,
  perturbed episodes 0.70-0.84 against 0.84-0.87), so the paper's one-vs-rest score stays.
- Step 4 and l_k are a naive-Bayes log-likelihood ratio per step, *averaged* over the M features
  rather than summed: neighbouring pixels or channels are strongly correlated, and a sum counts
  the same evidence M times, which pushes every probability towards 0 or 1 and leaves less gradient
  between steps. The average keeps the log-odds on the scale of one feature (on pick_cube the sum
  scored a little lower: held-out expert Spearman 0.76-0.84 against 0.77-0.85).
- The reward is the expected step index under the step posterior q, not a staging
  "(highest completed step + the next step's probability) / K": the staging jumps by 1/K wherever the
  "completed" decision flips, while the expectation moves smoothly between neighbouring steps as
  their classifiers hand over, and is exactly k / (K - 1) when step k is certain. Later steps pay
  more, so a policy is pushed along the demos' order.
- success_prob is the last step's own classifier, sigmoid(l_{K-1}), rather than its share q_{K-1}
  of the posterior (ROC-AUC for the twin's success on pick_cube 0.80-0.92 against 0.81-0.82). Either
  is a weak success detector: the last step is whatever the demos' last frames look like, and a
  success classifier (rewards/classifier/model.py) is the tool for a sparse success reward.

Feature extractors (`feature_extractor`), all fixed (nothing is trained, so a handful of demos is enough):
- "image_stats" (default): per camera, the mean RGB of each of `row_bands` horizontal bands of the
  frame (a row profile), and a joint RGB colour histogram (`histogram_levels` levels per channel)
  of each of `histogram_strips` horizontal strips. Both summarise whole rows, so they do not move
  when the scene shifts sideways (pick_cube's cube lands anywhere across the table) but follow what
  goes up and down and what covers what (the arm comes down, the fingers hide the cube, it rises).
  No weights, no download, a few ms per batch on a CPU. On pick_cube (5 demos, front camera
  64x64, three sets of demos) the Spearman correlation with the true progress on held-out expert
  episodes is 0.77-0.86 with these, 0.32-0.56 with a 16 x 16 grid of cell means ("pixels"): a
  grid cell sees the cube or the arm only where the demos put them (bench/perceptual_fidelity.py).
- "pixels": each camera's frame averaged over a `pixel_grid` x `pixel_grid` grid of cells (RGB
  means). Keeps the layout; for scenes where things start where the demos had them.
- "resnet10" / "resnet18": a frozen ImageNet ResNet from a local weights file (as the agents'
  PretrainedEncoder loads it, robot_rl/agents/networks.py), its last feature map average-pooled to
  2 x 2 cells (2048 features), the closest to the paper's pretrained Inception features that works
  offline. Needs `extractor_weights`: a random trunk's features mean nothing. None of the fixed
  extractors is invariant to lighting or camera moves the demos did not show.

Contents: the feature extractors, segmentation, feature selection, the model (a RewardModel),
fitting, and checkpoints (one .safetensors file, no pickles); the config is in config.py.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.networks import IMAGENET_MEAN, IMAGENET_STD, _FrozenBackbone, resnet_trunk, to_float_nchw
from robot_rl.data.tree import load_tree, save_tree
from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.perceptual.config import RESNET_POOL, PerceptualRewardConfig
from robot_rl.sim.config import ConfigError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "robot_rl.perceptual_reward/1"
# Floor of a feature's global std, as a fraction of the mean std over features: a band or cell the
# demos never change (background), or a colour they never show, has std ~0, and standardising it
# would turn render noise or a slight lighting change into a huge z value.
MIN_GLOBAL_STD_FRACTION = 0.1
# Floor of the per-step Gaussians' std, in standardised units: a step of near-identical frames
# (the arm at rest) would otherwise give a zero-width Gaussian and infinite log-likelihoods.
MIN_STEP_STD = 0.1
# Fields that decide the features and the fitted statistics' shapes: a checkpoint only loads into a
# config that agrees on these (and on its extractor's own fields, EXTRACTOR_FIELDS).
FEATURE_FIELDS = ("cameras", "image_size", "feature_extractor", "num_steps", "features_per_step")
EXTRACTOR_FIELDS = {"image_stats": ("row_bands", "histogram_strips", "histogram_levels"), "pixels": ("pixel_grid",)}


# --- feature extractors: uint8 [B, H, W, 3] -> float [B, D_camera], fixed -----------------------
class ImageStatsFeatures(nn.Module):
    """Row profile and per-strip colour histograms (see the module docstring): [B, 3 R + S L^3]."""

    def __init__(self, row_bands: int, histogram_strips: int, histogram_levels: int):
        super().__init__()
        self.row_bands, self.strips, self.levels = row_bands, histogram_strips, histogram_levels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch, height = images.shape[:2]
        profile = F.adaptive_avg_pool2d(to_float_nchw(images), (self.row_bands, 1)).flatten(1)
        # Histograms by counting: each pixel's colour bin, offset by its frame and strip, into one
        # bincount (a one-hot [B, H W, L^3] tensor would take ~250 MB for 256 frames of 64x64).
        levels, bins = self.levels, self.levels**3
        q = (images.long() * levels) // 256  # [B, H, W, 3], each channel in 0..L-1
        colour = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]  # [B, H, W]
        strip_of_row = torch.arange(height, device=images.device) * self.strips // height  # [H]
        cell = (torch.arange(batch, device=images.device)[:, None] * self.strips + strip_of_row) * bins  # [B, H]
        counts = torch.bincount((colour + cell[..., None]).flatten(), minlength=batch * self.strips * bins)
        pixels_per_strip = torch.bincount(strip_of_row, minlength=self.strips) * images.shape[2]
        histograms = counts.view(batch, self.strips, bins).float() / pixels_per_strip[:, None]
        return torch.cat([profile, histograms.flatten(1)], dim=1)


class PixelFeatures(nn.Module):
    """Mean RGB (in [0, 1]) of each cell of a grid x grid partition of the frame."""

    def __init__(self, grid: int):
        super().__init__()
        self.grid = grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(to_float_nchw(images), self.grid).flatten(1)


class ResNetFeatures(nn.Module):
    """A frozen pretrained ResNet's last feature map (ImageNet normalisation), average-pooled to
    RESNET_POOL x RESNET_POOL cells, which keeps a coarse spatial layout (where the arm is)."""

    def __init__(self, arch: str, weights_path: str):
        super().__init__()
        self.backbone = _FrozenBackbone(resnet_trunk(arch, weights_path))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (to_float_nchw(images) - self.mean) / self.std
        return F.adaptive_avg_pool2d(self.backbone(x), RESNET_POOL).flatten(1)


def make_feature_extractor(config: PerceptualRewardConfig) -> nn.Module:
    if config.feature_extractor == "image_stats":
        return ImageStatsFeatures(config.row_bands, config.histogram_strips, config.histogram_levels)
    if config.feature_extractor == "pixels":
        return PixelFeatures(config.pixel_grid)
    return ResNetFeatures(config.feature_extractor, config.extractor_weights)


# --- step 2: unsupervised segmentation ------------------------------------------------------------
def segment_costs(features: np.ndarray) -> np.ndarray:
    """cost[i, j] = sum over frames i..j-1 of ||x_t - their mean||^2, for 0 <= i < j <= T
    (+inf elsewhere): [T + 1, T + 1]. With prefix sums P_j = sum_{t<j} x_t and Q_j = sum_{t<j} ||x_t||^2,
    the scatter of a segment is (Q_j - Q_i) - ||P_j - P_i||^2 / (j - i), and ||P_j - P_i||^2 comes from
    the Gram matrix P P^T: one [T+1, D] x [D, T+1] product for all T^2 segments."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)  # centred: the prefix sums stay small, the subtraction below stays exact enough
    prefix = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    prefix_sq = np.concatenate([[0.0], np.cumsum((x * x).sum(axis=1))])
    gram = prefix @ prefix.T
    sq_norm = np.diag(gram)
    length = np.arange(len(prefix))[None, :] - np.arange(len(prefix))[:, None]  # j - i
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = (prefix_sq[None, :] - prefix_sq[:, None]) - (sq_norm[None, :] + sq_norm[:, None] - 2 * gram) / length
    cost = np.maximum(cost, 0.0)  # rounding can leave -1e-12 for a constant segment
    cost[length <= 0] = np.inf
    return cost


def segment_demo(features: np.ndarray, num_steps: int) -> np.ndarray:
    """Split T frames [T, D] into num_steps contiguous, non-empty steps with the least total
    within-step scatter (exactly, by dynamic programming). Returns the boundaries, int [K + 1]:
    step k is frames boundaries[k] .. boundaries[k + 1] - 1 (boundaries[0] = 0, boundaries[K] = T)."""
    n_frames = len(features)
    if num_steps < 1 or n_frames < num_steps:
        raise ValueError(f"cannot split {n_frames} frames into {num_steps} non-empty steps")
    cost = segment_costs(features)
    # best[k, j]: the least scatter of frames 0..j-1 split into k + 1 steps; start[k, j]: where its last step starts
    best = np.full((num_steps, n_frames + 1), np.inf)
    start = np.zeros((num_steps, n_frames + 1), dtype=np.int64)
    best[0] = cost[0]
    for k in range(1, num_steps):
        total = best[k - 1][:, None] + cost  # [i, j]: k steps over 0..i-1, then one step i..j-1
        start[k] = np.argmin(total, axis=0)
        best[k] = total[start[k], np.arange(n_frames + 1)]
    boundaries = [n_frames]
    for k in range(num_steps - 1, 0, -1):
        boundaries.append(int(start[k, boundaries[-1]]))
    return np.array([0, *reversed(boundaries)], dtype=np.int64)


def step_labels(boundaries: np.ndarray) -> np.ndarray:
    """The step of each frame, int [T], from segment_demo's boundaries."""
    return np.repeat(np.arange(len(boundaries) - 1), np.diff(boundaries))


# --- step 3 and 4: feature selection and the per-step Gaussians --------------------------------
@dataclass
class StepGaussians:
    """Per step k (rows) and selected feature (columns, M of them): the feature's index and its
    Gaussian in the step and outside it. All [K, M]."""

    features: np.ndarray  # int64, indices into the D standardised features
    in_mean: np.ndarray
    in_std: np.ndarray
    out_mean: np.ndarray
    out_std: np.ndarray
    separation: np.ndarray  # the selection score z of each selected feature


def select_step_features(features: np.ndarray, labels: np.ndarray, num_steps: int, per_step: int) -> StepGaussians:
    """For each step k: mean and std of every feature over the frames in step k and over all other
    frames (stds floored at MIN_STEP_STD), the separation z = |mu_in - mu_out| / sqrt(s_in^2 + s_out^2),
    and the per_step features of highest z (ties: the lower index). features [N, D], labels int [N].
    One step against all others, as the paper: two neighbouring steps may pick the same feature if
    it sets both apart from the rest (see the module docstring)."""
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    rows = {name: [] for name in ("features", "in_mean", "in_std", "out_mean", "out_std", "separation")}
    for k in range(num_steps):
        inside = labels == k
        if not inside.any() or inside.all():
            raise ValueError(f"step {k} has {int(inside.sum())} of {len(labels)} frames: it needs some, not all")
        in_mean, out_mean = x[inside].mean(axis=0), x[~inside].mean(axis=0)
        in_std = np.maximum(x[inside].std(axis=0), MIN_STEP_STD)
        out_std = np.maximum(x[~inside].std(axis=0), MIN_STEP_STD)
        separation = np.abs(in_mean - out_mean) / np.sqrt(in_std**2 + out_std**2)
        chosen = np.argsort(-separation, kind="stable")[:per_step]
        for name, value in (
            ("features", chosen),
            ("in_mean", in_mean[chosen]),
            ("in_std", in_std[chosen]),
            ("out_mean", out_mean[chosen]),
            ("out_std", out_std[chosen]),
            ("separation", separation[chosen]),
        ):
            rows[name].append(value)
    return StepGaussians(**{name: np.stack(value) for name, value in rows.items()})


def gaussian_log_pdf(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mean) / std).pow(2) - std.log() - 0.5 * math.log(2 * math.pi)


# --- the model ------------------------------------------------------------------------------------
class PerceptualReward(RewardModel):
    """Frames of `config.cameras` -> the expected step along the demos, in [0, 1] (see the module
    docstring). Built empty from a config; fit_perceptual_reward or load_perceptual_reward fill it."""

    def __init__(self, config: PerceptualRewardConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.cameras = tuple(sorted(config.cameras))
        self.image_size = config.image_hw
        with torch.random.fork_rng(devices=[]):  # without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.extractors = nn.ModuleDict({cam: make_feature_extractor(config) for cam in self.cameras})
        k, m, d = config.num_steps, config.features_per_step, config.feature_dim
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_std", torch.ones(d))
        self.register_buffer("step_features", torch.zeros(k, m, dtype=torch.long))
        for name in ("in_mean", "out_mean"):
            self.register_buffer(name, torch.zeros(k, m))
        for name in ("in_std", "out_std"):
            self.register_buffer(name, torch.ones(k, m))
        self.register_buffer("step_value", torch.linspace(0.0, 1.0, k))  # k / (K - 1)

    def fitted_state(self) -> dict[str, torch.Tensor]:
        """What fitting sets (the extractors' weights stay in their own file)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("extractors.")}

    @torch.no_grad()
    def features(self, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """uint8 [B, H, W, 3] per camera -> standardised features [B, D] (cameras in sorted order)."""
        device = self.feature_mean.device
        per_camera = []
        for cam in self.cameras:
            x = images[cam]
            if tuple(x.shape[1:3]) != self.image_size:
                raise ValueError(
                    f"camera {cam!r}: images are {x.shape[1]}x{x.shape[2]} (HxW), "
                    f"the perceptual reward was built for {self.image_size[0]}x{self.image_size[1]} (reward.image_size)"
                )
            if len(x) == 0:  # an empty batch (e.g. relabelling an empty buffer) scores to nothing
                return torch.zeros(0, self.config.feature_dim, device=device)
            per_camera.append(
                torch.cat([self.extractors[cam](chunk.to(device)) for chunk in x.split(self.config.batch_size)])
            )
        return (torch.cat(per_camera, dim=-1).float() - self.feature_mean) / self.feature_std

    def step_log_odds(self, features: torch.Tensor) -> torch.Tensor:
        """l_k for standardised features [B, D]: [B, K], step k's naive-Bayes log-likelihood ratio
        "in step k" vs "not", averaged over its M features."""
        x = features[:, self.step_features]  # [B, K, M]
        ratio = gaussian_log_pdf(x, self.in_mean, self.in_std) - gaussian_log_pdf(x, self.out_mean, self.out_std)
        return ratio.mean(dim=-1)

    @torch.no_grad()
    def forward(self, inputs: RewardInput) -> RewardOutput:
        log_odds = self.step_log_odds(self.features(inputs.images))
        reward = torch.softmax(log_odds, dim=-1) @ self.step_value
        device = inputs.images[self.cameras[0]].device
        return RewardOutput(reward=reward.to(device), success_prob=torch.sigmoid(log_odds[:, -1]).to(device))

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"cameras={list(self.cameras)}, extractor={c.feature_extractor!r}, K={c.num_steps}, M={c.features_per_step}"
        )


# --- fitting --------------------------------------------------------------------------------------
def _check_demos(config: PerceptualRewardConfig, demos: Sequence) -> list[dict[str, np.ndarray]]:
    """Each demo as {camera: uint8 [T, H, W, 3]}; a bare array is accepted with one camera."""
    if len(demos) < 1:
        raise ValueError("fit_perceptual_reward needs at least 1 demo, got 0")
    h, w = config.image_hw
    checked = []
    for n, demo in enumerate(demos):
        if not isinstance(demo, Mapping):
            if len(config.cameras) != 1:
                raise ValueError(f"demo {n}: give a {{camera: frames}} dict; the config reads {config.cameras}")
            demo = {config.cameras[0]: demo}
        lengths, frames_of = set(), {}
        for cam in config.cameras:
            if cam not in demo:
                raise KeyError(f"demo {n}: the config reads camera {cam!r}; the demo has {sorted(demo)}")
            frames = np.asarray(demo[cam])
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise ValueError(
                    f"demo {n} camera {cam!r}: expected uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}"
                )
            if frames.shape[1:3] != (h, w):
                raise ValueError(
                    f"demo {n} camera {cam!r}: frames are {frames.shape[1]}x{frames.shape[2]} (HxW); "
                    f"the config's reward.image_size is [{h}, {w}]"
                )
            lengths.add(len(frames))
            frames_of[cam] = frames
        if len(lengths) != 1:
            raise ValueError(f"demo {n}: the cameras have different numbers of frames {sorted(lengths)}")
        n_frames = lengths.pop()
        if n_frames < config.num_steps:
            raise ValueError(
                f"demo {n} has {n_frames} frames, fewer than reward.num_steps={config.num_steps}: "
                "each step needs at least one frame"
            )
        checked.append(frames_of)
    return checked


def fit_perceptual_reward(
    config: PerceptualRewardConfig,
    demo_frames: Sequence[Mapping[str, np.ndarray] | np.ndarray],
    device: torch.device | str = "cpu",
) -> tuple[PerceptualReward, dict]:
    """Fit the reward from a few demos (the paper uses 1 to 5; nothing here is trained, so more
    only cost time). demo_frames: one {camera: uint8 [T_i, H, W, 3]} per demo (a bare array when
    the config has one camera), frames in time order. Returns (model, report): the report has
    each demo's step boundaries and the selected features with their separation scores."""
    config.validate()
    demos = _check_demos(config, demo_frames)
    model = PerceptualReward(config).to(device).eval()
    per_demo = [
        model.features({cam: torch.from_numpy(np.ascontiguousarray(d[cam])) for cam in model.cameras})
        .double()
        .cpu()
        .numpy()
        for d in demos
    ]  # raw features: the standardisation is still the identity
    raw = np.concatenate(per_demo)
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    std = np.maximum(std, MIN_GLOBAL_STD_FRACTION * std.mean() + 1e-12)
    standardised = [(f - mean) / std for f in per_demo]

    boundaries = [segment_demo(f, config.num_steps) for f in standardised]
    labels = np.concatenate([step_labels(b) for b in boundaries])
    gaussians = select_step_features(np.concatenate(standardised), labels, config.num_steps, config.features_per_step)

    def tensor(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=model.feature_mean.device)

    model.feature_mean.copy_(tensor(mean))
    model.feature_std.copy_(tensor(std))
    model.step_features.copy_(tensor(gaussians.features, torch.long))
    for name in ("in_mean", "in_std", "out_mean", "out_std"):
        getattr(model, name).copy_(tensor(getattr(gaussians, name)))

    report = {
        "demos": len(demos),
        "frames": [len(f) for f in per_demo],
        "boundaries": [b.tolist() for b in boundaries],
        "step_frames": np.bincount(labels, minlength=config.num_steps).tolist(),
        "mean_separation": gaussians.separation.mean(axis=1).round(3).tolist(),  # per step
        "selected_features": gaussians.features.tolist(),
    }
    log.info("perceptual reward: %d demos split at %s", len(demos), report["boundaries"])
    return model, report


# --- checkpoints ----------------------------------------------------------------------------------
def save_perceptual_reward(model: PerceptualReward, path: Path | str, report: dict | None = None) -> Path:
    """One .safetensors file: the fitted statistics, and as JSON metadata the config and the fit
    report. A ResNet extractor's weights are not copied: they load from config.extractor_weights."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = {"format": CHECKPOINT_FORMAT, "config": asdict(model.config), "report": report or {}}
    save_tree(path, {**tree, "state_dict": model.fitted_state()})
    return path


def load_perceptual_reward(
    path: Path | str, config: PerceptualRewardConfig | None = None, device: torch.device | str = "cpu"
) -> tuple[PerceptualReward, dict]:
    """(model, fit report) from a checkpoint. With `config` (e.g. the run's reward config), the
    fields that decide the features (FEATURE_FIELDS, EXTRACTOR_FIELDS) must match the checkpoint's,
    or this fails naming them; the rest (batch_size, a moved extractor_weights file) is the config's."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"perceptual reward checkpoint: no such file {path}")
    tree = load_tree(path)
    if tree.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a perceptual reward checkpoint (format {tree.get('format')!r})")
    known = {f.name for f in fields(PerceptualRewardConfig)}
    saved = PerceptualRewardConfig(**{k: v for k, v in tree["config"].items() if k in known})
    if config is not None:
        names = FEATURE_FIELDS + EXTRACTOR_FIELDS.get(saved.feature_extractor, ())
        differences = [
            f"{name}: checkpoint {getattr(saved, name)}, config {getattr(config, name)}"
            for name in names
            if getattr(saved, name) != getattr(config, name)
        ]
        if differences:
            raise ConfigError(f"reward.checkpoint {path} does not fit the reward config: " + "; ".join(differences))
    model = PerceptualReward(config if config is not None else saved)
    missing, unexpected = model.load_state_dict(tree["state_dict"], strict=False)
    missing = [k for k in missing if not k.startswith("extractors.")]
    if missing or unexpected:
        raise ValueError(f"{path}: missing entries {missing}, unexpected entries {unexpected}")
    return model.to(device).eval(), tree["report"]
