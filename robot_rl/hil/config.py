"""HilConfig: human-in-the-loop training on the twin, with the simulated human standing in for the
operator (robot_rl/hil/simulated_human.py). The modes (configs/hil/):

  off       no interventions
  hil_serl  HIL-SERL: the task reward is the configured one (on a robot, a learned one)
  rlif      RLIF: the reward is -1 where an intervention starts and 0 otherwise, and nothing else
            (reward=intervention): the policy learns to avoid what makes a person step in. The -1
            goes to the policy's proposed action, in a terminal transition of its own (the policy's
            trajectory ends where the human takes over); the human's correction is stored unpenalised
  both      the task reward and the intervention penalty (reward=composite with an intervention
            source)

Whatever the mode, an intervened step stores the human's action (what the robot did), in the
online buffer and in the intervention buffer (the demo buffer, sampled 50/50 with online data:
the corrections are demonstrations), and the intervention rate and lengths are logged per episode
(hil/*). The modes differ only in the reward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_rl.hil.simulated_human import SimulatedHumanConfig
from robot_rl.sim.config import ConfigError, check_choice

HIL_MODES = ("off", "hil_serl", "rlif", "both")


VIEWER_MODES = ("auto", "on", "off")


@dataclass
class OperatorConfig:
    """`robot-rl demos` and `robot-rl label` (the number of demos is the top-level `episodes`)."""

    # demos / label: false, the twin in this process; true, through the ROS graph (the twin's or a
    # robot's topics) with the teleop node (and, for demos, the episode recorder)
    graph: bool = False
    viewer: str = "auto"  # a MuJoCo viewer window: auto (when a display exists) | on | off
    realtime: bool = True  # pace the twin at its control rate (false: as fast as it computes, for tests)
    positives: int = 200  # label: success frames to store (HIL-SERL's record_success_fail asks 200)
    negatives_per_positive: float = 2.0  # label: at least this many failure frames per success frame

    def validate(self, key: str = "hil.operator") -> None:
        check_choice(self.viewer, VIEWER_MODES, f"{key}.viewer")
        if self.positives < 1:
            raise ConfigError(f"{key}.positives: must be >= 1, got {self.positives}")
        if not self.negatives_per_positive >= 1.0:
            raise ConfigError(
                f"{key}.negatives_per_positive: must be >= 1 (failures outnumber successes), "
                f"got {self.negatives_per_positive}"
            )


@dataclass
class HilConfig:
    mode: str = "off"
    human: SimulatedHumanConfig = field(default_factory=SimulatedHumanConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)  # a person at the twin: robot-rl demos / label

    def validate(self, key: str = "hil") -> None:
        check_choice(self.mode, HIL_MODES, f"{key}.mode")
        self.human.validate(f"{key}.human")
        self.operator.validate(f"{key}.operator")

    @property
    def penalises_interventions(self) -> bool:
        return self.mode in ("rlif", "both")

    def check_reward(self, reward_name: str, reward_sources: list[str]) -> None:
        """The reward the mode needs: RLIF's intervention penalty is a reward source (reward=intervention,
        robot_rl/rewards/simple.py), so rlif and both need one; hil_serl needs none."""
        scores_interventions = reward_name == "intervention" or "intervention" in reward_sources
        if self.mode == "rlif" and reward_name != "intervention":
            raise ConfigError(
                f"hil.mode=rlif: the reward is the intervention penalty alone: reward=intervention, not {reward_name!r}"
            )
        if self.mode == "both" and not (reward_name == "composite" and scores_interventions):
            raise ConfigError(
                "hil.mode=both: the reward is the task's plus the intervention penalty: reward=composite with an "
                "intervention source (see configs/hil/both.yaml)"
            )
