"""Build the Lambda deployment zip reproducibly: same sources and pins, byte-identical zip.

    python services/inference_lambda/build_zip.py            # -> dist/inference_lambda.zip

What goes in: the `inference_lambda` package (with openapi.json) and the pinned runtime dependencies of
requirements-lambda.txt, installed for the Lambda platform (manylinux x86_64, the CPython of the function's runtime) with --no-deps so
nothing unpinned slips in. boto3/botocore are not pinned there: the Lambda runtime provides them.
Powertools is bundled rather than taken from the public layer: the zip then pins it with the code, needs no
region-specific layer ARN, and runs the same under moto and locally.

Reproducible: entries sorted, timestamps fixed (SOURCE_DATE_EPOCH or 1980-01-01), permissions normalised,
no __pycache__/.pyc, fixed compression level.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

SERVICE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SERVICE_DIR.parents[1]
PACKAGE_DIR = SERVICE_DIR / "src" / "inference_lambda"
DEFAULT_REQUIREMENTS = SERVICE_DIR / "requirements-lambda.txt"
DEFAULT_OUTPUT = REPO_ROOT / "dist" / "inference_lambda.zip"
# The function's runtime, which Terraform's api module reads too: the wheels must be built for it.
RUNTIME_FILE = REPO_ROOT / "terraform" / "modules" / "api" / "runtime.json"


def runtime_python_version(runtime_file: Path = RUNTIME_FILE) -> str:
    """"python3.12" in runtime.json -> "3.12"."""
    import json

    runtime = json.loads(runtime_file.read_text())["runtime"]
    if not runtime.startswith("python3."):
        raise SystemExit(f"build_zip: {runtime_file} names {runtime!r}, not a python3.x Lambda runtime")
    return runtime.removeprefix("python")


DEFAULT_PYTHON_VERSION = runtime_python_version()
# Only what the Lambda runs: the local HTTP front needs starlette/uvicorn, which the zip does not carry.
EXCLUDED_PACKAGE_FILES = {"local_front.py", "local_control_plane.py"}
EXCLUDED_DIRS = {"__pycache__", "bin"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_date_time() -> tuple[int, int, int, int, int, int]:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return ZIP_EPOCH
    stamp = time.gmtime(max(int(epoch), 315532800))  # zip cannot store dates before 1980
    return stamp[:6]


def collect(root: Path, prefix: str = "", excluded_files: Iterable[str] = ()) -> dict[str, Path]:
    """arcname -> file for every file under `root`, minus caches and excluded names."""
    excluded = set(excluded_files)
    files: dict[str, Path] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in EXCLUDED_DIRS for part in relative.parts) or path.is_dir():
            continue
        if path.name.endswith(EXCLUDED_SUFFIXES) or path.name in excluded:
            continue
        files[prefix + relative.as_posix()] = path
    return files


def write_zip(files: dict[str, Path], output: Path, date_time: tuple[int, ...] = ZIP_EPOCH) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(output.suffix + ".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for arcname in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr means the same everywhere
            executable = os.access(files[arcname], os.X_OK) and arcname.endswith(".so")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            archive.writestr(info, files[arcname].read_bytes(), compresslevel=9)
    temporary.replace(output)


def install_dependencies(requirements: Path, target: Path, python_version: str, platform: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--platform",
        platform,
        "--target",
        str(target),
        "--requirement",
        str(requirements),
    ]
    subprocess.run(command, check=True, stdout=sys.stderr)


def build(
    output: Path = DEFAULT_OUTPUT,
    *,
    requirements: Path | None = DEFAULT_REQUIREMENTS,
    python_version: str = DEFAULT_PYTHON_VERSION,
    platform: str = "manylinux2014_x86_64",
) -> Path:
    files = collect(PACKAGE_DIR, "inference_lambda/", EXCLUDED_PACKAGE_FILES)
    with tempfile.TemporaryDirectory(prefix="inference-lambda-zip-") as scratch:
        if requirements is not None:
            deps = Path(scratch) / "deps"
            install_dependencies(requirements, deps, python_version, platform)
            dependency_files = collect(deps)
            clash = sorted(name for name in dependency_files if name.startswith("inference_lambda/"))
            if clash:
                raise SystemExit(f"build_zip: a dependency installs into inference_lambda/: {clash[:3]}")
            files.update(dependency_files)
        write_zip(files, output, zip_date_time())
    return output


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Build the inference Lambda's deployment zip reproducibly.")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"zip to write (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        default=DEFAULT_REQUIREMENTS,
        help=f"pinned runtime dependencies (default: {DEFAULT_REQUIREMENTS.relative_to(REPO_ROOT)})",
    )
    parser.add_argument("--no-deps", action="store_true", help="package the handler code only (default: off)")
    parser.add_argument(
        "--python-version",
        default=DEFAULT_PYTHON_VERSION,
        help=f"Lambda runtime's Python (default: {DEFAULT_PYTHON_VERSION}, from {RUNTIME_FILE.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--platform", default="manylinux2014_x86_64", help="wheel platform (default: manylinux2014_x86_64)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        output = build(
            args.output,
            requirements=None if args.no_deps else args.requirements,
            python_version=args.python_version,
            platform=args.platform,
        )
    except subprocess.CalledProcessError as exc:
        print(f"build_zip: pip failed with exit status {exc.returncode}", file=sys.stderr)
        return 1
    data = output.read_bytes()
    with zipfile.ZipFile(output) as archive:
        entries = len(archive.infolist())
        unpacked = sum(info.file_size for info in archive.infolist())
    print(
        f"{output}\t{len(data)} bytes\t{entries} files\t{unpacked} bytes unpacked\t"
        f"sha256 {hashlib.sha256(data).hexdigest()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
