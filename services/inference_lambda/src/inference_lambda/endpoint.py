"""Calling the SageMaker endpoint, and turning every way that can fail into an ApiError.

SageMaker wraps the container's own 4xx/5xx answers into `ModelError` (HTTP 424) with
`OriginalStatusCode` and `OriginalMessage`. A client fault the model found (a truncated JPEG that passed
the magic-byte check) keeps its status and the endpoint's `{"error": {"code", "message"}}`; anything else
the endpoint or SageMaker does wrong becomes 502/503/504 with a generic message, because SageMaker's own
messages carry account ids and log-stream ARNs.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from . import _contract
from .errors import ApiError

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded"}
)
UNAVAILABLE_CODES = frozenset({"ModelNotReadyException", "ServiceUnavailable", "ServiceUnavailableException"})
# Client faults the endpoint may report that the API client can fix, so they keep their status.
PASSTHROUGH_STATUSES = frozenset({400, 413, 415, 422})
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ENDPOINT_MISSING = re.compile(r"could not find|not found|not in ?service|inservice", re.IGNORECASE)
_MAX_PASSED_MESSAGE = 500
_DEFAULT_CODE_BY_STATUS = {
    400: "invalid_image",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
}


@dataclass(frozen=True)
class EndpointResult:
    body: dict[str, Any]
    attempts: int
    seconds: float


class EndpointCaller:
    """invoke_endpoint with JSON in and out, retrying with backoff on throttling only.

    Model errors and timeouts are not retried: the same request would fail the same way, and a second
    full timeout would not fit inside API Gateway's 29 s.
    """

    def __init__(
        self,
        client: Any,
        endpoint_name: str,
        *,
        max_attempts: int = 3,
        backoff_base_seconds: float = 0.1,
        backoff_max_seconds: float = 1.0,
        read_timeout_seconds: float = 10.0,
        max_payload_bytes: int = _contract.ENDPOINT_MAX_BODY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ):
        self.client = client
        self.endpoint_name = endpoint_name
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.read_timeout_seconds = read_timeout_seconds
        self.max_payload_bytes = max_payload_bytes
        self._sleep = sleep
        self._jitter = jitter

    def invoke(
        self, payload: dict[str, Any], *, remaining_seconds: Callable[[], float] | None = None
    ) -> EndpointResult:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._check_size(body, "once base64-encoded for the model endpoint")
        return self._send(body, "application/json", None, remaining_seconds)

    def invoke_image(
        self, image: bytes, *, top_k: int, remaining_seconds: Callable[[], float] | None = None
    ) -> EndpointResult:
        """One image as its raw bytes (no base64: a third smaller, so a 4 MiB image fits a serverless
        endpoint's 4 MB limit), top_k in SageMaker's CustomAttributes header."""
        self._check_size(image, "as sent to the model endpoint")
        return self._send(image, "application/x-image", f"top_k={top_k}", remaining_seconds)

    def _check_size(self, body: bytes, how: str) -> None:
        if len(body) > self.max_payload_bytes:
            limit = self.max_payload_bytes
            raise ApiError(
                "payload_too_large",
                f"The images come to {len(body)} bytes {how}, which accepts "
                f"at most {limit} bytes ({limit / 1048576:.1f} MiB) per request; send fewer or smaller images.",
            )

    def _send(
        self,
        body: bytes,
        content_type: str,
        custom_attributes: str | None,
        remaining_seconds: Callable[[], float] | None,
    ) -> EndpointResult:
        extra = {} if custom_attributes is None else {"CustomAttributes": custom_attributes}
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.invoke_endpoint(
                    EndpointName=self.endpoint_name,
                    Body=body,
                    ContentType=content_type,
                    Accept="application/json",
                    **extra,
                )
                raw = response["Body"].read()
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in THROTTLING_CODES and attempt < self.max_attempts:
                    delay = (
                        min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1)) * self._jitter()
                    )
                    # Only retry when a whole further attempt still fits in the Lambda's remaining time.
                    if remaining_seconds is None or remaining_seconds() - delay > self.read_timeout_seconds:
                        self._sleep(delay)
                        continue
                raise map_client_error(exc) from None
            except ReadTimeoutError:
                raise ApiError(
                    "endpoint_timeout", f"The model endpoint did not answer within {self.read_timeout_seconds:g} s."
                ) from None
            except (ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError):
                raise ApiError("endpoint_unavailable", "The model endpoint cannot be reached.") from None
            except BotoCoreError:
                raise ApiError("endpoint_error", "The model endpoint could not be called.") from None
        seconds = time.perf_counter() - started
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError("endpoint_error", "The model endpoint returned a response that is not JSON.") from None
        if not isinstance(parsed, dict):
            raise ApiError("endpoint_error", "The model endpoint returned an unexpected response.")
        return EndpointResult(body=parsed, attempts=attempt, seconds=seconds)


def map_client_error(exc: ClientError) -> ApiError:
    """The one mapping from a sagemaker-runtime ClientError to what the API client is told."""
    response = exc.response
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "") or ""
    if code == "ModelError":
        return _map_model_error(response.get("OriginalStatusCode"), response.get("OriginalMessage"))
    if code == "ValidationError" and _ENDPOINT_MISSING.search(message):
        return ApiError("endpoint_unavailable", "The model endpoint does not exist or is not in service.")
    if code in UNAVAILABLE_CODES:
        return ApiError(
            "endpoint_unavailable", "The model endpoint is not ready; retry later.", headers={"Retry-After": "5"}
        )
    if code in THROTTLING_CODES:
        return ApiError(
            "endpoint_unavailable", "The model endpoint is busy (throttled); retry later.", headers={"Retry-After": "1"}
        )
    return ApiError("endpoint_error", "The model endpoint failed to process the request.")


def _map_model_error(status: object, original_message: object) -> ApiError:
    if status == 503:
        # The container says it is not ready (model still loading) or overloaded.
        return ApiError(
            "endpoint_unavailable", "The model endpoint is not ready; retry later.", headers={"Retry-After": "5"}
        )
    if status == 504:
        return ApiError("endpoint_timeout", "The model endpoint timed out while processing the request.")
    if not isinstance(status, int) or status not in PASSTHROUGH_STATUSES:
        return ApiError("endpoint_error", "The model endpoint failed to process the request.")
    endpoint_error = _parse_contract_error(original_message)
    if endpoint_error is not None:
        code, message = endpoint_error
        return ApiError(code, message, status=status)
    # The endpoint said the request was at fault but not in the contract's JSON: keep the status, and do not
    # echo its text (a container outside our control may put a traceback there).
    return ApiError(_DEFAULT_CODE_BY_STATUS[status], "The model endpoint rejected the image.", status=status)


def _parse_contract_error(original_message: object) -> tuple[str, str] | None:
    """The `{"error": {"code", "message"}}` at the start of the container's answer, if that is what it is.

    SageMaker's inference toolkit writes the error's message, a newline and a traceback: only the leading
    JSON document is read, the rest is never shown.
    """
    if isinstance(original_message, bytes):
        original_message = original_message.decode("utf-8", "replace")
    if not isinstance(original_message, str):
        return None
    try:
        parsed, _ = json.JSONDecoder().raw_decode(original_message.lstrip())
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not _ERROR_CODE.match(code) or not isinstance(message, str):
        return None
    return code, message[:_MAX_PASSED_MESSAGE]


def wrap_unmodeled_errors(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    """botocore `after-call` hook: give a container's own error answer the shape SageMaker gives it.

    SageMaker turns a container's 4xx/5xx into ModelError(OriginalStatusCode, OriginalMessage). A server that
    speaks the runtime path itself (the local `dogbreed serve`) answers with the container's error directly,
    which botocore parses into an error whose code is just the status number and whose body is lost. Wrapping it
    here keeps one mapping for both; responses with a real SageMaker error type are left alone.
    """
    status = getattr(http_response, "status_code", 0)
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if status < 400 or not isinstance(error, dict) or error.get("Code") != str(status):
        return
    content = getattr(http_response, "content", b"") or b""
    error["Code"] = "ModelError"
    parsed["OriginalStatusCode"] = status
    parsed["OriginalMessage"] = content[:65536].decode("utf-8", "replace")
