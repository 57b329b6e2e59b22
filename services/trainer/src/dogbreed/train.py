"""``dogbreed train``: transfer learning from a folder of labelled dog photos to ``model.tar.gz``.

Laid out like torchvision's references/classification/train.py, with the reusable parts in
``dogbreed.training`` (as timm and torchvision keep them apart from the entry point): the flags
(``training.arguments``), the loop (``training.engine``: ``train_one_epoch``, ``evaluate``), the data
loaders, checkpoints, the feature cache, the distributed helpers, errors and logging. This module is
the run: :func:`main` (``main(args)`` as in torchvision), then the artifact and the report;
:func:`cli_main` is the entry point of ``dogbreed train``, ``python -m dogbreed.train`` and the
SageMaker entry script. It runs on a laptop, an EC2 host (``torchrun`` for several GPUs or hosts)
and SageMaker script mode, which passes hyperparameters as (possibly quoted) strings and describes
the job in ``SM_*`` variables.

Only rank 0 prints metric lines, writes checkpoints, the artifact and the report. Bad input
(a data folder in neither layout, an unknown backbone, weights that cannot be had...) ends with a
one-line error and exit code 2 before anything is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler, TensorDataset

from . import __version__
from .data import (
    DataError,
    DatasetSplits,
    ImageDataset,
    write_split_record,
)
from .metric_lines import format_epoch_line, format_test_line
from .models import (
    NORMALISATION,
    UnknownBackboneError,
    WeightsError,
    apply_trainable,
    backbone_stages,
    create_model,
    head_of,
    set_train_mode,
    trainable_depth,
    weights_fingerprint,
)
from .presets import make_presets
from .sagemaker_env import (
    DistributedEnv,
    LaunchError,
    SageMakerEnv,
    check_launch,
    record_failure,
)
from .serving.architectures import build_model

# The torchvision-reference names of the flags (get_args_parser, parse_args) stay importable from here.
from .training.arguments import get_args_parser, parse_args, resolve_args  # noqa: F401
from .training.checkpoints import (
    BEST_MODEL_NAME,
    atomic_save,
    atomic_write_text,
    check_checkpoint_fits,
    json_safe,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    seed_epoch,
    with_digest,
)
from .training.distributed import ShardSampler, broadcast_object, init_distributed, resolve_device, wrap_ddp
from .training.engine import (
    StepContext,
    configure_threads,
    evaluate,
    make_criterion,
    record_warnings,
    resolve_amp,
    train_one_epoch,
)
from .training.errors import ConfigError, DamagedCheckpointError, StorageError, Terminated, sigterm_as_interrupt, sigterm_deferred
from .training.feature_cache import FeatureCache, compute_features
from .training.loaders import default_workers, load_data, make_loader
from .training.logs import configure_logging
from .training.optim import build_optimizer, build_scheduler, class_weights

logger = logging.getLogger(__name__)


USER_ERRORS = (ConfigError, DataError, WeightsError, UnknownBackboneError, LaunchError)


# --- naming ---------------------------------------------------------------------------------------


def _dataset_name(args: argparse.Namespace) -> str:
    source = args.data or args.train_dir or "data"
    source = source.rstrip("/")
    parts = re.split(r"[/\\]", source)
    name = parts[-1] if args.data else (parts[-2] if len(parts) > 1 else parts[-1])
    if name.lower() in ("training", "train", "data", ""):
        name = "custom"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "custom"


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
    configure_threads(args.threads)

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
                    check_checkpoint_fits(checkpoint, args, data)
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
        seed_epoch(args.seed, epoch, rank)
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
            head_wrapped = wrap_ddp(head, device)
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
                wrapped = wrap_ddp(model, device)
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
            record_warnings(ctx, monitor.after_epoch(epoch + 1, train_metrics["loss"], val_metrics["loss"]))

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
            with sigterm_deferred():
                atomic_save(with_digest({
                    "model": model.state_dict(),
                    "best_model": None if best["epoch"] == epoch + 1 else best_state,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "epoch": epoch + 1,
                    "args": json_safe(vars(args)),
                    "best": {**best, "val_loss": None if math.isinf(best["val_loss"]) else best["val_loss"]},
                    "bad_epochs": bad_epochs,
                    "stopped_early": stopped_early,
                    "history": history,
                    "warnings": warnings + ctx.warnings,
                    "class_folders": data.class_folders,
                    "classes": data.classes,
                    "rng": rng_state(),
                    "dogbreed_version": __version__,
                }), checkpoint_dir / f"checkpoint-epoch{epoch + 1:03d}.pth")
                if improved:
                    atomic_save(best_state, checkpoint_dir / BEST_MODEL_NAME)
                for _, old_path in list_checkpoints(checkpoint_dir)[: -args.keep_checkpoints]:
                    old_path.unlink(missing_ok=True)
            atomic_write_text(output_dir / "history.json", json.dumps(json_safe(history), indent=1) + "\n")
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
        atomic_write_text(output_dir / "metrics.json", json.dumps(json_safe(metrics), indent=1) + "\n")
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
        metrics=json_safe(metrics),
        training_args=json_safe(vars(args)),
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
