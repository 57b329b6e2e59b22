"""Exceptions the client raises. Each carries a stable ``code`` the CLI's JSON output reuses."""

from __future__ import annotations


class DogClientError(Exception):
    """Base class of every error the client raises on purpose."""

    code = "client_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(DogClientError):
    """The API URL or key is missing or malformed, or a config source cannot be read."""

    code = "config_error"


class ImageError(DogClientError):
    """A local image cannot be sent: missing, unreadable, not an image, or too large.

    Raised before any network call.
    """

    def __init__(self, message: str, code: str = "invalid_image"):
        super().__init__(message)
        self.code = code


class ApiError(DogClientError):
    """The API answered with an error status.

    ``code`` and ``message`` are the API's own (``{"error": {"code", "message"}}``) when the body
    has them, else derived from the status.
    """

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code}: {self.message}"


class AuthError(ApiError):
    """The API refused the credentials (401/403): the key is missing, wrong or revoked."""


class ApiUnreachable(DogClientError):
    """No HTTP response at all after every retry (connection refused, DNS failure, reset)."""

    code = "api_unreachable"

    def __init__(self, url: str, reason: str, attempts: int):
        super().__init__(f"API unreachable at {url}: {reason} ({attempts} attempt{'s' if attempts != 1 else ''})")
        self.url = url
        self.reason = reason
        self.attempts = attempts


class ApiTimeout(DogClientError):
    """The API accepted the connection but sent no response within the timeout.

    Not retried: a slow model would only get slower under repeated requests.
    """

    code = "timeout"

    def __init__(self, url: str, timeout: float):
        super().__init__(f"no response from {url} within {timeout:g}s")
        self.url = url
        self.timeout = timeout
