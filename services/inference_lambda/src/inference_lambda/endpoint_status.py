"""What GET /health reports: the SageMaker endpoint's state, asked of the control plane and cached.

`DescribeEndpoint` answers for real-time and serverless endpoints alike. The answer (a failure included) is
kept for a few seconds, so health checks at any rate cost each execution environment at most one call per
TTL: DescribeEndpoint has a low request-rate quota, shared with the deploy tooling.

The last InvokeEndpoint counts too: a /predict that could not connect to the endpoint makes /health say
"unreachable" for one TTL, or until an invocation gets an answer again, whatever the control plane says.
"""

from __future__ import annotations

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
)

# SageMaker's EndpointStatus values under which the endpoint takes invocations: an update (a deploy, a scaling
# change, AWS maintenance) keeps serving the previous configuration until it switches over.
SERVING_STATUSES = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
# The API's own statuses, for when SageMaker's cannot be had (lower case, unlike SageMaker's).
UNREACHABLE = "unreachable"  # the control plane or the endpoint could not be reached
NOT_FOUND = "not_found"  # SageMaker has no endpoint of that name
UNKNOWN = "unknown"  # the control plane refused (throttled, access denied, a 5xx)
_CONNECTION_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError)


@dataclass(frozen=True)
class EndpointState:
    name: str
    status: str
    # Why the status is one of the API's own: for the logs, never for the client (it may hold an ARN).
    reason: str = ""

    @property
    def serving(self) -> bool:
        return self.status in SERVING_STATUSES


class EndpointStatusCache:
    """DescribeEndpoint(endpoint_name), answered from memory for `ttl_seconds` after each call.

    `client_factory` makes the boto3 "sagemaker" client on first use: loading its service model costs a
    cold start about 0.2 s, which only /health should pay.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        endpoint_name: str,
        *,
        ttl_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.endpoint_name = endpoint_name
        self.ttl_seconds = ttl_seconds
        self._client_factory = client_factory
        self._client: Any = None
        self._clock = clock
        self._state: EndpointState | None = None
        self._expires_at = 0.0
        self._invoke_failed_at: float | None = None

    def current(self) -> EndpointState:
        now = self._clock()
        if self._invoke_failed_at is not None and now - self._invoke_failed_at < self.ttl_seconds:
            return EndpointState(self.endpoint_name, UNREACHABLE, reason="the last InvokeEndpoint could not connect")
        if self._state is None or now >= self._expires_at:
            self._state = self._describe()
            self._expires_at = self._clock() + self.ttl_seconds
        return self._state

    def clear(self) -> None:
        """Forget the cached answer and the last invocation's outcome."""
        self._state = None
        self._invoke_failed_at = None

    def watch_invocations(self, runtime_client: Any) -> None:
        """Follow `runtime_client`'s InvokeEndpoint outcomes through botocore's events."""
        events = runtime_client.meta.events
        events.register("after-call-error.sagemaker-runtime.InvokeEndpoint", self._invoke_failed)
        events.register("after-call.sagemaker-runtime.InvokeEndpoint", self._invoke_answered)

    def _invoke_failed(self, exception: BaseException | None = None, **_: Any) -> None:
        if isinstance(exception, _CONNECTION_ERRORS):
            self._invoke_failed_at = self._clock()

    def _invoke_answered(self, **_: Any) -> None:
        # Any HTTP answer, an error one included, means the endpoint can be reached.
        self._invoke_failed_at = None

    def _describe(self) -> EndpointState:
        try:
            if self._client is None:
                self._client = self._client_factory()
            response = self._client.describe_endpoint(EndpointName=self.endpoint_name)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "") or ""
            # The control plane says ValidationException; ValidationError is the runtime's spelling.
            if code in ("ValidationException", "ValidationError") and "could not find" in message.lower():
                return EndpointState(self.endpoint_name, NOT_FOUND, reason=code)
            return EndpointState(self.endpoint_name, UNKNOWN, reason=code or "ClientError")
        except BotoCoreError as exc:  # connection refused, timeouts, no credentials
            return EndpointState(self.endpoint_name, UNREACHABLE, reason=type(exc).__name__)
        status = response.get("EndpointStatus")
        if not isinstance(status, str) or not status:
            return EndpointState(self.endpoint_name, UNKNOWN, reason="DescribeEndpoint returned no EndpointStatus")
        return EndpointState(self.endpoint_name, status)
