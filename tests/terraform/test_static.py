"""terraform fmt, validate and the per-module `terraform test` suites (mock_provider, no AWS calls)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from tf_support import ENVIRONMENTS, MODULES, TERRAFORM_DIR, Terraform, hcl_block_names, hcl_blocks, module_docs

# terraform test's closing line, e.g. "Success! 8 passed, 0 failed."
TEST_SUMMARY = re.compile(r"(Success|Failure)! (\d+) passed, (\d+) failed")


def test_fmt_check_is_clean(terraform: Terraform) -> None:
    result = terraform.run(
        "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR), cwd=TERRAFORM_DIR, check=False
    )
    assert result.returncode == 0, f"terraform fmt would change these files:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_validates(terraform: Terraform, terraform_copy: Path, environment: str) -> None:
    workdir = terraform_copy / "envs" / environment
    terraform.init(workdir)
    result = terraform.run("validate", "-no-color", cwd=workdir)
    assert "Success! The configuration is valid." in result.stdout


# Each `terraform test` mostly waits on the provider plugin starting for every run block, so two at a time
# finish in well under the time of running them one after another, even on two cores.
TEST_WORKERS = 2


@dataclass(frozen=True)
class TerraformTestRun:
    returncode: int
    output: str


@pytest.fixture(scope="module")
def terraform_test_runs(terraform: Terraform, terraform_copy: Path) -> dict[str, TerraformTestRun]:
    """`terraform test` in every module and in envs/aws, keyed by the folder relative to terraform/."""
    folders = [f"modules/{module}" for module in MODULES] + ["envs/aws"]

    def run(folder: str) -> TerraformTestRun:
        workdir = terraform_copy / folder
        init = terraform.run("init", "-input=false", "-backend=false", "-no-color", cwd=workdir, check=False)
        if init.returncode != 0:
            return TerraformTestRun(init.returncode, init.stdout + init.stderr)
        result = terraform.run("test", "-no-color", cwd=workdir, check=False)
        return TerraformTestRun(result.returncode, result.stdout + result.stderr)

    with ThreadPoolExecutor(max_workers=TEST_WORKERS) as pool:
        return dict(zip(folders, pool.map(run, folders), strict=False))


def _assert_terraform_test_passed(run: TerraformTestRun, folder: str) -> None:
    assert run.returncode == 0, f"terraform test failed in terraform/{folder}:\n{run.output[-8000:]}"
    summary = TEST_SUMMARY.search(run.output)
    assert summary is not None, f"no terraform test summary in:\n{run.output[-4000:]}"
    passed, failed = int(summary.group(2)), int(summary.group(3))
    assert failed == 0 and passed > 0, summary.group(0)


@pytest.mark.parametrize("module", MODULES)
def test_module_terraform_tests_pass(terraform_test_runs: dict[str, TerraformTestRun], module: str) -> None:
    assert list((TERRAFORM_DIR / "modules" / module / "tests").glob("*.tftest.hcl")), (
        f"module {module} has no terraform test file"
    )
    _assert_terraform_test_passed(terraform_test_runs[f"modules/{module}"], f"modules/{module}")


def test_aws_environment_terraform_tests_pass(terraform_test_runs: dict[str, TerraformTestRun]) -> None:
    _assert_terraform_test_passed(terraform_test_runs["envs/aws"], "envs/aws")


def test_module_readme_tables_are_up_to_date() -> None:
    assert module_docs.main(["--check"]) == 0, "run: python terraform/scripts/module_docs.py"


def test_every_module_has_readme_listing_its_inputs_and_outputs() -> None:
    for module in MODULES:
        module_dir = TERRAFORM_DIR / "modules" / module
        readme = (module_dir / "README.md").read_text()
        for name in hcl_block_names(module_dir / "variables.tf", "variable"):
            assert f"`{name}`" in readme, f"modules/{module}/README.md does not list input {name}"
        for name in hcl_block_names(module_dir / "outputs.tf", "output"):
            assert f"`{name}`" in readme, f"modules/{module}/README.md does not list output {name}"


def test_every_variable_and_output_has_description_and_type() -> None:
    for tf_file in sorted(TERRAFORM_DIR.glob("**/*.tf")):
        for kind, name, body in hcl_blocks(tf_file):
            if kind == "variable":
                assert re.search(r"^\s*description\s*=", body, re.MULTILINE), (
                    f"{tf_file}: variable {name} has no description"
                )
                assert re.search(r"^\s*type\s*=", body, re.MULTILINE), f"{tf_file}: variable {name} has no type"
            elif kind == "output":
                assert re.search(r"^\s*description\s*=", body, re.MULTILINE), (
                    f"{tf_file}: output {name} has no description"
                )


def test_dependents_wait_for_their_role_policies(terraform: Terraform, terraform_copy: Path) -> None:
    """The model, the function and the host are created only once their roles' policies exist, not in
    parallel with them (real errors would then surface only after the provider's IAM retries)."""
    workdir = terraform_copy / "envs" / "aws"
    terraform.init(workdir)
    graph = terraform.run("graph", cwd=workdir).stdout
    for dependent, policy in (
        ("module.endpoint.aws_sagemaker_model.this", "module.iam.aws_iam_role_policy.sagemaker"),
        ("module.api.aws_lambda_function.this", "module.iam.aws_iam_role_policy.lambda"),
        ("module.trainer_host.aws_instance.this", "module.iam.aws_iam_role_policy.trainer"),
        ("module.trainer_host.aws_instance.this", "module.iam.aws_iam_role_policy_attachment.trainer_ssm"),
    ):
        edge = f'"module.stack.{dependent}" -> "module.stack.{policy}"'
        assert edge in graph, f"{dependent} does not wait for {policy}"
