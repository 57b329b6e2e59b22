"""Helpers that make tiny labelled image folders (imported by conftest.py and the trainer tests).

A module with its own name rather than ``conftest``: several test folders have a conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Three breeds with clearly different colours, so a tiny network learns something in one epoch.
BREED_COLOURS = {
    "Affenpinscher": (200, 40, 40),
    "Afghan_hound": (40, 180, 60),
    "Labrador_retriever": (50, 60, 210),
}


def write_image(path: Path, colour: tuple[int, int, int], *, seed: int, size: tuple[int, int] = (56, 48), fmt: str = "JPEG") -> Path:
    """A small noisy image of roughly ``colour`` (each one different)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour, dtype=np.int16) + rng.integers(-40, 40, size=(size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path, fmt)
    return path


def make_class_folders(root: Path, folders: dict[str, tuple[int, int, int]], per_class: int, *, seed: int = 0) -> Path:
    for c, (folder, colour) in enumerate(folders.items()):
        for i in range(per_class):
            write_image(root / folder / f"{folder.split('.')[-1].split('-')[-1]}_{i:03d}.jpg", colour, seed=seed * 100_000 + c * 1000 + i)
    return root


def fast_train_argv(data: Path | str | None, output_dir: Path, *extra: str) -> list[str]:
    """``dogbreed train`` arguments that train a small random-init ResNet-18 on tiny images in a second or two."""
    argv = [] if data is None else ["--data", str(data)]
    return argv + [
        "--output-dir", str(output_dir),
        "--backbone", "resnet18",
        "--weights", "none",
        "--image-size", "40",
        "--resize-size", "44",
        "--batch-size", "6",
        "--epochs", "1",
        "--workers", "0",
        "--threads", "1",
        "--lr", "0.01",
        "--report", "false",
        *extra,
    ]


