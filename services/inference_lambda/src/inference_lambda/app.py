"""The Lambda function behind API Gateway: a REST API (payload format 1.0) or an HTTP API (format 2.0).

Handler: `inference_lambda.app.handler`. Logger, metrics, resolver and the SageMaker runtime client live at
module level so one execution environment reuses them across invocations. The client is a plain
`boto3.client("sagemaker-runtime")`: locally the front sets AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, so nothing
here knows whether it runs on AWS. GET /health asks a plain `boto3.client("sagemaker")` (DescribeEndpoint),
which the front points at its own stand-in with AWS_ENDPOINT_URL_SAGEMAKER.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from . import __version__, _contract
from .endpoint import EndpointCaller, wrap_unmodeled_errors
from .endpoint_status import NOT_FOUND, UNKNOWN, UNREACHABLE, EndpointStatusCache
from .errors import ApiError
from .predict_request import Limits, PredictRequest, parse_predict_request, single_query_values
from .settings import Settings
from .url_fetch import UrlFetcher, UrlPolicy
from .web_page import register as register_web_page

settings = Settings.from_env()

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "dogbreed-api")
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "DogBreed",
    service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "dogbreed-api",
)

sagemaker_runtime = boto3.client(
    "sagemaker-runtime",
    config=Config(
        connect_timeout=settings.endpoint_connect_timeout_seconds,
        read_timeout=settings.endpoint_timeout_seconds,
        # botocore would also retry 5xx and timeouts; EndpointCaller retries throttling only.
        retries={"total_max_attempts": 1},
    ),
)
sagemaker_runtime.meta.events.register("after-call.sagemaker-runtime.InvokeEndpoint", wrap_unmodeled_errors)

# A health check must answer fast even when the control plane does not: short timeouts, one attempt.
DESCRIBE_ENDPOINT_READ_TIMEOUT_SECONDS = 3.0


def _control_plane_client() -> Any:
    return boto3.client(
        "sagemaker",
        config=Config(
            connect_timeout=settings.endpoint_connect_timeout_seconds,
            read_timeout=DESCRIBE_ENDPOINT_READ_TIMEOUT_SECONDS,
            retries={"total_max_attempts": 1},
        ),
    )


endpoint_status = EndpointStatusCache(
    _control_plane_client, settings.endpoint_name, ttl_seconds=settings.endpoint_status_cache_seconds
)
endpoint_status.watch_invocations(sagemaker_runtime)

endpoint = EndpointCaller(
    sagemaker_runtime,
    settings.endpoint_name,
    max_attempts=settings.endpoint_max_attempts,
    read_timeout_seconds=settings.endpoint_timeout_seconds,
    max_payload_bytes=settings.endpoint_max_payload_bytes,
)
url_fetcher = UrlFetcher(
    UrlPolicy(
        max_bytes=settings.max_image_bytes,
        allow_http=settings.allow_http_urls,
        allowed_ports=frozenset(settings.url_allowed_ports),
        max_redirects=settings.url_max_redirects,
        timeout_seconds=settings.url_fetch_timeout_seconds,
    )
)
limits = Limits(
    max_image_bytes=settings.max_image_bytes,
    max_batch_images=settings.max_batch_images,
    default_top_k=settings.default_top_k,
    max_top_k=settings.max_top_k,
)


def _cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        expose_headers=[_contract.REQUEST_ID_HEADER],
        max_age=600,
    )


app = APIGatewayRestResolver(cors=_cors_config(settings.allowed_origins))

# Path -> methods, for telling 405 from 404 (keep in step with the routes below and openapi.json).
ROUTE_METHODS: dict[str, tuple[str, ...]] = {
    "/predict": ("POST",),
    "/health": ("GET",),
    "/openapi.json": ("GET",),
}
_openapi_document: dict[str, Any] | None = None  # openapi.json, parsed once
register_web_page(app, ROUTE_METHODS)  # GET /: the page for people (web_page.py)


# -- routes -------------------------------------------------------------------------------------------


def _json_200(description: str, *schemas: str, request_id_header: bool = False) -> dict[int, Any]:
    """A route's documented 200 answer (scripts/gen_contracts.py reads it from the route for openapi.json)."""
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in schemas]
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}},
    }
    if request_id_header:
        response["headers"] = {_contract.REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"}}
    return {200: response}


@app.post(
    "/predict",
    operation_id="predict",
    summary="Top-k breeds for one image, a batch of images, or an image URL.",
    responses=_json_200(
        "Predictions. A batch request gets one result per image, in request order.",
        "PredictResponse",
        "BatchPredictResponse",
        request_id_header=True,
    ),
)
def predict() -> Response:
    event = app.current_event
    request = parse_predict_request(
        content_type=_header("Content-Type"),
        body=event.body,
        is_base64_encoded=event.is_base64_encoded,
        query_top_k=single_query_values(
            event.multi_value_query_string_parameters, event.query_string_parameters, "top_k"
        ),
        limits=limits,
        fetch_url=_fetch_url,
    )
    if settings.endpoint_payload == "raw" and not request.batch:
        result = endpoint.invoke_image(request.images[0], top_k=request.top_k, remaining_seconds=_remaining_seconds)
    else:
        encoded = [base64.b64encode(image).decode("ascii") for image in request.images]
        payload: dict[str, Any] = (
            {"images": encoded, "top_k": request.top_k}
            if request.batch
            else {"image": encoded[0], "top_k": request.top_k}
        )
        result = endpoint.invoke(payload, remaining_seconds=_remaining_seconds)
    body = _check_endpoint_body(result.body, request)

    metrics.add_metric(name="ImagesClassified", unit=MetricUnit.Count, value=len(request.images))
    metrics.add_metric(name="EndpointLatency", unit=MetricUnit.Milliseconds, value=round(result.seconds * 1000, 2))
    logger.info(
        "Classified",
        extra={
            "source": request.source,
            "images": len(request.images),
            "image_bytes": sum(len(image) for image in request.images),
            "top_k": request.top_k,
            "endpoint_ms": round(result.seconds * 1000, 2),
            "endpoint_attempts": result.attempts,
        },
    )
    body["request_id"] = _request_id()
    return _json_response(200, body, extra_headers={"Cache-Control": "no-store"})


@app.get(
    "/health",
    operation_id="health",
    summary=(
        "The function is up and its SageMaker endpoint takes invocations (DescribeEndpoint, cached per execution "
        "environment for ENDPOINT_STATUS_CACHE_SECONDS)."
    ),
    responses={
        **_json_200("Up, and the endpoint is in service (or updating, which keeps serving).", "Health"),
        503: {
            "description": "The endpoint is not in service: endpoint_unavailable, with the endpoint's status.",
            "headers": {
                "Retry-After": {"description": "Seconds until the status is asked again.", "schema": {"type": "integer"}}
            },
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HealthUnavailable"}}},
        },
    },
)
def health() -> Response:
    state = endpoint_status.current()
    described = {"name": state.name, "status": state.status}
    if not state.serving:
        logger.info("Endpoint not serving", extra={"endpoint_status": state.status, "reason": state.reason})
        raise ApiError(
            "endpoint_unavailable",
            _NOT_SERVING_MESSAGES.get(state.status, f"The model endpoint is {state.status}, not in service."),
            headers={"Retry-After": str(math.ceil(endpoint_status.ttl_seconds)), "Cache-Control": "no-store"},
            extra={"endpoint": described},
        )
    return _json_response(
        200,
        {
            "status": "ok",
            "endpoint_name": settings.endpoint_name,
            "endpoint": described,
            "version": __version__,
            "request_id": _request_id(),
        },
        extra_headers={"Cache-Control": "no-store"},
    )


_NOT_SERVING_MESSAGES = {
    UNREACHABLE: "The model endpoint cannot be reached.",
    NOT_FOUND: "The model endpoint does not exist.",
    UNKNOWN: "The model endpoint's state cannot be read; retry later.",
}


@app.get(
    "/openapi.json",
    operation_id="openapi",
    summary="This document, with servers set to the address it is served from.",
    responses={
        200: {"description": "The OpenAPI document.", "content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
def openapi_document() -> Response:
    global _openapi_document
    if _openapi_document is None:
        from importlib import resources  # imported here: ~10 ms of cold start for a rarely used route

        _openapi_document = json.loads(resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8"))
    served_from = {"url": _served_from("/openapi.json"), "description": "the address this document was served from"}
    document = {**_openapi_document, "servers": [served_from]}
    return Response(status_code=200, content_type="application/json", body=json.dumps(document, ensure_ascii=False))


# -- errors: every failure becomes its response here, and only here ------------------------------------


@app.exception_handler(ApiError)
def handle_api_error(error: ApiError) -> Response:
    if error.status >= 500:
        metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
        logger.error("Request failed", extra={"status": error.status, "code": error.code, "detail": error.message})
    else:
        metrics.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=1)
        logger.info("Request rejected", extra={"status": error.status, "code": error.code, "detail": error.message})
    return _error_response(error)


@app.exception_handler(Exception)
def handle_unexpected_error(error: Exception) -> Response:
    # A bug: full traceback to the logs, a generic message to the client.
    logger.exception("Unhandled error")
    metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    return _error_response(ApiError("internal_error", "Internal error. Quote the request_id when reporting it."))


@app.not_found
def handle_not_found(_: Exception) -> Response:
    path = app.current_event.path
    allowed = ROUTE_METHODS.get(path)
    if allowed:
        error = ApiError(
            "method_not_allowed",
            f"{app.current_event.http_method} is not allowed on {path}; use {', '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )
    else:
        error = ApiError("not_found", "No such resource. The API serves GET / (the web page), POST /predict and GET /health.")
    return handle_api_error(error)


def record_latency(resolver: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    started = time.perf_counter()
    try:
        return next_middleware(resolver)
    finally:
        metrics.add_metric(
            name="RequestLatency", unit=MetricUnit.Milliseconds, value=round((time.perf_counter() - started) * 1000, 2)
        )


app.use(middlewares=[record_latency])


# -- helpers ------------------------------------------------------------------------------------------


# What a Host header and a base path may look like before they are written into openapi.json's servers.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(?::\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?")
_BASE_PATH = re.compile(r"(?:/[A-Za-z0-9._~$-]{1,128}){0,8}")


def _header(name: str) -> str | None:
    event = app.current_event
    value = event.headers.get(name)
    if value is None:
        values = event.multi_value_headers.get(name)
        if values:
            value = values[-1]
    return value


def _request_id() -> str:
    request_id = app.current_event.request_context.request_id
    if request_id:
        return request_id
    context = app.lambda_context
    return getattr(context, "aws_request_id", "") or ""


def _served_from(route_path: str) -> str:
    """The API's base URL as this request reached it: scheme://Host plus the stage or base path before the route.

    requestContext.path is the path as requested (`/prod/openapi.json` on the execute-api host, `/dogs/...`
    behind a custom domain's base path mapping, the plain path on the local front without --base-path).
    """
    event = app.current_event
    context_path = event.request_context.path or ""
    base = context_path[: -len(route_path)] if context_path.endswith(route_path) else ""
    if not _BASE_PATH.fullmatch(base):
        base = ""
    host = _header("Host") or event.request_context.domain_name or ""
    if not _HOST.fullmatch(host):
        return base or "/"  # relative to wherever the document was fetched from
    # API Gateway always sets X-Forwarded-Proto (https); the local front serves plain http and sets none.
    proto = (_header("X-Forwarded-Proto") or "").strip().lower()
    return f"{proto if proto in ('http', 'https') else 'http'}://{host}{base}"


def _remaining_seconds() -> float:
    context = app.lambda_context
    get_remaining = getattr(context, "get_remaining_time_in_millis", None)
    if get_remaining is None:
        return float("inf")
    return get_remaining() / 1000


def _fetch_url(url: str) -> bytes:
    fetched = url_fetcher.fetch(url)
    # Query strings of image URLs are often signatures: log the host only.
    logger.info(
        "Fetched image URL", extra={"url_host": _host_of(url), "bytes": len(fetched.data), "redirects": fetched.hops}
    )
    return fetched.data


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _check_endpoint_body(body: dict[str, Any], request: PredictRequest) -> dict[str, Any]:
    if request.batch:
        results = body.get("results")
        if not isinstance(results, list) or len(results) != len(request.images):
            raise ApiError("endpoint_error", "The model endpoint returned an unexpected response.")
    elif not isinstance(body.get("predictions"), list):
        raise ApiError("endpoint_error", "The model endpoint returned an unexpected response.")
    return body


def _json_response(status: int, body: dict[str, Any], extra_headers: dict[str, str] | None = None) -> Response:
    headers = {_contract.REQUEST_ID_HEADER: str(body.get("request_id", "")), **(extra_headers or {})}
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=headers,
    )


def _error_response(error: ApiError) -> Response:
    body = {"error": {"code": error.code, "message": error.message}, **error.extra, "request_id": _request_id()}
    return _json_response(error.status, body, extra_headers=error.headers)


# -- payload formats: one router for REST (1.0) and HTTP API (2.0) events ----------------------------------


def _is_http_api_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("version") == "2.0" and "httpMethod" not in event


def _route_path(path: str, resource: str | None = None) -> str:
    """The route a request path names, behind a stage or a custom domain's base path mapping."""
    if path in ROUTE_METHODS:
        return path
    if resource in ROUTE_METHODS:
        # REST API: `resource` is the route without the base path (`/dogs/predict` -> `/predict`).
        return resource
    for base in settings.api_base_paths:
        if path.startswith(base + "/") and path[len(base) :] in ROUTE_METHODS:
            return path[len(base) :]
    return path


def rest_event_from_http_api(event: dict[str, Any]) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event as the REST (1.0) event the router reads.

    2.0 joins repeated headers and query parameters with commas and has no multi-value maps; the stage is in
    rawPath unless it is `$default`; routeKey is `METHOD /path` for an explicit route, `$default` otherwise.
    """
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    method = str(http.get("method") or "GET").upper()
    raw_path = path = str(event.get("rawPath") or http.get("path") or "/")
    stage = context.get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    route_key = str(event.get("routeKey") or "$default")
    resource = route_key.split(" ", 1)[1] if " " in route_key else None
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    query = parse_qs(str(event.get("rawQueryString") or ""), keep_blank_values=True)
    return {
        "resource": resource or path,
        "path": _route_path(path, resource),
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": event.get("pathParameters"),
        "stageVariables": event.get("stageVariables"),
        "requestContext": {
            "requestId": context.get("requestId"),
            "stage": stage,
            "httpMethod": method,
            # As in a REST event: the path as requested, stage or base path included (openapi.json's servers).
            "path": raw_path,
            "identity": {"sourceIp": http.get("sourceIp"), "userAgent": http.get("userAgent")},
        },
        "body": event.get("body"),
        "isBase64Encoded": bool(event.get("isBase64Encoded")),
    }


def http_api_response(response: dict[str, Any]) -> dict[str, Any]:
    """A REST proxy result as a format 2.0 one: 2.0 has no multiValueHeaders (repeated values are joined)."""
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        if str(name).lower() == "set-cookie":
            continue
        headers[name] = ", ".join(str(v) for v in values)
    result = {key: value for key, value in response.items() if key not in ("multiValueHeaders", "headers")}
    result["headers"] = headers
    cookies = (response.get("multiValueHeaders") or {}).get("Set-Cookie")
    if cookies:
        result["cookies"] = list(cookies)
    return result


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if _is_http_api_event(event):
        return http_api_response(app.resolve(rest_event_from_http_api(event), context))
    if isinstance(event, dict) and isinstance(event.get("path"), str):
        event = {**event, "path": _route_path(event["path"], event.get("resource"))}
    return app.resolve(event, context)
