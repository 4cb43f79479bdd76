"""SACAgent: SAC in the RLPD recipe, with SERL's image pipeline and HIL-SERL's hybrid gripper.

One `update(batches)` is, top to bottom (RLPD, Ball et al. 2023, Alg. 1):
  for each of the utd_ratio batches:                       critic steps
      features  = encoder(s, drq_shift(images))               (with gradient: the critic trains it)
      a', log pi(a'|s')  ~ actor(encoder(s', drq_shift(images')))       (no gradient)
      y         = r + gamma (1 - terminated) (min_{i in random subset of 2} Q_target_i(s', a')
                                              - alpha log pi(a'|s'))      REDQ-style target
      L_critic  = mean_e (Q_e(s, a) - y)^2                   over the whole ensemble
      Polyak:   Q_target <- (1 - tau) Q_target + tau Q
  once, on the last batch's (detached) features:            actor and temperature step
      L_actor   = alpha log pi(a|s) - mean_e Q_e(s, a),  a ~ pi(.|s)
      L_alpha   = alpha (H - H_target),  H = -log pi(a|s)

The encoder is shared by actor and critics and trained by the critic loss only; the actor sees
its features detached (DrQ/SERL). The target network holds the critic heads only: next
observations go through the online encoder without gradient (DrQ-v2), which saves a second
encoder on a CPU. With `hybrid_gripper`, the actor and critics act on the 6-D pose and a DQN
critic over {open, stay, close} picks the gripper command (HIL-SERL), trained with double-DQN
targets and a penalty on commands that toggle the gripper. The commands go out as the spec's
gripper values -1 (open), 0 (stay: keep the last command), +1 (close).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from robot_rl.agents.augment import augment_images
from robot_rl.agents.common import (
    check_finite,
    flatten_optimizer,
    load_flat_optimizer,
    load_modules_state_dict,
    modules_state_dict,
    obs_to_tensors,
    polyak_update,
)
from robot_rl.agents.networks import Critic, ObservationEncoder, TanhGaussianActor, mlp
from robot_rl.agents.sac.config import SACConfig
from robot_rl.data.batch import Batch
from robot_rl.spec import STATE_DIMS

# The hybrid gripper's discrete commands: index -> spec gripper action (-1 open .. +1 closed).
GRIPPER_COMMANDS = (-1.0, 0.0, 1.0)  # open, stay, close
OPEN, STAY, CLOSE = 0, 1, 2
# Where the gripper opening (0 closed .. 1 open) sits in the flattened state (spec.flatten_state).
GRIPPER_STATE_INDEX = sum(STATE_DIMS[k] for k in list(STATE_DIMS)[: list(STATE_DIMS).index("gripper")])
GRIPPER_OPEN_THRESHOLD = 0.9  # opening above which the gripper counts as open (for the grasp penalty)


def gripper_index(gripper_action: torch.Tensor) -> torch.Tensor:
    """A spec gripper action in [-1, 1] -> the discrete command: < -0.5 open, > 0.5 close, else stay."""
    return torch.round(gripper_action.clamp(-1.0, 1.0)).long() + 1


class SACAgent:
    """See the module docstring. `update()` takes exactly `config.utd_ratio` batches."""

    def __init__(
        self,
        config: SACConfig,
        state_dim: int,
        action_dim: int,
        cameras: Mapping[str, tuple[int, int]] | None = None,
        device: torch.device | str = "cpu",
        controlled: Sequence[int] | None = None,
    ):
        """controlled: the action entries the agent drives (the task's, TaskConfig.controlled_actions);
        the others stay 0. Default: all. With the hybrid gripper the last entry must be among them."""
        config.validate()
        self.config = c = config
        self.device = torch.device(device)
        self.state_dim, self.action_dim = state_dim, action_dim
        self.cameras = sorted(cameras or {})
        self.hybrid = c.hybrid_gripper
        controlled = list(range(action_dim)) if controlled is None else sorted(controlled)
        if self.hybrid and action_dim - 1 not in controlled:
            raise ValueError("agent.hybrid_gripper: the task does not let the policy drive the gripper")
        # Entropy and critics only see the entries that change anything: an entry the env ignores
        # would soak up the entropy target and leave the others almost deterministic.
        continuous = [i for i in controlled if not (self.hybrid and i == action_dim - 1)]
        self.continuous_index = torch.tensor(continuous, device=self.device)
        self.continuous_dim = len(continuous)
        self.target_entropy = c.target_entropy_for(self.continuous_dim)

        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
            torch.manual_seed(c.seed)
            self.encoder = ObservationEncoder.from_config(c, state_dim, cameras)
            feature_dim = self.encoder.output_dim
            self.actor = TanhGaussianActor(
                feature_dim, self.continuous_dim, c.hidden_dims, c.log_std_min, c.log_std_max
            )
            self.critic = Critic(feature_dim, self.continuous_dim, c.hidden_dims, c.num_critics)
            self.grasp_critic = mlp(feature_dim, c.hidden_dims, len(GRIPPER_COMMANDS)) if self.hybrid else None
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.grasp_critic_target = copy.deepcopy(self.grasp_critic).requires_grad_(False) if self.hybrid else None
        for module in self._modules().values():
            module.to(self.device)
        self.log_alpha = torch.tensor(math.log(c.init_temperature), device=self.device, requires_grad=True)

        critic_params = [*self.encoder.parameters(), *self.critic.parameters()]
        if self.hybrid:
            critic_params += list(self.grasp_critic.parameters())
        self.critic_optim = torch.optim.Adam([p for p in critic_params if p.requires_grad], lr=c.critic_lr, fused=True)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, fused=True)
        self.temperature_optim = torch.optim.Adam([self.log_alpha], lr=c.temperature_lr, fused=True)
        # One generator for all of the agent's randomness (augmentation, REDQ subsets, action
        # noise), so a checkpoint resumes exactly.
        self.generator = torch.Generator(self.device).manual_seed(c.seed)
        self.update_step = 0

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_alpha.exp()

    # --- acting ---------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: dict, deterministic: bool = False) -> np.ndarray:
        """One env-spec observation -> float32 action [7] in [-1, 1] (tanh(mean) if deterministic)."""
        state, images = obs_to_tensors(obs, self.cameras, self.state_dim, self.device)
        features = self.encoder(state, images)
        continuous = self.actor.mode(features) if deterministic else self.actor.sample(features, self.generator)[0]
        action = torch.zeros(self.action_dim, device=self.device)
        action[self.continuous_index] = continuous[0]
        if self.hybrid:
            action[-1] = GRIPPER_COMMANDS[int(self.grasp_critic(features).argmax(dim=-1))]
        return action.cpu().numpy().astype(np.float32)

    # --- learning -------------------------------------------------------------------------
    def fit_state_normalization(self, states: np.ndarray) -> None:
        """Standardise the state input with the statistics of `states` [N, S]; the learner calls
        it once, before the first update, with the states its buffers hold."""
        self.encoder.fit_state_normalization(torch.as_tensor(states, dtype=torch.float32, device=self.device))

    def update(self, batches: Batch | Sequence[Batch]) -> dict[str, float]:
        """`config.utd_ratio` critic steps, one per batch, then one actor and temperature step on
        the last batch (RLPD). A single Batch is accepted when utd_ratio is 1. Raises
        FloatingPointError, before any optimiser step, if a loss is not finite."""
        batches = [batches] if isinstance(batches, Batch) else list(batches)
        if len(batches) != self.config.utd_ratio:
            raise ValueError(f"update() takes utd_ratio={self.config.utd_ratio} batches, got {len(batches)}")
        for batch in batches:
            metrics, features = self._update_critic(batch.to(self.device))
        metrics |= self._update_actor_and_temperature(features)
        self.update_step += 1
        values = torch.stack([v.float() for v in metrics.values()]).tolist()  # one device sync, not one per metric
        return dict(zip(metrics, values, strict=True))

    def _update_critic(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        c, g = self.config, self.generator
        features = self.encoder(batch.state, augment_images(batch.images, c.image_pad, g))
        with torch.no_grad():
            next_features = self.encoder(batch.next_state, augment_images(batch.next_images, c.image_pad, g))
            next_action, next_log_prob = self.actor.sample(next_features, g)
            next_q = self.target_q(next_features, next_action)
            if c.backup_entropy:
                next_q = next_q - self.temperature * next_log_prob
            target_q = self._bounded(batch.reward + c.discount * (1.0 - batch.terminated) * next_q)

        q = self.critic(features, batch.action[:, self.continuous_index])  # [E, B]
        critic_loss = F.mse_loss(q, target_q.expand_as(q))  # mean over members and batch (RLPD)
        losses = {"loss/critic": critic_loss}
        if self.hybrid:
            losses["loss/grasp_critic"], grasp_q, grasp_target = self._grasp_critic_loss(batch, features, next_features)

        check_finite(**losses)
        self.critic_optim.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.critic_optim.step()
        polyak_update(self.critic_target, self.critic, c.tau)
        if self.hybrid:
            polyak_update(self.grasp_critic_target, self.grasp_critic, c.tau)

        metrics = {
            **losses,
            "q/mean": q.mean(),
            "q/std_ensemble": q.std(0, correction=0).mean(),
            "q/target_mean": target_q.mean(),
        }
        if self.hybrid:
            metrics["q/grasp_mean"], metrics["q/grasp_target_mean"] = grasp_q.mean(), grasp_target.mean()
        # The actor reuses these features, computed before this critic step (as DrQ-v2 does).
        return {k: v.detach() for k, v in metrics.items()}, features.detach()

    @torch.no_grad()
    def target_q(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """REDQ's target: the min over a random subset of `critic_subset` target critics, drawn
        anew at each call; only those members are evaluated. [B]"""
        c = self.config
        subset = torch.randperm(c.num_critics, generator=self.generator, device=self.device)[: c.critic_subset]
        return self.critic_target(features, action, subset).min(dim=0).values

    def _grasp_critic_loss(self, batch: Batch, features: torch.Tensor, next_features: torch.Tensor):
        """DQN over {open, stay, close} with a double-DQN target (HIL-SERL's grasp critic), clipped
        at max_target_q as the continuous critics' is (its rewards are theirs plus a penalty <= 0)."""
        taken = gripper_index(batch.action[:, -1])
        q = self.grasp_critic(features).gather(1, taken[:, None]).squeeze(1)
        with torch.no_grad():
            # the online critic picks the next command, the target critic scores it
            next_command = self.grasp_critic(next_features).argmax(dim=1, keepdim=True)
            next_q = self.grasp_critic_target(next_features).gather(1, next_command).squeeze(1)
            reward = batch.reward + self.grasp_penalty(batch.state, taken)
            target = self._bounded(reward + self.config.discount * (1.0 - batch.terminated) * next_q)
        return F.mse_loss(q, target), q, target

    def _bounded(self, target: torch.Tensor) -> torch.Tensor:
        """A TD target clipped from above at config.max_target_q (where no reward is positive)."""
        bound = self.config.max_target_q
        return target if bound is None else target.clamp(max=bound)

    def grasp_penalty(self, state: torch.Tensor, command: torch.Tensor) -> torch.Tensor:
        """config.grasp_penalty where a command toggles the gripper, judged from the opening in the
        observation it acted on: close while open, or open while closed/holding (as HIL-SERL's
        gripper penalty wrapper). 'stay' and repeated commands cost nothing."""
        is_open = state[:, GRIPPER_STATE_INDEX] > GRIPPER_OPEN_THRESHOLD
        toggles = ((command == CLOSE) & is_open) | ((command == OPEN) & ~is_open)
        return self.config.grasp_penalty * toggles.float()

    def _update_actor_and_temperature(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        action, log_prob = self.actor.sample(features, self.generator)
        self.critic.requires_grad_(False)  # the actor loss must not compute gradients for the critic
        q = self.critic(features, action).mean(dim=0)  # RLPD: mean over the whole ensemble
        self.critic.requires_grad_(True)
        actor_loss = (self.temperature.detach() * log_prob - q).mean()

        entropy = -log_prob.detach().mean()
        temperature_loss = self.temperature * (entropy - self.target_entropy)

        check_finite(**{"loss/actor": actor_loss, "loss/temperature": temperature_loss})
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optim.step()
        self.temperature_optim.zero_grad(set_to_none=True)
        temperature_loss.backward()
        self.temperature_optim.step()
        return {
            "loss/actor": actor_loss.detach(),
            "loss/temperature": temperature_loss.detach(),
            "policy/entropy": entropy,
            "temperature": self.temperature.detach(),
        }

    # --- checkpoints (format: robot_rl/agents/common.py) ----------------------------------
    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {
            "encoder": self.encoder,
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }
        if self.hybrid:
            modules |= {"grasp_critic": self.grasp_critic, "grasp_critic_target": self.grasp_critic_target}
        return modules

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.critic_optim, "actor": self.actor_optim, "temperature": self.temperature_optim}

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = modules_state_dict(self._modules())
        for name, optimizer in self._optimizers().items():
            out |= flatten_optimizer(name, optimizer)
        out["log_alpha"] = self.log_alpha.detach().clone()
        out["rng"] = self.generator.get_state()
        out["update_step"] = torch.tensor(self.update_step)
        return out

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        load_modules_state_dict(self._modules(), state)
        for name, optimizer in self._optimizers().items():
            load_flat_optimizer(name, optimizer, state)
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.generator.set_state(state["rng"].cpu())
        self.update_step = int(state["update_step"])

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        """What act() needs (encoder, actor, grasp critic), for pushing weights to actors."""
        return modules_state_dict(self._acting_modules())

    def load_actor_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        load_modules_state_dict(self._acting_modules(), state)

    def _acting_modules(self) -> dict[str, torch.nn.Module]:
        return {k: v for k, v in self._modules().items() if k in ("encoder", "actor", "grasp_critic")}
