"""Fixtures for the Terraform checks: the terraform binary, the provider mirror, a scratch copy of terraform/.

Terraform writes .terraform/ and .terraform.lock.hcl next to the configuration it initialises, so every
check runs in a copy of terraform/ under pytest's temporary directory and the source tree stays clean.
Checks that need terraform or the hashicorp/aws provider mirror skip with the reason when either is missing
(or fail, with TERRAFORM_CHECKS_REQUIRED=1).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tf_support import TERRAFORM_DIR, Terraform, provider_mirror, tool_missing


@pytest.fixture(scope="session")
def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        tool_missing("terraform is not on PATH; install Terraform >= 1.9 to run the Terraform checks")
    return binary


@pytest.fixture(scope="session")
def terraform(terraform_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    mirror = provider_mirror.find_mirror()
    if mirror is None:
        tool_missing(
            "no filesystem mirror of the hashicorp/aws provider (>= 5.100) found; "
            "set TF_PROVIDER_MIRROR to one (see terraform/scripts/provider_mirror.py)"
        )
    config = provider_mirror.write_cli_config(tmp_path_factory.mktemp("terraform-cli"), mirror)
    env = {
        key: value
        for key, value in os.environ.items()
        # Real credentials or a profile must never reach a run: the environments bring their own settings.
        if not key.startswith(("AWS_", "TF_"))
    }
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
    )
    return Terraform(binary=terraform_binary, env=env)


@pytest.fixture(scope="session")
def terraform_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of terraform/ without any .terraform folders or state a developer left in the source tree."""
    destination = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        destination,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "__pycache__"),
    )
    return destination


@pytest.fixture(scope="session")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A placeholder deployment zip: moto stores the function without running it."""
    import zipfile

    path = tmp_path_factory.mktemp("lambda") / "inference_lambda.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inference_lambda/__init__.py", "")
        archive.writestr(
            "inference_lambda/app.py",
            "def handler(event, context):\n    return {'statusCode': 503, 'body': '{}'}\n",
        )
    return path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "terraform_apply: applies terraform/envs/local against a moto server and destroys it (about 2 minutes)",
    )
