"""Labelled dog photos on disk: the two folder layouts people have, splits, and the dataset.

Layouts:

- **split folders** (the 133-breed "dogImages" layout, and what SageMaker channels deliver):
  ``train/``, ``valid/`` (or ``val/``, ``validation/``), optionally ``test/``, each holding one folder
  per breed named ``NNN.Breed_name`` (or any name).
- **class folders** (the Stanford Dogs layout): one folder per breed, ``nXXXXXXXX-breed_name`` (or
  any name), no split. A stratified, seeded train/valid/test split is made here and recorded in a
  JSON file so that evaluation and later runs can use exactly the same split.

Class ids follow the sorted folder names. Breed names are made human-readable: ``096.Labrador_retriever``
and ``n02099712-Labrador_retriever`` both become ``Labrador retriever``.

Files that are not images, or cannot be decoded, are reported and skipped: at discovery (extension
and header) and again while loading (a truncated JPEG found mid-epoch is dropped from its batch).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, default_collate

from .breeds import breed_from_folder
from .choices import DEFAULT_SPLIT_FRACTIONS

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SPLIT_NAMES = {
    "train": ("train", "training"),
    "valid": ("valid", "val", "validation"),
    "test": ("test", "testing"),
}
SPLITS = tuple(SPLIT_NAMES)
LAYOUT_HELP = (
    "expected split folders train/, valid/ (or val/, validation/) and optionally test/, each with one folder "
    "per breed (dogImages layout), or one folder per breed with no split (Stanford Dogs layout)"
)

Sample = tuple[str, int]  # (image path, class id)


class DataError(ValueError):
    """A problem with the data folder, worded for the person who made it (one line)."""


# --- discovery --------------------------------------------------------------------------------------


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class DatasetSplits:
    """Every sample of a dataset, by split, with the class list they share."""

    class_folders: list[str]
    classes: list[str]  # human-readable, in class-id order
    splits: dict[str, list[Sample]]  # "train", "valid", "test" (test may be empty)
    layout: str  # "split-folders" or "class-folders"
    roots: dict[str, str]  # split -> folder it was read from (class-folders: the one root)
    skipped: list[Skipped] = field(default_factory=list)
    split_record: dict | None = None  # how a class-folders split was made (see write_split_record)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def counts(self, split: str) -> list[int]:
        counts = [0] * self.num_classes
        for _, label in self.splits[split]:
            counts[label] += 1
        return counts


def _image_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable image (None when it is). Reads only the header."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"not an image file (extension {path.suffix or 'none'}; accepted: {', '.join(IMAGE_EXTENSIONS)})"
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with Image.open(path) as image:
            image.size  # noqa: B018 -- the header parsed
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        return f"cannot be decoded ({exc.__class__.__name__}: {exc})"
    return None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def _scan_class(folder: Path, skipped: list[Skipped], check_images: bool) -> list[str]:
    images = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        problem = _image_problem(path) if check_images else (
            None if path.suffix.lower() in IMAGE_EXTENSIONS else "not an image file"
        )
        if problem:
            skipped.append(Skipped(str(path), problem))
        else:
            images.append(str(path))
    return images


def _scan_classes(folder: Path, skipped: list[Skipped], check_images: bool) -> dict[str, list[str]]:
    class_dirs = _class_dirs(folder)
    if not class_dirs:
        raise DataError(f"no breed folders in {folder}; {LAYOUT_HELP}")
    found = {}
    for class_dir in class_dirs:
        images = _scan_class(class_dir, skipped, check_images)
        if not images:
            raise DataError(
                f"breed folder has no readable images: {class_dir} "
                f"(accepted image types: {', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
            )
        found[class_dir.name] = images
    return found


def find_split_dirs(root: Path) -> dict[str, Path]:
    """Split name -> its folder under ``root``, for the split folders present (any of SPLIT_NAMES' spellings)."""
    children = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
    found = {}
    for split, aliases in SPLIT_NAMES.items():
        for alias in aliases:
            if alias in children:
                found[split] = children[alias]
                break
    return found


def _describe_difference(reference: Sequence[str], other: Sequence[str], split: str) -> str:
    missing = sorted(set(reference) - set(other))
    extra = sorted(set(other) - set(reference))

    def some(names: list[str]) -> str:
        shown = ", ".join(names[:3])
        return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{split} lacks {some(missing)}")
    if extra:
        parts.append(f"{split} has extra {some(extra)}")
    return "; ".join(parts)


def discover_split_folders(
    split_dirs: dict[str, str | os.PathLike], *, check_images: bool = True
) -> DatasetSplits:
    """Read explicit split folders (``train`` and ``valid`` required, ``test`` optional)."""
    skipped: list[Skipped] = []
    per_split: dict[str, dict[str, list[str]]] = {}
    for split in SPLITS:
        folder = split_dirs.get(split)
        if folder is None:
            continue
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"{split} data folder not found: {folder}")
        per_split[split] = _scan_classes(folder, skipped, check_images)
    for required in ("train", "valid"):
        if required not in per_split:
            raise DataError(f"no {required} data given; {LAYOUT_HELP}")

    class_folders = sorted(per_split["train"])
    differences = [
        _describe_difference(class_folders, sorted(per_split[split]), split)
        for split in per_split
        if split != "train" and sorted(per_split[split]) != class_folders
    ]
    if differences:
        raise DataError(
            "breed folders differ between splits (every split needs the same breeds): " + "; ".join(differences)
        )
    label = {name: i for i, name in enumerate(class_folders)}
    splits = {
        split: [(path, label[name]) for name in class_folders for path in per_split[split][name]]
        if split in per_split
        else []
        for split in SPLITS
    }
    _report_skipped(skipped)
    return DatasetSplits(
        class_folders=class_folders,
        classes=[breed_from_folder(name) for name in class_folders],
        splits=splits,
        layout="split-folders",
        roots={split: str(split_dirs[split]) for split in per_split},
        skipped=skipped,
    )


def stratified_split(
    samples_by_class: Sequence[Sequence[str]], fractions: Sequence[float], seed: int
) -> dict[str, list[Sample]]:
    """Split each class separately (so every split has every breed), reproducibly for a given seed."""
    rng = random.Random(seed)
    splits: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    _, valid_fraction, test_fraction = fractions
    for label, paths in enumerate(samples_by_class):
        paths = sorted(paths)
        rng.shuffle(paths)
        n = len(paths)
        n_valid = max(1, round(n * valid_fraction)) if valid_fraction > 0 else 0
        n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
        if n - n_valid - n_test < 1:
            raise DataError(
                f"class {label} has only {n} image(s): too few to split into train/valid/test "
                f"with fractions {', '.join(f'{f:g}' for f in fractions)}; add images or give split folders"
            )
        splits["valid"] += [(p, label) for p in paths[:n_valid]]
        splits["test"] += [(p, label) for p in paths[n_valid : n_valid + n_test]]
        splits["train"] += [(p, label) for p in paths[n_valid + n_test :]]
    return splits


def discover_class_folders(
    root: str | os.PathLike,
    *,
    fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
    seed: int = 0,
    check_images: bool = True,
) -> DatasetSplits:
    """Read one folder per class and make a stratified, seeded split."""
    root = Path(root)
    skipped: list[Skipped] = []
    per_class = _scan_classes(root, skipped, check_images)
    class_folders = sorted(per_class)
    try:
        splits = stratified_split([per_class[name] for name in class_folders], fractions, seed)
    except DataError as exc:
        # Name the folder rather than the class id.
        match = re.match(r"class (\d+) ", str(exc))
        if match:
            folder = class_folders[int(match.group(1))]
            raise DataError(str(exc).replace(f"class {match.group(1)} ", f"breed folder {root / folder} ", 1)) from None
        raise
    _report_skipped(skipped)
    data = DatasetSplits(
        class_folders=class_folders,
        classes=[breed_from_folder(name) for name in class_folders],
        splits=splits,
        layout="class-folders",
        roots={split: str(root) for split in SPLITS},
        skipped=skipped,
    )
    data.split_record = make_split_record(data, root, fractions=fractions, seed=seed)
    return data


def discover(
    root: str | os.PathLike,
    *,
    fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
    seed: int = 0,
    check_images: bool = True,
) -> DatasetSplits:
    """Read a data folder in either layout (see the module docstring)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"data path is not a folder: {root}; {LAYOUT_HELP}")
    split_dirs = find_split_dirs(root)
    if split_dirs:
        return discover_split_folders(split_dirs, check_images=check_images)
    if not any(d for d in root.iterdir() if not d.name.startswith(".")):
        raise DataError(f"data folder is empty: {root}; {LAYOUT_HELP}")
    return discover_class_folders(root, fractions=fractions, seed=seed, check_images=check_images)


def _report_skipped(skipped: Sequence[Skipped]) -> None:
    if not skipped:
        return
    logger.warning("skipping %d unusable file(s):", len(skipped))
    for item in skipped[:20]:
        logger.warning("  %s: %s", item.path, item.reason)
    if len(skipped) > 20:
        logger.warning("  ... and %d more", len(skipped) - 20)


# --- the split record -------------------------------------------------------------------------------


def make_split_record(data: DatasetSplits, root: str | os.PathLike, *, fractions: Sequence[float], seed: int) -> dict:
    """A JSON-safe record of a split: paths relative to ``root`` so it survives moving the folder."""
    root = Path(root)
    return {
        "format_version": 1,
        "layout": data.layout,
        "seed": seed,
        "fractions": list(fractions),
        "class_folders": data.class_folders,
        "classes": data.classes,
        "splits": {
            split: [Path(path).relative_to(root).as_posix() for path, _ in data.splits[split]] for split in SPLITS
        },
    }


def write_split_record(record: dict, path: str | os.PathLike) -> Path:
    """Write the record atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_split_record(path: str | os.PathLike, root: str | os.PathLike) -> DatasetSplits:
    """Rebuild the splits of a recorded split (``--split-file``) over the class folders in ``root``."""
    path, root = Path(path), Path(root)
    try:
        record = json.loads(path.read_text())
        class_folders = list(record["class_folders"])
        recorded = record["splits"]
    except FileNotFoundError:
        raise DataError(f"split file not found: {path}") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"split file {path} is not a split record written by dogbreed train ({exc})") from None
    label = {name: i for i, name in enumerate(class_folders)}
    splits: dict[str, list[Sample]] = {}
    for split in SPLITS:
        samples = []
        for relative in recorded.get(split, []):
            folder = relative.split("/", 1)[0]
            if folder not in label:
                raise DataError(f"split file {path} names breed folder {folder!r} that is not in its class list")
            full = root / relative
            if not full.is_file():
                raise DataError(f"split file {path} lists {relative}, which is missing from {root}")
            samples.append((str(full), label[folder]))
        splits[split] = samples
    for split in ("train", "valid"):
        if not splits[split]:
            raise DataError(f"split file {path} has an empty {split} split")
    return DatasetSplits(
        class_folders=class_folders,
        classes=[breed_from_folder(name) for name in class_folders],
        splits=splits,
        layout=record.get("layout", "class-folders"),
        roots={split: str(root) for split in SPLITS},
        split_record=record,
    )


# --- the dataset ------------------------------------------------------------------------------------


class ImageDataset(Dataset):
    """``(transform(image), label)`` per sample; ``None`` for a file that cannot be decoded."""

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Image.Image], torch.Tensor]):
        self.samples = list(samples)
        self.transform = transform
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                tensor = self.transform(image)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            if path not in self._reported:  # once per worker process
                self._reported.add(path)
                logger.warning("skipping unreadable image %s (%s: %s)", path, exc.__class__.__name__, exc)
            return None
        return tensor, label

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]


def collate_skipping_unreadable(batch):
    """Collate the readable samples of a batch; ``None`` when none were readable."""
    batch = [item for item in batch if item is not None]
    if not batch:
        return None
    return default_collate(batch)
