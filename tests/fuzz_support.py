"""Hypothesis profiles and the fuzz-run summary, shared by the Lambda and trainer fuzz suites.

`make test` runs the "ci" profile: derandomized (the same examples on every run, so a failure reproduces) and
bounded. `make fuzz` sets HYPOTHESIS_PROFILE=deep for many more, random examples and FUZZ_SUMMARY=path to
record what ran.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("deep", derandomize=False, database=None, print_blob=True, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
# Examples per test in the deep profile, relative to the ci count each test asks for.
DEEP_FACTOR = int(os.environ.get("FUZZ_DEEP_FACTOR", "20"))


def examples(ci_count: int) -> int:
    """max_examples for a test: its bounded ci count, or DEEP_FACTOR times that under `make fuzz`."""
    return ci_count * DEEP_FACTOR if PROFILE == "deep" else ci_count


_counts: dict[str, int] = {}
_lock = threading.Lock()


def count(name: str) -> None:
    """Count one example of fuzz target `name` (for the `make fuzz` summary)."""
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1


def write_counts(suite: str, started: float) -> None:
    """Append this suite's example counts to $FUZZ_SUMMARY (JSON lines), when set."""
    target = os.environ.get("FUZZ_SUMMARY")
    if not target:
        return
    record = {"suite": suite, "profile": PROFILE, "seconds": round(time.time() - started, 1), "examples": _counts}
    with Path(target).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
