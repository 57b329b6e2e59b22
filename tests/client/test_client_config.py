"""Configuration: file location and precedence, and `configure --from-terraform` on a recorded document."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from dogclient import ConfigError
from dogclient.cli import cli
from dogclient.config import (
    config_path,
    load_config,
    read_terraform_output_file,
    resolve_settings,
    save_config,
    settings_from_terraform,
    terraform_output_json,
)
from dogclient_fakes import FIXTURES

TERRAFORM_OUTPUT = FIXTURES / "terraform-output.json"
RECORDED_URL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/v1"
RECORDED_KEY = "fixtureApiKeyNotASecret0000000000000000"
needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not on PATH")


def test_config_path_precedence(tmp_path):
    home = Path.home()
    assert config_path({}) == home / ".config" / "dogclient" / "config.json"
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "dogclient" / "config.json"
    explicit = {"XDG_CONFIG_HOME": str(tmp_path), "DOGCLIENT_CONFIG": str(tmp_path / "x.json")}
    assert config_path(explicit) == tmp_path / "x.json"


def test_save_creates_private_file_and_folder_and_round_trips(tmp_path):
    path = tmp_path / "new" / "dogclient" / "config.json"
    save_config({"api_url": "https://a.example.com", "api_key": "k"}, path)
    assert load_config(path) == {"api_url": "https://a.example.com", "api_key": "k"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary left behind


def test_missing_config_is_empty(tmp_path):
    assert load_config(tmp_path / "nope.json") == {}


@pytest.mark.parametrize("text", ["{oops", "[1, 2]"])
def test_bad_config_is_a_config_error(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "config.json"
    save_config({"api_url": "https://saved.example.com/v1", "api_key": "saved-key"}, path)
    return path


def test_flags_beat_environment_beat_file(saved):
    env = {"DOGCLIENT_API_URL": "https://env.example.com", "DOGCLIENT_API_KEY": "env-key"}
    settings = resolve_settings("https://flag.example.com", "flag-key", environ=env, path=saved)
    assert (settings.api_url, settings.api_key, settings.source) == ("https://flag.example.com", "flag-key", "flag")
    settings = resolve_settings(environ=env, path=saved)
    assert (settings.api_url, settings.api_key, settings.source) == (
        "https://env.example.com",
        "env-key",
        "environment",
    )
    settings = resolve_settings(environ={}, path=saved)
    assert (settings.api_url, settings.api_key, settings.source) == (
        "https://saved.example.com/v1",
        "saved-key",
        str(saved),
    )


def test_saved_key_only_with_saved_url(saved):
    assert resolve_settings("https://other.example.com", environ={}, path=saved).api_key is None
    assert resolve_settings(environ={"DOGCLIENT_API_URL": "https://other.example.com"}, path=saved).api_key is None
    assert resolve_settings("https://saved.example.com/v1/", environ={}, path=saved).api_key == "saved-key"
    # A key the user gives explicitly goes wherever the user points it.
    env = {"DOGCLIENT_API_KEY": "env-key"}
    assert resolve_settings("https://other.example.com", environ=env, path=saved).api_key == "env-key"


def test_no_url_anywhere(tmp_path):
    with pytest.raises(ConfigError) as caught:
        resolve_settings(environ={}, path=tmp_path / "none.json")
    assert caught.value.message == "no API URL: pass --api-url, set DOGCLIENT_API_URL or run `dogclient configure`"


def test_recorded_terraform_output_gives_url_and_sensitive_key():
    outputs = read_terraform_output_file(TERRAFORM_OUTPUT)
    assert outputs["api_key"]["sensitive"] is True
    assert set(outputs) == {"api_url", "api_key", "endpoint_name", "bucket_name", "trainer_instance_id"}
    assert settings_from_terraform(outputs, "recorded") == (RECORDED_URL, RECORDED_KEY)


def test_terraform_outputs_without_a_key():
    outputs = {"api_url": {"sensitive": False, "type": "string", "value": "http://127.0.0.1:3000/"}}
    assert settings_from_terraform(outputs, "local") == ("http://127.0.0.1:3000", None)


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "env has no outputs; run `terraform apply` there first"),
        (
            {"endpoint_name": {"sensitive": False, "type": "string", "value": "x"}},
            "env has no api_url output; is it the AWS environment (terraform/envs/aws)?",
        ),
        (
            {"api_url": {"value": "https://a.example.com"}, "api_key": {"value": 42}},
            "env: the api_key output is not a string",
        ),
    ],
)
def test_unusable_terraform_outputs(outputs, message):
    with pytest.raises(ConfigError) as caught:
        settings_from_terraform(outputs, "env")
    assert caught.value.message == message


def write_state_from_recorded_outputs(directory: Path) -> None:
    """A local state file holding the recorded outputs, so real Terraform can print them again."""
    recorded = json.loads(TERRAFORM_OUTPUT.read_text())
    outputs = {
        name: {"value": entry["value"], "type": entry["type"], **({"sensitive": True} if entry["sensitive"] else {})}
        for name, entry in recorded.items()
    }
    state = {
        "version": 4,
        "terraform_version": "1.9.0",
        "serial": 1,
        "lineage": "00000000-0000-0000-0000-000000000000",
        "outputs": outputs,
        "resources": [],
        "check_results": None,
    }
    (directory / "terraform.tfstate").write_text(json.dumps(state))


@needs_terraform
def test_real_terraform_prints_the_recorded_document(tmp_path):
    write_state_from_recorded_outputs(tmp_path)
    assert terraform_output_json(tmp_path) == json.loads(TERRAFORM_OUTPUT.read_text())


@needs_terraform
def test_real_terraform_failure_is_one_line(tmp_path):
    (tmp_path / "terraform.tfstate").write_text("not json")
    with pytest.raises(ConfigError) as caught:
        terraform_output_json(tmp_path)
    assert caught.value.message.startswith(
        f"`terraform -chdir={tmp_path} output -json` failed: Error: Unsupported state file format"
    )
    assert "\n" not in caught.value.message


def test_missing_terraform_binary(tmp_path):
    with pytest.raises(ConfigError) as caught:
        terraform_output_json(tmp_path, terraform_bin="terraform-that-does-not-exist")
    assert caught.value.message.startswith("terraform-that-does-not-exist not found on PATH; run `terraform -chdir=")
    assert "--terraform-output-file" in caught.value.message


def test_missing_terraform_directory(tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        terraform_output_json(tmp_path / "nope")


@pytest.fixture
def run(config_file):
    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_configure_from_recorded_terraform_output_file(run, config_file):
    result = run("configure", "--terraform-output-file", str(TERRAFORM_OUTPUT))
    assert result.exit_code == 0
    assert result.stdout == f"Saved API URL {RECORDED_URL} and an API key to {config_file}\n"
    assert RECORDED_KEY not in result.output
    assert json.loads(config_file.read_text()) == {"api_url": RECORDED_URL, "api_key": RECORDED_KEY}
    assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600


@needs_terraform
def test_configure_from_terraform_directory(run, config_file, tmp_path):
    env_dir = tmp_path / "envs" / "aws"
    env_dir.mkdir(parents=True)
    write_state_from_recorded_outputs(env_dir)
    result = run("configure", "--from-terraform", str(env_dir))
    assert result.exit_code == 0
    assert result.stdout == f"Saved API URL {RECORDED_URL} and an API key to {config_file}\n"
    assert json.loads(config_file.read_text()) == {"api_url": RECORDED_URL, "api_key": RECORDED_KEY}


@needs_terraform
def test_configure_from_terraform_before_apply_exits_2(run, config_file, tmp_path):
    result = run("configure", "--from-terraform", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == f"Error: terraform in {tmp_path} has no outputs; run `terraform apply` there first\n"
    assert not config_file.exists()


def test_configure_flags_override_terraform(run, config_file):
    result = run("configure", "--terraform-output-file", str(TERRAFORM_OUTPUT), "--api-url", "http://127.0.0.1:3000")
    assert result.exit_code == 0
    assert json.loads(config_file.read_text()) == {"api_url": "http://127.0.0.1:3000", "api_key": RECORDED_KEY}


def test_configure_without_terraform_on_path_exits_2(run, config_file, tmp_path):
    result = run("configure", "--from-terraform", str(tmp_path), "--terraform-bin", "no-such-terraform")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: no-such-terraform not found on PATH; run `terraform -chdir=")
    assert not config_file.exists()


def test_configure_both_terraform_sources_is_a_usage_error(run, tmp_path):
    result = run("configure", "--from-terraform", str(tmp_path), "--terraform-output-file", str(TERRAFORM_OUTPUT))
    assert result.exit_code == 2
    assert "give --from-terraform or --terraform-output-file, not both" in result.stderr
