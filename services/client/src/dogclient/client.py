"""The Python API: ``DogClient(api_url, api_key).predict("dog.jpg")``. The CLI is a thin layer over it."""

from __future__ import annotations

import base64
import email.utils
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from ._version import __version__
from .errors import ApiError, ApiTimeout, ApiUnreachable, AuthError, ConfigError
from ._contract import API_KEY_HEADER, DEFAULT_TOP_K, MAX_BATCH_BASE64_BYTES, MAX_BATCH_IMAGES, MAX_TOP_K
from .images import DEFAULT_MAX_SIDE, MAX_IMAGE_BYTES, prepare_image
from .models import Prediction

# Worth another try: the request never arrived, or the service says it is busy or briefly down.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

# Used when an error body carries no code of its own (API Gateway's {"message": "Forbidden"}, a proxy's HTML).
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def normalise_api_url(api_url: str) -> str:
    """``https://host/stage/`` -> ``https://host/stage``; anything but an http(s) URL is a ``ConfigError``."""
    url = (api_url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"API URL {api_url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _connection_reason(exc: BaseException) -> str:
    """The root cause of a requests connection error in a few words ("connection refused")."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror[0].lower() + current.strerror[1:]
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__, *current.args])
    if "NameResolution" in repr(exc):
        return "host name not found"
    return type(exc).__name__


def _error_from_response(response: requests.Response) -> ApiError:
    status = response.status_code
    code = _STATUS_CODES.get(status, f"http_{status}")
    message = (response.reason or "").strip() or "error"
    request_id = response.headers.get("x-amzn-RequestId") or response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text:
            message = " ".join(text.split())[:200]
    else:
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                code = str(error.get("code") or code)
                message = str(error.get("message") or message)
            elif isinstance(body.get("message"), str):  # API Gateway's own errors
                message = body["message"]
            request_id = body.get("request_id") or request_id
    error_class = AuthError if status in (401, 403) else ApiError
    return error_class(status, code, message, request_id)


class DogClient:
    """Client of the dog-breed API.

    ``retries`` is how many times a request is repeated after a connection error or a 429/502/503/504,
    waiting ``backoff_base * 2**n`` seconds with jitter, or exactly what ``Retry-After`` asks. A
    ``Retry-After`` longer than ``max_wait`` is not waited for: the error is raised instead. Other
    errors are raised at once. The client is safe to share between threads.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_side: int | None = DEFAULT_MAX_SIDE,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        backoff_base: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.api_url = normalise_api_url(api_url)
        self.api_key = api_key or None
        self.timeout = timeout
        self.retries = retries
        self.max_side = max_side
        self.max_image_bytes = max_image_bytes
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self._sleep = sleep
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"DogClient({self.api_url!r}, api_key={'***' if self.api_key else None})"

    def __enter__(self) -> DogClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    def predict(self, image: str | os.PathLike[str] | bytes | bytearray | memoryview, top_k: int = DEFAULT_TOP_K) -> Prediction:
        """Classify a local image (a path or its bytes). Raises ``ImageError`` before any request if it
        cannot be sent."""
        top_k = _check_top_k(top_k)
        prepared = prepare_image(image, max_side=self.max_side, max_bytes=self.max_image_bytes)
        payload = {"image": base64.b64encode(prepared.data).decode("ascii"), "top_k": top_k}
        return self._predict(payload)

    def predict_batch(
        self, images: Sequence[str | os.PathLike[str] | bytes | bytearray | memoryview], top_k: int = DEFAULT_TOP_K
    ) -> list[Prediction]:
        """Classify several local images in one request; one ``Prediction`` per image, in order.

        The API's batch limits (contracts/api.json) are checked here, before anything is sent: a ``ValueError``
        for no images, more than ``MAX_BATCH_IMAGES``, or more base64 than one request carries.
        """
        top_k = _check_top_k(top_k)
        images = list(images)
        if not 1 <= len(images) <= MAX_BATCH_IMAGES:
            raise ValueError(f"a batch is 1 to {MAX_BATCH_IMAGES} images (the API's limit), not {len(images)}")
        encoded = [
            base64.b64encode(prepare_image(image, max_side=self.max_side, max_bytes=self.max_image_bytes).data).decode("ascii")
            for image in images
        ]
        size = sum(len(text) for text in encoded)
        if size > MAX_BATCH_BASE64_BYTES:  # the request would not fit Lambda's and SageMaker's 6 MB
            raise ValueError(
                f"the batch is {size} bytes as base64, over the {MAX_BATCH_BASE64_BYTES} one request carries; "
                "send fewer or smaller images"
            )
        response = self._request("POST", "/predict", {"images": encoded, "top_k": top_k})
        document = _json_body(response)
        results = document.get("results") if isinstance(document, dict) else None
        if not isinstance(results, list) or len(results) != len(images) or not all(isinstance(r, dict) for r in results):
            raise ApiError(response.status_code, "invalid_response", "the API's answer is not one result per image")
        shared = {"model": document.get("model"), "request_id": document.get("request_id")}
        return [Prediction.from_response({**result, **shared}, response.status_code) for result in results]

    def predict_url(self, url: str, top_k: int = DEFAULT_TOP_K) -> Prediction:
        """Classify an image the API downloads itself from ``url``."""
        return self._predict({"url": url, "top_k": _check_top_k(top_k)})

    def health(self) -> dict[str, Any]:
        """``GET /health``'s JSON body."""
        response = self._request("GET", "/health")
        return _json_body(response)

    def _predict(self, payload: dict[str, Any]) -> Prediction:
        response = self._request("POST", "/predict", payload)
        return Prediction.from_response(_json_body(response), response.status_code)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"dogclient/{__version__}"
            if self.api_key:
                session.headers[API_KEY_HEADER] = self.api_key
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _backoff(self, attempt: int) -> float:
        # "Equal jitter": at least half the exponential delay, so retries from many threads spread out.
        delay = min(self.max_wait, self.backoff_base * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> requests.Response:
        url = self.api_url + path
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                response = self._session().request(method, url, json=payload, timeout=self.timeout)
            except requests.exceptions.ConnectionError as exc:  # includes ConnectTimeout
                error: Exception = ApiUnreachable(self.api_url, _connection_reason(exc), attempt + 1)
                wait = self._backoff(attempt)
            except requests.exceptions.Timeout:
                raise ApiTimeout(url, self.timeout) from None
            except requests.exceptions.RequestException as exc:
                raise ApiUnreachable(self.api_url, f"{type(exc).__name__}: {exc}", attempt + 1) from None
            else:
                if response.status_code < 400:
                    return response
                error = _error_from_response(response)
                if response.status_code not in RETRY_STATUSES:
                    raise error
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is None:
                    wait = self._backoff(attempt)
                elif retry_after > self.max_wait:
                    raise error  # asked to come back later than we are willing to wait
                else:
                    wait = retry_after
            if attempt + 1 == attempts:
                raise error
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def _check_top_k(top_k: int) -> int:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, not {top_k!r}")
    if top_k > MAX_TOP_K:  # the API's limit (contracts/api.json): refused here, not after an upload
        raise ValueError(f"top_k must be at most {MAX_TOP_K} (the API's limit), not {top_k!r}")
    return top_k


def _json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ApiError(response.status_code, "invalid_response", "the API's answer is not JSON") from None
