"""Errors of ``dogbreed train`` and its SIGTERM handling (torch-free: the command line imports it)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class ConfigError(ValueError):
    """Arguments that cannot work together (one line, for the user)."""


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
def sigterm_deferred() -> Iterator[None]:
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
