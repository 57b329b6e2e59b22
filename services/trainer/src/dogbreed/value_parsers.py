"""Text -> typed values for command-line options: argparse ``type=`` functions.

SageMaker passes hyperparameters as command-line strings, sometimes JSON-quoted (``--batch-size '"64"'``)
and tuning jobs send integers as ``"64.0"``; these accept every such spelling and say in one line
what was wrong otherwise. Nothing here knows about SageMaker: any command line can use them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def strip_quotes(value: str) -> str:
    """``'"64"'`` -> ``'64'``; removes any number of matching outer quote pairs and surrounding blanks."""
    value = str(value).strip()
    while len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def parse_str(value: str) -> str:
    return strip_quotes(value)


def parse_lower(value: str) -> str:
    """For choices: case-insensitive, quotes stripped (argparse then checks ``choices``)."""
    return strip_quotes(value).lower()


def parse_int(value: str) -> int:
    text = strip_quotes(value)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)  # tuning jobs sometimes send integers as "64.0"
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if not number.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}")
    return int(number)


def parse_float(value: str) -> float:
    text = strip_quotes(value)
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    text = strip_quotes(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def positive(parse: Callable[[str], float | int], *, allow_zero: bool = False) -> Callable[[str], float | int]:
    """Wrap ``parse_int``/``parse_float`` so that negative (and, unless allowed, zero) values are refused."""

    def parse_positive(value: str):
        number = parse(value)
        if number < 0 or (number == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise argparse.ArgumentTypeError(f"expected a number {bound}, got {value!r}")
        return number

    parse_positive.__name__ = parse.__name__
    return parse_positive
