"""Checkpoints: written atomically with a SHA-256 digest of their content, listed, loaded and checked on resume."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import torch

from ..data import DatasetSplits
from .errors import (
    ConfigError,
    DamagedCheckpointError,
    StorageError,
)

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-epoch(\d+)\.pth$")
BEST_MODEL_NAME = "best-model.pth"


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        # torch.save reports a failed write as RuntimeError("PytorchStreamWriter failed writing file ...").
        if isinstance(exc, (OSError, RuntimeError)):
            raise StorageError(f"cannot write {path}: {first_line(exc)} "
                               f"({_free_space(path.parent)} free there); files written before are intact") from exc
        raise
    return path


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _free_space(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB"
    except OSError:
        return "unknown space"


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """(completed epochs, path) of every epoch checkpoint in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


DIGEST_KEY = "sha256"  # in each checkpoint: state_digest() of everything else in it


def state_digest(obj) -> str:
    """SHA-256 of a checkpoint's content (tensors' bytes, dtypes and shapes; every other value's repr).

    torch.load does not check the zip records' CRCs, so bytes overwritten inside a tensor load without a
    word; this digest, stored in the checkpoint and recomputed on load, catches that.
    """
    digest = hashlib.sha256()
    _feed_digest(digest, obj)
    return digest.hexdigest()


def _feed_digest(digest, obj) -> None:
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        digest.update(b"{%d" % len(obj))
        for key in sorted(obj, key=repr):
            _feed_digest(digest, key)
            _feed_digest(digest, obj[key])
    elif isinstance(obj, (list, tuple)):  # a tuple may load back as a list: the same content
        digest.update(b"[%d" % len(obj))
        for item in obj:
            _feed_digest(digest, item)
    else:
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())


def with_digest(checkpoint: dict) -> dict:
    return {**checkpoint, DIGEST_KEY: state_digest(checkpoint)}


def read_checkpoint(path: Path) -> tuple[dict | None, str | None]:
    """(checkpoint, None), or (None, why it cannot be used)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- pickle and zip errors come in many types
        return None, f"{exc.__class__.__name__}: {first_line(exc)}"
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "epoch" not in checkpoint:
        return None, "not a checkpoint written by dogbreed train"
    expected = checkpoint.pop(DIGEST_KEY, None)
    # Checkpoints written before digests were stored have none: they load unchecked, as they always did.
    if expected is not None and state_digest(checkpoint) != expected:
        return None, "damaged: its content does not match the sha256 stored in it"
    return checkpoint, None


def load_checkpoint(resume: str, checkpoint_dir: Path) -> dict | None:
    """The checkpoint to resume from: ``auto`` tries the newest first and falls back to the newest intact one;
    None when there is none at all. Raises DamagedCheckpointError when checkpoints exist but none is intact."""
    if resume == "auto":
        candidates = list_checkpoints(checkpoint_dir)
        for _, path in reversed(candidates):
            checkpoint, problem = read_checkpoint(path)
            if problem is not None:
                logger.warning("cannot read checkpoint %s (%s); trying an older one", path, problem)
                continue
            checkpoint["path"] = str(path)
            return checkpoint
        if candidates:
            raise DamagedCheckpointError(
                f"no intact checkpoint in {checkpoint_dir}: all {len(candidates)} are damaged or unreadable; "
                "move them away (or use another --checkpoint-dir) to start afresh"
            )
        logger.info("no checkpoint in %s; starting from epoch 1", checkpoint_dir)
        return None
    path = Path(resume)
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}; --resume takes auto, none, or a checkpoint file")
    checkpoint, problem = read_checkpoint(path)
    if problem == "not a checkpoint written by dogbreed train":
        raise ConfigError(f"{path} is not a checkpoint written by dogbreed train")
    if problem is not None:
        raise DamagedCheckpointError(f"cannot read checkpoint {path}: {problem}")
    checkpoint["path"] = str(path)
    return checkpoint


def check_checkpoint_fits(checkpoint: dict, args: argparse.Namespace, data: DatasetSplits) -> None:
    saved = checkpoint.get("args", {})
    if saved.get("backbone") != args.backbone:
        raise ConfigError(
            f"checkpoint {checkpoint['path']} was trained with --backbone {saved.get('backbone')}, not {args.backbone}; "
            "resume with the same arguments or use another --checkpoint-dir"
        )
    if checkpoint.get("class_folders") != data.class_folders:
        raise ConfigError(
            f"checkpoint {checkpoint['path']} was trained on other breeds ({len(checkpoint.get('class_folders') or [])} "
            f"classes, here {data.num_classes}); resume with the same data or use another --checkpoint-dir"
        )


def json_safe(value):
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed every generator from (seed, epoch, rank): a resumed epoch sees the same data and augmentation."""
    value = (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63)
    torch.manual_seed(value)
    random.seed(value)
