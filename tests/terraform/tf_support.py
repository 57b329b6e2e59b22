"""Shared helpers of the Terraform checks (imported by conftest.py and the test modules)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
SCRIPTS_DIR = TERRAFORM_DIR / "scripts"

# terraform/scripts holds stand-alone scripts, not a package: import them by path.
if str(SCRIPTS_DIR) not in sys.path:
    sys.path.insert(0, str(SCRIPTS_DIR))

module_docs = importlib.import_module("module_docs")
provider_mirror = importlib.import_module("provider_mirror")

# Set to 1/true (e.g. from CI=true) to turn "tool missing" skips into failures, so a missing tool cannot
# hide a check.
REQUIRED_ENV = "TERRAFORM_CHECKS_REQUIRED"


def tool_missing(reason: str) -> None:
    """Skip the test because a tool is missing, or fail it when TERRAFORM_CHECKS_REQUIRED=1."""
    if os.environ.get(REQUIRED_ENV, "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} ({REQUIRED_ENV}=1)", pytrace=False)
    pytest.skip(reason)


MODULES = sorted(path.name for path in (TERRAFORM_DIR / "modules").iterdir() if (path / "main.tf").is_file())
ENVIRONMENTS = ["aws", "local"]


@dataclass(frozen=True)
class Terraform:
    """Runs terraform with a CLI config that installs the provider from the local mirror only."""

    binary: str
    env: Mapping[str, str]

    def run(self, *args: str, cwd: Path, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args],
            cwd=cwd,
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"terraform {' '.join(args)} failed in {cwd} (exit {result.returncode}):\n"
                f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}",
                pytrace=False,
            )
        return result

    def init(self, cwd: Path) -> None:
        self.run("init", "-input=false", "-backend=false", "-no-color", cwd=cwd)


# Top-level blocks of a `terraform fmt`-formatted file: `kind "name" {` ... `}` at column 0.
_BLOCK = re.compile(
    r'^(variable|output|resource|data|module)\s+"([^"]+)"(?:\s+"([^"]+)")?\s*\{\s*$(.*?)^\}', re.MULTILINE | re.DOTALL
)


def hcl_blocks(path: Path) -> Iterator[tuple[str, str, str]]:
    """(kind, name, body) of each top-level variable/output/resource/data/module block."""
    for match in _BLOCK.finditer(path.read_text()):
        kind, first, second, body = match.groups()
        yield kind, (f"{first}.{second}" if second else first), body


def hcl_block_names(path: Path, kind: str) -> list[str]:
    return [name for block_kind, name, _ in hcl_blocks(path) if block_kind == kind]
