"""dogapi-local: request -> API Gateway REST proxy event -> handler -> HTTP, over real HTTP on 127.0.0.1.

The endpoint side is the INTERIM fake in lambda_fake_endpoint.py. Hook for a real model server: set
INFERENCE_LAMBDA_TEST_ENDPOINT_URL (and INFERENCE_LAMBDA_TEST_ENDPOINT_NAME, default local-dogbreed) to a running
`dogbreed serve` and test_cli_front_with_a_real_photo runs against it instead. tests/e2e owns the full stack test.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from inference_lambda.local_control_plane import LocalControlPlane
from inference_lambda.local_front import (
    InProcessInvoker,
    build_proxy_event,
    configure_environment,
    create_app,
    is_binary_media_type,
    proxy_result_to_http,
)

from lambda_fake_endpoint import MODEL, FakeEndpoint, FakeEndpointServer, fake_predictions
from lambda_test_support import REPO_ROOT, load_event

OPENAPI = json.loads((REPO_ROOT / "services/inference_lambda/src/inference_lambda/openapi.json").read_text())


def check_schema(name: str, instance: object) -> None:
    from openapi_schema_validator import OAS30Validator

    OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}).validate(instance)


def dog_photos_dir() -> Path:
    return Path(os.environ.get("DOG_PHOTOS_DIR") or REPO_ROOT / ".." / "shared" / "data" / "dog-photos")


# -- the event --------------------------------------------------------------------------------------------


def test_binary_body_is_base64_encoded_like_api_gateway(tiny_images):
    built = build_proxy_event(
        method="POST",
        path="/predict",
        query_items=[("top_k", "3"), ("tag", "a"), ("tag", "b c")],
        header_items=[("content-type", "image/jpeg"), ("x-trace", "1"), ("x-trace", "2"), ("host", "127.0.0.1:3000")],
        body=tiny_images["jpg"],
        source_ip="127.0.0.1",
        request_id="req-1",
        now=datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
    )

    assert built["isBase64Encoded"] is True
    assert base64.b64decode(built["body"]) == tiny_images["jpg"]
    assert built["headers"] == {"Content-Type": "image/jpeg", "X-Trace": "2", "Host": "127.0.0.1:3000"}
    assert built["multiValueHeaders"]["X-Trace"] == ["1", "2"]
    assert built["queryStringParameters"] == {"top_k": "3", "tag": "b c"}
    assert built["multiValueQueryStringParameters"] == {"top_k": ["3"], "tag": ["a", "b c"]}
    context = built["requestContext"]
    assert context["requestId"] == "req-1" and context["stage"] == "local" and context["path"] == "/local/predict"
    assert context["requestTime"] == "21/Nov/2026:12:00:00 +0000" and context["requestTimeEpoch"] == 1795262400000
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert built["resource"] == "/predict" and built["pathParameters"] is None


def test_event_has_exactly_the_shape_of_the_aws_fixtures():
    built = build_proxy_event(
        method="GET", path="/health", query_items=[], header_items=[], body=b"", source_ip="127.0.0.1"
    )
    reference = load_event("predict_raw_jpeg.json")

    assert set(built) == set(reference)
    assert set(built["requestContext"]) == set(reference["requestContext"])
    assert set(built["requestContext"]["identity"]) == set(reference["requestContext"]["identity"])
    assert built["body"] is None and built["isBase64Encoded"] is False
    assert built["headers"] is None and built["queryStringParameters"] is None


def test_text_bodies_stay_text_and_unknown_paths_use_the_proxy_resource():
    built = build_proxy_event(
        method="POST",
        path="/admin/x",
        query_items=[],
        header_items=[("Content-Type", "application/json")],
        body=b'{"a": "\xc3\xa9"}',
        source_ip="127.0.0.1",
    )

    assert built["isBase64Encoded"] is False
    assert built["body"] == '{"a": "\u00e9"}'
    assert built["resource"] == "/{proxy+}" and built["pathParameters"] == {"proxy": "admin/x"}


@pytest.mark.parametrize(
    "content_type,binary",
    [
        ("image/jpeg", True),
        ("IMAGE/PNG; q=1", True),
        ("application/octet-stream", True),
        ("application/json", False),
        ("text/plain", False),
        (None, False),
        ("", False),
    ],
)
def test_binary_media_type_matching(content_type, binary):
    assert is_binary_media_type(content_type, ("image/*", "application/octet-stream")) is binary


def test_proxy_result_with_multi_value_headers_and_base64_body():
    http = proxy_result_to_http(
        {
            "statusCode": 201,
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "headers": {"X-One": "1"},
            "body": base64.b64encode(b"\x00\x01").decode(),
            "isBase64Encoded": True,
        },
        "rid",
    )

    assert http.status == 201
    assert http.headers == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-One", "1")]
    assert http.body == b"\x00\x01"


@pytest.mark.parametrize(
    "result", [None, {"body": "x"}, {"statusCode": "200"}, {"statusCode": 200, "body": "%%%", "isBase64Encoded": True}]
)
def test_a_malformed_function_result_is_502(result):
    http = proxy_result_to_http(result, "rid")

    assert http.status == 502
    assert json.loads(http.body) == {
        "error": {"code": "internal_error", "message": "The function returned a malformed response."},
        "request_id": "rid",
    }


def test_configure_environment_points_boto3_at_the_local_server():
    environ = {"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "real", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}

    configure_environment(
        endpoint_url="http://127.0.0.1:8080",
        endpoint_name="local-dogbreed",
        region="eu-west-1",
        control_plane_url="http://127.0.0.1:41234",
        environ=environ,
    )

    assert environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://127.0.0.1:8080"
    assert environ["AWS_ENDPOINT_URL_SAGEMAKER"] == "http://127.0.0.1:41234"
    assert environ["ENDPOINT_NAME"] == "local-dogbreed"
    assert environ["AWS_REGION"] == environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert environ["AWS_ACCESS_KEY_ID"] == "local" and "AWS_SESSION_TOKEN" not in environ
    assert "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" not in environ


# -- the front in this process, real HTTP both ways ---------------------------------------------------------


class RunningFront:
    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "front did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def front(reload_app):
    with (
        FakeEndpointServer(FakeEndpoint()) as endpoint_server,
        LocalControlPlane(endpoint_server.url, "test-dogbreed") as control_plane,
    ):
        reload_app(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=endpoint_server.url, AWS_ENDPOINT_URL_SAGEMAKER=control_plane.url)
        with RunningFront(create_app(InProcessInvoker(), max_request_bytes=200_000)) as running:
            running.endpoint = endpoint_server.endpoint
            yield running


def test_front_classifies_a_raw_upload(front, tiny_images):
    response = requests.post(
        front.url + "/predict?top_k=2", data=tiny_images["jpg"], headers={"Content-Type": "image/jpeg"}, timeout=10
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    check_schema("PredictResponse", body)
    assert body == {
        **fake_predictions(tiny_images["jpg"], 2),
        "model": MODEL,
        "request_id": response.headers["x-request-id"],
    }
    assert re.fullmatch(r"[0-9a-f-]{36}", body["request_id"])


def test_front_json_batch_and_health_and_openapi(front, tiny_images):
    images = [base64.b64encode(tiny_images[k]).decode() for k in ("jpg", "png", "webp")]
    batch = requests.post(front.url + "/predict", json={"images": images, "top_k": 3}, timeout=10)
    assert batch.status_code == 200
    check_schema("BatchPredictResponse", batch.json())
    assert [r["predictions"] for r in batch.json()["results"]] == [
        fake_predictions(tiny_images[k], 3)["predictions"] for k in ("jpg", "png", "webp")
    ]

    health = requests.get(front.url + "/health", timeout=10)
    assert health.status_code == 200
    check_schema("Health", health.json())
    assert health.json()["endpoint"] == {"name": "test-dogbreed", "status": "InService"}

    document = requests.get(front.url + "/openapi.json", timeout=10)
    assert document.status_code == 200 and {**document.json(), "servers": OPENAPI["servers"]} == OPENAPI
    assert [server["url"] for server in document.json()["servers"]] == [front.url]  # where it was served from


@pytest.mark.parametrize(
    "method,path,kwargs,status,code",
    [
        (
            "post",
            "/predict",
            {"data": b"\xff\xd8\xff\xe0 truncated", "headers": {"Content-Type": "image/jpeg"}},
            400,
            "invalid_image",
        ),
        ("post", "/predict", {"data": b"{oops", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
        ("post", "/predict", {"data": b"image=1"}, 415, "unsupported_media_type"),
        ("post", "/predict?top_k=50", {"json": {"image": "AAAA"}}, 422, "invalid_parameter"),
        ("get", "/predict", {}, 405, "method_not_allowed"),
        ("get", "/nope", {}, 404, "not_found"),
        (
            "post",
            "/predict",
            {"data": b"\xff\xd8\xff" + b"\0" * 300_000, "headers": {"Content-Type": "image/jpeg"}},
            413,
            "payload_too_large",
        ),
    ],
)
def test_front_errors_are_json_with_the_right_status(front, method, path, kwargs, status, code):
    response = getattr(requests, method)(front.url + path, timeout=10, **kwargs)

    assert response.status_code == status
    body = response.json()
    check_schema("Error", body)
    assert body["error"]["code"] == code


def test_front_health_is_503_once_the_endpoint_server_stops_answering_ping(front, app_module):
    front.endpoint.ping_status = 503

    health = requests.get(front.url + "/health", timeout=10)

    assert health.status_code == 503
    check_schema("HealthUnavailable", health.json())
    assert health.json()["endpoint"] == {"name": "test-dogbreed", "status": "Failed"}
    assert health.headers["retry-after"] == "10"


def test_front_serves_requests_concurrently_and_each_gets_its_own_request_id(front, tiny_images):
    def one(i: int):
        # One more byte before the end marker: a different hash, so a different answer per request.
        data = tiny_images["jpg"][:-2] + bytes([i]) + tiny_images["jpg"][-2:]
        response = requests.post(front.url + "/predict", data=data, headers={"Content-Type": "image/jpeg"}, timeout=10)
        return data, response

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(8)))

    assert [r.status_code for _, r in results] == [200] * 8, [r.text for _, r in results]
    assert len({r.json()["request_id"] for _, r in results}) == 8
    for data, response in results:
        assert response.json()["predictions"] == fake_predictions(data, 5)["predictions"]


# -- the real command, in its own process with worker processes --------------------------------------------


def start_cli_front(endpoint_url: str, endpoint_name: str, extra_env: dict[str, str] | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ENDPOINT_", "ALLOWED_", "POWERTOOLS_"))}
    env.update(extra_env or {})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inference_lambda.local_front",
            "--port",
            "0",
            "--workers",
            "1",
            "--endpoint-url",
            endpoint_url,
            "--endpoint-name",
            endpoint_name,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"serving (http://127\.0\.0\.1:\d+)", line)
        if match:
            threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
            return process, match.group(1)
    process.kill()
    raise AssertionError("dogapi-local did not start:\n" + "".join(lines))


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def real_photo() -> bytes | None:
    photos = sorted((dog_photos_dir() / "udacity-samples").glob("*.jpg"))
    return photos[0].read_bytes() if photos else None


def test_cli_front_with_a_real_photo(tiny_images):
    """The command a developer runs, end to end over HTTP. Uses INFERENCE_LAMBDA_TEST_ENDPOINT_URL when set."""
    real_url = os.environ.get("INFERENCE_LAMBDA_TEST_ENDPOINT_URL")
    photo = real_photo() or tiny_images["jpg"]
    with FakeEndpointServer(FakeEndpoint(endpoint_name="local-dogbreed")) as fake:
        url = real_url or fake.url
        name = os.environ.get("INFERENCE_LAMBDA_TEST_ENDPOINT_NAME", "local-dogbreed") if real_url else "local-dogbreed"
        process, front_url = start_cli_front(url, name, {"ALLOWED_ORIGINS": "https://dogs.example.com"})
        try:
            response = requests.post(
                front_url + "/predict?top_k=3",
                data=photo,
                headers={"Content-Type": "image/jpeg", "Origin": "https://dogs.example.com"},
                timeout=60,
            )
            health = requests.get(front_url + "/health", timeout=10)
        finally:
            exit_code = stop(process)

    assert response.status_code == 200, response.text
    body = response.json()
    check_schema("PredictResponse", body)
    assert len(body["predictions"]) == 3
    assert response.headers["access-control-allow-origin"] == "https://dogs.example.com"
    if not real_url:
        assert body["predictions"] == fake_predictions(photo, 3)["predictions"]
        assert fake.endpoint.requests[0]["path"] == "/endpoints/local-dogbreed/invocations"
    assert health.status_code == 200, health.text  # dogapi-local's own control plane, asking GET /ping
    assert health.json()["endpoint_name"] == name
    assert health.json()["endpoint"] == {"name": name, "status": "InService"}
    assert exit_code == 0


def test_cli_refuses_a_bad_configuration():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ENDPOINT_"))}
    env["ENDPOINT_TIMEOUT_SECONDS"] = "ten"
    result = subprocess.run(
        [sys.executable, "-m", "inference_lambda.local_front", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == "dogapi-local: ENDPOINT_TIMEOUT_SECONDS must be a number of seconds, got 'ten'."
