"""The training steps of ``dogbreed train`` for ``dogbreed profile``: its data, model, optimizer and step,
built from its own flags and functions, so what is profiled is what training runs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..data import ImageDataset
from ..models import NORMALISATION, apply_trainable, backbone_stages, create_model, set_train_mode, trainable_depth
from ..presets import make_presets
from ..sagemaker_env import DistributedEnv
from ..training.distributed import resolve_device
from ..training.engine import StepContext, configure_threads, resolve_amp, train_one_epoch
from ..training.loaders import default_workers, load_data, make_loader
from ..training.optim import build_optimizer


@dataclass
class TrainingSetup:
    """What one training step of ``dogbreed train`` needs, built the way ``train.main`` builds it."""

    loader_for: Callable[[int], Iterable]  # batch size -> training data loader
    step: Callable[[Any], Any]
    device: torch.device
    settings: dict


def build_training_setup(args: argparse.Namespace) -> TrainingSetup:
    """``args``: ``dogbreed train``'s flags, parsed and resolved (``dogbreed.training.arguments``)."""
    dist_env = DistributedEnv()  # one process: profile a single worker of a distributed job
    device = resolve_device(args.device, dist_env)
    configure_threads(args.threads)
    data = load_data(args, dist_env)
    torch.manual_seed(args.seed)
    model = create_model(args.backbone, data.num_classes, args.weights, progress=sys.stderr.isatty())
    normalisation = NORMALISATION[args.backbone]
    train_preset, _ = make_presets(augmentation=args.augmentation, crop_size=args.image_size, resize_size=args.resize_size, mean=normalisation[0], std=normalisation[1])
    dataset = ImageDataset(data.splits["train"], train_preset)
    workers = default_workers(device, dist_env) if args.workers is None else args.workers
    depth = trainable_depth(args.mode, 0, num_stages=len(backbone_stages(model)), unfreeze_depth=args.unfreeze_depth, freeze_epochs=args.freeze_epochs, unfreeze_every=args.unfreeze_every)
    apply_trainable(model, depth)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    set_train_mode(model, depth)
    optimizer = build_optimizer(model, args)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    amp_dtype = resolve_amp(args.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    ctx = StepContext(device=device, amp_dtype=amp_dtype, scaler=scaler, channels_last=args.channels_last, clip_grad_norm=args.clip_grad_norm, num_classes=data.num_classes)

    def step(batch):
        # Exactly the trainer's step: train_one_epoch over a single batch.
        return train_one_epoch(model, criterion, optimizer, [batch], 1, ctx)

    def loader_for(batch_size: int):
        from torch.utils.data import RandomSampler

        generator = torch.Generator().manual_seed(args.seed)
        return make_loader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, generator=generator), workers=workers, device=device)

    settings = {
        "device": str(device),
        "backbone": args.backbone,
        "mode": f"{args.mode} ({depth} of {len(backbone_stages(model))} backbone stages training)",
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "augmentation": args.augmentation,
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
        "channels_last": args.channels_last,
        "workers": workers,
        "cpu_count": os.cpu_count() or 1,
        "torch_threads": torch.get_num_threads(),
        "pin_memory": device.type == "cuda",
        "train_images": len(dataset),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        settings["gpu"] = properties.name
        settings["gpu_total_memory_mb"] = properties.total_memory / 2**20
    return TrainingSetup(loader_for=loader_for, step=step, device=device, settings=settings)
