"""Fixtures for the Lambda handler tests.

No test here talks to anything but 127.0.0.1: an autouse guard fails any other connection or DNS lookup.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_fake_endpoint import FakeControlPlane, FakeControlPlaneServer
from lambda_test_support import DATA, load_event

TEST_ENV = {
    "ENDPOINT_NAME": "test-dogbreed",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "dogbreed-api",
    "POWERTOOLS_METRICS_NAMESPACE": "DogBreedTest",
}
# Variables that would change the handler's behaviour if inherited from the developer's shell.
CLEARED_ENV = [
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "ENDPOINT_STATUS_CACHE_SECONDS",
    "ALLOWED_ORIGINS",
    "ALLOW_HTTP_URLS",
    "MAX_IMAGE_BYTES",
    "MAX_BATCH_IMAGES",
    "DEFAULT_TOP_K",
    "MAX_TOP_K",
    "ENDPOINT_TIMEOUT_SECONDS",
    "ENDPOINT_CONNECT_TIMEOUT_SECONDS",
    "ENDPOINT_MAX_ATTEMPTS",
    "ENDPOINT_MAX_PAYLOAD_BYTES",
    "URL_FETCH_TIMEOUT_SECONDS",
    "URL_MAX_REDIRECTS",
    "URL_ALLOWED_PORTS",
    "POWERTOOLS_LOGGER_LOG_EVENT",
    "POWERTOOLS_METRICS_DISABLED",
]
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_CONTROL_PLANES: list[FakeControlPlane] = []  # the session's, once started


@pytest.fixture(scope="session")
def control_plane_server() -> Iterator[FakeControlPlaneServer]:
    """The SageMaker control plane every handler in this session asks (GET /health): InService by default."""
    with FakeControlPlaneServer(FakeControlPlane()) as server:
        _CONTROL_PLANES.append(server.control_plane)
        yield server


@pytest.fixture(scope="session")
def lambda_env(control_plane_server) -> Iterator[dict[str, str]]:
    saved = dict(os.environ)
    for name in CLEARED_ENV:
        os.environ.pop(name, None)
    env = {**TEST_ENV, "AWS_ENDPOINT_URL_SAGEMAKER": control_plane_server.url}
    os.environ.update(env)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def control_plane(control_plane_server) -> FakeControlPlane:
    """The session's fake control plane, for a test to set endpoint statuses on (reset after each test)."""
    return control_plane_server.control_plane


@pytest.fixture(autouse=True)
def fresh_endpoint_status() -> Iterator[None]:
    """Each test starts with no cached DescribeEndpoint answer and no remembered invocation failure."""

    def forget() -> None:
        app = sys.modules.get("inference_lambda.app")
        if app is not None:
            app.endpoint_status.clear()
        for control_plane in _CONTROL_PLANES:
            control_plane.reset()

    forget()
    yield
    forget()


@pytest.fixture(scope="session")
def app_module(lambda_env):
    """inference_lambda.app, imported with the test environment."""
    if "inference_lambda.app" in sys.modules:
        return sys.modules["inference_lambda.app"]
    return importlib.import_module("inference_lambda.app")


@pytest.fixture
def reload_app(app_module):
    """Re-import the handler module under extra environment variables (its config is module-level), then restore it."""
    patch = pytest.MonkeyPatch()

    def reload(**env: str):
        for name, value in env.items():
            patch.setenv(name, value)
        return importlib.reload(app_module)

    yield reload
    patch.undo()
    importlib.reload(app_module)


@pytest.fixture(autouse=True)
def only_loopback_network(monkeypatch) -> list[Any]:
    """Fail any connection or name lookup that is not 127.0.0.1: the tests must never reach out."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            if address[0] not in _LOOPBACK:
                raise AssertionError(f"test tried to connect to {address!r}; only 127.0.0.1 is allowed")
        return real_connect(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            raise AssertionError(f"test tried to resolve {name!r}; inject a resolver instead")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return attempts


@pytest.fixture(scope="session")
def tiny_images() -> dict[str, bytes]:
    return {name: (DATA / f"tiny.{name}").read_bytes() for name in ("jpg", "png", "webp")}


@pytest.fixture
def event():
    """A fixture event by file name, deep-copied so a test may edit it."""

    def get(name: str, **changes: Any) -> dict[str, Any]:
        loaded = copy.deepcopy(load_event(name))
        loaded.update(changes)
        return loaded

    return get


@pytest.fixture
def lambda_context():
    from inference_lambda.local_front import LocalLambdaContext

    def make(timeout_seconds: float = 20.0, request_id: str = "lambda-request-id"):
        return LocalLambdaContext(aws_request_id=request_id, timeout_seconds=timeout_seconds)

    return make


@pytest.fixture
def invoke(app_module, lambda_context):
    """Call the real handler; return (status, headers, parsed JSON body, or the text of any other body)."""

    def call(event: dict[str, Any], *, timeout_seconds: float = 20.0):
        result = sys.modules["inference_lambda.app"].handler(event, lambda_context(timeout_seconds))
        headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = values[-1] if len(values) == 1 else ", ".join(values)
        body = result.get("body")
        content_type = {name.lower(): value for name, value in headers.items()}.get("content-type", "")
        parsed = (json.loads(body) if "json" in content_type else body) if body else None
        return result["statusCode"], headers, parsed

    return call


@pytest.fixture
def stub(app_module):
    """botocore Stubber on the handler's sagemaker-runtime client; asserts every queued answer was used."""
    from botocore.stub import Stubber

    client = sys.modules["inference_lambda.app"].sagemaker_runtime
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def lambda_logs(app_module):
    """The JSON log lines the handler's Powertools logger writes during the test (what CloudWatch would get)."""
    import io

    buffer = io.StringIO()
    handler = sys.modules["inference_lambda.app"].logger.registered_handler
    previous = handler.setStream(buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield lines
    handler.setStream(previous)
