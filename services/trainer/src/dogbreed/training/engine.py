"""The training loop: one epoch of training (:func:`train_one_epoch`), one pass of evaluation (:func:`evaluate`),
the loss and mixed precision.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import (
    all_reduce_sum,
    is_distributed,
)

logger = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full precision)."""
    if amp == "none":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if cpu_supports_bf16():
        return torch.bfloat16
    logger.info("this CPU has no native bf16; training in fp32 (--amp bf16 forces it)")
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def progress_bar(iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr, dynamic_ncols=True)


def to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    if channels_last and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


@dataclass
class StepContext:
    """Everything ``train_one_epoch`` needs besides the model, loss, optimizer and data."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    channels_last: bool = False
    clip_grad_norm: float = 0.0
    monitor: object | None = None  # diagnostics.TrainingMonitor
    num_classes: int = 0
    check_head_init: bool = False
    progress: bool = False
    global_step: int = 0
    on_step_end: Callable[[nn.Module, int], None] | None = None
    # A stand-in input for a batch whose images were all unreadable: under DDP every rank must
    # still take part in the step's gradient all-reduce.
    placeholder_input: torch.Tensor | None = None
    warnings: list[str] = field(default_factory=list)


def record_warnings(ctx: StepContext, messages: Sequence[str]) -> None:
    for message in messages:
        logger.warning("%s", message)
        ctx.warnings.append(message)


def make_criterion(weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> nn.CrossEntropyLoss:
    """Cross-entropy giving per-sample losses (``reduction="none"``): ``train_one_epoch`` backpropagates
    their weighted mean and reports their plain mean."""
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing, reduction="none")


def _loss_and_sum(criterion: nn.Module, output: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to backpropagate, sum of the per-sample losses for the metric).

    With per-sample losses ``l_i`` (class weight ``w_i`` and label smoothing already in them, as
    ``make_criterion`` gives) the gradient comes from ``sum(l_i) / sum(w_i)``, exactly what
    ``CrossEntropyLoss(weight=w)`` with mean reduction optimises; the metric is ``sum(l_i)`` over the
    samples, so ``train_loss`` is the mean per-sample training loss (weights and smoothing included,
    hence not directly comparable with ``val_loss``, which is plain cross-entropy). Over a whole epoch
    it is also the weighted mean, since balanced class weights average to 1 over the training set. A criterion that
    already reduces to the mean (profiling, benchmarks: unweighted) gives ``mean * n``.
    """
    losses = criterion(output, targets).float()
    if losses.ndim == 0:
        return losses, losses.detach() * targets.shape[0]
    weight = getattr(criterion, "weight", None)
    denominator = weight[targets].sum() if weight is not None else losses.new_tensor(float(targets.shape[0]))
    return losses.sum() / denominator, losses.detach().sum()


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for a moment, then every module's own mode back (frozen stages stay in eval mode)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader,
    epoch: int,
    ctx: StepContext,
) -> dict[str, float]:
    """One pass over ``data_loader``; returns sample-averaged ``loss`` and ``acc1`` (all ranks summed).

    ``criterion`` should give per-sample losses (``make_criterion``); see ``_loss_and_sum`` for what
    is optimised and what is reported. The caller sets train/eval mode of the layers (frozen stages
    stay in eval mode).
    """
    device = ctx.device
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, samples
    for batch in progress_bar(data_loader, ctx.progress, f"epoch {epoch}"):
        if batch is None:  # every image of the batch was unreadable
            if not (is_distributed() and ctx.placeholder_input is not None):
                continue  # one process: nothing to learn from it, so no step
            # The other ranks step on the all-reduced gradients: join the all-reduce with a zero loss
            # and take the same step, or this rank's weights, optimizer state and loss scale drift.
            # Eval mode keeps the stand-in input out of the BatchNorm statistics (which DDP broadcasts
            # from rank 0) and works for a batch of one.
            with _eval_mode(model), autocast(device, ctx.amp_dtype):
                output = model(to_device(ctx.placeholder_input, device, ctx.channels_last))
            loss, targets = output.float().sum() * 0.0, None
        else:
            images, targets = batch
            images = to_device(images, device, ctx.channels_last)
            targets = targets.to(device, non_blocking=True)
            with autocast(device, ctx.amp_dtype):
                output = model(images)
                loss, loss_sum = _loss_and_sum(criterion, output, targets)
            if ctx.check_head_init and ctx.monitor is not None:
                record_warnings(ctx, ctx.monitor.check_head_init(output.detach().float(), ctx.num_classes, labels=targets))
                ctx.check_head_init = False

        optimizer.zero_grad(set_to_none=True)
        parameters = [p for p in model.parameters() if p.requires_grad]
        if ctx.scaler is not None:
            ctx.scaler.scale(loss).backward()
            if ctx.clip_grad_norm > 0 or ctx.monitor is not None:
                ctx.scaler.unscale_(optimizer)
        else:
            loss.backward()
        if ctx.monitor is not None:
            record_warnings(ctx, ctx.monitor.after_backward(parameters, ctx.global_step))
        if ctx.clip_grad_norm > 0:
            nn.utils.clip_grad_norm_(parameters, ctx.clip_grad_norm)
        if ctx.scaler is not None:
            ctx.scaler.step(optimizer)
            ctx.scaler.update()
        else:
            optimizer.step()

        if targets is not None:
            totals[0] += loss_sum
            totals[1] += (output.detach().argmax(dim=1) == targets).sum()
            totals[2] += targets.shape[0]
        if ctx.on_step_end is not None:
            ctx.on_step_end(model, ctx.global_step)
        ctx.global_step += 1

    loss_sum, correct, count = all_reduce_sum(totals).tolist()
    if count == 0:
        return {"loss": math.nan, "acc1": math.nan, "count": 0}
    return {"loss": loss_sum / count, "acc1": correct / count, "count": int(count)}


def evaluate(
    model: nn.Module,
    data_loader,
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    progress: bool = False,
    desc: str = "eval",
) -> dict[str, float]:
    """Sample-averaged cross-entropy, top-1 and top-5 accuracy (all ranks summed), in eval mode."""
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top-1, top-5, samples
    with torch.inference_mode():
        for batch in progress_bar(data_loader, progress, desc):
            if batch is None:
                continue
            images, targets = batch
            images = to_device(images, device, channels_last)
            targets = targets.to(device, non_blocking=True)
            with autocast(device, amp_dtype):
                output = model(images)
            output = output.float()
            k = min(5, output.shape[1])
            top = output.topk(k, dim=1).indices
            hits = top == targets.unsqueeze(1)
            totals[0] += F.cross_entropy(output, targets, reduction="sum")
            totals[1] += hits[:, 0].sum()
            totals[2] += hits.any(dim=1).sum()
            totals[3] += targets.shape[0]
    loss_sum, top1, top5, count = all_reduce_sum(totals).tolist()
    if count == 0:
        return {"loss": math.nan, "acc1": math.nan, "acc5": math.nan, "count": 0}
    return {"loss": loss_sum / count, "acc1": top1 / count, "acc5": top5 / count, "count": int(count)}


def configure_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)
