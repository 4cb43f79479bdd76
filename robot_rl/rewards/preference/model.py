"""A reward learned from preferences between trajectory segments (Christiano et al. 2017, "Deep
Reinforcement Learning from Human Preferences"), trained online as the labels arrive.

    R(sigma)           = sum_t r(o_t)                                 a segment's return
    P[sigma1 > sigma2] = exp R1 / (exp R1 + exp R2) = sigmoid(R1 - R2)   Bradley-Terry
    loss               = -y log P - (1 - y) log(1 - P)                y = 1, 0, or 0.5 (equal)

r is an ensemble of K networks, each trained on its own bootstrap of the labels. Their spread is the
uncertainty, and picks the pairs most worth a label (disagreement sampling: Christiano et al. 2017;
Lee et al. 2021, PEBBLE and B-Pref).

BT only pins down r up to a constant (R1 - R2 cancels it), so each member's raw output has an
arbitrary offset; with `normalize` each member is standardised over the labelled observations
before the ensemble's mean and std are taken: without it the std would mostly measure offsets.

Contents: segments, the Labeller interface and the OracleLabeller (a simulated teacher on the
twin's ground truth); the dataset of labelled pairs; the model (a RewardModel with train_step /
update for online training); query selection; checkpoints (safetensors, no pickles). The config is
in config.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.agents.networks import MIN_STATE_STD, CNNEncoder, PretrainedEncoder, mlp
from robot_rl.data.tree import load_tree, save_tree
from robot_rl.rewards.base import RewardInput, RewardModel, RewardOutput
from robot_rl.rewards.clip.config import CLIPRewardConfig
from robot_rl.rewards.preference.config import ORACLE_GROUND_TRUTHS, QUERY_SELECTIONS, PreferenceRewardConfig
from robot_rl.sim.config import ConfigError, check_choice

log = logging.getLogger(__name__)

# Labels: the target probability that the FIRST segment of a pair is preferred.
PREFER_FIRST, PREFER_SECOND, EQUAL = 1.0, 0.0, 0.5
CHECKPOINT_FORMAT = "robot_rl.preference_reward/1"
# Fields that shape the network: a checkpoint only loads into a config that agrees on all of them.
ARCHITECTURE_FIELDS = (
    "use_state",
    "cameras",
    "image_size",
    "encoder",
    "cnn_channels",
    "image_feature_dim",
    "hidden_dims",
    "ensemble_size",
    "segment_length",
)
MIN_REWARD_STD = 1e-6  # floor of a member's reward std when normalising (a constant member is not blown up)
NORMALIZATION_SAMPLES = 20_000  # observations the reward statistics are computed over, at most


# --- segments and labellers ---------------------------------------------------------------------
@dataclass
class Segment:
    """T consecutive observations of one episode, each the one after an action (r_t = R(o_{t+1}), as
    in RewardInput), with the twin's ground truth where there is one (None on a real robot)."""

    states: np.ndarray  # float32 [T, S], robot_rl.spec.flatten_state layout
    images: dict[str, np.ndarray] = field(default_factory=dict)  # uint8 [T, H, W, 3] per camera
    oracle_dense_reward: np.ndarray | None = None  # float [T]: info["oracle_dense_reward"] (simulation only)
    success: np.ndarray | None = None  # bool [T]: info["success"] (simulation only)

    def __len__(self) -> int:
        return len(self.states)

    def window(self, start: int, length: int) -> Segment:
        """Observations start .. start + length - 1 of this one (e.g. a segment out of an episode)."""
        if not 0 <= start <= len(self) - length:
            raise ValueError(f"window [{start}, {start + length}) is outside a segment of {len(self)} observations")
        part = slice(start, start + length)

        def cut(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[part]

        return Segment(
            self.states[part],
            {k: v[part] for k, v in self.images.items()},
            cut(self.oracle_dense_reward),
            cut(self.success),
        )


class Labeller(Protocol):
    """Anything that compares two segments: a simulated oracle, a person at a labelling UI, a VLM.
    Returns PREFER_FIRST (1.0), PREFER_SECOND (0.0), EQUAL (0.5), or None to skip the pair."""

    def __call__(self, first: Segment, second: Segment) -> float | None: ...


class OracleLabeller:
    """A SIMULATED labeller: the twin's ground truth plays the human (an oracle, simulation only).

    Prefers the segment with the higher ground-truth return: the sum of info["oracle_dense_reward"]
    ("dense") or the number of steps at success ("success"). Returns within `equal_margin` of each
    other are labelled EQUAL; with probability `mistake_prob` a strict preference is flipped (B-Pref's
    "mistake" teacher, Lee et al. 2021), to rehearse the noise of human labels."""

    is_oracle = True

    def __init__(
        self, ground_truth: str = "dense", mistake_prob: float = 0.0, equal_margin: float = 0.0, seed: int = 0
    ):
        check_choice(ground_truth, ORACLE_GROUND_TRUTHS, "OracleLabeller.ground_truth")
        if not 0 <= mistake_prob <= 0.5 or equal_margin < 0:
            raise ValueError(
                f"OracleLabeller: mistake_prob in [0, 0.5], equal_margin >= 0; got {mistake_prob}, {equal_margin}"
            )
        self.ground_truth, self.mistake_prob, self.equal_margin = ground_truth, mistake_prob, equal_margin
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_config(cls, config: PreferenceRewardConfig) -> OracleLabeller:
        return cls(config.oracle_ground_truth, config.oracle_mistake_prob, config.oracle_equal_margin, config.seed)

    def ground_truth_return(self, segment: Segment) -> float:
        values = segment.oracle_dense_reward if self.ground_truth == "dense" else segment.success
        if values is None:
            field_name = "oracle_dense_reward" if self.ground_truth == "dense" else "success"
            raise ValueError(
                f"OracleLabeller ({self.ground_truth}): the segment has no {field_name} (not from the twin?)"
            )
        return float(np.sum(np.asarray(values, dtype=np.float64)))

    def __call__(self, first: Segment, second: Segment) -> float:
        difference = self.ground_truth_return(first) - self.ground_truth_return(second)
        if abs(difference) <= self.equal_margin:
            return EQUAL
        label = PREFER_FIRST if difference > 0 else PREFER_SECOND
        if self.mistake_prob > 0 and self.rng.random() < self.mistake_prob:
            label = 1.0 - label
        return label


def camera_frames(segment: Segment, camera: str, who: str) -> np.ndarray:
    """The segment's frames from `camera`, for a labeller that looks at them."""
    frames = segment.images.get(camera)
    if frames is None:
        raise ValueError(f"{who}: the segment has no {camera!r} frames (it has {sorted(segment.images)})")
    return frames


class VLMLabeller:
    """A vision-language model as the labeller, with no API and no network: a zero-shot CLIP model
    (robot_rl/rewards/clip: VLM-RM's reward against the task's goal and baseline prompts) scores
    every frame of a segment from its camera, and the segment with the higher mean score is
    preferred; means within `equal_margin` are labelled EQUAL. RL-VLM-F (Wang et al. 2024) asks a
    chat VLM the same question about two images; a CLIP score answers it for a whole segment at
    the cost of one image-encoder pass per frame. Its labels are as good as the VLM's reward:
    measure that first with `robot-rl reward-eval reward=clip`."""

    is_oracle = False

    def __init__(self, vlm: RewardModel, equal_margin: float = 0.0):
        if len(vlm.cameras) != 1:
            raise ValueError(f"VLMLabeller: the VLM reward must read one camera, it reads {vlm.cameras}")
        if equal_margin < 0:
            raise ValueError(f"VLMLabeller: equal_margin must be >= 0, got {equal_margin}")
        self.vlm, self.camera, self.equal_margin = vlm, vlm.cameras[0], equal_margin

    @classmethod
    def from_config(cls, config: PreferenceRewardConfig) -> VLMLabeller:
        from robot_rl.rewards.clip.model import CLIPReward  # imports open_clip: only for this labeller

        return cls(CLIPReward(config.vlm).eval(), config.vlm_equal_margin)

    def segment_score(self, segment: Segment) -> float:
        frames = camera_frames(segment, self.camera, "VLMLabeller")
        inputs = RewardInput(
            state=torch.as_tensor(segment.states, dtype=torch.float32),
            images={self.camera: torch.as_tensor(np.ascontiguousarray(frames))},
        )
        return float(self.vlm.score(inputs).reward.double().mean())

    def __call__(self, first: Segment, second: Segment) -> float:
        difference = self.segment_score(first) - self.segment_score(second)
        if abs(difference) <= self.equal_margin:
            return EQUAL
        return PREFER_FIRST if difference > 0 else PREFER_SECOND


class PersonLabeller:
    """A person labels pairs at a terminal: each segment's frames from `camera` are written as a
    video, <clips_dir>/pair_<n>_1.mp4 and _2.mp4, for them to watch, and they answer 1 (the first
    is better), 2, = (as good) or s (skip the pair). Anything else asks again. `ask` is the prompt
    (input() by default; a test passes answers)."""

    is_oracle = False
    ANSWERS = {"1": PREFER_FIRST, "2": PREFER_SECOND, "=": EQUAL, "s": None}

    def __init__(self, camera: str, clips_dir: Path | str, fps: float = 10.0, ask=input):
        self.camera, self.clips_dir, self.fps, self.ask = camera, Path(clips_dir), fps, ask
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        self.pairs = 0

    def __call__(self, first: Segment, second: Segment) -> float | None:
        self.pairs += 1
        clips = [self._write(segment, f"pair_{self.pairs:05d}_{i}.mp4") for i, segment in ((1, first), (2, second))]
        prompt = f"pair {self.pairs}: {clips[0]} vs {clips[1]}: which does the task better? [1/2/=/s] "
        while (answer := self.ask(prompt).strip().lower()) not in self.ANSWERS:
            prompt = "answer 1 (the first), 2 (the second), = (as good) or s (skip): "
        return self.ANSWERS[answer]

    def _write(self, segment: Segment, name: str) -> Path:
        import imageio.v2 as imageio  # only where a person labels

        frames = camera_frames(segment, self.camera, "PersonLabeller")
        path = self.clips_dir / name
        with imageio.get_writer(path, fps=self.fps, codec="libx264", quality=7, macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(np.asarray(frame, np.uint8))
        return path


def make_labeller(config: PreferenceRewardConfig) -> Labeller:
    """The labeller of config.label_source: the twin's oracle, a VLM, or a person at this terminal."""
    if config.label_source == "oracle":
        log.info("preference labels come from the ORACLE (the twin's ground truth, simulation only)")
        return OracleLabeller.from_config(config)
    if config.label_source == "vlm":
        log.info("preference labels come from a VLM: %s on camera %r", config.vlm.model, config.vlm.camera)
        return VLMLabeller.from_config(config)
    log.info("preference labels come from a person at this terminal (clips in %s)", config.human_clips_dir)
    return PersonLabeller(config.human_camera, config.human_clips_dir)


# --- the dataset of labelled pairs --------------------------------------------------------------
@dataclass
class PreferenceBatch:
    """B labelled pairs; index 0 of the pair axis is the first segment, 1 the second."""

    states: torch.Tensor  # float32 [B, 2, T, S]
    images: dict[str, torch.Tensor]  # uint8 [B, 2, T, H, W, 3] per camera
    labels: torch.Tensor  # float32 [B]: P[first preferred]


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    bigger = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


class PreferenceDataset:
    """Labelled segment pairs that grow as labels arrive (arrays doubled when full).

    Each pair gets one Poisson(1) weight per ensemble member when it arrives: the online bootstrap
    (Oza & Russell 2001). Member k samples pairs in proportion to its weights, which is a bootstrap
    resample of however many labels there are, without redrawing the old ones as new labels come."""

    def __init__(
        self,
        segment_length: int,
        state_dim: int,
        cameras: Mapping[str, tuple[int, int]] | None = None,
        ensemble_size: int = 1,
        bootstrap: bool = True,
        seed: int = 0,
    ):
        self.segment_length, self.state_dim = segment_length, state_dim
        self.cameras = {cam: tuple(hw) for cam, hw in sorted((cameras or {}).items())}
        self.ensemble_size, self.bootstrap = ensemble_size, bootstrap
        self.rng = np.random.default_rng(seed)
        self._size = 0
        self.states = np.zeros((0, 2, segment_length, state_dim), np.float32)
        self.images = {cam: np.zeros((0, 2, segment_length, h, w, 3), np.uint8) for cam, (h, w) in self.cameras.items()}
        self.labels = np.zeros(0, np.float32)
        self.weights = np.zeros((0, ensemble_size), np.float32)  # [N, K] bootstrap weights

    def __len__(self) -> int:
        return self._size

    def _check_segment(self, segment: Segment, which: str) -> None:
        states = np.asarray(segment.states)
        if states.ndim != 2 or states.shape[1] != self.state_dim:
            raise ValueError(
                f"{which} segment: states must be [T, {self.state_dim}] (the reward's state_dim), got {states.shape}"
            )
        if len(states) != self.segment_length:
            raise ValueError(f"{which} segment has {len(states)} observations; segment_length is {self.segment_length}")
        if not np.isfinite(states).all():
            raise ValueError(f"{which} segment: states contain NaN/inf")
        for cam, (h, w) in self.cameras.items():
            if cam not in segment.images:
                raise KeyError(
                    f"{which} segment: the reward reads camera {cam!r}; the segment has {sorted(segment.images)}"
                )
            frames = segment.images[cam]
            if frames.shape != (len(states), h, w, 3) or frames.dtype != np.uint8:
                raise ValueError(
                    f"{which} segment: images[{cam!r}] must be uint8 [{len(states)}, {h}, {w}, 3], "
                    f"got {frames.dtype} {frames.shape}"
                )

    def add(self, first: Segment, second: Segment, label: float) -> None:
        """Store one labelled pair; label = P[first preferred] (PREFER_FIRST, PREFER_SECOND, EQUAL or soft)."""
        if len(first) != len(second):
            raise ValueError(
                f"segments of different lengths in a pair ({len(first)} and {len(second)} observations): "
                "a return sums over the segment, so only equal lengths compare"
            )
        if label is None or not 0.0 <= float(label) <= 1.0:
            raise ValueError(f"label must be a probability in [0, 1] (1 first, 0 second, 0.5 equal), got {label!r}")
        self._check_segment(first, "first")
        self._check_segment(second, "second")
        if self._size == len(self.labels):
            capacity = max(64, 2 * self._size)
            self.states = _grown(self.states, capacity)
            self.images = {cam: _grown(v, capacity) for cam, v in self.images.items()}
            self.labels, self.weights = _grown(self.labels, capacity), _grown(self.weights, capacity)
        i = self._size
        self.states[i] = np.stack([first.states, second.states])
        for cam in self.cameras:
            self.images[cam][i] = np.stack([first.images[cam], second.images[cam]])
        self.labels[i] = float(label)
        self.weights[i] = self.rng.poisson(1.0, self.ensemble_size) if self.bootstrap else 1.0
        self._size += 1

    def sample_indices(self, member: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """batch_size pair indices for `member`, drawn in proportion to its bootstrap weights."""
        if self._size == 0:
            raise ValueError("the preference dataset is empty: add labelled pairs before training")
        weights = torch.from_numpy(self.weights[: self._size, member].astype(np.float64))
        if weights.sum() <= 0:  # every pair drew weight 0 (likely with a handful of labels): use them all
            weights = torch.ones_like(weights)
        return torch.multinomial(weights, batch_size, replacement=True, generator=generator)

    def batch(self, index: torch.Tensor, device: torch.device) -> PreferenceBatch:
        i = index.numpy()
        return PreferenceBatch(
            torch.from_numpy(self.states[i]).to(device),
            {cam: torch.from_numpy(v[i]).to(device) for cam, v in self.images.items()},
            torch.from_numpy(self.labels[i]).to(device),
        )

    def observations(self, max_count: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Every observation of the stored segments (a random max_count of them at most), flattened:
        states [M, S], images uint8 [M, H, W, 3] per camera."""
        n = self._size * 2 * self.segment_length
        index = np.arange(n)
        if max_count is not None and n > max_count:
            index = np.sort(self.rng.choice(n, max_count, replace=False))
        states = self.states[: self._size].reshape(n, self.state_dim)[index]
        images = {cam: v[: self._size].reshape(n, *v.shape[3:])[index] for cam, v in self.images.items()}
        return states, images

    def state_dict(self) -> dict:
        n = self._size
        return {
            "states": torch.from_numpy(self.states[:n].copy()),
            "images": {cam: torch.from_numpy(v[:n].copy()) for cam, v in self.images.items()},
            "labels": torch.from_numpy(self.labels[:n].copy()),
            "weights": torch.from_numpy(self.weights[:n].copy()),
        }

    def load_state_dict(self, state: Mapping) -> None:
        labels = state["labels"].numpy()
        if state["states"].shape[1:] != self.states.shape[1:]:
            raise ValueError(
                f"saved pairs are {tuple(state['states'].shape[1:])}, this dataset {self.states.shape[1:]}"
            )
        self._size = len(labels)
        self.states, self.labels = state["states"].numpy().copy(), labels.copy()
        self.weights = state["weights"].numpy().copy()
        self.images = {cam: state["images"][cam].numpy().copy() for cam in self.cameras}


def add_labels(dataset: PreferenceDataset, pairs: Sequence[tuple[Segment, Segment]], labeller: Labeller) -> int:
    """Ask `labeller` about each pair and store the answers; a None answer (skip) stores nothing.
    Returns how many pairs were stored."""
    stored = 0
    for first, second in pairs:
        label = labeller(first, second)
        if label is not None:
            dataset.add(first, second, label)
            stored += 1
    return stored


# --- the model ----------------------------------------------------------------------------------
def preference_probability(first_returns: torch.Tensor, second_returns: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry: P[first > second] = exp R1 / (exp R1 + exp R2) = sigmoid(R1 - R2) (no overflow)."""
    return torch.sigmoid(first_returns - second_returns)


def preference_loss(first_returns: torch.Tensor, second_returns: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy between the labels (soft: 0.5 for equal) and the Bradley-Terry probability."""
    return F.binary_cross_entropy_with_logits(first_returns - second_returns, labels)


class PreferenceRewardNetwork(nn.Module):
    """One ensemble member: r(o) = MLP([standardised state, one feature vector per camera])."""

    def __init__(self, config: PreferenceRewardConfig, state_dim: int):
        super().__init__()
        self.use_state, self.cameras = config.use_state, tuple(sorted(config.cameras))
        hw = config.image_hw

        def encoder() -> nn.Module:
            if config.encoder == "cnn":
                return CNNEncoder(hw, config.image_feature_dim, tuple(config.cnn_channels))
            return PretrainedEncoder(config.encoder, config.encoder_weights, hw, config.image_feature_dim)

        self.encoders = nn.ModuleDict({cam: encoder() for cam in self.cameras})
        in_dim = (state_dim if self.use_state else 0) + config.image_feature_dim * len(self.cameras)
        self.head = mlp(in_dim, list(config.hidden_dims), 1)

    def forward(self, state: torch.Tensor, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """state: standardised float [B, S]; images: uint8 [B, H, W, 3] per camera -> rewards [B]."""
        features = [state] if self.use_state else []
        features += [self.encoders[cam](images[cam]) for cam in self.cameras]
        return self.head(torch.cat(features, dim=-1)).squeeze(-1)


class PreferenceReward(RewardModel):
    """The ensemble r_k, k = 1..K, trained online on `self.dataset` (labelled pairs).

    score() gives reward = mean_k r~_k and uncertainty = std_k r~_k (population std), r~_k being
    member k's reward standardised with its mean and std over the labelled observations (or its raw
    output when config.normalize is False). Preference probabilities use the raw returns (the ones
    the Bradley-Terry loss trains).

    Online use: dataset.add(...) (or add_labels) as labels arrive, then update() once per batch of
    labels; select_queries picks which candidate pairs to send to the labeller."""

    def __init__(self, config: PreferenceRewardConfig, state_dim: int):
        super().__init__()
        config.validate()
        if state_dim < 1:  # image-only rewards keep the states too (segments carry them), and ignore them
            raise ValueError(f"state_dim must be >= 1 (robot_rl.spec.flatten_state's length), got {state_dim}")
        self.config, self.state_dim = config, state_dim
        self.cameras = tuple(sorted(config.cameras))
        self.image_size = config.image_hw if self.cameras else None  # score() resizes frames to it
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.members = nn.ModuleList(
                PreferenceRewardNetwork(config, state_dim) for _ in range(config.ensemble_size)
            )
        # State standardisation, identity until fitted (first update() or fit_state_normalization):
        # the state mixes metres with newtons, and unscaled the wrench would dominate the first layer.
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))
        self.register_buffer("state_normalization_fitted", torch.tensor(False))
        self.register_buffer("reward_mean", torch.zeros(config.ensemble_size))
        self.register_buffer("reward_std", torch.ones(config.ensemble_size))
        self.dataset = PreferenceDataset(
            config.segment_length,
            state_dim,
            {cam: config.image_hw for cam in self.cameras},
            config.ensemble_size,
            config.bootstrap,
            config.seed,
        )
        self.optimizer = torch.optim.Adam([p for p in self.members.parameters() if p.requires_grad], lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.gradient_steps = 0

    @property
    def device(self) -> torch.device:
        return self.state_mean.device

    # inference ----------------------------------------------------------------------------------
    def _checked_state(self, state: torch.Tensor) -> torch.Tensor:
        if state.ndim != 2 or state.shape[1] != self.state_dim:
            raise ValueError(
                f"preference reward: state must be [B, {self.state_dim}] (robot_rl.spec.flatten_state, as trained), "
                f"got shape {tuple(state.shape)}"
            )
        return state.to(self.device, torch.float32)

    def member_rewards(self, state: torch.Tensor, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Raw rewards of every member, [K, B]."""
        state = (self._checked_state(state) - self.state_mean) / self.state_std
        images = {cam: images[cam].to(self.device) for cam in self.cameras}
        return torch.stack([member(state, images) for member in self.members])

    def normalized_member_rewards(self, state: torch.Tensor, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        rewards = self.member_rewards(state, images)
        if not self.config.normalize:
            return rewards
        return (rewards - self.reward_mean[:, None]) / self.reward_std[:, None]

    @torch.no_grad()  # a reward is a training target, never differentiated through (and stays .numpy()-able)
    def forward(self, inputs: RewardInput) -> RewardOutput:
        rewards = self.normalized_member_rewards(inputs.state, inputs.images)  # [K, B]
        return RewardOutput(reward=rewards.mean(dim=0), uncertainty=rewards.std(dim=0, correction=0))

    def segment_returns(self, states: torch.Tensor, images: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Raw returns of every member, [K, N], of N segments: states [N, T, S], images [N, T, H, W, 3]."""
        n, t = states.shape[:2]
        flat_images = {cam: images[cam].reshape(n * t, *images[cam].shape[2:]) for cam in self.cameras}
        return self.member_rewards(states.reshape(n * t, -1), flat_images).reshape(-1, n, t).sum(dim=-1)

    @torch.no_grad()
    def pair_probabilities(self, pairs: Sequence[tuple[Segment, Segment]], chunk: int = 256) -> np.ndarray:
        """P[first > second] of each pair under each member, float64 [K, N]."""
        out = []
        for start in range(0, len(pairs), chunk):
            part = pairs[start : start + chunk]
            returns = []
            for side in (0, 1):
                states = torch.from_numpy(np.stack([p[side].states for p in part]).astype(np.float32))
                images = {cam: torch.from_numpy(np.stack([p[side].images[cam] for p in part])) for cam in self.cameras}
                returns.append(self.segment_returns(states, images))
            out.append(preference_probability(*returns).double().cpu().numpy())
        return np.concatenate(out, axis=1) if out else np.zeros((self.config.ensemble_size, 0))

    # training -----------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_state_normalization(self, states: np.ndarray | torch.Tensor) -> None:
        """Standardise states with the mean and std of `states` [N, S] (dimensions that barely vary are
        centred, not blown up). Fix it early: changing it later moves the function the members learnt."""
        states = self._checked_state(torch.as_tensor(np.asarray(states, dtype=np.float32)))
        self.state_mean.copy_(states.mean(dim=0))
        self.state_std.copy_(states.std(dim=0, correction=0).clamp_min(MIN_STATE_STD))
        self.state_normalization_fitted.fill_(True)

    @torch.no_grad()
    def refresh_reward_normalization(self, chunk: int = 4096) -> None:
        """Each member's reward mean and std over (up to NORMALIZATION_SAMPLES) labelled observations."""
        states, images = self.dataset.observations(NORMALIZATION_SAMPLES)
        rewards = []
        for start in range(0, len(states), chunk):
            part = slice(start, start + chunk)
            batch_images = {cam: torch.from_numpy(v[part]) for cam, v in images.items()}
            rewards.append(self.member_rewards(torch.from_numpy(states[part]), batch_images).double())
        rewards = torch.cat(rewards, dim=1)
        self.reward_mean.copy_(rewards.mean(dim=1))
        self.reward_std.copy_(rewards.std(dim=1, correction=0).clamp_min(MIN_REWARD_STD))

    def train_step(self) -> dict[str, float]:
        """One Adam step of every member on its own bootstrap batch of labelled pairs."""
        c = self.config
        losses, correct, strict = [], 0, 0
        for k, member in enumerate(self.members):
            batch = self.dataset.batch(self.dataset.sample_indices(k, c.batch_size, self.generator), self.device)
            b, _, t = batch.states.shape[:3]
            state = (batch.states.reshape(b * 2 * t, -1) - self.state_mean) / self.state_std
            images = {cam: v.reshape(b * 2 * t, *v.shape[3:]) for cam, v in batch.images.items()}
            returns = member(state, images).reshape(b, 2, t).sum(dim=-1)  # [B, (first, second)]
            losses.append(preference_loss(returns[:, 0], returns[:, 1], batch.labels))
            with torch.no_grad():  # accuracy on strict preferences (an equal label has no right side)
                decided = batch.labels != EQUAL
                correct += int(((returns[:, 0] > returns[:, 1]) == (batch.labels > EQUAL))[decided].sum())
                strict += int(decided.sum())
        loss = torch.stack(losses).sum()  # members are independent: each gets the gradient of its own loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"preference reward: non-finite loss at gradient step {self.gradient_steps}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.gradient_steps += 1
        return {"loss/preference": loss.item() / len(losses), "reward/preference_accuracy": correct / max(1, strict)}

    def update(self, n_steps: int | None = None) -> dict[str, float]:
        """Train on the labels so far: n_steps (default config.steps_per_label_batch) train_steps, then
        the reward normalisation is recomputed. Returns the mean of the steps' stats."""
        if len(self.dataset) == 0:
            raise ValueError("preference reward: no labelled pairs yet; add some (dataset.add / add_labels) first")
        if self.config.use_state and not bool(self.state_normalization_fitted):
            self.fit_state_normalization(self.dataset.observations(NORMALIZATION_SAMPLES)[0])
        self.train()
        stats = [self.train_step() for _ in range(n_steps or self.config.steps_per_label_batch)]
        self.eval()
        self.refresh_reward_normalization()
        out = {key: float(np.mean([s[key] for s in stats])) for key in stats[0]}
        out["reward/labels"] = float(len(self.dataset))
        return out


# --- query selection ----------------------------------------------------------------------------
def select_queries(
    model: PreferenceReward,
    candidates: Sequence[tuple[Segment, Segment]],
    n: int,
    method: str | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices of the n candidate pairs to ask the labeller about (all of them if n >= len).

    random:        uniformly, without replacement.
    disagreement:  the n with the highest std across members of P[first > second]: the pairs whose
                   label the ensemble is least sure of teach it most (Christiano et al. 2017; B-Pref).
    """
    method = method or model.config.query_selection
    check_choice(method, QUERY_SELECTIONS, "select_queries.method")
    n = min(n, len(candidates))
    if method == "random":
        return np.sort((rng or np.random.default_rng()).choice(len(candidates), n, replace=False))
    if model.config.ensemble_size < 2:
        raise ValueError("disagreement selection needs an ensemble (ensemble_size >= 2)")
    disagreement = model.pair_probabilities(candidates).std(axis=0)
    return np.sort(np.argsort(-disagreement, kind="stable")[:n])


# --- checkpoints --------------------------------------------------------------------------------
def save_preference_reward(
    model: PreferenceReward, path: Path | str, report: dict | None = None, with_dataset: bool = False
) -> Path:
    """One .safetensors file: the weights, and as JSON metadata the config, state_dim, the normalisation
    statistics and the report. with_dataset: the labelled pairs too, to resume online training (labels
    are the expensive part of this reward)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "state_dim": model.state_dim,
        "labels": len(model.dataset),
        "normalization": {
            "state_fitted": bool(model.state_normalization_fitted),
            "state_mean": model.state_mean.tolist(),
            "state_std": model.state_std.tolist(),
            "reward_mean": model.reward_mean.tolist(),
            "reward_std": model.reward_std.tolist(),
        },
        "report": report or {},
        "state_dict": dict(model.state_dict()),
    }
    if with_dataset:
        tree["dataset"] = model.dataset.state_dict()
    save_tree(path, tree)
    return path


def load_preference_reward(
    path: Path | str, config: PreferenceRewardConfig | None = None, device: torch.device | str = "cpu"
) -> tuple[PreferenceReward, dict]:
    """(model, report) from a checkpoint. With `config` (e.g. the run's reward config), its network
    fields must match the checkpoint's, or this fails naming what differs; its training fields apply."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"preference reward checkpoint: no such file {path}")
    tree = load_tree(path)
    if tree.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a preference reward checkpoint (format {tree.get('format')!r})")
    known = {f.name for f in fields(PreferenceRewardConfig)}
    values = {k: v for k, v in tree["config"].items() if k in known}
    if isinstance(values.get("vlm"), dict):  # the labeller's nested config, as asdict wrote it
        values["vlm"] = CLIPRewardConfig(**values["vlm"])
    saved = PreferenceRewardConfig(**values)
    if config is not None:
        differences = [
            f"{name}: checkpoint {getattr(saved, name)}, config {getattr(config, name)}"
            for name in ARCHITECTURE_FIELDS
            if getattr(saved, name) != getattr(config, name)
        ]
        if differences:
            raise ConfigError(f"reward.checkpoint {path} does not fit the reward config: " + "; ".join(differences))
    model = PreferenceReward(config if config is not None else saved, tree["state_dim"])
    model.load_state_dict(tree["state_dict"])
    if "dataset" in tree:
        model.dataset.load_state_dict(tree["dataset"])
    return model.to(device).eval(), tree["report"]
