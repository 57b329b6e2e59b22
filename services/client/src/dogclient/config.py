"""Where the API URL and key come from: flags, then environment, then the user's config file.

The config file is JSON, ``{"api_url": ..., "api_key": ...}``, at ``$DOGCLIENT_CONFIG`` or
``$XDG_CONFIG_HOME/dogclient/config.json`` (``~/.config/dogclient/config.json``), readable by its
owner only because it holds the key.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import normalise_api_url
from .errors import ConfigError

CONFIG_ENV = "DOGCLIENT_CONFIG"
API_URL_ENV = "DOGCLIENT_API_URL"
API_KEY_ENV = "DOGCLIENT_API_KEY"


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "dogclient" / "config.json"


def load_config(path: Path) -> dict[str, Any]:
    """The saved settings, ``{}`` when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"config file {path} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} is not a JSON object")
    return document


def save_config(values: Mapping[str, Any], path: Path) -> None:
    """Write atomically with mode 0600: a reader never sees half a file, nobody else sees the key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(dict(values), handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Settings:
    api_url: str
    api_key: str | None
    source: str  # where api_url came from: "flag", "environment" or the config file's path


def resolve_settings(
    api_url: str | None = None,
    api_key: str | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    path: Path | None = None,
) -> Settings:
    """Combine flags (the arguments), environment and config file, in that order of precedence.

    The config file's key is only used with the config file's own URL, so pointing the client at
    another API (``--api-url http://127.0.0.1:3000``) never sends it the saved key.
    """
    source = "flag"
    if not api_url and environ.get(API_URL_ENV):
        api_url, source = environ[API_URL_ENV], "environment"
    if not api_key and environ.get(API_KEY_ENV):
        api_key = environ[API_KEY_ENV]
    path = path or config_path(environ)
    saved = load_config(path)
    if not api_url and saved.get("api_url"):
        api_url, source = saved["api_url"], str(path)
    if not api_url:
        raise ConfigError(f"no API URL: pass --api-url, set {API_URL_ENV} or run `dogclient configure`")
    api_url = normalise_api_url(api_url)
    saved_url = saved.get("api_url")
    if not api_key and saved.get("api_key") and saved_url and normalise_api_url(saved_url) == api_url:
        api_key = saved["api_key"]
    return Settings(api_url=api_url, api_key=api_key or None, source=source)


def terraform_output_json(directory: Path, terraform_bin: str = "terraform") -> dict[str, Any]:
    """``terraform -chdir=DIR output -json``, parsed."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such directory")
    command = [terraform_bin, f"-chdir={directory}", "output", "-no-color", "-json"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except FileNotFoundError:
        raise ConfigError(
            f"{terraform_bin} not found on PATH; run `terraform -chdir={directory} output -json > outputs.json` "
            "where Terraform is installed and pass --terraform-output-file outputs.json"
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"`terraform -chdir={directory} output -json` did not finish within 300s") from None
    if completed.returncode != 0:
        raise ConfigError(f"`terraform -chdir={directory} output -json` failed: {_terraform_error(completed.stderr)}")
    return _parse_output_document(completed.stdout, f"the output of terraform in {directory}")


def read_terraform_output_file(path: Path) -> dict[str, Any]:
    """A saved ``terraform output -json`` document."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _parse_output_document(text, str(path))


def settings_from_terraform(outputs: Mapping[str, Any], origin: str) -> tuple[str, str | None]:
    """``(api_url, api_key)`` from the AWS environment's outputs (``api_key`` is sensitive, may be absent)."""
    if not outputs:
        raise ConfigError(f"{origin} has no outputs; run `terraform apply` there first")
    url = _output_value(outputs, "api_url")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{origin} has no api_url output; is it the AWS environment (terraform/envs/aws)?")
    key = _output_value(outputs, "api_key")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"{origin}: the api_key output is not a string")
    return normalise_api_url(url), key or None


def _output_value(outputs: Mapping[str, Any], name: str) -> Any:
    entry = outputs.get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def _parse_output_document(text: str, origin: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{origin} is not `terraform output -json` JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{origin} is not `terraform output -json` JSON (not an object)")
    return document


def _terraform_error(stderr: str) -> str:
    lines = [line.strip(" │╷╵\t") for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    for index, line in enumerate(lines):
        if line.startswith("Error:"):
            detail = lines[index + 1] if index + 1 < len(lines) and not lines[index + 1].startswith("Error:") else ""
            return f"{line}: {detail}" if detail else line
    return lines[-1] if lines else "no error message"
