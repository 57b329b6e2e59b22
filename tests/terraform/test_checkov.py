"""checkov on terraform/: no failed check that terraform/.checkov.yaml does not skip with a justification.

checkov pins old versions of packages the rest of the project needs (packaging<24, so no pytest 9), so it
lives in its own virtualenv. The test looks for it in $CHECKOV_BIN, then on PATH, then in .venv-checkov/
or .tox/checkov/ at the repository root, and skips with the install command when it is in none of them
(fails instead with TERRAFORM_CHECKS_REQUIRED=1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tf_support import REPO_ROOT, TERRAFORM_DIR, tool_missing

CONFIG = TERRAFORM_DIR / ".checkov.yaml"
# "  - CKV_AWS_116 # one-line justification"
SKIP_LINE = re.compile(r"^\s*-\s*(CKV2?_[A-Z]+_\d+)\s*(?:#\s*(.*))?$")
INSTALL_HINT = "python -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30"


def _checkov_binary() -> str | None:
    candidates = [
        os.environ.get("CHECKOV_BIN"),
        shutil.which("checkov"),
        str(REPO_ROOT / ".venv-checkov" / "bin" / "checkov"),
        str(REPO_ROOT / ".tox" / "checkov" / "bin" / "checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def skipped_checks() -> dict[str, str]:
    """Check id -> justification, from the skip-check list of terraform/.checkov.yaml."""
    skips: dict[str, str] = {}
    in_skip_list = False
    for line in CONFIG.read_text().splitlines():
        if re.match(r"^skip-check:\s*$", line):
            in_skip_list = True
            continue
        if in_skip_list and re.match(r"^\S", line):
            in_skip_list = False
        if in_skip_list and (match := SKIP_LINE.match(line)):
            skips[match.group(1)] = (match.group(2) or "").strip()
    return skips


def test_every_skip_has_a_one_line_justification() -> None:
    skips = skipped_checks()
    assert skips, "terraform/.checkov.yaml lists no skipped checks; parse error?"
    unjustified = sorted(check for check, reason in skips.items() if len(reason.split()) < 5)
    assert unjustified == [], f"skipped checks without a justification: {unjustified}"


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    binary = _checkov_binary()
    if binary is None:
        tool_missing(
            f"checkov not found (CHECKOV_BIN, PATH, .venv-checkov, .tox/checkov); install it with: {INSTALL_HINT}"
        )
    # Scan a copy without .checkov.yaml (checkov reads it from the scanned folder by itself), so the
    # test sees every failure and can tell which skips are still needed.
    scanned = tmp_path_factory.mktemp("checkov") / "terraform"
    shutil.copytree(TERRAFORM_DIR, scanned, ignore=shutil.ignore_patterns(".checkov.yaml", ".terraform", "__pycache__"))
    result = subprocess.run(
        [
            binary,
            "--directory",
            str(scanned),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ],
        cwd=scanned,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON report (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    reports = report if isinstance(report, list) else [report]
    terraform_reports = [item for item in reports if item.get("check_type") == "terraform"]
    assert terraform_reports, f"checkov produced no terraform report: {[item.get('check_type') for item in reports]}"
    return terraform_reports[0]


def test_checkov_parses_every_file(checkov_results: dict) -> None:
    summary = checkov_results["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100, summary


def test_no_failed_check_outside_the_skip_list(checkov_results: dict) -> None:
    skips = skipped_checks()
    unexpected = sorted(
        f"{check['check_id']} {check['check_name']} -- {check['resource']} ({check['file_path']})"
        for check in checkov_results["results"]["failed_checks"]
        if check["check_id"] not in skips
    )
    assert unexpected == [], (
        "checkov failures (fix them, or skip with a justification in terraform/.checkov.yaml):\n"
        + "\n".join(unexpected)
    )


def test_every_skip_is_still_needed(checkov_results: dict) -> None:
    failing = {check["check_id"] for check in checkov_results["results"]["failed_checks"]}
    stale = sorted(set(skipped_checks()) - failing)
    assert stale == [], f"these checks pass now; remove them from terraform/.checkov.yaml: {stale}"
