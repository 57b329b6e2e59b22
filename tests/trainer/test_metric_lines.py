"""The epoch/test log lines and the SageMaker metric regexes that read them."""

from __future__ import annotations

import re

import pytest

from dogbreed.metric_lines import (
    METRIC_DEFINITIONS,
    format_epoch_line,
    format_test_line,
    parse_epoch_line,
    parse_metrics,
)

EXAMPLE = dict(epoch=3, train_loss=0.8123, train_acc1=0.7512, val_loss=0.6012, val_acc1=0.8123, val_acc5=0.9712,
               lr=0.0003, epoch_time=12.34)


def test_epoch_line_has_the_documented_format():
    assert format_epoch_line(**EXAMPLE) == (
        "epoch=3 train_loss=0.8123 train_acc1=0.7512 val_loss=0.6012 val_acc1=0.8123 val_acc5=0.9712 "
        "lr=0.000300 epoch_time=12.3s"
    )


def test_test_line_has_the_documented_format():
    assert format_test_line(test_loss=0.587, test_acc1=0.83012, test_acc5=0.975) == (
        "test_loss=0.5870 test_acc1=0.8301 test_acc5=0.9750"
    )


def test_definitions_name_the_metrics_sagemaker_tuning_uses():
    names = [d["Name"] for d in METRIC_DEFINITIONS]
    assert names[:5] == ["train:loss", "train:accuracy", "validation:loss", "validation:accuracy", "validation:top5"]
    assert {"test:loss", "test:accuracy", "test:top5"} <= set(names)
    for definition in METRIC_DEFINITIONS:
        assert re.compile(definition["Regex"]).groups == 1  # SageMaker takes the first group


def test_every_regex_reads_its_own_value_from_an_epoch_line():
    line = format_epoch_line(**EXAMPLE)
    assert parse_metrics(line) == {
        "train:loss": 0.8123,
        "train:accuracy": 0.7512,
        "validation:loss": 0.6012,
        "validation:accuracy": 0.8123,
        "validation:top5": 0.9712,
    }


def test_test_regexes_read_the_test_line_and_not_the_epoch_line():
    line = format_test_line(test_loss=1.25, test_acc1=0.5, test_acc5=0.75)
    assert parse_metrics(line) == {"test:loss": 1.25, "test:accuracy": 0.5, "test:top5": 0.75}
    assert not any(name.startswith("test:") for name in parse_metrics(format_epoch_line(**EXAMPLE)))


def test_regexes_read_values_in_scientific_notation():
    assert parse_metrics("epoch=1 train_loss=1e-05 val_loss=2.5E+01")["train:loss"] == pytest.approx(1e-5)
    assert parse_metrics("epoch=1 train_loss=1e-05 val_loss=2.5E+01")["validation:loss"] == pytest.approx(25.0)


@pytest.mark.parametrize("lr, text", [(0.001, "lr=0.001000"), (0.0, "lr=0.000000"), (3e-7, "lr=3.000e-07")])
def test_learning_rate_never_prints_as_zero_when_it_is_not(lr, text):
    assert text in format_epoch_line(**{**EXAMPLE, "lr": lr})


def test_parse_epoch_line_round_trips_and_ignores_other_lines():
    values = parse_epoch_line(format_epoch_line(**EXAMPLE))
    assert values == pytest.approx({**EXAMPLE, "lr": 0.0003, "epoch_time": 12.3})
    assert parse_epoch_line("test_loss=0.5 test_acc1=0.5 test_acc5=0.5") is None
    assert parse_epoch_line("epoch=1 train_loss=0.5") is None  # incomplete
