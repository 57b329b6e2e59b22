"""The README's tables and openapi.json say what the code does."""

from __future__ import annotations

import json
import re

import pytest
from inference_lambda.errors import ERROR_CODES
from inference_lambda.settings import ConfigError, Settings

from lambda_test_support import SERVICE_DIR

README = (SERVICE_DIR / "README.md").read_text()
OPENAPI = json.loads((SERVICE_DIR / "src" / "inference_lambda" / "openapi.json").read_text())
SETTINGS_SOURCE = (SERVICE_DIR / "src" / "inference_lambda" / "settings.py").read_text()


def readme_table(first_header: str) -> list[list[str]]:
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_readme_error_table_matches_the_code():
    table = {row[0].strip("`"): int(row[1]) for row in readme_table("code")}

    assert table == ERROR_CODES


def test_openapi_document_is_valid_and_lists_every_error_status():
    from openapi_spec_validator import validate

    validate(OPENAPI)
    documented = {int(status) for status in OPENAPI["paths"]["/predict"]["post"]["responses"] if status != "200"}
    assert {status for code, status in ERROR_CODES.items() if code not in ("not_found",)} <= documented
    description = OPENAPI["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["description"]
    assert all(code in description for code in ERROR_CODES)


def test_readme_configuration_table_lists_every_variable_with_its_real_default():
    table = {row[0].strip("`"): row[1].strip("`") for row in readme_table("variable")}
    read_by_code = set(re.findall(r'reader\.\w+\(\s*"([A-Z_]+)"', SETTINGS_SOURCE))

    assert read_by_code <= set(table)
    defaults = Settings.from_env({"ENDPOINT_NAME": "x"})
    assert float(table["ENDPOINT_TIMEOUT_SECONDS"]) == defaults.endpoint_timeout_seconds
    assert float(table["ENDPOINT_CONNECT_TIMEOUT_SECONDS"]) == defaults.endpoint_connect_timeout_seconds
    assert int(table["ENDPOINT_MAX_ATTEMPTS"]) == defaults.endpoint_max_attempts
    assert float(table["ENDPOINT_STATUS_CACHE_SECONDS"]) == defaults.endpoint_status_cache_seconds
    assert int(table["ENDPOINT_MAX_PAYLOAD_BYTES"]) == defaults.endpoint_max_payload_bytes
    assert int(table["MAX_IMAGE_BYTES"]) == defaults.max_image_bytes
    assert int(table["MAX_BATCH_IMAGES"]) == defaults.max_batch_images
    assert int(table["DEFAULT_TOP_K"]) == defaults.default_top_k
    assert int(table["MAX_TOP_K"]) == defaults.max_top_k
    assert float(table["URL_FETCH_TIMEOUT_SECONDS"]) == defaults.url_fetch_timeout_seconds
    assert int(table["URL_MAX_REDIRECTS"]) == defaults.url_max_redirects
    assert tuple(int(p) for p in table["URL_ALLOWED_PORTS"].split(",")) == defaults.url_allowed_ports
    assert (table["ALLOW_HTTP_URLS"] == "true") == defaults.allow_http_urls
    assert defaults.allowed_origins == ()


def test_readme_front_flags_match_the_parser():
    from inference_lambda.local_front import get_args_parser

    table = {row[0].strip("`"): row[1].strip("`") for row in readme_table("flag")}
    actions = {
        a.option_strings[0]: a.default for a in get_args_parser()._actions if a.option_strings and a.dest != "help"
    }

    assert set(table) == set(actions)
    for flag, default in actions.items():
        shown = table[flag]
        assert shown == (
            "''" if default == "" else str(default if not isinstance(default, float) else f"{default:g}")
        ), flag


# -- settings ------------------------------------------------------------------------------------------


def test_settings_parse_every_variable():
    settings = Settings.from_env(
        {
            "ENDPOINT_NAME": " prod-dogbreed ",
            "ENDPOINT_TIMEOUT_SECONDS": "12.5",
            "ALLOWED_ORIGINS": "https://a.example, https://b.example,",
            "ALLOW_HTTP_URLS": "yes",
            "URL_ALLOWED_PORTS": "443, 8443",
            "MAX_BATCH_IMAGES": "4",
            "ENDPOINT_STATUS_CACHE_SECONDS": "2.5",
        }
    )
    assert settings.endpoint_status_cache_seconds == 2.5
    assert settings.endpoint_name == "prod-dogbreed"
    assert settings.endpoint_timeout_seconds == 12.5
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.allow_http_urls is True
    assert settings.url_allowed_ports == (443, 8443)
    assert settings.max_batch_images == 4


@pytest.mark.parametrize(
    "env,message",
    [
        ({}, "ENDPOINT_NAME is not set; it must name the SageMaker endpoint to call."),
        ({"ENDPOINT_TIMEOUT_SECONDS": "ten"}, "ENDPOINT_TIMEOUT_SECONDS must be a number of seconds, got 'ten'."),
        (
            {"ENDPOINT_TIMEOUT_SECONDS": "-1"},
            "ENDPOINT_TIMEOUT_SECONDS must be a positive number of seconds, got '-1'.",
        ),
        (
            {"ENDPOINT_TIMEOUT_SECONDS": "nan"},
            "ENDPOINT_TIMEOUT_SECONDS must be a positive number of seconds, got 'nan'.",
        ),
        ({"MAX_BATCH_IMAGES": "0"}, "MAX_BATCH_IMAGES must be at least 1, got 0."),
        ({"MAX_IMAGE_BYTES": "5MB"}, "MAX_IMAGE_BYTES must be an integer, got '5MB'."),
        ({"ALLOW_HTTP_URLS": "maybe"}, "ALLOW_HTTP_URLS must be true or false, got 'maybe'."),
        (
            {"URL_ALLOWED_PORTS": "443,https"},
            "URL_ALLOWED_PORTS must be a comma-separated list of TCP ports, got '443,https'.",
        ),
        ({"DEFAULT_TOP_K": "11"}, "DEFAULT_TOP_K (11) is above MAX_TOP_K (10)."),
        ({"ENDPOINT_TIMEOUT_SECONDS": "25"}, "it must stay below API Gateway's 29 s"),
    ],
)
def test_bad_settings_fail_with_the_variable_named(env, message):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ENDPOINT_NAME": "x", **env} if env else {})
    assert message in str(raised.value)
