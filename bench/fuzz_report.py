#!/usr/bin/env python3
"""`make fuzz`: run the Hypothesis fuzz suites of the Lambda and the trainer with the deep profile and write
what ran to bench/results/fuzz.{json,md}: examples per target, failures, duration, machine facts.

    python bench/fuzz_report.py [--factor N]   # N x the `make test` example counts (default 20)

Each suite runs in its own tox environment (.tox/lambda, .tox/trainer: `make stack-env` builds them). The
deep profile is not derandomized, so every run explores new inputs; a failure prints the falsifying example
and a `@reproduce_failure` blob to replay it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from machine import cpu_model, load_average  # noqa: E402

SUITES = {
    "lambda": (REPO / ".tox/lambda/bin/python", "tests/inference_lambda/test_lambda_fuzz.py"),
    "trainer": (REPO / ".tox/trainer/bin/python", "tests/trainer/test_serving_fuzz.py"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, default=int(os.environ.get("FUZZ_DEEP_FACTOR", "20")),
                        help="examples per target, as a multiple of the make-test counts")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (python, tests) in SUITES.items():
            if not python.exists():
                print(f"fuzz: {python} is missing; run `make stack-env` first", file=sys.stderr)
                return 2
            summary = Path(tmp) / f"{name}.jsonl"
            env = {**os.environ, "HYPOTHESIS_PROFILE": "deep", "FUZZ_DEEP_FACTOR": str(args.factor),
                   "FUZZ_SUMMARY": str(summary)}
            started = time.time()
            print(f"== fuzz {name}: {tests} (deep profile, x{args.factor})", flush=True)
            result = subprocess.run([str(python), "-m", "pytest", tests, "-q", "-p", "no:cacheprovider",
                                     "--tb=short", "-rf"], cwd=REPO, env=env, capture_output=True, text=True)
            sys.stdout.write(result.stdout[-6000:])
            sys.stderr.write(result.stderr[-3000:])
            records = [json.loads(line) for line in summary.read_text().splitlines()] if summary.exists() else []
            examples = {k: v for record in records for k, v in record["examples"].items()}
            failures = [line[len("FAILED "):] for line in result.stdout.splitlines() if line.startswith("FAILED ")]
            runs.append({"suite": name, "tests": tests, "exit_code": result.returncode,
                         "seconds": round(time.time() - started, 1), "examples": examples, "failures": failures})

    facts = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "factor": args.factor,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "fuzz.json").write_text(json.dumps({"machine": facts, "runs": runs}, indent=2) + "\n")
    (args.results / "fuzz.md").write_text(render(facts, runs))
    print(f"wrote {args.results / 'fuzz.md'}")
    return 0 if all(run["exit_code"] == 0 for run in runs) else 1


def render(facts: dict, runs: list[dict]) -> str:
    lines = [
        "# Fuzzing (Hypothesis, deep profile)",
        "",
        f"Written by `bench/fuzz_report.py` (`make fuzz`) on {facts['date']}; {facts['cpus']} CPUs "
        f"({facts['cpu_model']}), load average {facts['load_average']}, Python {facts['python']}. "
        f"Examples: {facts['factor']} x the bounded `make test` counts, random (not derandomized) inputs.",
        "",
        "| suite | target | examples |",
        "| --- | --- | --- |",
    ]
    for run in runs:
        for target, count in sorted(run["examples"].items()):
            lines.append(f"| {run['suite']} | {target} | {count} |")
    lines += ["", "| suite | tests | duration s | failures |", "| --- | --- | --- | --- |"]
    for run in runs:
        failed = "; ".join(run["failures"]) or "none"
        lines.append(f"| {run['suite']} | `{run['tests']}` | {run['seconds']} | {failed} |")
    total = sum(sum(run["examples"].values()) for run in runs)
    lines += ["", f"{total} examples in all."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
