"""Finding the training data (downloading ``s3://`` data first) and the data loaders."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..data import (
    DataError,
    DatasetSplits,
    collate_skipping_unreadable,
    discover,
    discover_split_folders,
    load_split_record,
)
from ..sagemaker_env import DistributedEnv
from .distributed import is_distributed


def _default_download_dir(uri: str) -> Path:
    from ..s3 import split_s3_uri

    bucket, key = split_s3_uri(uri)
    return Path.home() / ".cache" / "dogbreed" / "data" / bucket / key.strip("/")


def default_workers(device: torch.device, dist_env: DistributedEnv) -> int:
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cores // max(1, dist_env.local_world_size)))
    return max(1, cores // 4 // max(1, dist_env.local_world_size))


def load_data(args: argparse.Namespace, dist_env: DistributedEnv | None = None) -> DatasetSplits:
    """Discover the samples of every split (downloading ``s3://`` data first)."""
    dist_env = dist_env or DistributedEnv()
    data_dir = args.data
    if data_dir is not None and data_dir.startswith("s3://"):
        from ..s3 import download_prefix

        target = Path(args.download_dir) if args.download_dir else _default_download_dir(data_dir)
        if dist_env.local_rank == 0:
            download_prefix(data_dir, target, progress=sys.stderr.isatty())
        if is_distributed():
            dist.barrier()
        data_dir = str(target)
    if args.train_dir is not None:
        return discover_split_folders(
            {"train": args.train_dir, "valid": args.valid_dir, **({"test": args.test_dir} if args.test_dir else {})},
            check_images=args.check_images,
        )
    if args.split_file:
        if not Path(data_dir).is_dir():
            raise DataError(f"data folder not found: {data_dir}")
        return load_split_record(args.split_file, data_dir)
    return discover(data_dir, fractions=args.split_fractions, seed=args.seed, check_images=args.check_images)


def make_loader(dataset, *, batch_size: int, sampler, workers: int, device: torch.device, seed: int | None = None) -> DataLoader:
    generator = None
    if seed is not None:
        generator = torch.Generator()
        generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_skipping_unreadable,
        pin_memory=device.type == "cuda",
        generator=generator,
        persistent_workers=False,
    )
