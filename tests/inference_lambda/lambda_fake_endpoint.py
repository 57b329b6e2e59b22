"""INTERIM stand-in for `dogbreed serve`: a tiny server speaking the SageMaker runtime path over real HTTP.

It answers `POST /endpoints/{name}/invocations` (what boto3's invoke_endpoint calls), `POST /invocations` and
`GET /ping`, with the JSON shapes of shared/design/contracts.md. It is a test double for the *transport*: it
checks what the Lambda sends (JSON body, content type, base64 images, top_k) and answers deterministically
from the image bytes, so a test can tell whether the Lambda passed the endpoint's answer through unchanged.
The real model server is exercised by tests/e2e (and by this directory's front test when
INFERENCE_LAMBDA_TEST_ENDPOINT_URL points at one).

`wrap_errors=True` answers client faults the way SageMaker does (HTTP 424 ModelError with
OriginalStatusCode/OriginalMessage); False answers them raw, the way a container does on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BREEDS = [
    "Labrador retriever",
    "Beagle",
    "Siberian husky",
    "Toy poodle",
    "Golden retriever",
    "Dalmatian",
    "Boxer",
    "Collie",
    "Basenji",
    "Great dane",
    "Affenpinscher",
    "Chihuahua",
]
MODEL = {"name": "fake-endpoint", "version": "2026-11-21T12:00:00Z"}
_RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")


def fake_predictions(image: bytes, top_k: int) -> dict[str, Any]:
    """Deterministic per image: the scores come from the image's hash."""
    digest = hashlib.sha256(image).digest()
    scores = [digest[i] + 1 for i in range(len(BREEDS))]
    total = sum(scores)
    ranked = sorted(range(len(BREEDS)), key=lambda i: (-scores[i], i))[:top_k]
    return {
        "predictions": [
            {"breed": BREEDS[i], "probability": round(scores[i] / total, 6), "class_id": i} for i in ranked
        ],
        "is_dog": None,
        "dog_probability": None,
    }


def looks_complete(image: bytes) -> bool:
    """A stand-in for a real decode: JPEGs must end with their EOI marker, PNGs with IEND."""
    if image[:3] == b"\xff\xd8\xff":
        return image.rstrip(b"\x00")[-2:] == b"\xff\xd9"
    if image[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" in image[-12:]
    return image[:4] == b"RIFF" and image[8:12] == b"WEBP"


@dataclass
class FakeEndpoint:
    endpoint_name: str = "test-dogbreed"
    wrap_errors: bool = True
    delay_seconds: float = 0.0
    # When set, every invocation answers this status with a plain-text body (a broken container).
    force_status: int | None = None
    # What GET /ping answers (503: a container still loading its model).
    ping_status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        match = _RUNTIME_PATH.match(path)
        if match and match.group(1) != self.endpoint_name:
            message = f"Endpoint {match.group(1)} of account 123456789012 not found."
            return (
                400,
                {"x-amzn-ErrorType": "ValidationError:http://internal.amazon.com/"},
                json.dumps({"message": message}).encode(),
            )
        if not match and path != "/invocations":
            return 404, {}, b'{"error": {"code": "not_found", "message": "no such path"}}'
        self.requests.append({"path": path, "headers": headers, "body": body})
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self.force_status is not None:
            return self._container_error(self.force_status, b"Traceback (most recent call last): boom")
        status, document = self._invoke(headers, body)
        payload = json.dumps(document).encode()
        if status != 200:
            return self._container_error(status, payload)
        return 200, {"Content-Type": "application/json"}, payload

    def _invoke(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if headers.get("content-type", "").split(";")[0] != "application/json":
            return 415, _error("unsupported_media_type", "expected application/json")
        try:
            document = json.loads(body)
        except ValueError:
            return 400, _error("invalid_json", "body is not JSON")
        top_k = document.get("top_k", 5)
        encoded = document["images"] if "images" in document else [document.get("image")]
        images = []
        for item in encoded:
            try:
                images.append(base64.b64decode(item, validate=True))
            except (binascii.Error, TypeError, ValueError):
                return 400, _error("invalid_base64", "image is not base64")
        for image in images:
            if not looks_complete(image):
                return 400, _error("invalid_image", "The body is not a decodable image (truncated JPEG).")
        results = [fake_predictions(image, top_k) for image in images]
        if "images" in document:
            return 200, {"results": results, "model": MODEL}
        return 200, {**results[0], "model": MODEL}

    def _container_error(self, status: int, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        if not self.wrap_errors:
            return status, {"Content-Type": "application/json"}, payload
        envelope = {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if status < 500 else "SERVER_ERROR_FROM_MODEL",
            "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
            "Message": f'Received client error ({status}) from primary with message "{payload.decode(errors="replace")}". '
            "See https://us-east-1.console.aws.amazon.com/cloudwatch/home in account 123456789012 for more information.",
            "OriginalMessage": payload.decode("utf-8", "replace"),
            "OriginalStatusCode": status,
        }
        return (
            424,
            {"x-amzn-ErrorType": "ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/"},
            json.dumps(envelope).encode(),
        )


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class FakeEndpointServer:
    """FakeEndpoint on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, endpoint: FakeEndpoint):
        self.endpoint = endpoint
        fake = endpoint

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: avoid the 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if self.path == "/ping":
                    self._send(fake.ping_status, {"Content-Type": "application/json"}, b"{}")
                else:
                    self._send(404, {}, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, out_headers, payload = fake.handle(self.path, headers, body)
                self._send(status, out_headers, payload)

            def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeEndpointServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class FakeControlPlane:
    """DescribeEndpoint as the SageMaker control plane answers it (JSON 1.1), with a status a test sets.

    `statuses` maps endpoint names to their EndpointStatus; a name not in it is InService, unless
    `known_only`, when it is SageMaker's "Could not find endpoint". `requests` records each call's target
    and body.
    """

    statuses: dict[str, str] = field(default_factory=dict)
    known_only: bool = False
    # When set, every call answers this HTTP status with SageMaker's error JSON of that type.
    force_error: tuple[int, str] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.statuses.clear()
        self.known_only = False
        self.force_error = None
        self.requests.clear()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        target = headers.get("x-amz-target", "")
        request = json.loads(body or b"{}")
        self.requests.append({"target": target, "body": request})
        if self.force_error is not None:
            status, error_type = self.force_error
            return status, {"__type": error_type, "message": f"{error_type} for account 123456789012"}
        if target != "SageMaker.DescribeEndpoint":
            return 400, {"__type": "UnknownOperationException", "message": target}
        name = request.get("EndpointName", "")
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name.lower()}"
        if name not in self.statuses and self.known_only:
            return 400, {"__type": "ValidationException", "message": f'Could not find endpoint "{arn}".'}
        return 200, {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": name,
            "EndpointStatus": self.statuses.get(name, "InService"),
            "CreationTime": 1795262400.0,
            "LastModifiedTime": 1795262400.0,
        }


class FakeControlPlaneServer:
    """FakeControlPlane on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, control_plane: FakeControlPlane):
        self.control_plane = control_plane
        fake = control_plane

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, document = fake.handle({k.lower(): v for k, v in self.headers.items()}, body)
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeControlPlaneServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
