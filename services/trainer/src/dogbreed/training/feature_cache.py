"""Cached backbone features: while the backbone is frozen and inputs do not change between epochs, the
backbone runs once per image and the head trains on its outputs (in memory, optionally on disk).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..data import ImageDataset
from ..models import forward_features
from ..serving.architectures import classifier_of
from .checkpoints import atomic_save
from .distributed import (
    ShardSampler,
    collective_device,
    is_distributed,
)
from .engine import (
    autocast,
    progress_bar,
    to_device,
)
from .errors import StorageError
from .loaders import make_loader

logger = logging.getLogger(__name__)


class _FeatureExtractor(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward_features(self.model, x)


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self.dataset[index]
        return None if item is None else (item[0], item[1], index)


def _samples_fingerprint(samples: Sequence[tuple[str, int]]) -> str:
    digest = hashlib.sha256()
    for path, label in samples:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0{label}\0missing\n".encode())
    return digest.hexdigest()


def compute_features(
    model: nn.Module,
    dataset: ImageDataset,
    *,
    device: torch.device,
    batch_size: int,
    workers: int,
    amp_dtype: torch.dtype | None,
    channels_last: bool,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, F] float32 on CPU, labels [N]) of every readable sample, computed once across ranks."""
    extractor = _FeatureExtractor(model).eval()
    loader = make_loader(_Indexed(dataset), batch_size=batch_size, sampler=ShardSampler(len(dataset), rank, world_size),
                         workers=workers, device=device)
    features, indices = [], []
    with torch.inference_mode():
        for batch in progress_bar(loader, progress, "caching features"):
            if batch is None:
                continue
            images, _, index = batch
            with autocast(device, amp_dtype):
                out = extractor(to_device(images, device, channels_last))
            features.append(out.float())
            indices.append(index.to(device))
    with torch.no_grad():
        dim = features[0].shape[1] if features else classifier_of(model).in_features
        local = torch.cat(features) if features else torch.zeros(0, dim, device=device)
        local_index = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long, device=device)
        if is_distributed():
            local, local_index = _all_gather_rows(local, local_index, world_size)
        order = local_index.argsort()
        local, local_index = local[order].cpu(), local_index[order].cpu()
    labels = torch.tensor([dataset.samples[i][1] for i in local_index.tolist()], dtype=torch.long)
    return local, labels


def _all_gather_rows(rows: torch.Tensor, index: torch.Tensor, world_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather every rank's rows (shards may differ in length, so pad to the longest)."""
    count = torch.tensor([rows.shape[0]], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world_size)]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded = torch.zeros(longest, rows.shape[1], device=rows.device, dtype=rows.dtype)
    padded[: rows.shape[0]] = rows
    padded_index = torch.full((longest,), -1, device=index.device, dtype=index.dtype)
    padded_index[: index.shape[0]] = index
    all_rows = [torch.zeros_like(padded) for _ in range(world_size)]
    all_index = [torch.zeros_like(padded_index) for _ in range(world_size)]
    dist.all_gather(all_rows, padded)
    dist.all_gather(all_index, padded_index)
    rows = torch.cat([r[: int(c.item())] for r, c in zip(all_rows, counts, strict=True)])
    index = torch.cat([i[: int(c.item())] for i, c in zip(all_index, counts, strict=True)])
    return rows, index


class FeatureCache:
    """Backbone features per split, in memory and optionally on disk (keyed by data, backbone and weights)."""

    def __init__(self, directory: str | None, key_parts: dict):
        self.directory = Path(directory) if directory else None
        self.key_parts = key_parts
        self.memory: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _path(self, split: str, samples) -> Path:
        key = json.dumps({**self.key_parts, "split": split, "samples": _samples_fingerprint(samples)}, sort_keys=True)
        return self.directory / f"features-{split}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"

    def get(self, split: str, dataset: ImageDataset, compute: Callable[[], tuple[torch.Tensor, torch.Tensor]], *, write: bool):
        if split in self.memory:
            return self.memory[split]
        path = self._path(split, dataset.samples) if self.directory else None
        have = path is not None and path.is_file()
        if is_distributed():  # every rank must take the same branch: computing is collective
            flag = torch.tensor([1 if have else 0])
            dist.all_reduce(flag.to(collective_device()), op=dist.ReduceOp.MIN)
            have = bool(flag.item())
        if have:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            value = (stored["features"], stored["labels"])
            logger.info("loaded cached %s features from %s", split, path)
        else:
            started = time.perf_counter()
            value = compute()
            logger.info("computed %s features for %d images in %.1fs", split, value[0].shape[0], time.perf_counter() - started)
            if path is not None and write:
                try:
                    atomic_save({"features": value[0], "labels": value[1], "key": self.key_parts}, path)
                except StorageError as exc:  # the on-disk copy only saves time later: train on without it
                    logger.warning("feature cache not kept on disk: %s", exc)
        self.memory[split] = value
        return value
