"""BCAgent: behaviour cloning, the baseline SAC is compared with (HIL-SERL's "BC" rows).

The same observation encoder as SACAgent (cameras + proprio/wrench, DrQ shift during training),
trained end to end with the policy by regressing the demo actions:
    L_bc = mean || tanh(pi(s)) - a_demo ||^2
A deterministic policy with a tanh output, so actions are in [-1, 1] like the spec's. Rewards
and next observations in the Batch are ignored. Same contract as SACAgent (act / update /
state_dict / actor_state_dict), so the learner loop and the evaluation treat both alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from robot_rl.agents.augment import augment_images
from robot_rl.agents.bc.config import BCConfig
from robot_rl.agents.common import (
    check_finite,
    flatten_optimizer,
    load_flat_optimizer,
    load_modules_state_dict,
    modules_state_dict,
    obs_to_tensors,
)
from robot_rl.agents.networks import ObservationEncoder, mlp
from robot_rl.data.batch import Batch


class BCAgent:
    def __init__(
        self,
        config: BCConfig,
        state_dim: int,
        action_dim: int,
        cameras: Mapping[str, tuple[int, int]] | None = None,
        device: torch.device | str = "cpu",
        controlled: Sequence[int] | None = None,
    ):
        """controlled: the action entries the policy drives (TaskConfig.controlled_actions); the
        others stay 0 and are not regressed. Default: all."""
        config.validate()
        self.config = c = config
        self.device = torch.device(device)
        self.state_dim, self.action_dim = state_dim, action_dim
        self.controlled = list(range(action_dim)) if controlled is None else sorted(controlled)
        self.cameras = sorted(cameras or {})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.encoder = ObservationEncoder.from_config(c, state_dim, cameras)
            self.policy = mlp(self.encoder.output_dim, c.hidden_dims, len(self.controlled))
        self.encoder.to(self.device)
        self.policy.to(self.device)
        params = [p for p in [*self.encoder.parameters(), *self.policy.parameters()] if p.requires_grad]
        self.optim = torch.optim.Adam(params, lr=c.lr)
        self.generator = torch.Generator(self.device).manual_seed(c.seed)
        self.update_step = 0

    @torch.no_grad()
    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        """One env-spec observation -> float32 action [7] in [-1, 1]. BC is deterministic: the
        flag is accepted for the common contract and ignored."""
        state, images = obs_to_tensors(obs, self.cameras, self.state_dim, self.device)
        action = np.zeros(self.action_dim, dtype=np.float32)
        action[self.controlled] = self._policy(state, images)[0].cpu().numpy()
        return action

    def _policy(self, state: torch.Tensor, images: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tanh(self.policy(self.encoder(state, images)))

    def fit_state_normalization(self, states: np.ndarray) -> None:
        """Standardise the state input with the statistics of `states` [N, S]; the learner calls
        it once, before the first update, with the states its buffers hold."""
        self.encoder.fit_state_normalization(torch.as_tensor(states, dtype=torch.float32, device=self.device))

    def update(self, batches: Batch | Sequence[Batch]) -> dict[str, float]:
        """One gradient step per batch (a single Batch or a list). Raises FloatingPointError,
        before the optimiser step, if the loss is not finite."""
        batches = [batches] if isinstance(batches, Batch) else list(batches)
        for batch in batches:
            batch = batch.to(self.device)
            images = augment_images(batch.images, self.config.image_pad, self.generator)
            action = self._policy(batch.state, images)
            loss = F.mse_loss(action, batch.action[:, self.controlled].clamp(-1.0, 1.0))
            check_finite(**{"loss/bc": loss})
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            self.optim.step()
        self.update_step += 1
        return {"loss/bc": float(loss.detach()), "policy/action_abs_mean": float(action.detach().abs().mean())}

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, "policy": self.policy}

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = self.actor_state_dict() | flatten_optimizer("bc", self.optim)
        out["rng"] = self.generator.get_state()
        out["update_step"] = torch.tensor(self.update_step)
        return out

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.load_actor_state_dict(state)
        load_flat_optimizer("bc", self.optim, state)
        self.generator.set_state(state["rng"].cpu())
        self.update_step = int(state["update_step"])

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        return modules_state_dict(self._modules())

    def load_actor_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        load_modules_state_dict(self._modules(), state)
