"""Tiny random-init open_clip architectures for tests (no weights can be downloaded here): a 2-layer
ViT and text transformer, 64 wide, registered with open_clip from JSON under the names below.
Imported as `from tiny_clip import ...`: pytest puts this folder (no __init__.py) on sys.path."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip

TINY = "robot-rl-tiny-vit-32"  # image_size 32
TINY_64 = "robot-rl-tiny-vit-64"  # same towers, image_size 64


def tiny_model_config(image_size: int) -> dict:
    return {
        "embed_dim": 32,
        "vision_cfg": {"image_size": image_size, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }


def register_tiny_models(folder: Path) -> None:
    """Write the architectures' JSON into `folder` (the file's stem is the model name) and register them."""
    for name, size in ((TINY, 32), (TINY_64, 64)):
        (folder / f"{name}.json").write_text(json.dumps(tiny_model_config(size)))
    open_clip.add_model_config(folder)
