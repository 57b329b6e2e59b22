"""`dogapi-local`: the Lambda handler served over HTTP on 127.0.0.1, the way API Gateway serves it.

Each HTTP request becomes the API Gateway REST proxy event (payload format v1) that AWS would send:
`headers` and `multiValueHeaders`, `queryStringParameters` and `multiValueQueryStringParameters`, a
`requestContext` with a fresh `requestId`, and bodies whose Content-Type matches the binary media types
base64-encoded with `isBase64Encoded: true`. The handler's proxy result becomes the HTTP response.

Like Lambda, one execution environment handles one event at a time; concurrency comes from several
environments. Here they are worker processes (`--workers`), each importing the handler once (its cold
start). Powertools' resolver, logger and metrics keep per-event state at module level, so threads would
not be a faithful stand-in.

Before any worker imports the handler, the environment points boto3's `sagemaker-runtime` client at the
local endpoint server through AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, and its `sagemaker` client (GET /health's
DescribeEndpoint) at a stand-in control plane in this process (local_control_plane.py, which asks the endpoint
server's GET /ping) through AWS_ENDPOINT_URL_SAGEMAKER, with dummy credentials and a region: the handler has
no local-only code path.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import fnmatch
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import _contract
from .predict_request import BINARY_MEDIA_TYPES

# The API's binary media types are the accepted raw image types (media_types.json), as in Terraform.
DEFAULT_BINARY_MEDIA_TYPES = BINARY_MEDIA_TYPES
# API Gateway refuses requests over 10 MB; Lambda refuses synchronous events over 6 MB.
API_GATEWAY_MAX_REQUEST_BYTES = 10 * 1024 * 1024
LAMBDA_MAX_EVENT_BYTES = 6 * 1024 * 1024
LOCAL_ACCOUNT_ID = "000000000000"
# The api module's INVALID_API_KEY and MISSING_AUTHENTICATION_TOKEN gateway responses (gateway_responses.tf).
FORBIDDEN_MESSAGE = "The x-api-key header is missing or not a valid key for this API."
NO_ROUTE_MESSAGE = "No such route: the API serves GET / (the web page), POST /predict and GET /health."
FUNCTION_NAME = "dogbreed-api-local"


# -- the event, the way API Gateway builds it ------------------------------------------------------------


def canonical_header_name(name: str) -> str:
    # ASGI servers lowercase header names; API Gateway keeps the client's spelling, which is almost always this.
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def is_binary_media_type(content_type: str | None, binary_media_types: Iterable[str]) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not media_type:
        return False
    return any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in binary_media_types)


def build_proxy_event(
    *,
    method: str,
    path: str,
    query_items: Iterable[tuple[str, str]],
    header_items: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    stage: str = "local",
    binary_media_types: Iterable[str] = DEFAULT_BINARY_MEDIA_TYPES,
    request_id: str | None = None,
    now: datetime | None = None,
    known_resources: Iterable[str] = ("/", "/predict", "/health", "/openapi.json"),
    base_path: str | None = None,
) -> dict[str, Any]:
    """The REST API (v1) Lambda proxy event for one HTTP request."""
    request_id = request_id or str(uuid.uuid4())
    now = now or datetime.now(UTC)

    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for raw_name, value in header_items:
        name = canonical_header_name(raw_name)
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)

    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in query_items:
        query[name] = value
        multi_query.setdefault(name, []).append(value)

    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if not body:
        event_body, is_base64 = None, False
    elif is_binary_media_type(content_type, binary_media_types):
        event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        event_body, is_base64 = body.decode("utf-8", "replace"), False

    resource = path if path in set(known_resources) else "/{proxy+}"
    host = headers.get("Host", "127.0.0.1")
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")} if resource == "/{proxy+}" else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            # The path as requested, as API Gateway reports it: /STAGE/... on the execute-api host, or the
            # front's own base path (empty by default) when it says where it serves the stage.
            "path": f"/{stage}{path}" if base_path is None else f"{base_path}{path}",
            "accountId": LOCAL_ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": headers.get("User-Agent"),
                "user": None,
            },
            "domainName": host,
            "apiId": "local",
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error_result(status: int, code: str, message: str, request_id: str) -> HttpResult:
    """What API Gateway answers itself (gateway responses set to the API's error shape)."""
    body = json.dumps({"error": {"code": code, "message": message}, "request_id": request_id}).encode()
    return HttpResult(status, [("Content-Type", "application/json"), (_contract.REQUEST_ID_HEADER, request_id)], body)


def proxy_result_to_http(result: Any, request_id: str) -> HttpResult:
    """The handler's proxy result as an HTTP response; a malformed result is API Gateway's 502."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return error_result(502, "internal_error", "The function returned a malformed response.", request_id)
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, values in (result.get("multiValueHeaders") or {}).items():
        seen.add(name.lower())
        headers.extend((name, str(value)) for value in values)
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    body = result.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else body.encode("utf-8")
    except (ValueError, AttributeError):
        return error_result(502, "internal_error", "The function returned a malformed response.", request_id)
    return HttpResult(result["statusCode"], headers, raw)


# -- the Lambda side -------------------------------------------------------------------------------------


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that the handler and Powertools read."""

    aws_request_id: str
    timeout_seconds: float
    region: str = "us-east-1"
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _load_handler() -> Callable[[dict[str, Any], Any], Any]:
    from inference_lambda.app import handler

    return handler


def _invoke_in_worker(event: dict[str, Any], request_id: str, timeout_seconds: float) -> Any:
    context = LocalLambdaContext(
        aws_request_id=request_id, timeout_seconds=timeout_seconds, region=os.environ.get("AWS_REGION", "us-east-1")
    )
    return _load_handler()(event, context)


def _init_worker() -> None:
    # Ctrl-C and `kill -- -PGID` reach the workers too; the parent decides when they stop (after in-flight
    # events finish). A worker holds both ends of its task pipe, so it would not notice its parent dying
    # (SIGKILL): watch the parent's sentinel instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent.sentinel,), daemon=True).start()


def _exit_with_parent(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _warm_worker() -> int:
    _load_handler()
    return os.getpid()


class ProcessPoolInvoker:
    """Several execution environments, one event at a time each."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = self._new_executor()

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn, not fork: the parent runs an event loop and threads.
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
        )

    def warm_up(self) -> None:
        """Start every worker and import the handler there (Lambda's init phase), before serving."""
        futures = [self._executor.submit(_warm_worker) for _ in range(self.workers)]
        for future in futures:
            future.result()

    async def invoke(self, event: dict[str, Any], request_id: str, timeout_seconds: float) -> Any:
        try:
            future = self._executor.submit(_invoke_in_worker, event, request_id, timeout_seconds)
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_seconds)
        except concurrent.futures.process.BrokenProcessPool:
            self._executor = self._new_executor()
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class InProcessInvoker:
    """One execution environment in this process: events run one at a time (for tests and debugging)."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any] | None = None):
        self._handler = handler
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._handler is None:
            self._handler = _load_handler()

    def _run(self, event: dict[str, Any], request_id: str, timeout_seconds: float) -> Any:
        with self._lock:
            self.warm_up()
            assert self._handler is not None
            context = LocalLambdaContext(aws_request_id=request_id, timeout_seconds=timeout_seconds)
            return self._handler(event, context)

    async def invoke(self, event: dict[str, Any], request_id: str, timeout_seconds: float) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(self._run, event, request_id, timeout_seconds), timeout_seconds)

    def close(self) -> None:
        pass


# -- the HTTP side ---------------------------------------------------------------------------------------


def create_app(
    invoker: ProcessPoolInvoker | InProcessInvoker,
    *,
    stage: str = "local",
    binary_media_types: Iterable[str] = DEFAULT_BINARY_MEDIA_TYPES,
    lambda_timeout_seconds: float = 25.0,
    max_request_bytes: int = API_GATEWAY_MAX_REQUEST_BYTES,
    max_event_bytes: int = LAMBDA_MAX_EVENT_BYTES,
    api_key: str | None = None,
    base_path: str = "",
):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    binary_media_types = tuple(binary_media_types)
    base_path = base_path.rstrip("/")

    async def proxy(request: Request) -> Response:
        return _to_starlette(await _proxy(request, str(uuid.uuid4())))

    def _to_starlette(result: HttpResult) -> Response:
        response = Response(content=result.body, status_code=result.status)
        # Response() set content-length; add the handler's headers as they are, duplicates included.
        response.raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in result.headers)
        return response

    async def _proxy(request: Request, request_id: str) -> HttpResult:
        path = request.url.path
        if base_path:
            # As on the execute-api host: the stage name leads every path and is not part of the event's path.
            if path != base_path and not path.startswith(base_path + "/"):
                return error_result(404, "not_found", NO_ROUTE_MESSAGE, request_id)
            path = path[len(base_path) :] or "/"
        # As API Gateway with require_api_key: every method needs the key except the page and CORS preflights.
        if api_key is not None and path != "/" and request.method != "OPTIONS":
            if request.headers.get(_contract.API_KEY_HEADER) != api_key:
                return error_result(403, "forbidden", FORBIDDEN_MESSAGE, request_id)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_request_bytes:
                return error_result(
                    413,
                    "payload_too_large",
                    f"The request is over API Gateway's {max_request_bytes} bytes.",
                    request_id,
                )
        event = build_proxy_event(
            method=request.method,
            path=path,
            query_items=request.query_params.multi_items(),
            header_items=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            body=bytes(body),
            source_ip=request.client.host if request.client else "127.0.0.1",
            stage=stage,
            binary_media_types=binary_media_types,
            request_id=request_id,
            base_path=base_path,
        )
        if len(json.dumps(event)) > max_event_bytes:
            return error_result(
                413,
                "payload_too_large",
                f"The request is over Lambda's {max_event_bytes} byte event limit once base64-encoded.",
                request_id,
            )
        try:
            result = await invoker.invoke(event, request_id, lambda_timeout_seconds)
        except TimeoutError:
            return error_result(504, "endpoint_timeout", "The function did not answer in time.", request_id)
        except Exception as exc:  # the function crashed: API Gateway answers 502, details go to stderr
            print(f"dogapi-local: invocation {request_id} failed: {exc!r}", file=sys.stderr)
            return error_result(502, "internal_error", "The function failed.", request_id)
        return proxy_result_to_http(result, request_id)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.to_thread(invoker.close)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", proxy, methods=methods)], lifespan=lifespan)


# -- command line ----------------------------------------------------------------------------------------


def configure_environment(
    *,
    endpoint_url: str,
    endpoint_name: str,
    region: str,
    control_plane_url: str = "",
    environ: MutableMapping[str, str] = os.environ,
) -> None:
    """Point the handler's plain boto3 clients at a local endpoint server and control plane (must run before the
    handler import)."""
    environ["ENDPOINT_NAME"] = endpoint_name
    environ.setdefault("AWS_REGION", region)
    environ.setdefault("AWS_DEFAULT_REGION", environ["AWS_REGION"])
    environ.setdefault("POWERTOOLS_SERVICE_NAME", "dogbreed-api")
    if not endpoint_url:
        return  # the real SageMaker runtime, with whatever AWS credentials this shell has
    environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = endpoint_url
    if control_plane_url:
        environ["AWS_ENDPOINT_URL_SAGEMAKER"] = control_plane_url
    environ.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
    # The local server does not check signatures, but botocore signs every request: give it dummy keys so it
    # never reads a real profile or the instance metadata service.
    environ["AWS_ACCESS_KEY_ID"] = "local"
    environ["AWS_SECRET_ACCESS_KEY"] = "local"
    environ.pop("AWS_SESSION_TOKEN", None)
    environ["AWS_EC2_METADATA_DISABLED"] = "true"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dogapi-local",
        description="Serve the dog-breed API's Lambda handler over HTTP, converting requests to API Gateway REST "
        "proxy events. The OpenAPI document is at GET /openapi.json.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on; 0 picks a free one (default: 3000)")
    parser.add_argument(
        "--endpoint-url",
        default="http://127.0.0.1:8080",
        help="the endpoint server (dogbreed serve) the handler's sagemaker-runtime client calls; an empty string "
        "uses the real SageMaker runtime with this shell's AWS credentials (default: http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--endpoint-name", default="local-dogbreed", help="ENDPOINT_NAME given to the handler (default: local-dogbreed)"
    )
    parser.add_argument(
        "--region", default="us-east-1", help="AWS region unless AWS_REGION is set (default: us-east-1)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="execution environments (processes), each one event at a time (default: 2)",
    )
    parser.add_argument(
        "--lambda-timeout",
        type=float,
        default=25.0,
        help="the function timeout in seconds, as in Terraform's api module timeout_seconds (default: 25)",
    )
    parser.add_argument("--stage", default="local", help="API Gateway stage name in the events (default: local)")
    parser.add_argument(
        "--binary-media-types",
        default=",".join(DEFAULT_BINARY_MEDIA_TYPES),
        help="comma-separated binary media types of the API, as in Terraform "
        f"(default: {','.join(DEFAULT_BINARY_MEDIA_TYPES)})",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this x-api-key on every route but GET / and OPTIONS, answering 403 forbidden otherwise, as API "
        "Gateway does with require_api_key (default: no key)",
    )
    parser.add_argument(
        "--base-path",
        default="",
        help="serve under this path prefix, as the execute-api host serves a stage under /STAGE (e.g. /prod; "
        "default: none)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.workers < 1:
        print("dogapi-local: --workers must be at least 1", file=sys.stderr)
        return 2
    control_plane = None
    if args.endpoint_url:
        from .local_control_plane import LocalControlPlane

        region = os.environ.get("AWS_REGION") or args.region
        control_plane = LocalControlPlane(args.endpoint_url, args.endpoint_name, region=region).start()
    try:
        return _serve(args, control_plane.url if control_plane else "")
    finally:
        if control_plane is not None:
            control_plane.close()


def _serve(args: argparse.Namespace, control_plane_url: str) -> int:
    configure_environment(
        endpoint_url=args.endpoint_url,
        endpoint_name=args.endpoint_name,
        region=args.region,
        control_plane_url=control_plane_url,
    )

    from .settings import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"dogapi-local: {exc}", file=sys.stderr)
        return 2
    waits = (
        settings.url_fetch_timeout_seconds
        + settings.endpoint_connect_timeout_seconds
        + settings.endpoint_timeout_seconds
    )
    if waits >= args.lambda_timeout:
        print(
            f"dogapi-local: --lambda-timeout ({args.lambda_timeout:g} s) must be above the handler's own waits "
            f"({waits:g} s)",
            file=sys.stderr,
        )
        return 2

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"dogapi-local: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1

    # Listen now, so clients that connect between the "serving" line and uvicorn's start just queue.
    sock.listen(2048)
    invoker = ProcessPoolInvoker(args.workers)
    app = create_app(
        invoker,
        stage=args.stage,
        binary_media_types=[t.strip() for t in args.binary_media_types.split(",") if t.strip()],
        lambda_timeout_seconds=args.lambda_timeout,
        api_key=args.api_key,
        base_path=args.base_path,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="on", timeout_graceful_shutdown=10))
    warming_up = True

    def request_stop(signum: int, frame: object) -> None:
        # While serving, uvicorn has its own handlers (graceful shutdown); it hands a signal it caught back to
        # this one afterwards, where it is a no-op. Before that, stop at once, or have uvicorn exit on start.
        server.should_exit = True
        if warming_up:
            raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    try:
        invoker.warm_up()
    except KeyboardInterrupt:
        invoker.close()
        return 130
    except Exception as exc:
        print(f"dogapi-local: the handler failed to start: {exc!r}", file=sys.stderr)
        invoker.close()
        return 1
    warming_up = False
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    target = args.endpoint_url or "the SageMaker runtime"
    print(
        f"dogapi-local: serving http://{shown_host}:{port} (endpoint {args.endpoint_name} at {target}, "
        f"{args.workers} workers{', API key required' if args.api_key is not None else ''})",
        file=sys.stderr,
        flush=True,
    )
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
