"""A learned success classifier as the reward (SERL / HIL-SERL): a binary image classifier,
trained on frames labelled success / not yet, whose thresholded output is a sparse 0/1 reward.

    reward = 1.0 where sigmoid(logit) >= threshold (and the optional proprio gate holds), else 0.0

The threshold is not 0.5: it is chosen on held-out episodes as the one with the highest recall
whose precision reaches `target_precision` (0.95 by default). A false positive pays the policy for
a failure, and it learns to reproduce exactly that failure (HIL-SERL, Luo et al. 2024, sec. III-C),
so precision is the figure to hold; a missed success only delays learning.

Contents: the model (a RewardModel), the metrics (ROC-AUC, threshold choice), training, checkpoints
(safetensors, no pickles) and the collection of labelled frames on the twin; the config is in
config.py.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from robot_rl import spec
from robot_rl.agents.augment import augment_images
from robot_rl.agents.networks import CNNEncoder, PretrainedEncoder, mlp
from robot_rl.data.labels import LabelledFrames
from robot_rl.data.tree import load_tree, save_tree
from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.classifier.config import SuccessClassifierConfig
from robot_rl.rewards.fidelity import precision_recall, roc_auc
from robot_rl.sim.config import ConfigError, check_choice

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "robot_rl.success_classifier/1"
# Fields that shape the network: a checkpoint only loads into a config that agrees on all of them.
ARCHITECTURE_FIELDS = ("encoder", "cnn_channels", "image_feature_dim", "hidden_dims")


# --- the model ----------------------------------------------------------------------------------
class SuccessClassifierReward(RewardModel):
    """Images of `config.cameras` -> one success logit; the reward is the thresholded, gated
    probability. The threshold lives in a buffer (in logit units), so checkpoints carry it."""

    def __init__(self, config: SuccessClassifierConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.cameras = tuple(sorted(config.cameras))
        self.image_size = config.image_hw

        def encoder() -> nn.Module:
            if config.encoder == "cnn":
                return CNNEncoder(self.image_size, config.image_feature_dim, tuple(config.cnn_channels))
            return PretrainedEncoder(config.encoder, config.encoder_weights, self.image_size, config.image_feature_dim)

        self.encoders = nn.ModuleDict({cam: encoder() for cam in self.cameras})
        self.head = mlp(config.image_feature_dim * len(self.cameras), list(config.hidden_dims), 1)
        # 0.0 = probability 0.5 until training picks one on held-out data
        self.register_buffer("logit_threshold", torch.tensor(0.0))

    @property
    def threshold(self) -> float:
        """The decision threshold as a probability."""
        return float(torch.sigmoid(self.logit_threshold.double()))

    def logits(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """uint8 [B, H, W, 3] per camera -> raw success logits [B], no gate."""
        device = self.logit_threshold.device
        features = []
        for cam in self.cameras:
            x = images[cam]
            if tuple(x.shape[1:3]) != self.image_size:
                raise ValueError(
                    f"camera {cam!r}: images are {x.shape[1]}x{x.shape[2]} (HxW), "
                    f"the classifier was built for {self.image_size[0]}x{self.image_size[1]}"
                )
            features.append(self.encoders[cam](x.to(device)))
        return self.head(torch.cat(features, dim=-1)).squeeze(-1)

    def gate(self, state: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """bool [B]: where the proprio gate lets a success through (everywhere without a gate)."""
        c = self.config
        if c.gate_state_index is None:
            return torch.ones(batch_size, dtype=torch.bool, device=self.logit_threshold.device)
        if state is None or state.ndim != 2 or state.shape[1] <= c.gate_state_index:
            shape = None if state is None else tuple(state.shape)
            raise ValueError(f"reward.gate_state_index={c.gate_state_index}: needs states [B, S > index], got {shape}")
        value = state[:, c.gate_state_index].to(self.logit_threshold.device)
        inside = torch.isfinite(value)
        if c.gate_min is not None:
            inside &= value >= c.gate_min
        if c.gate_max is not None:
            inside &= value <= c.gate_max
        return inside

    def gated_logits(self, images: dict[str, torch.Tensor], state: torch.Tensor | None) -> torch.Tensor:
        """Logits [B] with -inf where the gate is shut. Raises rather than return a NaN: a broken
        network must stop the run, not quietly read as "no success"."""
        logits = self.logits(images)
        bad = ~torch.isfinite(logits)
        if bool(bad.any()):
            raise FloatingPointError(f"success classifier: {int(bad.sum())} non-finite logit(s) of {len(logits)}")
        return logits.masked_fill(~self.gate(state, len(logits)), -math.inf)

    def forward(self, inputs: RewardInput) -> RewardOutput:
        logits = self.gated_logits(inputs.images, inputs.state)
        success = logits >= self.logit_threshold
        return RewardOutput(reward=success.float(), success_prob=torch.sigmoid(logits), success=success)


@torch.no_grad()
def success_logits(
    model: SuccessClassifierReward,
    images: dict[str, np.ndarray],
    states: np.ndarray | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Gated logits (-inf where the gate is shut) of N frames, as float64 [N], in batches."""
    was_training = model.training
    model.eval()
    n = len(next(iter(images.values())))
    out = []
    for start in range(0, n, batch_size):
        part = slice(start, start + batch_size)
        batch = {cam: torch.from_numpy(np.ascontiguousarray(images[cam][part])) for cam in model.cameras}
        state = None if states is None else torch.from_numpy(np.asarray(states[part], dtype=np.float32))
        out.append(model.gated_logits(batch, state).cpu().double().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


# --- metrics ------------------------------------------------------------------------------------
def _cutoffs(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct finite score t, high to low: (t, true positives, false positives) when
    predicting success for every score >= t. -inf scores (gated out) are never predicted positive."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    finite = np.isfinite(scores)
    order = np.argsort(-scores[finite], kind="stable")
    s, y = scores[finite][order], labels[finite][order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last_of_ties = np.r_[s[1:] != s[:-1], True]  # a cutoff cannot split equal scores
    return s[last_of_ties], tp[last_of_ties], fp[last_of_ties]


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate), from (0, 0) to (1, 1)."""
    labels = np.asarray(labels, dtype=bool)
    _, tp, fp = _cutoffs(scores, labels)
    return np.r_[0.0, fp / max(1, (~labels).sum()), 1.0], np.r_[0.0, tp / max(1, labels.sum()), 1.0]


@dataclass
class ThresholdChoice:
    threshold: float  # in the scores' units; success where score >= threshold
    precision: float
    recall: float
    target_reached: bool


def choose_threshold(scores: np.ndarray, labels: np.ndarray, target_precision: float) -> ThresholdChoice:
    """The threshold with the highest recall among those whose precision is >= target_precision
    (of equal recalls, the highest threshold). If none reaches it, the highest-precision threshold
    (of equal precisions, the highest recall), with target_reached=False."""
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise ValueError("choosing a threshold needs at least one positive")
    thresholds, tp, fp = _cutoffs(scores, labels)
    if len(thresholds) == 0:
        raise ValueError("choosing a threshold needs at least one finite score")
    precision, recall = tp / (tp + fp), tp / n_pos
    reached = precision >= target_precision - 1e-12  # 19/20 must count as 0.95
    if reached.any():
        best = int(np.argmax(np.where(reached, recall, -1.0)))  # argmax takes the first: the highest threshold
    else:
        best = int(np.lexsort((-recall, -precision))[0])
    return ThresholdChoice(float(thresholds[best]), float(precision[best]), float(recall[best]), bool(reached.any()))


def evaluate_success_classifier(
    model: SuccessClassifierReward,
    images: dict[str, np.ndarray],
    labels: np.ndarray,
    states: np.ndarray | None = None,
) -> dict:
    """ROC-AUC of the gated scores, precision and recall of the reward at the model's threshold."""
    labels = np.asarray(labels, dtype=bool)
    scores = success_logits(model, images, states)
    precision, recall = precision_recall(scores >= float(model.logit_threshold), labels)  # NaN: undefined
    return {
        "roc_auc": roc_auc(scores, labels),
        "precision": precision,
        "recall": recall,
        "threshold": model.threshold,
        "frames": len(labels),
        "positives": int(labels.sum()),
        "negatives": int((~labels).sum()),
    }


# --- training -----------------------------------------------------------------------------------
def _check_training_data(
    config: SuccessClassifierConfig,
    images: dict[str, np.ndarray],
    labels: np.ndarray,
    states: np.ndarray | None,
    what: str,
) -> None:
    n = len(labels)
    if labels.ndim != 1:
        raise ValueError(f"{what} labels: expected shape [N], got {labels.shape}")
    h, w = config.image_hw
    for cam in config.cameras:
        if cam not in images:
            raise KeyError(f"{what} frames: the config reads camera {cam!r}; the frames have {sorted(images)}")
        frames = images[cam]
        if len(frames) != n:
            raise ValueError(f"{what} frames[{cam!r}] has {len(frames)} frames but there are {n} labels")
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"{what} frames[{cam!r}]: expected uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
        if frames.shape[1:3] != (h, w):
            raise ValueError(
                f"{what} frames[{cam!r}] are {frames.shape[1]}x{frames.shape[2]} (HxW); "
                f"the config's reward.image_size is [{h}, {w}]"
            )
    if states is not None and len(states) != n:
        raise ValueError(f"{what} states has {len(states)} rows but there are {n} labels")
    if config.gate_state_index is not None and states is None:
        raise ValueError(f"{what}: reward.gate_state_index is set, so the states are needed too")
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == n:
        raise ValueError(
            f"{what} labels are all {'positive' if n_pos else 'negative'} ({n_pos} of {n}): "
            "a success classifier needs both successes and failures"
        )


def split_by_episode(
    labels: np.ndarray, episode_ids: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) frame indices. Whole episodes go one way or the other, and episodes with
    a success and those without are split separately, so both sides see both classes."""
    episodes = np.unique(episode_ids)
    has_success = np.array([labels[episode_ids == e].any() for e in episodes])
    heldout_episodes = []
    for group in (episodes[has_success], episodes[~has_success]):
        n_heldout = max(1, round(fraction * len(group))) if len(group) >= 2 else 0
        heldout_episodes.append(rng.permutation(group)[:n_heldout])
    heldout = np.isin(episode_ids, np.concatenate(heldout_episodes))
    return np.flatnonzero(~heldout), np.flatnonzero(heldout)


def train_success_classifier(
    config: SuccessClassifierConfig,
    frames: dict[str, np.ndarray],
    labels: np.ndarray,
    states: np.ndarray | None = None,
    episode_ids: np.ndarray | None = None,
    heldout: LabelledFrames | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[SuccessClassifierReward, dict]:
    """Train on (frames, labels), choose the threshold on held-out data, return (model, report).

    frames: uint8 [N, H, W, 3] per camera; labels: bool [N]; states: float32 [N, S] (needed by a
    gate); episode_ids: [N], so the held-out split keeps episodes whole (without them, frames are
    split one by one, which flatters the held-out figures). heldout: a separate held-out set
    instead of a split. The report has the held-out precision, recall, ROC-AUC, the threshold,
    whether target_precision was reached, and the counts."""
    config.validate()
    labels = np.asarray(labels, dtype=bool)
    _check_training_data(config, frames, labels, states, "training")
    if episode_ids is not None and len(episode_ids) != len(labels):
        raise ValueError(f"training episode_ids has {len(episode_ids)} entries but there are {len(labels)} labels")
    rng = np.random.default_rng(config.seed)
    states = None if states is None else np.asarray(states, dtype=np.float32)
    data = LabelledFrames(
        {cam: frames[cam] for cam in config.cameras},
        states if states is not None else np.zeros((len(labels), 0), np.float32),
        labels,
        np.arange(len(labels)) if episode_ids is None else np.asarray(episode_ids),
    )
    if heldout is None:
        train_index, heldout_index = split_by_episode(data.labels, data.episode_ids, config.heldout_fraction, rng)
        train, heldout = data.subset(train_index), data.subset(heldout_index)
    else:
        train = data
        heldout = LabelledFrames(
            heldout.images, heldout.states, np.asarray(heldout.labels, dtype=bool), heldout.episode_ids
        )
        _check_training_data(config, heldout.images, heldout.labels, heldout.states, "held-out")
    for what, part in (("training", train), ("held-out", heldout)):
        if part.labels.all() or not part.labels.any():
            raise ValueError(
                f"the {what} split has {int(part.labels.sum())} positives of {len(part)} frames: "
                "collect more episodes (with and without success) or pass a held-out set"
            )

    def gate_states(part: LabelledFrames) -> np.ndarray | None:
        return part.states if config.gate_state_index is not None else None

    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, without touching the caller's RNG
        torch.manual_seed(config.seed)
        model = SuccessClassifierReward(config).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    images = {cam: torch.from_numpy(np.ascontiguousarray(train.images[cam])) for cam in model.cameras}
    positives = torch.from_numpy(np.flatnonzero(train.labels))
    negatives = torch.from_numpy(np.flatnonzero(~train.labels))
    # Class balance by sampling: each batch holds n_pos positives and the rest negatives, drawn
    # with replacement (there may be fewer positives than a batch needs).
    n_pos = max(1, min(config.batch_size - 1, round(config.batch_size / (1 + config.negative_ratio))))
    target = torch.cat([torch.ones(n_pos), torch.zeros(config.batch_size - n_pos)]).to(device)

    model.train()
    start, losses = time.perf_counter(), []
    for step in tqdm(range(config.steps), desc="success classifier", unit="step", disable=not progress, leave=False):
        index = torch.cat(
            [
                positives[torch.randint(len(positives), (n_pos,), generator=generator)],
                negatives[torch.randint(len(negatives), (config.batch_size - n_pos,), generator=generator)],
            ]
        )
        batch = augment_images({cam: img[index] for cam, img in images.items()}, config.image_pad, generator)
        loss = F.binary_cross_entropy_with_logits(model.logits(batch), target)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"success classifier: non-finite loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 500 == 0:
            log.info("success classifier step %d: loss %.4f", step + 1, np.mean(losses[-100:]))
    train_seconds = time.perf_counter() - start
    model.eval()

    scores = success_logits(model, heldout.images, gate_states(heldout))
    choice = choose_threshold(scores, heldout.labels, config.target_precision)
    model.logit_threshold.fill_(choice.threshold)
    message = f"threshold {model.threshold:.4f}: held-out precision {choice.precision:.3f}, recall {choice.recall:.3f}"
    if not choice.target_reached:
        message = (
            f"target precision {config.target_precision} NOT reached on held-out data; using the most precise {message}"
        )
        log.warning("success classifier: %s", message)
    train_eval = evaluate_success_classifier(model, train.images, train.labels, gate_states(train))

    def counts(part: LabelledFrames) -> dict:
        return {
            "frames": len(part),
            "positives": int(part.labels.sum()),
            "negatives": int((~part.labels).sum()),
            "episodes": len(np.unique(part.episode_ids)),
        }

    report = {
        "roc_auc": roc_auc(scores, heldout.labels),
        "precision": choice.precision,
        "recall": choice.recall,
        "threshold": model.threshold,
        "logit_threshold": choice.threshold,
        "target_precision": config.target_precision,
        "target_reached": choice.target_reached,
        "message": message,
        "heldout": counts(heldout),
        "train": counts(train),
        "train_roc_auc": train_eval["roc_auc"],
        "final_loss": float(np.mean(losses[-100:])),
        "steps": config.steps,
        "train_seconds": round(train_seconds, 1),
    }
    return model, report


# --- checkpoints --------------------------------------------------------------------------------
def save_success_classifier(model: SuccessClassifierReward, path: Path | str, report: dict | None = None) -> Path:
    """One .safetensors file: the weights, and as JSON metadata the config, the threshold, the
    image sizes and the training report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tree(
        path,
        {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(model.config),
            "image_sizes": {cam: list(model.image_size) for cam in model.cameras},
            "threshold": model.threshold,
            "report": report or {},
            "state_dict": dict(model.state_dict()),
        },
    )
    return path


def load_success_classifier(
    path: Path | str, config: SuccessClassifierConfig | None = None, device: torch.device | str = "cpu"
) -> tuple[SuccessClassifierReward, dict]:
    """(model, training report) from a checkpoint. With `config` (e.g. the run's reward config),
    its cameras, image size and network shape must match the checkpoint's, or this fails naming
    what differs; its gate applies (a deployment choice), the threshold is the checkpoint's."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"success classifier checkpoint: no such file {path}")
    tree = load_tree(path)
    if tree.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a success classifier checkpoint (format {tree.get('format')!r})")
    known = {f.name for f in fields(SuccessClassifierConfig)}
    saved = SuccessClassifierConfig(**{k: v for k, v in tree["config"].items() if k in known})
    if config is not None:
        differences = []
        saved_sizes = {cam: tuple(hw) for cam, hw in tree["image_sizes"].items()}
        if sorted(config.cameras) != sorted(saved_sizes):
            differences.append(f"cameras: checkpoint {sorted(saved_sizes)}, config {sorted(config.cameras)}")
        for cam in sorted(set(config.cameras) & set(saved_sizes)):
            if saved_sizes[cam] != config.image_hw:
                differences.append(
                    f"camera {cam!r} image size (HxW): checkpoint {saved_sizes[cam][0]}x{saved_sizes[cam][1]}, "
                    f"config {config.image_hw[0]}x{config.image_hw[1]}"
                )
        for name in ARCHITECTURE_FIELDS:
            if getattr(saved, name) != getattr(config, name):
                differences.append(f"{name}: checkpoint {getattr(saved, name)}, config {getattr(config, name)}")
        if differences:
            raise ConfigError(f"reward.checkpoint {path} does not fit the reward config: " + "; ".join(differences))
    model = SuccessClassifierReward(config if config is not None else saved)
    model.load_state_dict(tree["state_dict"])
    return model.to(device).eval(), tree["report"]


# --- labelled frames from the twin ---------------------------------------------------------------
EPISODE_KINDS = ("expert", "noisy", "partial", "miss", "random")


def collect_labelled_frames(
    env,
    n_episodes: int,
    seed: int = 0,
    kind_fractions: dict[str, float] | None = None,
    success_hold_steps: int = 6,
    release_steps: int = 6,
    action_noise: float = 0.5,
    miss_distance: tuple[float, float] = (0.03, 0.10),
    max_steps: int | None = None,
    progress: bool = False,
) -> LabelledFrames:
    """Roll out episodes on the twin (seeds seed, seed+1, ...) and label every observation (the
    reset's and each step's) with the ground truth, info["success"]. Episode kinds, drawn by
    kind_fractions (default 30% expert, 15% noisy, 20% partial, 20% miss, 15% random):

      expert   the scripted expert; after its first success it goes on for success_hold_steps
               (more positives, the object held), then opens the gripper for release_steps (hard
               negatives: the object falling, the gripper still high)
      noisy    the expert with Gaussian action noise (std action_noise): near misses, some successes
      partial  the expert stopped at a random step in the first quarter of the episode, then holding
               still for success_hold_steps + release_steps (grasped but not lifted far enough,
               hovering above the object: the negatives that look most like success)
      miss     the expert aiming at a goal shifted sideways by miss_distance (m, a random direction):
               it does everything the task asks, in the wrong place (a grasp beside the cube, the
               peg pushed onto the fixture's wall or down beside the fixture). Without these, a
               classifier on peg_insert (held-out ROC-AUC 0.9998) called a peg pushed 4 cm down
               beside the hole a success, and RLPD trained on it learned to do exactly that; with
               shifts of 2-8 cm (48% of them clear of the fixture, whose outer wall is 4.6 cm from
               the hole's axis for the peg) in 15% of 60 episodes it still did, hence 3-10 cm (69%
               clear) in 20%. What remained was the front camera's blind spot behind the fixture,
               which no label can fix: peg_insert's classifier reads the wrist camera (README).
      random   a smoothed random walk of actions with random gripper commands

    Negatives outnumber positives (an episode succeeds for a few steps at its end, if at all).
    Stepping on after a success is allowed by SimTwinEnv (terminated only reports it). max_steps
    caps an episode (default: the task's max_episode_steps)."""
    sim_env = getattr(env, "unwrapped", env)
    from robot_rl.sim.experts import make_expert  # the sim package imports mujoco: only when collecting

    expert = make_expert(sim_env)
    fractions = kind_fractions or {"expert": 0.3, "noisy": 0.15, "partial": 0.2, "miss": 0.2, "random": 0.15}
    for kind in fractions:
        check_choice(kind, EPISODE_KINDS, "kind_fractions")
    rng = np.random.default_rng(seed)
    p = np.array(list(fractions.values()), dtype=np.float64)
    kinds = rng.choice(list(fractions), size=n_episodes, p=p / p.sum())
    max_steps = max_steps or sim_env.task.cfg.max_episode_steps
    release = np.zeros(spec.ACTION_DIM, dtype=np.float32)
    release[6] = -1.0  # open the gripper, hold the arm where it is

    images: dict[str, list[np.ndarray]] = {}
    states, labels, episode_ids, episode_kinds = [], [], [], []

    def record(obs: dict, info: dict, episode: int) -> None:
        for cam, frame in obs["images"].items():
            images.setdefault(cam, []).append(frame)
        states.append(spec.flatten_state(obs["state"]))
        labels.append(bool(info["success"]))
        episode_ids.append(episode)
        episode_kinds.append(str(kinds[episode]))

    for episode, kind in enumerate(tqdm(kinds, desc="labelled frames", unit="ep", disable=not progress)):
        obs, info = env.reset(seed=seed + episode)
        if "images" not in obs:
            raise ValueError("collect_labelled_frames: the env renders no camera (sim.cameras is empty)")
        expert.reset()
        expert.goal_offset = np.zeros(3)
        if kind == "miss":
            heading = rng.uniform(0.0, 2 * np.pi)
            expert.goal_offset = rng.uniform(*miss_distance) * np.array([np.cos(heading), np.sin(heading), 0.0])
        record(obs, info, episode)
        # partial: stop somewhere in the first quarter (the expert needs ~20 of pick_cube's 100 steps)
        stop_at = int(rng.integers(1, max(2, max_steps // 4))) if kind == "partial" else max_steps
        end_at = stop_at + success_hold_steps + release_steps if kind == "partial" else max_steps
        walk = np.zeros(spec.ACTION_DIM, dtype=np.float32)
        first_success = None
        for t in range(end_at):
            if first_success is not None and t > first_success + success_hold_steps:
                action = release
            elif kind == "random":
                walk = np.clip(0.7 * walk + rng.normal(0.0, 0.5, spec.ACTION_DIM), -1.0, 1.0).astype(np.float32)
                walk[6] = rng.choice([-1.0, 0.0, 1.0], p=[0.1, 0.8, 0.1])  # mostly "stay": few toggles
                action = walk
            elif t >= stop_at:
                action = np.zeros(spec.ACTION_DIM, dtype=np.float32)  # hold still, keep the gripper command
            else:
                action = expert.act(obs, info)
                if kind == "noisy":
                    action = np.clip(action + rng.normal(0.0, action_noise, spec.ACTION_DIM), -1.0, 1.0)
            obs, _, _, truncated, info = env.step(action)
            record(obs, info, episode)
            if info["success"] and first_success is None:
                first_success = t
            if truncated or (first_success is not None and t >= first_success + success_hold_steps + release_steps):
                break
    return LabelledFrames(
        {cam: np.stack(frames) for cam, frames in images.items()},
        np.stack(states).astype(np.float32),
        np.array(labels, dtype=bool),
        np.array(episode_ids, dtype=np.int64),
        np.array(episode_kinds),
    )
