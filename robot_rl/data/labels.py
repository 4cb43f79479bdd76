"""Frames labelled success / not success: what a success classifier trains on. They come from the
twin's ground truth (robot_rl/rewards/classifier/model.py's collect_labelled_frames) or from an
operator holding the success key while the scene shows success (`robot-rl label`,
robot_rl/hil/operator.py), which writes one file per labelling episode:

    <folder>/labels_<episode>.safetensors    a robot_rl.data.tree: {"images": {cam: uint8 [N, H, W, 3]},
                                             "states": float32 [N, S], "labels": bool [N],
                                             "true_labels": bool [N] (the twin's ground truth, or
                                             absent on a robot), "task": str}

A file per episode, written whole (to a temporary name, then renamed): a session that dies loses at
most the episode it was in. load_labelled_frames reads a file or a folder of them, numbering
episodes across files, so held-out splits keep each recorded episode whole.

Conflicting labels: the same frame (byte-identical on every camera) labelled success once and
failure another time. An operator does this when the robot stands still while the key is pressed or
released, or across two sessions that disagree; the classifier cannot fit both, so
`conflicting_labels` finds them for the caller to report and drop.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_rl.data.tree import load_tree, save_tree

LABEL_FILE_GLOB = "labels_*.safetensors"


@dataclass
class LabelledFrames:
    """Frames with success labels, and the episode each came from (held-out splits are by episode:
    frames of one episode are near copies, a frame split would flatter the model)."""

    images: dict[str, np.ndarray]  # uint8 [N, H, W, 3] per camera
    states: np.ndarray  # float32 [N, S], spec.flatten_state
    labels: np.ndarray  # bool [N]
    episode_ids: np.ndarray  # int64 [N]
    episode_kinds: np.ndarray | None = None  # str [N]: how the frame's episode was driven (collect_labelled_frames)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> LabelledFrames:
        return LabelledFrames(
            {cam: img[index] for cam, img in self.images.items()},
            self.states[index],
            self.labels[index],
            self.episode_ids[index],
            None if self.episode_kinds is None else self.episode_kinds[index],
        )


def save_label_episode(
    folder: Path | str,
    episode: int,
    images: dict[str, np.ndarray],
    states: np.ndarray,
    labels: np.ndarray,
    true_labels: np.ndarray | None,
    task: str,
) -> Path:
    """One labelling episode's frames into <folder>/labels_<episode>.safetensors (written whole)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    for cam, frames in images.items():
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) != n:
            raise ValueError(f"images[{cam!r}]: expected uint8 [{n}, H, W, 3], got {frames.dtype} {frames.shape}")
    if len(states) != n:
        raise ValueError(f"states: {len(states)} rows for {n} labels")
    tree = {
        "images": dict(images),
        "states": np.asarray(states, np.float32),
        "labels": np.asarray(labels, bool),
        "task": task,
    }
    if true_labels is not None:
        tree["true_labels"] = np.asarray(true_labels, bool)
    path = folder / f"labels_{episode:04d}.safetensors"
    partial = path.with_suffix(".partial")
    save_tree(partial, tree)
    os.replace(partial, path)
    return path


def label_files(path: Path | str) -> list[Path]:
    """A labels file, or every labels file in a folder (name order)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such labels file or folder (robot-rl label writes them)")
    files = sorted(path.glob(LABEL_FILE_GLOB))
    if not files:
        raise ValueError(f"{path}: no {LABEL_FILE_GLOB} in this folder (robot-rl label writes them)")
    return files


def load_labelled_frames(path: Path | str) -> tuple[LabelledFrames, np.ndarray | None]:
    """(frames, true labels or None) of a labels file or folder, one episode id per file. Every file
    must have the same cameras, frame sizes and state size: a mix of sessions with different set-ups
    is refused, naming the file."""
    parts, true_parts = [], []
    reference: tuple | None = None
    for episode, file in enumerate(label_files(path)):
        try:
            tree = load_tree(file)
            images, states, labels = tree["images"], tree["states"], np.asarray(tree["labels"], bool)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{file}: not a labels file ({error})") from error
        layout = ({cam: frames.shape[1:] for cam, frames in images.items()}, states.shape[1:])
        if reference is None:
            reference = (file, layout)
        elif layout != reference[1]:
            raise ValueError(
                f"{file}: cameras/frame sizes/state size {layout} differ from {reference[0].name}'s {reference[1]}"
            )
        parts.append(LabelledFrames(images, states, labels, np.full(len(labels), episode, np.int64)))
        true_parts.append(tree.get("true_labels"))
    frames = LabelledFrames(
        {cam: np.concatenate([p.images[cam] for p in parts]) for cam in parts[0].images},
        np.concatenate([p.states for p in parts]).astype(np.float32),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.episode_ids for p in parts]),
    )
    truth = None if any(t is None for t in true_parts) else np.concatenate(true_parts).astype(bool)
    return frames, truth


def conflicting_labels(frames: LabelledFrames) -> list[np.ndarray]:
    """Groups of frame indices that are the same frame (byte-identical on every camera) but carry
    both labels; each group lists every copy of that frame."""
    groups: dict[bytes, list[int]] = {}
    cameras = sorted(frames.images)
    for i in range(len(frames)):
        digest = hashlib.sha1()
        for cam in cameras:
            digest.update(np.ascontiguousarray(frames.images[cam][i]).data)
        groups.setdefault(digest.digest(), []).append(i)
    conflicts = []
    for index in groups.values():
        labels = frames.labels[index]
        if labels.any() and not labels.all():
            conflicts.append(np.asarray(index))
    return conflicts
