"""The one-line-per-epoch log format and the SageMaker metric definitions that read it.

The trainer prints exactly one epoch line per epoch (rank 0, stdout) and one test line at the end::

    epoch=3 train_loss=0.8123 train_acc1=0.7512 val_loss=0.6012 val_acc1=0.8123 val_acc5=0.9712 lr=0.000300 epoch_time=12.3s
    test_loss=0.5870 test_acc1=0.8301 test_acc5=0.9750

SageMaker (training jobs and hyperparameter tuning) extracts metrics from the job's log with the
regexes in ``METRIC_DEFINITIONS``; ``dogbreed tune`` and the tests parse the same lines with them.
Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import math
import re

NUMBER = r"([0-9.eE+-]+)"

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": "train:loss", "Regex": f"train_loss={NUMBER}"},
    {"Name": "train:accuracy", "Regex": f"train_acc1={NUMBER}"},
    {"Name": "validation:loss", "Regex": f"val_loss={NUMBER}"},
    {"Name": "validation:accuracy", "Regex": f"val_acc1={NUMBER}"},
    {"Name": "validation:top5", "Regex": f"val_acc5={NUMBER}"},
    {"Name": "test:loss", "Regex": f"test_loss={NUMBER}"},
    {"Name": "test:accuracy", "Regex": f"test_acc1={NUMBER}"},
    {"Name": "test:top5", "Regex": f"test_acc5={NUMBER}"},
]

EPOCH_FIELDS = ("epoch", "train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5", "lr", "epoch_time")
TEST_FIELDS = ("test_loss", "test_acc1", "test_acc5")


def _metric(value: float) -> str:
    return f"{float(value):.4f}"


def _lr(value: float) -> str:
    value = float(value)
    # Fixed 6 decimals reads best; tiny learning rates would print as 0.000000.
    return f"{value:.6f}" if value == 0 or abs(value) >= 1e-4 or not math.isfinite(value) else f"{value:.3e}"


def format_epoch_line(
    *,
    epoch: int,
    train_loss: float,
    train_acc1: float,
    val_loss: float,
    val_acc1: float,
    val_acc5: float,
    lr: float,
    epoch_time: float,
) -> str:
    """The epoch line; ``epoch`` counts from 1, ``epoch_time`` is in seconds."""
    return (
        f"epoch={int(epoch)} train_loss={_metric(train_loss)} train_acc1={_metric(train_acc1)} "
        f"val_loss={_metric(val_loss)} val_acc1={_metric(val_acc1)} val_acc5={_metric(val_acc5)} "
        f"lr={_lr(lr)} epoch_time={float(epoch_time):.1f}s"
    )


def format_test_line(*, test_loss: float, test_acc1: float, test_acc5: float) -> str:
    return f"test_loss={_metric(test_loss)} test_acc1={_metric(test_acc1)} test_acc5={_metric(test_acc5)}"


def parse_metrics(line: str) -> dict[str, float]:
    """The metrics SageMaker would extract from ``line``, keyed by metric name (e.g. ``validation:accuracy``)."""
    found = {}
    for definition in METRIC_DEFINITIONS:
        match = re.search(definition["Regex"], line)
        if match:
            try:
                found[definition["Name"]] = float(match.group(1))
            except ValueError:
                continue
    return found


_EPOCH_LINE = re.compile(r"^epoch=(\d+) ")


def parse_epoch_line(line: str) -> dict[str, float] | None:
    """``{"epoch": 3.0, "train_loss": ..., ..., "epoch_time": 12.3}`` for an epoch line, else None."""
    if not _EPOCH_LINE.match(line.strip()):
        return None
    values = {}
    for token in line.split():
        key, _, raw = token.partition("=")
        if key in EPOCH_FIELDS:
            values[key] = float(raw.rstrip("s")) if key == "epoch_time" else float(raw)
    return values if set(values) == set(EPOCH_FIELDS) else None
