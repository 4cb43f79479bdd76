"""What the nodes of the ROS graph send each other that no standard message carries: an
observation, an executed step, policy weights. Each is a tree of numbers, strings and numpy
arrays that robot_rl/data/tree.py turns into safetensors bytes (no pickles), carried in a
std_msgs/UInt8MultiArray (ros_nodes/convert.py: tree_to_blob, blob_to_tree). DDS delivers a
message whole or not at all, and the tree's SHA-256 refuses one damaged on the way.

observation   aggregator -> actor, one per control tick
    {"stamp_ns": int, "obs": spec observation (robot_rl/spec.py), "ages_ms": {stream: float},
     "privileged": {} or, on the twin only, its ground truth for the same stamp}
    ages_ms: how old each stream's newest sample was at the tick, for the timing benchmarks.
    privileged: what the twin publishes on sim/privileged (PRIVILEGED_KEYS), so a run over ROS on
    the twin can use the oracle reward and episode ends, as an in-process run does.
step          actor -> learner and recorder, one per executed control step
    {"episode": str, "step": int, "stamp_ns": int, "obs": ..., "action": float32[7] executed,
     "policy_action": float32[7], "intervened": bool, "reward": float, "next_obs": ...,
     "terminated": bool, "truncated": bool, "success": bool, "intervention_start": bool,
     "start_reward": float}
    `action` is what the robot was commanded (the operator's while intervening), `policy_action`
    what the policy proposed; `success` is the episode's success label as known at that step.
    `intervention_start`: the operator took over with this step. RLIF's penalty belongs to the
    policy's action the operator stepped in on, not to the correction that was executed, so
    `reward` scores the executed action as any step, and `start_reward` the policy's action with
    the intervention start (the reward server's; NaN where no learned reward scored one): the
    learner stores that as a terminal transition of its own, as it does in-process.
weights       learner -> actors
    {"version": int, "agent": the agent's policy state (tensors), "agent_config": JSON string}
reward request   actor -> reward server, when a step closes and the reward is a learned model
    {"stamp_ns": int, "obs": the observation the action led to, "action": float32[7] executed,
     "policy_action": float32[7], "intervention_start": bool (the operator took over with it)}
reward reply     reward server -> actor, for the request of the same stamp
    {"stamp_ns": int, "reward": float (the executed action's), "success": bool (the model's
     success decision; False for models that make none), "start_reward": float (where the request
     started an intervention: the policy's action scored with the start, RLIF's penalty; else
     NaN), "error": str ("" when scored; else why not, and the rewards are NaN)}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_rl import spec


def check_observation(obs: Any, field_name: str = "obs") -> None:
    """Raise a ValueError naming the field if `obs` is not a spec observation."""
    if not isinstance(obs, dict) or "state" not in obs:
        raise ValueError(f"{field_name}: not an observation dict with a 'state'")
    state = obs["state"]
    for key, dim in spec.STATE_DIMS.items():
        value = state.get(key)
        if not isinstance(value, np.ndarray) or value.shape != (dim,) or value.dtype != np.float32:
            got = f"{value.dtype}{list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{field_name}.state.{key}: expected float32[{dim}], got {got}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{field_name}.state.{key}: not finite: {value}")
    for cam, frame in obs.get("images", {}).items():
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            got = f"{frame.dtype}{list(frame.shape)}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"{field_name}.images.{cam}: expected uint8[H, W, 3], got {got}")


def _check_action(action: Any, field_name: str) -> np.ndarray:
    action = np.asarray(action)
    if action.shape != (spec.ACTION_DIM,) or not np.all(np.isfinite(action)):
        raise ValueError(f"{field_name}: expected {spec.ACTION_DIM} finite numbers {spec.ACTION_LAYOUT}, got {action}")
    return action.astype(np.float32)


def _get(tree: Any, key: str, kind: str) -> Any:
    if not isinstance(tree, dict) or key not in tree:
        raise ValueError(f"{kind}: no field {key!r}")
    return tree[key]


# sim/privileged: the twin's ground truth at a stamp, {"stamp_ns": int, "task_state": float32[k]
# (empty unless sim.privileged_state), "success": bool, "reward": float (the configured oracle's),
# "truncated": bool (its step limit, or physics diverged)}; the aggregator passes all but the
# stamp through.
PRIVILEGED_KEYS = ("task_state", "success", "reward", "truncated")


@dataclass
class ObservationMessage:
    stamp_ns: int
    obs: dict
    ages_ms: dict[str, float] = field(default_factory=dict)
    privileged: dict = field(default_factory=dict)

    def to_tree(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_tree(cls, tree: Any) -> ObservationMessage:
        message = cls(
            int(_get(tree, "stamp_ns", "observation")),
            _get(tree, "obs", "observation"),
            dict(_get(tree, "ages_ms", "observation")),
            dict(tree.get("privileged", {})),
        )
        check_observation(message.obs, "observation.obs")
        return message


@dataclass
class StepMessage:
    episode: str
    step: int
    stamp_ns: int
    obs: dict
    action: np.ndarray
    policy_action: np.ndarray
    intervened: bool
    reward: float
    next_obs: dict
    terminated: bool
    truncated: bool
    success: bool
    intervention_start: bool = False
    start_reward: float = math.nan

    def to_tree(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_tree(cls, tree: Any) -> StepMessage:
        values = {name: _get(tree, name, "step") for name in cls.__dataclass_fields__}
        message = cls(**values)
        check_observation(message.obs, "step.obs")
        check_observation(message.next_obs, "step.next_obs")
        message.action = _check_action(message.action, "step.action")
        message.policy_action = _check_action(message.policy_action, "step.policy_action")
        if not np.isfinite(message.reward):
            raise ValueError(f"step.reward: not finite: {message.reward}")
        message.intervention_start, message.start_reward = bool(message.intervention_start), float(message.start_reward)
        if message.intervention_start and not message.intervened:
            raise ValueError("step.intervention_start: set on a step the operator did not execute")
        return message


@dataclass
class WeightsMessage:
    version: int
    agent: dict
    agent_config: str

    def to_tree(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_tree(cls, tree: Any) -> WeightsMessage:
        return cls(**{name: _get(tree, name, "weights") for name in cls.__dataclass_fields__})


@dataclass
class RewardRequestMessage:
    stamp_ns: int
    obs: dict
    action: np.ndarray
    policy_action: np.ndarray
    intervention_start: bool

    def to_tree(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_tree(cls, tree: Any) -> RewardRequestMessage:
        message = cls(**{name: _get(tree, name, "reward request") for name in cls.__dataclass_fields__})
        message.stamp_ns = int(message.stamp_ns)
        check_observation(message.obs, "reward request.obs")
        message.action = _check_action(message.action, "reward request.action")
        message.policy_action = _check_action(message.policy_action, "reward request.policy_action")
        message.intervention_start = bool(message.intervention_start)
        return message


@dataclass
class RewardReplyMessage:
    stamp_ns: int
    reward: float
    success: bool
    start_reward: float = math.nan
    error: str = ""

    def to_tree(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_tree(cls, tree: Any) -> RewardReplyMessage:
        message = cls(**{name: _get(tree, name, "reward reply") for name in cls.__dataclass_fields__})
        message.stamp_ns, message.reward = int(message.stamp_ns), float(message.reward)
        message.start_reward = float(message.start_reward)
        message.success, message.error = bool(message.success), str(message.error)
        if not message.error and not np.isfinite(message.reward):
            raise ValueError(f"reward reply: reward not finite: {message.reward}")
        return message
