"""Combining reward models: an ensemble of one kind, and a weighted composite of several sources.

RewardEnsemble: K models of the same kind (e.g. success classifiers trained from different seeds),
aggregated conservatively so that the policy cannot exploit one member's errors. Coste et al. 2023,
"Reward Model Ensembles Help Mitigate Overoptimization": worst-case (min over members) and
uncertainty-weighted (mean - lambda * variance) objectives.

CompositeReward: a weighted sum of different sources (a task reward + an intervention penalty +
a contact-force penalty, ...), weights from config. From Hydra (`reward=composite`), each source's
config is an option of the reward group in its own dataclass (configs/reward/composite.yaml), and
`robot_rl.rewards.make_reward_model` builds every source as it builds a single reward.

Both take already-built RewardModels; whoever reads the config builds the members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.config import RewardConfig
from robot_rl.sim.config import ConfigError, check_choice

AGGREGATIONS = ("mean", "min", "mean_minus_var")


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _union(camera_lists: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """Cameras in first-seen order, each once."""
    return tuple(dict.fromkeys(camera for cameras in camera_lists for camera in cameras))


@dataclass
class RewardEnsembleConfig(RewardConfig):
    """From Hydra (`reward=ensemble`, configs/reward/ensemble.yaml): one member per file in
    `checkpoints`, each built from `member` (a trained reward's config, e.g. the classifier's) with
    its checkpoint set to that file. Empty `checkpoints` and no `member` when the caller builds the
    members itself and hands them to RewardEnsemble."""

    name: str = "ensemble"
    aggregation: str = "mean"  # "mean", "min" (worst case) or "mean_minus_var" (uncertainty-weighted)
    var_coef: float = 1.0  # lambda in mean - lambda * var; used by "mean_minus_var" only
    member: RewardConfig | None = None
    checkpoints: list[str] = field(default_factory=list)

    def validate(self, key: str = "reward") -> None:
        _check(self.name == "ensemble", f"{key}.name", f"must be 'ensemble', got {self.name!r}")
        check_choice(self.aggregation, AGGREGATIONS, f"{key}.aggregation")
        _check(self.var_coef >= 0, f"{key}.var_coef", f"must be >= 0, got {self.var_coef}")
        if not self.checkpoints:
            return
        _check(self.member is not None, f"{key}.member", "the members' reward config is needed to build them")
        _check(
            hasattr(self.member, "checkpoint"),
            f"{key}.member",
            f"{self.member.name} is not a trained reward model: there is nothing to load from {key}.checkpoints",
        )
        self.member.validate(f"{key}.member")


class RewardEnsemble(RewardModel):
    """Rewards r_k, k = 1..K, of K members on the same inputs, aggregated to
        mean:            r = mean_k r_k
        min:             r = min_k r_k
        mean_minus_var:  r = mean_k r_k - lambda * var_k r_k
    uncertainty = std_k r_k, success_prob = mean of the members' success_prob (those that give one).
    success: where every member declares success (None unless every member makes the decision), so
    a policy must fool every member to end an episode on a false success.
    Variance and std are the population ones (divide by K), so one member has uncertainty 0, not NaN.
    The members' own `uncertainty` is not propagated: the spread across members is the estimate."""

    def __init__(self, members: Sequence[RewardModel], config: RewardEnsembleConfig | None = None):
        super().__init__()
        self.config = config or RewardEnsembleConfig()
        self.config.validate()
        if len(members) == 0:
            raise ValueError("RewardEnsemble needs at least one member")
        kinds = sorted({type(m).__name__ for m in members})
        if len(kinds) > 1:
            # Members of different kinds have different reward scales: their mean or min means
            # nothing. A weighted sum of different sources is what CompositeReward is for.
            raise ValueError(f"RewardEnsemble members must be of one kind, got {kinds}; use CompositeReward to mix")
        self.members = torch.nn.ModuleList(members)  # so .to(device) and state_dict() reach them
        self.cameras = _union([m.cameras for m in members])

    def forward(self, inputs: RewardInput) -> RewardOutput:
        outputs = [member.score(inputs) for member in self.members]  # score() checks each member (a NaN fails there)
        rewards = torch.stack([out.reward for out in outputs])  # [K, B]
        mean = rewards.mean(dim=0)
        var = rewards.var(dim=0, correction=0)
        if self.config.aggregation == "mean":
            reward = mean
        elif self.config.aggregation == "min":
            reward = rewards.min(dim=0).values
        else:
            reward = mean - self.config.var_coef * var
        probs = [out.success_prob for out in outputs if out.success_prob is not None]
        success_prob = torch.stack(probs).mean(dim=0) if probs else None
        decisions = [out.success for out in outputs]
        success = torch.stack(decisions).all(dim=0) if all(d is not None for d in decisions) else None
        return RewardOutput(reward=reward, success_prob=success_prob, uncertainty=var.sqrt(), success=success)


@dataclass
class CompositeRewardConfig(RewardConfig):
    """sources: source name -> that source's reward config (the names are the composer's: e.g.
    {classifier: SuccessClassifierConfig(...), force_penalty: ForcePenaltyConfig()}); Hydra fills it
    from the reward group, see configs/reward/composite.yaml. Empty when the caller builds the
    members itself and hands them to CompositeReward.
    weights: source name -> weight, one entry per source. A weight of 0 keeps a source that is read
    only for its success decision.
    success_from: the source whose success_prob and success decision the composite reports ("" for
    none: then no model success ends an episode)."""

    name: str = "composite"
    sources: dict[str, RewardConfig] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    success_from: str = ""

    def validate(self, key: str = "reward") -> None:
        _check(self.name == "composite", f"{key}.name", f"must be 'composite', got {self.name!r}")
        _check(len(self.weights) > 0, f"{key}.weights", "needs at least one source")
        for source, weight in self.weights.items():
            # The sources live in a torch ModuleDict: a key may not contain "." (the state_dict separator)
            # nor shadow one of its attributes ("keys", "training", ...).
            valid = source != "" and "." not in source and not hasattr(torch.nn.ModuleDict(), source)
            _check(valid, f"{key}.weights", f"{source!r} cannot name a source (empty, has a '.', or reserved)")
            _check(weight == weight and abs(weight) != float("inf"), f"{key}.weights.{source}", "must be finite")
        if self.success_from:
            check_choice(self.success_from, list(self.weights), f"{key}.success_from")
        if not self.sources:
            return
        unweighted = sorted(set(self.sources) - set(self.weights))
        missing = sorted(set(self.weights) - set(self.sources))
        if unweighted:
            raise ConfigError(
                f"{key}.weights: no weight for source(s) {unweighted}; "
                f"set one (+{key}.weights.{unweighted[0]}=<weight>)"
            )
        if missing:
            raise ConfigError(
                f"{key}.sources: no source for weight(s) {missing} (sources: {sorted(self.sources)}); add it "
                f"(+reward@{key}.sources.{missing[0]}=<option of the reward group>) or drop the weight "
                f"(~{key}.weights.{missing[0]})"
            )
        for source, source_config in self.sources.items():
            _check(
                not source_config.is_oracle,
                f"{key}.sources.{source}",
                f"{source_config.name} is the twin's ground truth, computed by the env, not a reward model: "
                f"it cannot be a source (use reward={source_config.name} on its own)",
            )
            source_config.validate(f"{key}.sources.{source}")


class CompositeReward(RewardModel):
    """r = sum_k w_k r_k over named sources.
    success_prob and success: the designated source's (config.success_from), else None; its success
    decision ends a training episode as a lone source's would.
    uncertainty: sqrt(sum_k w_k^2 u_k^2), the std of the sum if the sources' errors are independent;
    a source without uncertainty (an exact term such as an intervention) counts 0; None when no
    source gives one. cameras: the union of the sources' cameras."""

    def __init__(self, members: Mapping[str, RewardModel], config: CompositeRewardConfig):
        super().__init__()
        config.validate()
        missing = sorted(set(config.weights) - set(members))
        unweighted = sorted(set(members) - set(config.weights))
        _check(not missing, "reward.weights", f"no source built for {missing} (built: {sorted(members)})")
        _check(not unweighted, "reward.weights", f"no weight for source(s) {unweighted}")
        self.config = config
        self.members = torch.nn.ModuleDict({name: members[name] for name in config.weights})
        self.cameras = _union([m.cameras for m in self.members.values()])

    def score_terms(self, inputs: RewardInput) -> dict[str, RewardOutput]:
        """Each source's own output (unweighted), e.g. to log reward/<source> beside the sum."""
        return {name: member.score(inputs) for name, member in self.members.items()}

    def forward(self, inputs: RewardInput) -> RewardOutput:
        terms = self.score_terms(inputs)
        weights = self.config.weights
        reward = sum(weights[name] * out.reward for name, out in terms.items())
        variances = [
            weights[name] ** 2 * out.uncertainty**2 for name, out in terms.items() if out.uncertainty is not None
        ]
        uncertainty = sum(variances).sqrt() if variances else None
        success_prob = success = None
        if self.config.success_from:
            source = terms[self.config.success_from]
            if source.success_prob is None:
                raise ValueError(
                    f"success_from={self.config.success_from!r}, but that source "
                    f"({type(self.members[self.config.success_from]).__name__}) gives no success_prob"
                )
            success_prob, success = source.success_prob, source.success
        return RewardOutput(reward=reward, success_prob=success_prob, uncertainty=uncertainty, success=success)
