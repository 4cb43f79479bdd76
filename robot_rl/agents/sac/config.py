"""SACConfig: SAC in the RLPD recipe (Ball et al. 2023) with SERL/HIL-SERL's image pipeline.

A plain dataclass (a Hydra structured config as well): `validate()` checks the values a type
cannot and names the bad key, e.g. "agent.critic_subset: must be in [1, num_critics=10], got 12".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from robot_rl.agents.config import LearnedAgentConfig
from robot_rl.sim.config import ConfigError


@dataclass
class SACConfig(LearnedAgentConfig):
    name: str = "sac"
    # networks: every hidden layer is Linear -> LayerNorm -> ReLU (RLPD)
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])
    # E=2 with the min over both is SERL's clipped double Q. RLPD's E=10 costs ~3x per critic step
    # on a CPU (2 cores: ~40 vs ~120 updates/s at batch 256); the budget goes to utd_ratio instead.
    num_critics: int = 2  # ensemble size E
    critic_subset: int = 2  # the TD target is the min over a random subset of this many target critics (REDQ)
    # critic updates per actor update: update() takes this many batches. 1 here (one Batch per update);
    # configs/agent/sac.yaml sets 8 (RLPD: 20), which keeps ~30 updates/s on 2 cores
    utd_ratio: int = 1
    discount: float = 0.97  # SERL's; short manipulation episodes, and a 0/1 success reward
    tau: float = 0.005  # Polyak rate of the target critics
    # Subtract alpha * log pi(a'|s') in the TD target (RLPD's default). Off, as in SERL: with a 0/1
    # success reward the entropy bonus summed over the horizon dwarfs the reward (Q ~ alpha H / (1 - gamma)).
    backup_entropy: bool = False
    # Clip the TD target from above where the reward can never be positive (RLIF's: -1 where a
    # person steps in, else 0; configs/hil/rlif.yaml sets 0.0), as HER clips its -1/0 reward's
    # targets. Without it, with no positive reward anywhere to anchor the values, the actor's
    # maximisation drove the critics' mean Q on pick_cube up to +3.6 over the first ~10k steps,
    # a value no policy can reach, before it came back below 0. None: no clip.
    max_target_q: float | None = None
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4  # also trains the shared encoder (and the grasp critic)
    temperature_lr: float = 3e-4
    # SERL's 1e-2. At 1.0 the entropy term outweighs a 0/1 reward for the whole run: at lr 3e-4
    # log(alpha) falls by ~3e-4 per update, so alpha needs ~15k updates to get down to 1e-2.
    init_temperature: float = 1e-2
    # None: -(continuous action dim) / 2, as in RLPD (target_entropy_for). A task that tolerates less
    # exploration noise sets it lower in configs/task_agent/<task>_sac.yaml (peg_insert:
    # bench/exploration_noise.py).
    target_entropy: float | None = None
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    batch_size: int = 128  # per batch, utd_ratio of them per update (RLPD/SERL: 256; 128 halves a CPU critic step)
    # The observation encoder (fields in LearnedAgentConfig) is shared by actor and critics and
    # trained by the critic loss only.
    # HIL-SERL's hybrid gripper: SAC on the 6-D pose, a DQN critic over {open, stay, close}
    hybrid_gripper: bool = False
    grasp_penalty: float = -0.02  # added to the grasp critic's reward when a command toggles the gripper
    seed: int = 0

    def target_entropy_for(self, continuous_dim: int) -> float:
        """The entropy the temperature holds the policy at, for this many continuous action entries."""
        return -continuous_dim / 2 if self.target_entropy is None else self.target_entropy

    def validate(self, key: str = "agent") -> None:
        def check(condition: bool, name: str, message: str) -> None:
            if not condition:
                raise ConfigError(f"{key}.{name}: {message}")

        check(self.name == "sac", "name", f"must be 'sac' for SACConfig, got {self.name!r}")
        check(len(self.hidden_dims) >= 1 and min(self.hidden_dims) >= 1, "hidden_dims", "needs >= 1 positive size")
        check(self.num_critics >= 1, "num_critics", f"must be >= 1, got {self.num_critics}")
        check(
            1 <= self.critic_subset <= self.num_critics,
            "critic_subset",
            f"must be in [1, num_critics={self.num_critics}], got {self.critic_subset}",
        )
        check(self.utd_ratio >= 1, "utd_ratio", f"must be >= 1, got {self.utd_ratio}")
        check(0.0 <= self.discount <= 1.0, "discount", f"must be in [0, 1], got {self.discount}")
        check(
            self.max_target_q is None or math.isfinite(self.max_target_q),
            "max_target_q",
            f"must be a finite number or null, got {self.max_target_q}",
        )
        check(0.0 < self.tau <= 1.0, "tau", f"must be in (0, 1], got {self.tau}")
        for name in ("actor_lr", "critic_lr", "temperature_lr", "init_temperature"):
            check(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        check(self.log_std_min < self.log_std_max, "log_std_min", "must be < log_std_max")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        self.validate_encoder(key)
        check(self.grasp_penalty <= 0, "grasp_penalty", f"is a penalty: must be <= 0, got {self.grasp_penalty}")
