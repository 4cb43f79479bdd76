"""A simulated operator that intervenes on the twin as a person with a SpaceMouse does in HIL-SERL,
so that intervention-based learning (HIL-SERL, RLIF) runs in CI and benchmarks without a person.

The person watches the robot and knows what it should do: a scripted expert (robot_rl/sim/experts.py)
that reads the twin's privileged state. Once per control step, before the env steps, the caller
hands the policy's action to step(); the human either lets it run or takes over with their own.
The model, and why each parameter is there:
  deviation   a person notices a robot heading the wrong way, not a style of its own: the policy's
              action is "wrong" when its translation points more than max_heading_error_deg away
              from the expert's (while the expert moves: both at least min_motion of full scale), or
              when it commands the gripper against the expert (close where the expert opens, or the
              reverse; watch_gripper). Speed and rotation are the policy's business: an action
              distance would flag a policy that succeeds its own way (one at 80% success was "off"
              by more than 1.0 in L2 on 95% of its steps). One odd step is forgiven; patience_steps
              in a row are not, unless the task progressed meanwhile: the expert is a plan, and a
              policy that goes its own way and gets there (the twin's dense progress,
              info["oracle_dense_reward"], up by min_progress over those steps) is left alone.
  stuck       a robot that makes no progress is as bad as a wrong one (a policy that learned to hold
              still is common early in training): the TCP less than stuck_distance from where it was
              stuck_steps steps ago (0: never) while the expert moved on every one of those steps
              (translation at least min_motion). A person lining a peg up with a hole moves a
              fraction of a millimetre a step and does not call that stuck: without the expert's
              motion in the rule the human took over from the noisy expert itself 0.75 times an
              episode on peg_insert, so RLIF penalised careful alignment.
  stalled     nor does a person watch a robot sit beside the goal for long, whatever the expert would
              do there: the TCP less than stuck_distance from where it was stall_steps steps ago
              (0: never) and the task's dense progress up by less than min_progress over them. This
              is the stuck rule without the expert's motion, over a longer window: next to the goal
              the expert's corrections are too small to count as motion (a peg resting on the rim
              1-3 mm off the hole's axis), so without it a policy could rest there at no cost,
              which RLIF's reward values as much as a success. The noisy expert (noise 0.02 on the
              controlled entries, 40 episodes) rests 10 steps over the hole in up to a third of its
              episodes on peg_insert and 30 steps in 0-15% (its 0.6 mm jitter a step keeps it
              outside the 0.4 mm it waits for): the longer window, and a person stepping in then too.
              None of the triggers fires on a success: nobody steps in then.
  reaction    a person decides, then reaches for the SpaceMouse: the policy still drives the step
              the human decides on and reaction_delay_steps more, then the human takes over. So a
              deviating policy executes patience_steps + reaction_delay_steps actions first.
  noise       a hand on a SpaceMouse is not a controller: Gaussian noise (noise_std) on the expert's
              action, clipped to the spec's [-1, 1], so the learner does not see a perfect teacher.
  hand-back   a person corrects and lets go, to see whether the policy now copes: one intervention
              lasts takeover_steps, then the policy drives again and both triggers start afresh.
  budget      a person's attention is finite, and a benchmark compares methods at equal human effort:
              at most budget_steps_per_episode intervened steps per episode (0: none, None:
              unlimited) and budget_total over the run (None: unlimited). An intervention that runs
              out of budget ends there; none starts without budget. Where the intervention is the
              reward (RLIF) a per-episode budget makes it depend on what the episode spent before,
              which the state does not show: the same wrong step is -1 early in an episode and 0
              once the budget is gone, so configs/hil/rlif.yaml leaves it unlimited.
The expert is asked every step, intervening or not, because its state machine follows the episode.
All randomness is the noise, from a generator seeded with `seed`: a run is reproducible.
An episode boundary (reset()) ends any intervention and pending decision.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from robot_rl import spec
from robot_rl.sim.config import ConfigError


class Expert(Protocol):
    def act(self, obs: dict, info: dict) -> np.ndarray: ...

    def reset(self) -> None: ...


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class SimulatedHumanConfig:
    """The simulated operator (see the module docstring for what each knob models)."""

    max_heading_error_deg: float = 90.0  # translation this far off the expert's is the wrong way; inf: never
    min_motion: float = 0.1  # |translation action| (of full scale 1) below which it has no heading
    watch_gripper: bool = True  # a gripper command against the expert's is wrong too
    min_progress: float = 0.01  # dense progress over a deviating streak that excuses it (inf: none does)
    patience_steps: int = 2  # consecutive deviating steps before deciding to take over
    stuck_steps: int = 10  # 0: no stuck detection
    stuck_distance: float = 0.005  # m
    stall_steps: int = 30  # 0: no stall detection
    reaction_delay_steps: int = 1  # policy steps between the deciding step and the takeover
    takeover_steps: int = 8  # one intervention's length, then hand back
    noise_std: float = 0.1  # on the human's action, before clipping to [-1, 1]
    budget_steps_per_episode: int | None = 40  # intervened steps per episode; 0: none; None: unlimited
    budget_total: int | None = None  # intervened steps over the run; None: unlimited
    seed: int = 0

    def validate(self, key: str = "hil.human") -> None:
        _check(
            0 < self.max_heading_error_deg <= 180 or self.max_heading_error_deg == math.inf,
            f"{key}.max_heading_error_deg",
            f"must be in (0, 180] degrees (inf: never), got {self.max_heading_error_deg}",
        )
        _check(
            math.isfinite(self.min_motion) and 0 < self.min_motion <= 1,
            f"{key}.min_motion",
            f"must be in (0, 1] (of full scale), got {self.min_motion}",
        )
        for name, low in (
            ("patience_steps", 1),
            ("stuck_steps", 0),
            ("stall_steps", 0),
            ("reaction_delay_steps", 0),
            ("takeover_steps", 1),
            ("seed", 0),
        ):
            value = getattr(self, name)
            _check(_is_int(value) and value >= low, f"{key}.{name}", f"must be an integer >= {low}, got {value!r}")
        _check(
            self.min_progress > 0,
            f"{key}.min_progress",
            f"must be > 0 (inf: no progress excuses a deviation), got {self.min_progress}",
        )
        for name in ("stuck_distance", "noise_std"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{key}.{name}", f"must be >= 0, got {value}")
        for name in ("budget_steps_per_episode", "budget_total"):
            value = getattr(self, name)
            _check(
                value is None or (_is_int(value) and value >= 0),
                f"{key}.{name}",
                f"must be an integer >= 0 or null (unlimited), got {value!r}",
            )


@dataclass(frozen=True)
class HumanDecision:
    action: np.ndarray | None  # float32[7], the human's action while intervening, else None
    intervening: bool
    started: bool  # the first step of an intervention (RLIF's reward is -1 there)
    reason: str  # why the ongoing intervention began: "deviation", "stuck" or "stalled"; "" when not
    interventions: int  # started over the run, this one included
    episode_intervened_steps: int  # this step included
    total_intervened_steps: int


@dataclass(frozen=True)
class EpisodeStats:
    steps: int
    intervened_steps: int
    interventions: int

    @property
    def intervention_rate(self) -> float:
        return self.intervened_steps / self.steps if self.steps else 0.0

    @property
    def mean_intervention_length(self) -> float:
        return self.intervened_steps / self.interventions if self.interventions else 0.0


class SimulatedHuman:
    """reset() at each episode start, then step(obs, info, policy_action) once per control step,
    before the env steps; execute decision.action instead of the policy's while it is not None."""

    def __init__(self, config: SimulatedHumanConfig, expert: Expert):
        config.validate()
        self.config, self.expert = config, expert
        self._rng = np.random.default_rng(config.seed)
        self._max_cos = math.cos(math.radians(min(config.max_heading_error_deg, 180.0)))
        self.interventions = 0
        self.total_intervened_steps = 0
        self.reset()

    def reset(self) -> None:
        self.expert.reset()
        self._steps = self._episode_intervened = self._episode_interventions = 0
        self._takeover_left = 0  # steps left in the ongoing intervention
        self._reason = ""
        self._pending: tuple[int, str] | None = None  # a decision: the step to take over at, and why
        self._forget()

    @property
    def episode_stats(self) -> EpisodeStats:
        return EpisodeStats(self._steps, self._episode_intervened, self._episode_interventions)

    def step(self, obs: dict, info: dict, policy_action: np.ndarray) -> HumanDecision:
        expert_action = np.asarray(self.expert.act(obs, info), dtype=np.float32)
        policy_action = np.asarray(policy_action, dtype=np.float32)
        if policy_action.shape != (spec.ACTION_DIM,):
            raise ValueError(f"policy_action must have shape ({spec.ACTION_DIM},), got {policy_action.shape}")
        now, self._steps = self._steps, self._steps + 1
        started = False
        if self._takeover_left == 0 and self._pending is None:
            self._watch(now, obs, info, np.clip(policy_action, -1.0, 1.0), expert_action)
        if self._pending is not None and now >= self._pending[0]:
            self._reason = self._pending[1]
            self._pending = None
            self._forget()  # after this decision, both triggers start afresh
            if self._budget_left() > 0:
                self._takeover_left, started = self.config.takeover_steps, True
                self.interventions += 1
                self._episode_interventions += 1
        if self._takeover_left and self._budget_left() == 0:
            self._takeover_left = 0
        action = None
        if self._takeover_left:
            noise = self._rng.normal(0.0, self.config.noise_std, spec.ACTION_DIM)
            action = np.clip(expert_action + noise, -1.0, 1.0).astype(np.float32)
            self._takeover_left -= 1
            self._episode_intervened += 1
            self.total_intervened_steps += 1
        return HumanDecision(
            action=action,
            intervening=action is not None,
            started=started,
            reason=self._reason if action is not None else "",
            interventions=self.interventions,
            episode_intervened_steps=self._episode_intervened,
            total_intervened_steps=self.total_intervened_steps,
        )

    def _watch(self, now: int, obs: dict, info: dict, policy_action: np.ndarray, expert_action: np.ndarray) -> None:
        """Decide whether to take over, from what the policy does now and where the TCP has been."""
        c = self.config
        self._positions.append(np.array(obs["state"]["tcp_pose"][:3], dtype=np.float64))
        self._expert_moving.append(bool(np.linalg.norm(expert_action[:3]) >= c.min_motion))
        progress = info.get("oracle_dense_reward")
        self._progress.append(progress)
        if info["success"]:
            self._deviating = 0
            return
        if not self._wrong_way(policy_action, expert_action):
            self._deviating = 0
        else:
            if self._deviating == 0:
                self._streak_progress = progress
            self._deviating += 1
            if progress is not None and progress - self._streak_progress >= c.min_progress:
                self._deviating = 0  # its own way, but getting there
        stuck = self._still_for(c.stuck_steps) and all(self._expert_moving)
        stalled = self._still_for(c.stall_steps) and (
            progress is None or progress - min(self._progress) < c.min_progress
        )
        if self._deviating >= c.patience_steps:
            self._pending = (now + 1 + c.reaction_delay_steps, "deviation")
        elif stuck or stalled:
            self._pending = (now + 1 + c.reaction_delay_steps, "stuck" if stuck else "stalled")

    def _still_for(self, steps: int) -> bool:
        """Whether the TCP is less than stuck_distance from where it was `steps` steps ago (0: never)."""
        if steps == 0 or len(self._positions) <= steps:
            return False
        return bool(np.linalg.norm(self._positions[-1] - self._positions[-1 - steps]) < self.config.stuck_distance)

    def _wrong_way(self, policy_action: np.ndarray, expert_action: np.ndarray) -> bool:
        c = self.config
        policy, expert = policy_action[:3].astype(np.float64), expert_action[:3].astype(np.float64)
        moving = min(np.linalg.norm(policy), np.linalg.norm(expert)) >= c.min_motion
        heading_off = (
            c.max_heading_error_deg != math.inf
            and moving
            and policy @ expert < self._max_cos * np.linalg.norm(policy) * np.linalg.norm(expert)
        )
        band = spec.GRIPPER_DEADBAND  # beyond it a command closes (+) or opens (-)
        gripper_against = c.watch_gripper and (
            (expert_action[6] > band and policy_action[6] < -band)
            or (expert_action[6] < -band and policy_action[6] > band)
        )
        return bool(heading_off or gripper_against)

    def _forget(self) -> None:
        self._deviating = 0
        self._streak_progress: float | None = None  # the task's progress when the deviating streak began
        c = self.config
        self._positions: deque[np.ndarray] = deque(maxlen=max(c.stuck_steps, c.stall_steps) + 1)
        self._expert_moving: deque[bool] = deque(maxlen=c.stuck_steps + 1)  # over the stuck window
        self._progress: deque[float | None] = deque(maxlen=c.stall_steps + 1)  # over the stall window

    def _budget_left(self) -> float:  # inf: unlimited
        c = self.config
        left = math.inf
        if c.budget_steps_per_episode is not None:
            left = c.budget_steps_per_episode - self._episode_intervened
        if c.budget_total is not None:
            left = min(left, c.budget_total - self.total_intervened_steps)
        return left
