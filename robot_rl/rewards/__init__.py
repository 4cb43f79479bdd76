"""Reward models: learned and zero-shot rewards, measured against the twin's ground truth.

base.py is the interface (RewardModel.score: observations -> RewardOutput), config.py the base of
every source's config; `make_reward_model` builds the model a `reward=...` config names.
"""

from __future__ import annotations

import torch

from robot_rl.rewards.base import RewardModel
from robot_rl.rewards.config import RewardConfig
from robot_rl.sim.config import ConfigError


def _classifier_loader():
    from robot_rl.rewards.classifier import load_success_classifier

    return load_success_classifier


def _perceptual_loader():
    from robot_rl.rewards.perceptual import load_perceptual_reward

    return load_perceptual_reward


def _preference_loader():
    from robot_rl.rewards.preference import load_preference_reward

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
    if config.name == "clip":
        from robot_rl.rewards.clip.model import CLIPReward

        model = CLIPReward(config)  # on config.device: CLIP goes where the GPU is
    elif config.name == "intervention":
        from robot_rl.rewards.simple import InterventionReward

        model = InterventionReward(config).to(device)
    elif config.name in TRAINED_REWARDS:
        if not config.checkpoint:
            raise ConfigError(
                f"reward.checkpoint: reward={config.name} needs a trained model; make one with "
                f"`robot-rl train-reward reward={config.name}` and pass its file as reward.checkpoint"
            )
        model, _ = TRAINED_REWARDS[config.name]()(config.checkpoint, config, device)
    else:
        raise ConfigError(f"reward.name: no reward model is built for {config.name!r}")
    return model.eval()
