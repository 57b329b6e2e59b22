"""Hyperparameter values as SageMaker and tuning jobs spell them: quoted, float-spelled, any-case booleans."""

from __future__ import annotations

import argparse

import pytest

from dogbreed.value_parsers import parse_bool, parse_float, parse_int, parse_lower, positive, strip_quotes


@pytest.mark.parametrize("raw, expected", [('"64"', "64"), ("'64'", "64"), ('  "\'64\'" ', "64"), ("64", "64"), ('"', '"'), ("", "")])
def test_strip_quotes(raw, expected):
    assert strip_quotes(raw) == expected


@pytest.mark.parametrize("raw, expected", [("64", 64), ('"64"', 64), ("'-3'", -3), ("64.0", 64), ('"1e2"', 100)])
def test_parse_int_accepts_quoted_and_float_spelled_integers(raw, expected):
    assert parse_int(raw) == expected


@pytest.mark.parametrize("raw", ["6.5", "sixty", '""'])
def test_parse_int_refuses_non_integers_with_the_value_in_the_message(raw):
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer"):
        parse_int(raw)


def test_parse_float_and_bool():
    assert parse_float('"0.01"') == pytest.approx(0.01)
    assert parse_float("1e-4") == pytest.approx(1e-4)
    for raw in ("true", '"True"', "1", "yes", "on"):
        assert parse_bool(raw) is True
    for raw in ("false", "'False'", "0", "no", "off"):
        assert parse_bool(raw) is False
    with pytest.raises(argparse.ArgumentTypeError, match="expected true or false"):
        parse_bool("maybe")


def test_positive_refuses_negative_and_by_default_zero_with_the_value_in_the_message():
    assert positive(parse_int)('"3"') == 3
    assert positive(parse_float, allow_zero=True)("0") == 0.0
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a number > 0, got '0'"):
        positive(parse_int)("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a number >= 0, got '-1.5'"):
        positive(parse_float, allow_zero=True)("-1.5")
    assert positive(parse_int).__name__ == "parse_int"  # argparse names the type in its error message


def test_parse_lower_strips_quotes_for_case_insensitive_choices():
    assert parse_lower('"ResNet18"') == "resnet18"
