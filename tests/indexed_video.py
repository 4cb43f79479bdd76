"""A small generated MJPG video standing in for a USB camera (tests of hardware/uvc_camera.py and of its
node): the top 32 rows of frame i have a colour that says i, the bottom 16 are red, so a frame's
index and a swap of R and B both show after compression. Imported as `from indexed_video import ...`:
pytest puts tests/ (it has no __init__.py) on sys.path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 80, 48, 20.0  # sizes in whole 16-pixel JPEG blocks: colours stay clean
RED = (255, 0, 0)
TOLERANCE = 24  # per channel, after MJPG (and jpeg again for a CompressedImage)


class IndexedVideo:
    def __init__(self, n_frames: int):
        self.n_frames = n_frames
        self.colour_step = 250 // n_frames

    def colour(self, i: int) -> tuple[int, int, int]:
        return (i * self.colour_step, 255 - i * self.colour_step, 60)

    def write(self, path: Path) -> Path:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
        assert writer.isOpened()
        for i in range(self.n_frames):
            rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            rgb[:32], rgb[32:] = self.colour(i), RED
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        writer.release()
        return path

    def index(self, frame: np.ndarray) -> int:
        """The index an RGB frame shows; fails on a frame that is not one of the video's."""
        assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
        assert np.abs(frame[40, WIDTH // 2].astype(int) - RED).max() <= TOLERANCE, f"bottom is {frame[40, WIDTH // 2]}"
        top = frame[16, WIDTH // 2].astype(int)
        errors = [np.abs(top - self.colour(i)).max() for i in range(self.n_frames)]
        assert min(errors) <= TOLERANCE, f"top colour {top} is no frame index's"
        return int(np.argmin(errors))
