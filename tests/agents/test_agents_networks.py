"""The building blocks: the vectorised ensemble equals independent layers, DrQ's shift is a
replicate-pad-and-crop, the squashed Gaussian's log-prob is right, the encoders load and freeze."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.augment import augment_images, random_shift
from robot_rl.agents.networks import (
    CNNEncoder,
    EnsembleLinear,
    EnsembleMLP,
    ObservationEncoder,
    TanhGaussianActor,
    mlp,
    resnet_trunk,
)
from robot_rl.spec import STATE_DIMS, state_indices_without


def test_ensemble_linear_equals_independent_linear_layers():
    torch.manual_seed(0)
    ens = EnsembleLinear(5, 7, 3)
    layers = [nn.Linear(7, 3) for _ in range(5)]
    with torch.no_grad():  # give the ensemble the loop's weights (nn.Linear stores [out, in])
        for e, layer in enumerate(layers):
            ens.weight[e] = layer.weight.T
            ens.bias[e, 0] = layer.bias
    shared = torch.randn(11, 7)
    per_member = torch.randn(5, 11, 7)
    expected_shared = torch.stack([layer(shared) for layer in layers])
    expected_per_member = torch.stack([layer(x) for layer, x in zip(layers, per_member, strict=True)])
    torch.testing.assert_close(ens(shared), expected_shared)
    torch.testing.assert_close(ens(per_member), expected_per_member)
    members = torch.tensor([3, 1])
    torch.testing.assert_close(ens(shared, members), expected_shared[members])


def test_ensemble_mlp_equals_a_loop_of_layernorm_mlps():
    torch.manual_seed(0)
    ens = EnsembleMLP(4, 6, [16, 16], 1)
    # perturb the LayerNorm affines too, so a mix-up between members would show
    with torch.no_grad():
        for p in ens.parameters():
            p.add_(0.1 * torch.randn_like(p))
    nets = [mlp(6, [16, 16], 1) for _ in range(4)]
    with torch.no_grad():
        for e, net in enumerate(nets):
            linears = [m for m in net if isinstance(m, nn.Linear)]
            norms = [m for m in net if isinstance(m, nn.LayerNorm)]
            for lin, ens_lin in zip(linears, [*ens.linears, ens.out], strict=True):
                lin.weight.copy_(ens_lin.weight[e].T)
                lin.bias.copy_(ens_lin.bias[e, 0])
            for norm, ens_norm in zip(norms, ens.norms, strict=True):
                norm.weight.copy_(ens_norm.weight[e, 0])
                norm.bias.copy_(ens_norm.bias[e, 0])
    x = torch.randn(9, 6)
    torch.testing.assert_close(ens(x), torch.stack([net(x) for net in nets]))
    torch.testing.assert_close(ens(x, torch.tensor([2, 0])), torch.stack([nets[2](x), nets[0](x)]))


def test_ensemble_members_are_initialised_independently_like_nn_linear():
    torch.manual_seed(0)
    ens = EnsembleLinear(10, 64, 8)
    assert not torch.equal(ens.weight[0], ens.weight[1])
    assert ens.weight.abs().max() <= 1 / math.sqrt(64)


def _reference_shift(images: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    """DrQ's definition: replicate-pad by `pad`, crop HxW at offset (pad + dy, pad + dx)."""
    b, h, w, _ = images.shape
    padded = F.pad(images.permute(0, 3, 1, 2).float(), (pad,) * 4, mode="replicate")
    crops = [padded[i, :, pad + dy : pad + dy + h, pad + dx : pad + dx + w] for i, (dy, dx) in enumerate(shifts)]
    return torch.stack(crops).permute(0, 2, 3, 1).to(images.dtype)


def test_random_shift_is_a_per_sample_replicate_pad_and_crop():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 12, 10, 3), dtype=torch.uint8, generator=g)
    pad = 4
    shifted = random_shift(images, pad, torch.Generator().manual_seed(1))
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    # the shifts it drew: the first thing random_shift takes from the generator
    shifts = (torch.randint(0, 2 * pad + 1, (16, 2), generator=torch.Generator().manual_seed(1)) - pad).tolist()
    assert len({tuple(s) for s in shifts}) > 1  # per sample, not one shift for the batch
    assert torch.equal(shifted, _reference_shift(images, shifts, pad))


def test_random_shift_is_deterministic_under_a_seed_and_off_at_pad_zero():
    images = torch.randint(0, 256, (8, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = random_shift(images, 4, torch.Generator().manual_seed(3))
    b = random_shift(images, 4, torch.Generator().manual_seed(3))
    c = random_shift(images, 4, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert random_shift(images, 0) is images
    both = augment_images({"front": images, "wrist": images}, 4, torch.Generator().manual_seed(3))
    assert not torch.equal(both["front"], both["wrist"])  # each camera gets its own shifts


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    actor = TanhGaussianActor(5, 3, [16])
    features = torch.randn(64, 5)
    action, log_prob = actor.sample(features, torch.Generator().manual_seed(0))
    mean, log_std = actor(features)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()]
    )
    assert action.abs().max() < 1
    assert (log_std >= actor.log_std_min).all() and (log_std <= actor.log_std_max).all()
    torch.testing.assert_close(log_prob, dist.log_prob(action).sum(-1), atol=2e-3, rtol=1e-4)


def test_cnn_encoder_and_observation_encoder_shapes():
    enc = CNNEncoder((32, 40), feature_dim=10, channels=(4, 8))
    images = torch.randint(0, 256, (3, 32, 40, 3), dtype=torch.uint8)
    assert enc(images).shape == (3, 10)
    obs_enc = ObservationEncoder(26, {"wrist": (32, 40), "front": (16, 16)}, image_feature_dim=10, state_feature_dim=6)
    assert obs_enc.output_dim == 26
    out = obs_enc(torch.randn(3, 26), {"front": torch.zeros(3, 16, 16, 3, dtype=torch.uint8), "wrist": images})
    assert out.shape == (3, 26)


def test_observation_encoder_ignores_the_state_entries_it_is_told_to():
    state_dim = sum(STATE_DIMS.values()) + 10  # with a task state of 10
    encoder = ObservationEncoder(state_dim, {}, ignored_state=["wrench", "tcp_vel"])
    assert encoder.output_dim == state_dim - STATE_DIMS["wrench"] - STATE_DIMS["tcp_vel"]
    torch.manual_seed(0)
    states = torch.randn(64, state_dim) * 3 + 1
    encoder.fit_state_normalization(states)
    features = encoder(states, {})
    # The wrench and the TCP velocity change nothing; the rest is read, standardised, in order.
    changed = states.clone()
    changed[:, state_indices_without(["tcp_pose", "gripper", "task"], state_dim)] = 1e3
    torch.testing.assert_close(encoder(changed, {}), features)
    kept = states[:, state_indices_without(["wrench", "tcp_vel"], state_dim)]
    torch.testing.assert_close(features, (kept - kept.mean(0)) / kept.std(0, correction=0))
    assert state_indices_without(["wrench", "tcp_vel"], state_dim)[:8] == [*range(7), 13]  # tcp_pose, gripper
    with pytest.raises(ValueError, match="unknown state entries"):
        ObservationEncoder(state_dim, {}, ignored_state=["force"])
    with pytest.raises(ValueError, match="nothing to observe"):
        ObservationEncoder(state_dim, {}, ignored_state=[*STATE_DIMS, "task"])


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_pretrained_resnet_loads_a_local_weights_file(tmp_path, suffix):
    from torchvision.models.resnet import BasicBlock, ResNet

    torch.manual_seed(0)
    reference = ResNet(BasicBlock, [1, 1, 1, 1])
    path = tmp_path / f"resnet10{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(reference.state_dict(), str(path))
    else:
        torch.save(reference.state_dict(), path)
    trunk = resnet_trunk("resnet10", str(path))
    torch.testing.assert_close(trunk[0].weight, reference.conv1.weight)  # conv1 is the first child
    with pytest.raises(FileNotFoundError, match="encoder_weights"):
        resnet_trunk("resnet10", str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="missing keys"):
        resnet_trunk("resnet18", str(path))  # a ResNet-10 file for a ResNet-18 trunk
