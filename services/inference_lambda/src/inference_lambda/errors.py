"""The API's error codes and the one exception type that carries them to the response.

Codes are part of the public contract (README table, openapi.json enum): add codes, never rename them.
"""

from __future__ import annotations

# code -> HTTP status. The README's table and openapi.json are tested against this mapping.
ERROR_CODES: dict[str, int] = {
    "invalid_json": 400,
    "invalid_base64": 400,
    "invalid_image": 400,
    "invalid_request": 400,
    "url_not_allowed": 400,
    "url_fetch_failed": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "batch_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_parameter": 422,
    "internal_error": 500,
    "endpoint_error": 502,
    "endpoint_unavailable": 503,
    "endpoint_timeout": 504,
}


class ApiError(Exception):
    """A failure the client is told about: a stable code, its HTTP status and a message safe to show.

    The message must never contain stack traces, AWS account ids, ARNs or the Lambda context. `extra` adds
    top-level members to the error body beside "error" (GET /health's "endpoint"), under the same rule.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ):
        if code not in ERROR_CODES and status is None:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_CODES[code]
        self.headers = headers or {}
        self.extra = extra or {}

    def __repr__(self) -> str:
        return f"ApiError({self.status} {self.code}: {self.message})"
