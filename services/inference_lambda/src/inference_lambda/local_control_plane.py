"""The SageMaker control plane, as much of it as GET /health asks, for the local stack (not in the zip).

The handler's plain boto3 "sagemaker" client reaches this through AWS_ENDPOINT_URL_SAGEMAKER, set by
`dogapi-local`. It answers `DescribeEndpoint` (JSON 1.1: `POST /` with `X-Amz-Target:
SageMaker.DescribeEndpoint`) for the one local endpoint name by asking the endpoint server `GET /ping`:

- 200: `InService`;
- another status: `Failed`, with that status in `FailureReason`;
- no answer (refused, timed out): `OutOfService`, SageMaker's "not available to take incoming requests".

Any other name is SageMaker's `ValidationException` "Could not find endpoint", any other operation
`UnknownOperationException`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOCAL_ACCOUNT_ID = "000000000000"
PING_TIMEOUT_SECONDS = 2.0
_JSON_11 = "application/x-amz-json-1.1"
# The endpoint server is local: an HTTP_PROXY from the developer's shell must not stand in between.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ping_status(endpoint_url: str, timeout_seconds: float = PING_TIMEOUT_SECONDS) -> tuple[str, str | None]:
    """(EndpointStatus, FailureReason) of the endpoint server at `endpoint_url`, from its GET /ping."""
    url = endpoint_url.rstrip("/") + "/ping"
    try:
        with _NO_PROXY.open(url, timeout=timeout_seconds) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError):
        return "OutOfService", f"Nothing answers GET {url}."
    if status == 200:
        return "InService", None
    return "Failed", f"GET {url} answered {status}."


def describe_endpoint(
    request: dict[str, Any], *, endpoint_name: str, endpoint_url: str, region: str, started_at: float
) -> tuple[int, dict[str, Any]]:
    """DescribeEndpoint's answer to `request`: (HTTP status, JSON document)."""
    name = request.get("EndpointName")
    if name != endpoint_name:
        arn = f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT_ID}:endpoint/{str(name).lower()}"
        return 400, {"__type": "ValidationException", "message": f'Could not find endpoint "{arn}".'}
    status, failure_reason = ping_status(endpoint_url)
    document: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "EndpointArn": f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT_ID}:endpoint/{endpoint_name.lower()}",
        "EndpointConfigName": endpoint_name,
        "EndpointStatus": status,
        "CreationTime": started_at,
        "LastModifiedTime": started_at,
    }
    if failure_reason:
        document["FailureReason"] = failure_reason
    return 200, document


class LocalControlPlane:
    """DescribeEndpoint on 127.0.0.1 and a free port, in a background thread of the front's process."""

    def __init__(self, endpoint_url: str, endpoint_name: str, *, region: str = "us-east-1"):
        started_at = time.time()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # the front's log is for API requests
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                target = self.headers.get("X-Amz-Target", "")
                try:
                    request = json.loads(raw or b"{}")
                except ValueError:
                    request = None
                if target != "SageMaker.DescribeEndpoint":
                    status, document = 400, {"__type": "UnknownOperationException", "message": f"{target!r}"}
                elif not isinstance(request, dict):
                    status, document = 400, {"__type": "SerializationException", "message": "body is not JSON"}
                else:
                    status, document = describe_endpoint(
                        request,
                        endpoint_name=endpoint_name,
                        endpoint_url=endpoint_url,
                        region=region,
                        started_at=started_at,
                    )
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", _JSON_11)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LocalControlPlane:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> LocalControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
