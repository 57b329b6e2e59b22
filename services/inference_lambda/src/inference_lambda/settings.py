"""Configuration from environment variables, read once per execution environment.

Every variable has a documented default (services/inference_lambda/README.md). A bad value fails the
Lambda's init phase with a message naming the variable, instead of failing requests one by one later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from . import _contract

# API Gateway REST APIs stop waiting for an integration after 29 s; everything the handler waits for
# must fit inside that, with room left for the Lambda itself.
API_GATEWAY_TIMEOUT_SECONDS = 29.0
# Real-time SageMaker endpoints refuse request bodies over 6 MB (contracts/api.json, bytes.endpoint_max_body).
SAGEMAKER_MAX_PAYLOAD_BYTES = _contract.ENDPOINT_MAX_BODY_BYTES


class ConfigError(ValueError):
    """An environment variable has a value the handler cannot run with."""


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    endpoint_timeout_seconds: float = 10.0
    endpoint_connect_timeout_seconds: float = 2.0
    endpoint_max_attempts: int = 3
    endpoint_max_payload_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES
    # How long GET /health reuses a DescribeEndpoint answer (per execution environment).
    endpoint_status_cache_seconds: float = 10.0
    # 4 MiB base64-encodes to 5.6 MB: it must fit both Lambda's 6 MB request payload (a raw upload arrives
    # base64-encoded in the event) and SageMaker's 6 MB invoke limit (the image goes to the endpoint as base64 JSON).
    # The defaults of the shared limits come from contracts/api.json (the generated _contract.py).
    max_image_bytes: int = _contract.MAX_IMAGE_BYTES
    max_batch_images: int = _contract.MAX_BATCH_IMAGES
    default_top_k: int = _contract.DEFAULT_TOP_K
    max_top_k: int = _contract.MAX_TOP_K
    allowed_origins: tuple[str, ...] = ()
    # "json": images go to the endpoint as base64 JSON; "raw": a single image as its bytes (a serverless
    # endpoint takes at most 4 MB, which a 4 MiB image only fits without base64). Batches stay JSON.
    endpoint_payload: str = "json"
    allow_http_urls: bool = False
    url_fetch_timeout_seconds: float = 3.0
    url_max_redirects: int = 3
    url_allowed_ports: tuple[int, ...] = (443, 80)
    # Base paths of custom-domain mappings (`/dogs`) that HTTP API events keep in rawPath.
    api_base_paths: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        settings = cls(
            endpoint_name=reader.text("ENDPOINT_NAME", required=True),
            endpoint_timeout_seconds=reader.number("ENDPOINT_TIMEOUT_SECONDS", cls.endpoint_timeout_seconds),
            endpoint_connect_timeout_seconds=reader.number(
                "ENDPOINT_CONNECT_TIMEOUT_SECONDS", cls.endpoint_connect_timeout_seconds
            ),
            endpoint_max_attempts=reader.integer("ENDPOINT_MAX_ATTEMPTS", cls.endpoint_max_attempts, minimum=1),
            endpoint_max_payload_bytes=reader.integer(
                "ENDPOINT_MAX_PAYLOAD_BYTES", cls.endpoint_max_payload_bytes, minimum=1
            ),
            endpoint_status_cache_seconds=reader.number(
                "ENDPOINT_STATUS_CACHE_SECONDS", cls.endpoint_status_cache_seconds
            ),
            max_image_bytes=reader.integer("MAX_IMAGE_BYTES", cls.max_image_bytes, minimum=1),
            max_batch_images=reader.integer("MAX_BATCH_IMAGES", cls.max_batch_images, minimum=1),
            default_top_k=reader.integer("DEFAULT_TOP_K", cls.default_top_k, minimum=1),
            max_top_k=reader.integer("MAX_TOP_K", cls.max_top_k, minimum=1),
            allowed_origins=reader.text_list("ALLOWED_ORIGINS"),
            endpoint_payload=reader.choice("ENDPOINT_PAYLOAD", cls.endpoint_payload, ("json", "raw")),
            api_base_paths=tuple("/" + p.strip("/") for p in reader.text_list("API_BASE_PATHS") if p.strip("/")),
            allow_http_urls=reader.boolean("ALLOW_HTTP_URLS", cls.allow_http_urls),
            url_fetch_timeout_seconds=reader.number("URL_FETCH_TIMEOUT_SECONDS", cls.url_fetch_timeout_seconds),
            url_max_redirects=reader.integer("URL_MAX_REDIRECTS", cls.url_max_redirects, minimum=0),
            url_allowed_ports=reader.port_list("URL_ALLOWED_PORTS", cls.url_allowed_ports),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.default_top_k > self.max_top_k:
            raise ConfigError(f"DEFAULT_TOP_K ({self.default_top_k}) is above MAX_TOP_K ({self.max_top_k}).")
        if self.max_top_k > _contract.ENDPOINT_MAX_TOP_K:
            raise ConfigError(
                f"MAX_TOP_K ({self.max_top_k}) is above the endpoint's largest top_k ({_contract.ENDPOINT_MAX_TOP_K}); "
                "every request asking for more would fail at the endpoint."
            )
        waits = self.url_fetch_timeout_seconds + self.endpoint_connect_timeout_seconds + self.endpoint_timeout_seconds
        if waits >= API_GATEWAY_TIMEOUT_SECONDS:
            raise ConfigError(
                "URL_FETCH_TIMEOUT_SECONDS + ENDPOINT_CONNECT_TIMEOUT_SECONDS + ENDPOINT_TIMEOUT_SECONDS "
                f"is {waits:g} s; it must stay below API Gateway's {API_GATEWAY_TIMEOUT_SECONDS:g} s "
                "(and below the Lambda timeout)."
            )


class _EnvReader:
    def __init__(self, env: Mapping[str, str]):
        self._env = env

    def _raw(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._raw(name)
        if value is None:
            if required:
                raise ConfigError(f"{name} is not set; it must name the SageMaker endpoint to call.")
            return default or ""
        return value

    def text_list(self, name: str) -> tuple[str, ...]:
        value = self._raw(name)
        if value is None:
            return ()
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).strip().lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def number(self, name: str, default: float) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {value!r}.") from None
        if not (math.isfinite(number) and number > 0):
            raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}.")
        return number

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {value!r}.") from None
        if number < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {number}.")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}.")

    def port_list(self, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
        value = self._raw(name)
        if value is None:
            return default
        ports = []
        for item in value.split(","):
            item = item.strip()
            if not item.isdigit() or not 0 < int(item) < 65536:
                raise ConfigError(f"{name} must be a comma-separated list of TCP ports, got {value!r}.")
            ports.append(int(item))
        return tuple(ports)
