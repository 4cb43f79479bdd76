"""SACAgent: learning on a fixed batch, the REDQ target, Polyak math, UTD, the NaN guard, exact
resume from a flat checkpoint, the hybrid gripper, and the config's named errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from robot_rl.agents import SACAgent, make_agent
from robot_rl.agents.common import polyak_update
from robot_rl.agents.sac.agent import GRIPPER_COMMANDS, GRIPPER_STATE_INDEX, gripper_index
from robot_rl.sim.config import ConfigError
from robot_rl.spec import ACTION_DIM, STATE_DIMS

STATE_DIM = sum(STATE_DIMS.values())  # spec.flatten_state without the twin's task state

CAMERAS = {"wrist": (16, 16)}


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cameras", [{}, CAMERAS])
def test_critic_loss_decreases_on_a_fixed_batch(sac_config, make_batch, cameras):
    agent = SACAgent(sac_config(), STATE_DIM, ACTION_DIM, cameras)
    batch = make_batch(64, cameras)
    first = agent.update(batch)
    for _ in range(100):
        last = agent.update(batch)
    assert last["loss/critic"] < 0.5 * first["loss/critic"]
    for key in ("loss/critic", "loss/actor", "loss/temperature", "q/mean", "policy/entropy", "temperature"):
        assert key in last


def test_target_is_the_min_over_a_random_subset_of_two_target_critics(sac_config):
    """Target critic e outputs the constant e (zero weights into the output, bias e)."""
    agent = SACAgent(sac_config(num_critics=10, critic_subset=2), STATE_DIM, ACTION_DIM)
    with torch.no_grad():
        agent.critic_target.net.out.weight.zero_()
        agent.critic_target.net.out.bias.copy_(torch.arange(10.0).view(10, 1, 1))
    features, action = torch.randn(5, agent.encoder.output_dim), torch.rand(5, ACTION_DIM)
    seen = []
    for _ in range(400):
        generator_state = agent.generator.get_state()
        target = agent.target_q(features, action)
        subset = torch.randperm(10, generator=torch.Generator().manual_seed(0).set_state(generator_state))[:2]
        assert torch.equal(target, torch.full((5,), float(subset.min())))
        seen.append(int(target[0]))
    # min of 2 of 10 without replacement: P(min = k) = (9 - k) / 45; never the largest one
    counts = torch.bincount(torch.tensor(seen), minlength=10).float() / len(seen)
    expected = (9 - torch.arange(10.0)) / 45
    assert counts[9] == 0 and (counts - expected).abs().max() < 0.07


def test_max_target_q_clips_the_td_target_from_above(sac_config, make_batch):
    """Target critics (and the hybrid gripper's grasp target critic) that say +0.5 everywhere, a
    reward of 0 or -1, no grasp penalty: r + 0.97 * 0.5, which the clip at 0 (RLIF's) caps where
    r = 0 and leaves alone where r = -1."""
    batch = make_batch(64)
    batch.reward = torch.where(batch.reward > 0, 0.0, -1.0)
    batch.terminated.zero_()
    unclipped = batch.reward + 0.97 * 0.5
    for bound, expected in ((0.0, unclipped.clamp(max=0.0)), (None, unclipped)):
        config = sac_config(max_target_q=bound, discount=0.97, hybrid_gripper=True, grasp_penalty=0.0)
        agent = SACAgent(config, STATE_DIM, ACTION_DIM)
        with torch.no_grad():
            for head in (agent.critic_target.net.out, agent.grasp_critic_target[-1]):
                head.weight.zero_()
                head.bias.fill_(0.5)
        metrics, _ = agent._update_critic(batch)
        assert metrics["q/target_mean"] == pytest.approx(float(expected.mean()), abs=1e-5)
        assert metrics["q/grasp_target_mean"] == pytest.approx(float(expected.mean()), abs=1e-5)


def test_polyak_update_math():
    torch.manual_seed(0)
    online, target = torch.nn.Linear(4, 3).double(), torch.nn.Linear(4, 3).double()
    before = _params(target)
    polyak_update(target, online, tau=0.25)
    for name, value in target.state_dict().items():
        expected = 0.75 * before[name] + 0.25 * online.state_dict()[name]
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-15)


def test_update_moves_the_target_critics_by_tau(sac_config, make_batch):
    agent = SACAgent(sac_config(tau=0.1), STATE_DIM, ACTION_DIM)
    target_before = _params(agent.critic_target)
    agent.update(make_batch())
    online_after = _params(agent.critic)
    for name, value in agent.critic_target.state_dict().items():
        expected = target_before[name] + 0.1 * (online_after[name] - target_before[name])
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-6)
    assert not _same(target_before, _params(agent.critic_target))


def test_utd_ratio_critic_steps_per_actor_step(sac_config, make_batch):
    agent = SACAgent(sac_config(utd_ratio=3), STATE_DIM, ACTION_DIM)
    agent.update([make_batch(seed=i) for i in range(3)])
    agent.update([make_batch(seed=i) for i in range(3, 6)])
    critic_steps = agent.critic_optim.state_dict()["state"][0]["step"]
    actor_steps = agent.actor_optim.state_dict()["state"][0]["step"]
    assert (float(critic_steps), float(actor_steps)) == (6.0, 2.0)
    with pytest.raises(ValueError, match="utd_ratio=3"):
        agent.update([make_batch()] * 2)


def test_actor_step_leaves_critic_and_encoder_alone(sac_config, make_batch):
    agent = SACAgent(sac_config(), STATE_DIM, ACTION_DIM, CAMERAS)
    batch = make_batch(cameras=CAMERAS)
    critic, encoder, actor = _params(agent.critic), _params(agent.encoder), _params(agent.actor)
    features = agent.encoder(batch.state, batch.images).detach()
    agent._update_actor_and_temperature(features)
    assert _same(critic, _params(agent.critic)) and _same(encoder, _params(agent.encoder))
    assert not _same(actor, _params(agent.actor))
    assert all(p.requires_grad for p in agent.critic.parameters())
    assert all(p.grad is None for p in agent.critic.parameters())  # not even computed


@pytest.mark.parametrize("field", ["reward", "state"])
def test_nan_guard_raises_before_any_weight_changes(sac_config, make_batch, field):
    agent = SACAgent(sac_config(), STATE_DIM, ACTION_DIM, CAMERAS)
    agent.update(make_batch(cameras=CAMERAS))  # so the optimisers have state too
    before = {k: v for k, v in agent.state_dict().items() if k != "rng"}
    batch = make_batch(cameras=CAMERAS, seed=1)
    getattr(batch, field)[3] = float("nan")
    with pytest.raises(FloatingPointError, match=r"loss/critic=nan"):
        agent.update(batch)
    after = {k: v for k, v in agent.state_dict().items() if k != "rng"}
    assert _same(before, after)


def test_nan_guard_on_the_actor_step(sac_config):
    agent = SACAgent(sac_config(), STATE_DIM, ACTION_DIM)
    actor, log_alpha = _params(agent.actor), agent.log_alpha.detach().clone()
    features = torch.randn(8, agent.encoder.output_dim)
    features[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"loss/actor=nan.*loss/temperature=nan"):
        agent._update_actor_and_temperature(features)
    assert _same(actor, _params(agent.actor)) and torch.equal(log_alpha, agent.log_alpha)


@pytest.mark.parametrize("hybrid", [False, True])
def test_state_dict_round_trip_resumes_exactly(sac_config, make_batch, tmp_path, hybrid):
    from safetensors.torch import load_file, save_file

    config = sac_config(hybrid_gripper=hybrid, utd_ratio=2)
    agent = SACAgent(config, STATE_DIM, ACTION_DIM, CAMERAS)
    batches = [make_batch(cameras=CAMERAS, seed=i) for i in range(2)]
    agent.update(batches)
    state = agent.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    save_file(state, str(tmp_path / "agent.safetensors"))  # flat tensors only: safetensors takes it

    resumed = SACAgent(dataclasses.replace(config, seed=123), STATE_DIM, ACTION_DIM, CAMERAS)
    resumed.load_state_dict(load_file(str(tmp_path / "agent.safetensors")))
    obs = {"state": _spec_state(), "images": {"wrist": batches[0].images["wrist"][0].numpy()}}
    for deterministic in (True, False):
        assert (agent.act(obs, deterministic) == resumed.act(obs, deterministic)).all()
    next_batches = [make_batch(cameras=CAMERAS, seed=i) for i in range(2, 4)]
    assert agent.update(next_batches) == resumed.update(next_batches)
    assert _same(agent.state_dict(), resumed.state_dict())


def test_actor_state_dict_carries_what_act_needs(sac_config):
    learner = SACAgent(sac_config(hybrid_gripper=True), STATE_DIM, ACTION_DIM)
    actor = SACAgent(sac_config(hybrid_gripper=True, seed=5), STATE_DIM, ACTION_DIM)
    weights = learner.actor_state_dict()
    assert {k.split(".")[0] for k in weights} == {"encoder", "actor", "grasp_critic"}
    actor.load_actor_state_dict(weights)
    obs = {"state": _spec_state()}
    assert (learner.act(obs, deterministic=True) == actor.act(obs, deterministic=True)).all()


def test_hybrid_gripper_discrete_critic_and_action_mapping(sac_config, make_batch):
    agent = SACAgent(sac_config(hybrid_gripper=True), STATE_DIM, ACTION_DIM)
    assert agent.actor.net[-1].out_features == 2 * 6  # mean and log-std of the 6-D pose action
    assert agent.critic.net.linears[0].weight.shape[1] == agent.encoder.output_dim + 6
    features = torch.randn(5, agent.encoder.output_dim)
    assert agent.grasp_critic(features).shape == (5, 3)
    # spec: -1 open .. +1 closed; index 0 open, 1 stay, 2 close
    assert GRIPPER_COMMANDS == (-1.0, 0.0, 1.0)
    actions = torch.tensor([-1.0, -0.7, -0.5, 0.0, 0.4, 0.6, 1.0, 3.0])
    assert gripper_index(actions).tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    # act() appends the command that the grasp critic rates highest
    with torch.no_grad():
        agent.grasp_critic[-1].weight.zero_()
        agent.grasp_critic[-1].bias.copy_(torch.tensor([0.0, 0.0, 5.0]))
    action = agent.act({"state": _spec_state()}, deterministic=True)
    assert action.shape == (ACTION_DIM,) and action[-1] == 1.0
    metrics = agent.update(make_batch())
    assert "loss/grasp_critic" in metrics and "q/grasp_mean" in metrics


def test_grasp_penalty_only_where_a_command_toggles_the_gripper(sac_config):
    agent = SACAgent(sac_config(hybrid_gripper=True, grasp_penalty=-0.5), STATE_DIM, ACTION_DIM)
    state = torch.zeros(6, STATE_DIM)
    state[:, GRIPPER_STATE_INDEX] = torch.tensor([1.0, 1.0, 1.0, 0.3, 0.3, 0.3])  # open x3, holding x3
    command = torch.tensor([0, 1, 2, 0, 1, 2])  # open, stay, close for each
    assert agent.grasp_penalty(state, command).tolist() == [0.0, 0.0, -0.5, -0.5, 0.0, 0.0]


def test_grasp_critic_learns_which_command_pays(sac_config, make_batch):
    """Reward +1 for 'close', -1 for 'open', on a terminal batch: the critic must rank them."""
    agent = SACAgent(sac_config(hybrid_gripper=True, grasp_penalty=0.0), STATE_DIM, ACTION_DIM)
    batch = make_batch(96)
    batch.action[:, -1] = torch.tensor([-1.0, 0.0, 1.0]).repeat(32)
    batch.reward = batch.action[:, -1].clone()
    batch.terminated = torch.ones(96)
    for _ in range(150):
        agent.update(batch)
    features = agent.encoder(batch.state, {})
    assert (agent.grasp_critic(features).argmax(dim=1) == 2).float().mean() > 0.9


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"critic_subset": 12}, "agent.critic_subset"),
        ({"num_critics": 0}, "agent.num_critics"),
        ({"encoder": "vit"}, "agent.encoder"),
        ({"encoder_weights": "/w.pt"}, "agent.encoder_weights"),  # with the default "cnn"
        ({"discount": 1.5}, "agent.discount"),
        ({"tau": 0.0}, "agent.tau"),
        ({"grasp_penalty": 0.1}, "agent.grasp_penalty"),
        ({"utd_ratio": 0}, "agent.utd_ratio"),
        ({"max_target_q": float("nan")}, "agent.max_target_q"),
        ({"ignored_state": ["force"]}, "agent.ignored_state"),
    ],
)
def test_config_errors_name_the_key(sac_config, overrides, key):
    with pytest.raises(ConfigError, match=key):
        make_agent(sac_config(**overrides), STATE_DIM, ACTION_DIM)


def test_frozen_pretrained_encoder_stays_frozen(sac_config, make_batch, tmp_path):
    from torchvision.models.resnet import BasicBlock, ResNet

    torch.save(ResNet(BasicBlock, [1, 1, 1, 1]).state_dict(), tmp_path / "resnet10.pt")
    config = sac_config(encoder="resnet10", encoder_weights=str(tmp_path / "resnet10.pt"))
    agent = make_agent(config, STATE_DIM, ACTION_DIM, {"wrist": (32, 32)})
    backbone = agent.encoder.images["wrist"].backbone
    before, projection = _params(backbone), _params(agent.encoder.images["wrist"].projection)
    agent.update(make_batch(8, {"wrist": (32, 32)}))
    assert _same(before, _params(backbone)) and not backbone.trunk.training
    assert not _same(projection, _params(agent.encoder.images["wrist"].projection))


def _spec_state() -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        "tcp_pose": rng.normal(size=7).astype(np.float32),
        "tcp_vel": rng.normal(size=6).astype(np.float32),
        "gripper": np.array([0.5], np.float32),
        "wrench": rng.normal(size=12).astype(np.float32),
    }
