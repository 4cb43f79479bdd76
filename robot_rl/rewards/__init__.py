"""Reward models: learned and zero-shot rewards, measured against the twin's ground truth.

base.py is the interface (RewardModel.score: observations -> RewardOutput), config.py the base of
every source's config; `make_reward_model` builds the model a `reward=...` config names, a
composite's sources and an ensemble's members (ensemble.py) each by the same path as a single reward.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from robot_rl.rewards.base import RewardModel
from robot_rl.rewards.config import RewardConfig
from robot_rl.sim.config import ConfigError


def _classifier_loader():
    from robot_rl.rewards.classifier.model import load_success_classifier

    return load_success_classifier


def _perceptual_loader():
    from robot_rl.rewards.perceptual.model import load_perceptual_reward

    return load_perceptual_reward


def _preference_loader():
    from robot_rl.rewards.preference.model import load_preference_reward

    return load_preference_reward


# reward name -> () -> load(path, config, device) -> (model, report), for models trained by train-reward
TRAINED_REWARDS = {
    "classifier": _classifier_loader,
    "perceptual": _perceptual_loader,
    "preference": _preference_loader,
}


def make_reward_model(config: RewardConfig, device: torch.device | str = "cpu") -> RewardModel | None:
    """The model a reward config names, in eval mode; None for the twin's oracle rewards (the env
    computes those). Imports each model's module only when it is used (open_clip is slow to import)."""
    if config.is_oracle:
        return None
    return _build(config, device, "reward").eval()


def check_reward_cameras(model: RewardModel, cameras: list[str]) -> None:
    """Raise a ConfigError if the model reads a camera that is not rendered (sim.cameras)."""
    missing = set(model.cameras) - set(cameras)
    if missing:
        raise ConfigError(f"reward: reads camera(s) {sorted(missing)}, not in sim.cameras={cameras}")


def _build(config: RewardConfig, device: torch.device | str, key: str) -> RewardModel:
    """A reward model from its config; `key` is where the config sits (reward, reward.sources.<name>),
    for the messages."""
    if config.name == "clip":
        from robot_rl.rewards.clip.model import CLIPReward

        return CLIPReward(config)  # on config.device: CLIP goes where the GPU is
    if config.name == "intervention":
        from robot_rl.rewards.simple import InterventionReward

        return InterventionReward(config).to(device)
    if config.name == "force_penalty":
        from robot_rl.rewards.simple import ContactForcePenalty

        return ContactForcePenalty(config).to(device)
    if config.name == "composite":
        from robot_rl.rewards.ensemble import CompositeReward

        # Every source checked before any is built: a typo in the last must not wait on loading the first.
        config.validate(key)
        if not config.sources:
            raise ConfigError(
                f"{key}.sources: a composite reward needs its sources (see configs/reward/composite.yaml)"
            )
        members = {name: _build(source, device, f"{key}.sources.{name}") for name, source in config.sources.items()}
        return CompositeReward(members, config)  # no .to(device): each source is where it runs (CLIP on its own)
    if config.name == "ensemble":
        from robot_rl.rewards.ensemble import RewardEnsemble

        config.validate(key)
        if not config.checkpoints:
            raise ConfigError(f"{key}.checkpoints: list the members' files (see configs/reward/ensemble.yaml)")
        members = [
            _build(replace(config.member, checkpoint=path), device, f"{key}.checkpoints[{i}]")
            for i, path in enumerate(config.checkpoints)
        ]
        return RewardEnsemble(members, config)
    if config.name in TRAINED_REWARDS:
        if not config.checkpoint:
            raise ConfigError(
                f"{key}.checkpoint: reward={config.name} needs a trained model; make one with "
                f"`robot-rl train-reward reward={config.name}` and pass its file as {key}.checkpoint"
            )
        model, _ = TRAINED_REWARDS[config.name]()(config.checkpoint, config, device)
        return model
    raise ConfigError(f"{key}.name: no reward model is built for {config.name!r}")
