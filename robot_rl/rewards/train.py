"""`robot-rl train-reward reward=...`: train a reward model from data collected on the twin.

  classifier   labelled frames from expert, noisy, partial, near-miss and random episodes (ground-truth
               success labels; negatives outnumber positives), held-out episodes pick the threshold;
               or, with reward.labels=PATH, an operator's labels from `robot-rl label`;
  perceptual   `episodes` successful scripted-expert demos (frames up to the success); or, with
               reward.demos=FOLDER, the successful demos recorded there (`robot-rl demos`);
  preference   segments of expert, noisy-expert and random episodes, labelled in rounds by the
               simulated oracle labeller (ground-truth dense return) or, with
               reward.label_source=vlm, by a zero-shot CLIP model (reward.vlm), or with =human by a
               person watching each pair's clips at the terminal; queries by ensemble disagreement.
On a robot the data comes from the operator's demos and labels; the training functions are the
same. The model file goes to the run directory, with a report (JSON); pass the file to training as
reward.checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from robot_rl.config import Config
from robot_rl.data.labels import LabelledFrames
from robot_rl.rollout import make_env
from robot_rl.sim.config import ConfigError
from robot_rl.sim.env import SimTwinEnv
from robot_rl.sim.experts import make_expert
from robot_rl.spec import ACTION_DIM, flatten_state

log = logging.getLogger(__name__)

TRAINABLE = ("classifier", "perceptual", "preference")
LABEL_ROUNDS = (50, 50, 100, 200)  # preference labels per round (the first round's queries are random)


def env_for_reward(config: Config, cameras: list[str], image_size: list[int] | None) -> SimTwinEnv:
    """The twin rendering the reward model's cameras at its image size, with full-length
    episodes (ground-truth success ends nothing: the collectors decide when to stop)."""
    sim = copy.deepcopy(config.sim)
    sim.cameras = list(cameras)
    for camera in cameras:
        if camera not in sim.camera_rigs:
            raise ConfigError(f"reward.cameras: unknown camera {camera!r}; the twin has {sorted(sim.camera_rigs)}")
        if image_size:
            sim.camera_rigs[camera].height, sim.camera_rigs[camera].width = image_size
    return make_env(replace(config, sim=sim), learned_reward=True)


def train_reward_model(config: Config, run_dir: Path) -> Path:
    """Collect data on the twin, train the configured reward model, save it to run_dir; returns
    the model file."""
    name = config.reward.name
    if name == "ensemble":
        raise ConfigError(
            f"reward.name: train-reward trains one model at a time; train each member with "
            f"reward={config.reward.member.name if config.reward.member else 'classifier'} (a seed each) "
            "and list their files in reward.checkpoints"
        )
    if name not in TRAINABLE:
        raise ConfigError(f"reward.name: train-reward trains {', '.join(TRAINABLE)}; {name!r} needs no training")
    train = {"classifier": _train_classifier, "perceptual": _train_perceptual, "preference": _train_preference}[name]
    path, report = train(config, run_dir)
    (run_dir / "reward_report.json").write_text(json.dumps(report, indent=2, default=float))
    return path


def _train_classifier(config: Config, run_dir: Path) -> tuple[Path, dict]:
    from robot_rl.rewards.classifier.model import save_success_classifier, train_success_classifier

    reward = config.reward
    if reward.labels:
        data, heldout, report = _recorded_labels(reward)
    else:
        data, heldout = _twin_labels(config)
        report = {"labels": "the twin's ground truth"}
    model, training = train_success_classifier(
        reward, data.images, data.labels, data.states, data.episode_ids, heldout=heldout, device=config.train.device
    )
    report = {**training, **report}
    return save_success_classifier(model, run_dir / "classifier.safetensors", report), report


def _twin_labels(config: Config) -> tuple[LabelledFrames, LabelledFrames]:
    """Frames rendered on the twin and labelled by its ground truth, and a held-out set of other seeds."""
    from robot_rl.rewards.classifier.model import collect_labelled_frames

    env = env_for_reward(config, config.reward.cameras, config.reward.image_size)
    try:
        data = collect_labelled_frames(env, config.episodes, seed=config.seed)
        heldout = collect_labelled_frames(env, max(2, config.episodes // 4), seed=config.seed + 100_000)
    finally:
        env.close()
    log.info(
        "classifier: %d frames, %d positive (+ %d held out)", len(data.labels), data.labels.sum(), len(heldout.labels)
    )
    return data, heldout


def _recorded_labels(reward) -> tuple[LabelledFrames, None, dict]:
    """An operator's labels (`robot-rl label`), frames fitted to the model's image size. Frames labelled
    both ways are reported and left out; the held-out split is by recorded episode."""
    import torch

    from robot_rl.data.labels import conflicting_labels, load_labelled_frames
    from robot_rl.rewards.base import fit_frames

    data, truth = load_labelled_frames(reward.labels)
    missing = [cam for cam in reward.cameras if cam not in data.images]
    if missing:
        raise ConfigError(
            f"reward.cameras: {missing} not in the labels {reward.labels} (they have {sorted(data.images)})"
        )
    conflicts = conflicting_labels(data)
    report = {"labels": str(reward.labels), "recorded_frames": len(data), "conflicting_frames": 0}
    if conflicts:
        dropped = np.concatenate(conflicts)
        report["conflicting_frames"] = len(dropped)
        log.warning(
            "labels: %d frames are labelled both success and failure (%d distinct frames, e.g. episode %d frames "
            "%s): left out of training",
            len(dropped),
            len(conflicts),
            data.episode_ids[conflicts[0][0]],
            conflicts[0].tolist()[:6],
        )
        keep = np.setdiff1d(np.arange(len(data)), dropped)
        data, truth = data.subset(keep), None if truth is None else truth[keep]
    size = tuple(reward.image_size)
    data.images = {cam: fit_frames(torch.from_numpy(data.images[cam]), size, cam).numpy() for cam in reward.cameras}
    if truth is not None:  # labelled on the twin: how well the operator's labels match its ground truth
        report["operator_label_agreement"] = float((truth == data.labels).mean())
    log.info(
        "classifier: %d recorded frames, %d positive, from %d episodes",
        len(data),
        data.labels.sum(),
        len(np.unique(data.episode_ids)),
    )
    return data, None, report


def _train_perceptual(config: Config, run_dir: Path) -> tuple[Path, dict]:
    from robot_rl.rewards.perceptual.model import fit_perceptual_reward, save_perceptual_reward

    reward = config.reward
    if reward.demos:
        demos = recorded_demo_frames(reward.demos, reward.cameras, tuple(reward.image_size))
    else:
        env = env_for_reward(config, reward.cameras, reward.image_size)
        try:
            demos = [expert_demo_frames(env, config.seed + i) for i in range(config.episodes)]
        finally:
            env.close()
    log.info("perceptual: %d demos, %s frames", len(demos), [len(d[reward.cameras[0]]) for d in demos])
    model, report = fit_perceptual_reward(reward, demos, device=config.train.device)
    return save_perceptual_reward(model, run_dir / "perceptual.safetensors", report), report


def recorded_demo_frames(folder: str, cameras: list[str], size: tuple[int, int]) -> list[dict[str, np.ndarray]]:
    """The successful demos recorded as bags in `folder`, as frames per camera fitted to `size`."""
    import torch

    from robot_rl.data.demos import read_demo_bags
    from robot_rl.rewards.base import fit_frames

    demos = []
    for episode in read_demo_bags(folder):
        recorded = episode.observations[0].get("images", {})
        missing = [cam for cam in cameras if cam not in recorded]
        if missing:
            raise ConfigError(f"reward.cameras: {missing} not recorded in {folder} (its bags have {sorted(recorded)})")
        frames = {cam: np.stack([obs["images"][cam] for obs in episode.observations]) for cam in cameras}
        demos.append({cam: fit_frames(torch.from_numpy(f), size, cam).numpy() for cam, f in frames.items()})
    if not demos:
        raise ConfigError(f"reward.demos: no successful demo in {folder}")
    return demos


def expert_demo_frames(env: SimTwinEnv, seed: int) -> dict[str, np.ndarray]:
    """One scripted-expert episode's frames per camera, from the reset up to the first success.
    Raises if the expert does not succeed (the demo would teach the wrong last step)."""
    expert = make_expert(env)
    obs, info = env.reset(seed=seed)
    expert.reset()
    frames = {cam: [obs["images"][cam]] for cam in env.sim_cfg.cameras}
    for _ in range(env.task.cfg.max_episode_steps):
        obs, _, _, _, info = env.step(expert.act(obs, info))
        for cam in frames:
            frames[cam].append(obs["images"][cam])
        if info["success"]:
            return {cam: np.stack(f) for cam, f in frames.items()}
    raise RuntimeError(f"the scripted expert did not succeed on seed {seed}: no demo from it")


def _train_preference(config: Config, run_dir: Path) -> tuple[Path, dict]:
    from robot_rl.rewards.preference.model import (
        PreferenceReward,
        Segment,
        add_labels,
        make_labeller,
        save_preference_reward,
        select_queries,
    )

    reward = config.reward
    cameras = list(reward.cameras)
    looks_at = {"vlm": reward.vlm.camera, "human": reward.human_camera}.get(reward.label_source)
    if looks_at is not None and looks_at not in cameras:
        cameras.append(looks_at)  # rendered for the labeller too
    env = env_for_reward(config, cameras, reward.image_size if cameras else None)
    rng = np.random.default_rng(config.seed)
    try:
        episodes = [_preference_episode(env, config.seed + i, rng) for i in range(config.episodes)]
    finally:
        env.close()
    length = reward.segment_length
    segments = [
        Segment(
            states=e["states"][t : t + length],
            images={c: v[t : t + length] for c, v in e["images"].items()},
            oracle_dense_reward=e["oracle"][t : t + length],
            success=e["success"][t : t + length],
        )
        for e in episodes
        for t in range(0, len(e["states"]) - length + 1, length)
    ]
    model = PreferenceReward(reward, state_dim=segments[0].states.shape[1]).to(config.train.device)
    labeller = make_labeller(reward)
    history = []
    for n in LABEL_ROUNDS:
        candidates = [tuple(rng.choice(len(segments), 2, replace=False)) for _ in range(10 * n)]
        pairs = [(segments[i], segments[j]) for i, j in candidates]
        # the first round has no trained ensemble to disagree: random queries
        method = None if len(model.dataset) else "random"
        chosen = select_queries(model, pairs, n, method=method, rng=rng)
        add_labels(model.dataset, [pairs[k] for k in chosen], labeller)
        history.append(model.update())
        log.info("preference: %s", history[-1])
    labelled_by = {
        "oracle": "oracle (twin's dense reward)",
        "vlm": f"VLM ({reward.vlm.model})",
        "human": "a person at the terminal",
    }[reward.label_source]
    report = {"label_rounds": history, "segments": len(segments), "labeller": labelled_by}
    # with the labels, so that online updates during training (reward.online_every) build on them
    path = save_preference_reward(model, run_dir / "preference.safetensors", report, with_dataset=True)
    return path, report


def _preference_episode(env: SimTwinEnv, seed: int, rng: np.random.Generator) -> dict:
    """An expert, noisy-expert or random episode's states (and frames) with its ground truth."""
    kind = rng.choice(["expert", "noisy", "random"])
    expert = make_expert(env)
    obs, info = env.reset(seed=seed)
    expert.reset()
    out = {"states": [], "images": {c: [] for c in env.sim_cfg.cameras}, "oracle": [], "success": []}
    for _ in range(env.task.cfg.max_episode_steps):
        if kind == "random":
            action = rng.uniform(-1, 1, ACTION_DIM)
        else:
            action = expert.act(obs, info) + (rng.normal(0, 0.5, ACTION_DIM) if kind == "noisy" else 0.0)
        obs, _, _, _, info = env.step(np.clip(action, -1, 1).astype(np.float32))
        out["states"].append(flatten_state(obs["state"]))
        for cam in out["images"]:
            out["images"][cam].append(obs["images"][cam])
        out["oracle"].append(info["oracle_dense_reward"])
        out["success"].append(info["success"])
    return {k: ({c: np.stack(v) for c, v in out[k].items()} if k == "images" else np.asarray(out[k])) for k in out}
