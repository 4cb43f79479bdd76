"""Reward terms that need no learning: a human intervention (RLIF) and a contact-force penalty.

Both read what the robot already streams, so they are exact (no `uncertainty`) and cheap, and
both are penalties (<= 0): they are meant to be added to a task reward by a CompositeReward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.config import RewardConfig
from robot_rl.sim.config import ConfigError, check_choice
from robot_rl.spec import STATE_DIMS, WRENCH_DIM


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


@dataclass
class InterventionRewardConfig(RewardConfig):
    name: str = "intervention"
    penalty: float = -1.0  # RLIF's reward at the step a human takes over

    def validate(self, key: str = "reward") -> None:
        _check(self.name == "intervention", f"{key}.name", f"must be 'intervention', got {self.name!r}")
        _check(self.penalty < 0, f"{key}.penalty", f"is a penalty: must be < 0, got {self.penalty}")


class InterventionReward(RewardModel):
    """RLIF (Luo et al. 2023): the intervention signal itself is the reward. r = penalty (-1) at the
    step where a human intervention begins, 0 at every other step, including the steps the human
    drives: the policy learns to avoid the states in which a human would take over, without
    assuming the human is an optimal expert (what DAgger-style imitation assumes)."""

    def __init__(self, config: InterventionRewardConfig | None = None):
        super().__init__()
        self.config = config or InterventionRewardConfig()
        self.config.validate()

    def forward(self, inputs: RewardInput) -> RewardOutput:
        if inputs.intervention_start is None:
            raise ValueError(
                "InterventionReward needs RewardInput.intervention_start (bool [B], True where a human "
                "intervention began); this input has none (was it collected without a teleop device?)"
            )
        started = inputs.intervention_start.to(device=inputs.state.device, dtype=torch.bool).reshape(-1)
        if started.shape[0] != len(inputs):
            raise ValueError(f"intervention_start has {started.shape[0]} entries for {len(inputs)} observations")
        reward = torch.where(started, self.config.penalty, 0.0).to(torch.float32)
        return RewardOutput(reward=reward)


# Where the wrench sits in robot_rl.spec.flatten_state's vector: STATE_DIMS' keys come first, in order
# (the twin's optional "task" state follows them), so the offset holds with and without it.
WRENCH_START = sum(list(STATE_DIMS.values())[: list(STATE_DIMS).index("wrench")])
# The 12 wrench entries (WRENCH_DIM): mean force, mean torque, max-abs force, max-abs torque, 3 each.
WRENCH_SLICES = {
    "mean": {"force": slice(0, 3), "torque": slice(3, 6)},
    "max_abs": {"force": slice(6, 9), "torque": slice(9, 12)},
}


@dataclass
class ForcePenaltyConfig(RewardConfig):
    """r = -min(max_penalty, force_scale * max(0, |F| - force_threshold)
                             + torque_scale * max(0, |T| - torque_threshold))

    statistic: which of the observation's per-control-period statistics |F| and |T| are taken from.
    "max_abs" (default): the norm of the per-axis max-abs force. An impact lasts a few milliseconds,
    far less than a 100 ms control period, so the period's mean averages it away; the peak is what
    damages a part, a gripper or the sensor, and what a safety limit is stated in. The axes may
    peak at different instants, so this norm lies between the true peak |F| and sqrt(3) times it.
    "mean": the norm of the mean force; ignores impacts and sensor noise spikes, penalises only
    sustained pressing (e.g. pushing into the table).
    The sensor is tared at reset, so a held object's weight reads as force: keep force_threshold
    above it (a 0.1 kg cube reads ~1 N).
    """

    name: str = "force_penalty"
    statistic: str = "max_abs"  # "max_abs" or "mean", see above
    force_threshold: float = 20.0  # N; contact below it is free (Franka's default collision threshold is ~20 N)
    force_scale: float = 0.01  # reward per N above the threshold: 40 N peak -> -0.2
    torque_threshold: float = 2.0  # Nm
    torque_scale: float = 0.0  # reward per Nm above the threshold; 0 turns the torque term off
    # Clip: one hard collision must not produce a reward that dwarfs the task reward in every critic
    # target it enters; a 0/1 success reward makes 1 the natural bound.
    max_penalty: float = 1.0

    def validate(self, key: str = "reward") -> None:
        _check(self.name == "force_penalty", f"{key}.name", f"must be 'force_penalty', got {self.name!r}")
        check_choice(self.statistic, tuple(WRENCH_SLICES), f"{key}.statistic")
        for name in ("force_threshold", "force_scale", "torque_threshold", "torque_scale"):
            _check(getattr(self, name) >= 0, f"{key}.{name}", f"must be >= 0, got {getattr(self, name)}")
        _check(self.max_penalty > 0, f"{key}.max_penalty", f"must be > 0, got {self.max_penalty}")


class ContactForcePenalty(RewardModel):
    """A penalty for contact force (and optionally torque) above a threshold, read from the wrench
    in the flattened state (robot_rl.spec). See ForcePenaltyConfig for the formula and for why the
    max-abs statistic is the default."""

    def __init__(self, config: ForcePenaltyConfig | None = None):
        super().__init__()
        self.config = config or ForcePenaltyConfig()
        self.config.validate()

    def forward(self, inputs: RewardInput) -> RewardOutput:
        state = inputs.state
        if state.ndim != 2 or state.shape[1] < WRENCH_START + WRENCH_DIM:
            raise ValueError(
                f"ContactForcePenalty reads the wrench at state[:, {WRENCH_START}:{WRENCH_START + WRENCH_DIM}] "
                f"(robot_rl.spec.flatten_state); got a state of shape {tuple(state.shape)}"
            )
        wrench = state[:, WRENCH_START : WRENCH_START + WRENCH_DIM].float()
        slices = WRENCH_SLICES[self.config.statistic]
        force = torch.linalg.vector_norm(wrench[:, slices["force"]], dim=1)
        torque = torch.linalg.vector_norm(wrench[:, slices["torque"]], dim=1)
        c = self.config
        penalty = c.force_scale * (force - c.force_threshold).clamp(min=0.0)
        penalty = penalty + c.torque_scale * (torque - c.torque_threshold).clamp(min=0.0)
        return RewardOutput(reward=-penalty.clamp(max=c.max_penalty))
