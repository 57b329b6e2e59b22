"""The trainer's log lines on stderr (torch-free: the command line imports it)."""

from __future__ import annotations

import logging
import sys


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
