"""The API's error codes and the one exception type that carries them to the response.

Codes are part of the public contract (contracts/api.json, from which the README table and openapi.json enum
are generated): add codes, never rename them.
"""

from __future__ import annotations

# code -> HTTP status, from contracts/api.json (the "api" layer's codes) via the generated _contract.py.
from ._contract import ERROR_CODES


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
