"""Shared fixtures of the trainer tests: tiny labelled image folders in both layouts, the real dog
photos when present, and fast training arguments.

Other test modules may append fixtures here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from trainer_testdata import BREED_COLOURS, fast_train_argv, make_class_folders

REPO_ROOT = Path(__file__).resolve().parents[2]

# The CPU is shared with other test processes: more threads than free cores makes torch several
# times slower, not faster.
torch.set_num_threads(1)


@pytest.fixture()
def dogimages_dir(tmp_path: Path) -> Path:
    """dogImages layout: train/valid/test with ``NNN.Breed_name`` folders (6/2/2 images per breed)."""
    root = tmp_path / "dogImages"
    folders = {f"{i:03d}.{name}": colour for i, (name, colour) in enumerate(BREED_COLOURS.items(), 1)}
    for seed, (split, count) in enumerate((("train", 6), ("valid", 2), ("test", 2))):
        make_class_folders(root / split, folders, count, seed=seed)
    return root


@pytest.fixture()
def stanford_dir(tmp_path: Path) -> Path:
    """Stanford Dogs layout: ``nXXXXXXXX-breed`` folders, no split (10 images per breed)."""
    root = tmp_path / "stanford"
    folders = {
        "n02085620-Chihuahua": BREED_COLOURS["Affenpinscher"],
        "n02088364-beagle": BREED_COLOURS["Afghan_hound"],
        "n02110185-Siberian_husky": BREED_COLOURS["Labrador_retriever"],
    }
    return make_class_folders(root, folders, 10)


@pytest.fixture()
def dog_photos() -> Path:
    """The real photos (``../shared/data/dog-photos`` beside the repo, or ``$DOG_PHOTOS_DIR``); skips when absent."""
    path = Path(os.environ.get("DOG_PHOTOS_DIR") or REPO_ROOT / ".." / "shared" / "data" / "dog-photos")
    if not path.is_dir():
        pytest.skip(f"no dog photos at {path}")
    return path.resolve()


@pytest.fixture()
def train_argv():
    return fast_train_argv


# --- model artifacts (artifact/evaluation tests) ----------------------------------------------------
# Exposed as fixtures returning functions: test modules cannot import this conftest reliably.

TINY_CLASSES = ["Affenpinscher", "Afghan hound", "Labrador retriever"]  # the BREED_COLOURS breeds


def _make_tiny_model(seed: int = 0, num_outputs: int = len(TINY_CLASSES)):
    from dogbreed.serving.architectures import build_model

    torch.manual_seed(seed)
    return build_model("efficientnet_lite0", num_outputs).eval()


def _make_tiny_metadata(**overrides) -> dict:
    from dogbreed.artifact import build_metadata
    from dogbreed.serving.transforms import EvalPreset

    arguments = dict(
        name="tiny-test", backbone="efficientnet_lite0", classes=TINY_CLASSES,
        preset=EvalPreset(32, 36, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        metrics={"test_acc1": 0.5}, training_args={"epochs": 1},
    )
    arguments.update(overrides)
    return build_metadata(**arguments)


@pytest.fixture()
def tiny_classes() -> list[str]:
    return list(TINY_CLASSES)


@pytest.fixture()
def make_tiny_model():
    """``make_tiny_model(seed=0, num_outputs=3)``: a random-init EfficientNet-Lite0 in eval mode."""
    return _make_tiny_model


@pytest.fixture()
def make_tiny_metadata():
    """``make_tiny_metadata(**build_metadata overrides)``: metadata for the tiny model, 32 px crops."""
    return _make_tiny_metadata


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    """``model.tar.gz`` of the tiny model with seed 0 (shared: copy it before changing anything)."""
    from dogbreed.artifact import write_artifact

    return write_artifact(_make_tiny_model(), _make_tiny_metadata(), tmp_path_factory.mktemp("tiny-artifact"))


@pytest.fixture()
def no_network(monkeypatch):
    """Every attempt to open a network connection fails, as on a machine without network."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
