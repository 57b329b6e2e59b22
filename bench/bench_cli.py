"""How long the `dogbreed` command takes to answer a person before any real work starts.

    python bench/bench_cli.py [--repeats 5]

Writes bench/results/cli.json and bench/results/cli.md. Each figure is the median wall time of a fresh
`dogbreed` process (interpreter start included), run from the trainer env this interpreter belongs to.
Neither `dogbreed --help` nor a subcommand's own help or a mistyped flag should import torch (target:
under 1 s each); one row per subcommand of `dogbreed.cli.SUBCOMMANDS` for each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dogbreed.cli import SUBCOMMANDS
from machine import cpu_flags, cpu_model, load_average

RESULTS = Path(__file__).resolve().parent / "results"
COMMANDS = {
    "dogbreed --help": ["--help"],
    "dogbreed --version": ["--version"],
    **{f"dogbreed {name} {flag}": [name, flag] for name in SUBCOMMANDS for flag in ("--help", "--no-such-flag")},
}


def median_seconds(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command, median reported (default: 5)")
    args = parser.parse_args()
    dogbreed = str(Path(sys.executable).parent / "dogbreed")
    subprocess.run([dogbreed, "--help"], capture_output=True, check=True)  # warm the file cache
    results = {name: median_seconds([dogbreed, *argv], args.repeats) for name, argv in COMMANDS.items()}
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "load_average": load_average(),
        "repeats": args.repeats,
        "median_seconds": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# dogbreed command start-up",
        "",
        f"{report['when']} on {report['cpu']} (flags: {' '.join(report['cpu_flags']) or 'n/a'}), "
        f"load average {report['load_average']}; median of {args.repeats} fresh processes.",
        "",
        "| command | median wall time | target |",
        "| --- | --- | --- |",
    ]
    for name, seconds in results.items():
        target = "< 1 s (met)" if seconds < 1 else "< 1 s (missed)"
        lines.append(f"| `{name}` | {seconds:.2f} s | {target if name != 'dogbreed --version' else 'none'} |")
    (RESULTS / "cli.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
