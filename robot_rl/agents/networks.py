"""Building blocks shared by the agents: LayerNorm MLPs, a vectorised critic ensemble, image
encoders (a small CNN trained from scratch, or a frozen pretrained ResNet), the observation
encoder that fuses cameras with proprio + wrench, and the tanh-squashed Gaussian actor.

Images arrive as uint8 [B, H, W, 3] (the Batch / spec layout); encoders turn them into float
NCHW in [0, 1] themselves. Permuting NHWC to NCHW gives a channels-last view for free, which is
the layout oneDNN's CPU convolutions prefer, so no copy is made before the first convolution.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.spec import state_indices_without

log = logging.getLogger(__name__)

ENCODERS = ("cnn", "resnet10", "resnet18")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_STATE_STD = 1e-2  # floor of the fitted state std (units of the state: m, N, ...)


def mlp(in_dim: int, hidden_dims: list[int], out_dim: int) -> nn.Sequential:
    """Linear -> LayerNorm -> ReLU per hidden layer, then a plain Linear (RLPD's LayerNorm MLP)."""
    layers: list[nn.Module] = []
    for dim in hidden_dims:
        layers += [nn.Linear(in_dim, dim), nn.LayerNorm(dim), nn.ReLU()]
        in_dim = dim
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


# --- the vectorised ensemble -------------------------------------------------------------------
class EnsembleLinear(nn.Module):
    """E independent linear layers evaluated in one batched matmul: weight [E, in, out].

    forward(x): x is [B, in] (the same input for every member) or [E, B, in]; returns [E, B, out].
    `members` (a LongTensor of indices) evaluates only those members, e.g. REDQ's target subset.
    Each member is initialised like nn.Linear (uniform in +-1/sqrt(in)).
    """

    def __init__(self, num_members: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(num_members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        if x.dim() == 2:  # the same input for every member: a stride-0 view, no copy
            x = x.expand(weight.shape[0], *x.shape)
        return torch.baddbmm(bias, x, weight)  # bias + x @ weight, per member


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dimension with a separate affine (scale, shift) per member."""

    def __init__(self, num_members: int, features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_members, 1, features))
        self.bias = nn.Parameter(torch.zeros(num_members, 1, features))

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return torch.addcmul(bias, F.layer_norm(x, x.shape[-1:]), weight)


class EnsembleMLP(nn.Module):
    """E independent `mlp`s (Linear -> LayerNorm -> ReLU per hidden layer) in one batched
    forward: [B, in] -> [E, B, out]."""

    def __init__(self, num_members: int, in_dim: int, hidden_dims: list[int], out_dim: int):
        super().__init__()
        self.num_members = num_members
        dims = [in_dim, *hidden_dims]
        self.linears = nn.ModuleList(EnsembleLinear(num_members, i, o) for i, o in zip(dims, hidden_dims, strict=False))
        self.norms = nn.ModuleList(EnsembleLayerNorm(num_members, d) for d in hidden_dims)
        self.out = EnsembleLinear(num_members, dims[-1], out_dim)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        for linear, norm in zip(self.linears, self.norms, strict=True):
            x = F.relu(norm(linear(x, members), members))
        return self.out(x, members)


class Critic(nn.Module):
    """The Q ensemble: Q_e(features, action) for e = 1..E, as [E, B]."""

    def __init__(self, feature_dim: int, action_dim: int, hidden_dims: list[int], num_critics: int):
        super().__init__()
        self.net = EnsembleMLP(num_critics, feature_dim + action_dim, hidden_dims, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None):
        return self.net(torch.cat([features, action], dim=-1), members).squeeze(-1)


# --- image encoders --------------------------------------------------------------------------
def to_float_nchw(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [0, 1] (channels-last strides, no copy before)."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


class CNNEncoder(nn.Module):
    """A small CNN trained from scratch (the CPU default): 3x3 convolutions with stride 2 and
    ReLU (by default 8-16-32-32 channels: a 128x128 image becomes 32 x 8 x 8), then DrQ's
    projection: Linear -> LayerNorm -> tanh. Stride 2 everywhere and few channels early (DrQ
    uses 32 channels and stride 1 after the first layer) keep an update with two 128x128 cameras
    at batch 256 affordable on a 2-core CPU: the first layers, at full resolution, cost most."""

    def __init__(self, image_size: tuple[int, int], feature_dim: int, channels: tuple[int, ...] = (8, 16, 32, 32)):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for ch in channels:
            layers += [nn.Conv2d(in_ch, ch, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            in_ch = ch
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            flat_dim = self.convs(torch.zeros(1, 3, *image_size)).numel()
        self.projection = nn.Sequential(nn.Linear(flat_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(self.convs(to_float_nchw(images)).flatten(1))


class _FrozenBackbone(nn.Module):
    """Holds a pretrained trunk that never trains: no gradients, BatchNorm always in eval mode."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.trunk = trunk.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> _FrozenBackbone:
        return self  # stays in eval mode whatever the parent module does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.trunk(x)


def resnet_trunk(arch: str, weights_path: str | None) -> nn.Sequential:
    """torchvision's ResNet-18, or ResNet-10 (BasicBlock, one block per stage, as in SERL), up to
    its last stage (stride 32, 512 channels), with weights from a local file (.safetensors or a
    torch state dict read with weights_only=True); the classifier's keys (fc.*) are ignored."""
    from torchvision.models.resnet import BasicBlock, ResNet, resnet18

    model = resnet18(weights=None) if arch == "resnet18" else ResNet(BasicBlock, [1, 1, 1, 1])
    if weights_path is None:
        log.warning("%s encoder without weights: a frozen random backbone (tests only)", arch)
    else:
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"encoder_weights: no such file {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(f"encoder_weights {path}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    return nn.Sequential(*list(model.children())[:-2])  # drop avgpool and fc


class PretrainedEncoder(nn.Module):
    """A frozen pretrained ResNet (ImageNet normalisation) and a trainable projection of its
    flattened feature map (keeping the spatial layout, which SERL found matters)."""

    def __init__(self, arch: str, weights_path: str | None, image_size: tuple[int, int], feature_dim: int):
        super().__init__()
        self.backbone = _FrozenBackbone(resnet_trunk(arch, weights_path))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            flat_dim = self.backbone(torch.zeros(1, 3, *image_size)).numel()
        self.projection = nn.Sequential(nn.Linear(flat_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (to_float_nchw(images) - self.mean) / self.std
        return self.projection(self.backbone(x).flatten(1))


class ObservationEncoder(nn.Module):
    """Everything the actor and the critics see, as one feature vector: the flattened state
    (proprio + wrench), standardised; with cameras, an image encoder per camera and the state
    through Linear -> LayerNorm -> tanh, all concatenated (SERL's EncodingWrapper)."""

    @classmethod
    def from_config(cls, config, state_dim: int, cameras: Mapping[str, tuple[int, int]] | None):
        """From a LearnedAgentConfig's encoder fields."""
        return cls(
            state_dim,
            dict(cameras or {}),
            encoder=config.encoder,
            encoder_weights=config.encoder_weights,
            image_feature_dim=config.image_feature_dim,
            state_feature_dim=config.state_feature_dim,
            cnn_channels=config.cnn_channels,
            ignored_state=config.ignored_state,
        )

    def __init__(
        self,
        state_dim: int,
        cameras: dict[str, tuple[int, int]],
        encoder: str = "cnn",
        encoder_weights: str | None = None,
        image_feature_dim: int = 50,
        state_feature_dim: int = 64,
        cnn_channels: tuple[int, ...] = (8, 16, 32, 32),
        ignored_state: Sequence[str] = (),
    ):
        """ignored_state: entries of the state (spec.STATE_DIMS' keys, "task") the encoder does not read."""
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder: unknown value {encoder!r}; valid: {', '.join(ENCODERS)}")
        self.cameras = sorted(cameras)
        self.images = nn.ModuleDict(
            {
                cam: CNNEncoder(tuple(cameras[cam]), image_feature_dim, tuple(cnn_channels))
                if encoder == "cnn"
                else PretrainedEncoder(encoder, encoder_weights, tuple(cameras[cam]), image_feature_dim)
                for cam in self.cameras
            }
        )
        # The state entries read, as a buffer so that checkpoints carry the choice.
        index = state_indices_without(ignored_state, state_dim)
        if not index and not self.cameras:
            raise ValueError(f"ignored_state={list(ignored_state)} leaves the agent nothing to observe")
        self.register_buffer("state_index", torch.tensor(index))
        state_dim = len(index)
        # With no camera there is nothing to fuse: the (standardised) state goes straight to the
        # actor's and the critics' MLPs, as in SERL's state-based agents. The projection, trained by
        # the critic alone and seen detached by the actor, leaves the actor ~2-3 cm off reach's goals:
        # eval success after 4k steps (50 episodes) 36% -> 50% with 20 demos, 42-46% -> 60% with 50.
        self.state: nn.Module = (
            nn.Sequential(nn.Linear(state_dim, state_feature_dim), nn.LayerNorm(state_feature_dim), nn.Tanh())
            if self.cameras
            else nn.Identity()
        )
        # Per-dimension standardisation of the state, identity until fit_state_normalization().
        # The raw state mixes metres (TCP and goal positions vary by ~0.1) with newtons (the
        # wrench varies by ~3 N while the arm moves): unscaled, the first layer's pre-activations, and
        # the LayerNorm after it, are dominated by the wrench, and the positions that reaching and
        # grasping need are a ~1% part (state-based reach, 4k steps: 4% eval success unscaled, 50%
        # standardised). Buffers, so checkpoints and weight pushes carry them.
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))
        self.output_dim = (state_feature_dim if self.cameras else state_dim) + image_feature_dim * len(self.cameras)

    @torch.no_grad()
    def fit_state_normalization(self, states: torch.Tensor) -> None:
        """Standardise with the mean and std of `states` [N, S]; dimensions that barely vary
        (std below MIN_STATE_STD, e.g. a held gripper) are centred, not blown up."""
        states = states[:, self.state_index]
        self.state_mean.copy_(states.mean(dim=0))
        self.state_std.copy_(states.std(dim=0, correction=0).clamp_min(MIN_STATE_STD))

    def forward(self, state: torch.Tensor, images: dict[str, torch.Tensor]) -> torch.Tensor:
        state = (state[:, self.state_index] - self.state_mean) / self.state_std
        return torch.cat([self.state(state), *(self.images[cam](images[cam]) for cam in self.cameras)], dim=-1)


# --- the actor -------------------------------------------------------------------------------
def tanh_gaussian_log_prob(u: torch.Tensor, noise: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(tanh(u)) for u = mean + exp(log_std) * noise, summed over the last dimension:
    log N(u) minus log|d tanh(u)/du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), the
    numerically stable form (no log of a number near 0)."""
    log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    return log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


class TanhGaussianActor(nn.Module):
    """pi(a|s) = tanh(N(mu(s), sigma(s))), log-std squashed into [log_std_min, log_std_max] by a
    tanh (as in CleanRL's and DrQ's SAC)."""

    def __init__(
        self,
        feature_dim: int,
        action_dim: int,
        hidden_dims: list[int],
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
    ):
        super().__init__()
        self.net = mlp(feature_dim, hidden_dims, 2 * action_dim)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(features).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def sample(self, features: torch.Tensor, generator: torch.Generator | None = None):
        """A reparameterised sample and its log-probability (summed over action dimensions)."""
        mean, log_std = self(features)
        std = log_std.exp()
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + std * noise
        return torch.tanh(u), tanh_gaussian_log_prob(u, noise, log_std)

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(features)[0])
