"""GET /health: the endpoint's state from DescribeEndpoint (real botocore, real HTTP on 127.0.0.1), cached.

The control plane is lambda_fake_endpoint.FakeControlPlane (the session's, through AWS_ENDPOINT_URL_SAGEMAKER),
or the local front's own stand-in (local_control_plane.py) in front of a real GET /ping server.
"""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from inference_lambda.endpoint import EndpointCaller
from inference_lambda.endpoint_status import EndpointStatusCache
from inference_lambda.errors import ApiError
from inference_lambda.local_control_plane import LocalControlPlane

from lambda_fake_endpoint import FakeControlPlane, FakeControlPlaneServer, FakeEndpoint, FakeEndpointServer
from lambda_test_support import raw_event

REQUEST_ID = "88888888-8888-4888-8888-888888888888"  # events/health.json's


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sagemaker_client(url: str):
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(connect_timeout=0.5, read_timeout=2, retries={"total_max_attempts": 1}),
    )


def runtime_client(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(connect_timeout=0.5, read_timeout=2, retries={"total_max_attempts": 1}),
    )


# -- the handler against the fake control plane ------------------------------------------------------------


def test_in_service_is_200_with_the_endpoint_status(invoke, event, control_plane):
    status, headers, body = invoke(event("health.json"))

    assert status == 200
    assert body["status"] == "ok"
    assert body["endpoint"] == {"name": "test-dogbreed", "status": "InService"}
    assert headers["Cache-Control"] == "no-store"
    assert control_plane.requests == [
        {"target": "SageMaker.DescribeEndpoint", "body": {"EndpointName": "test-dogbreed"}}
    ]


@pytest.mark.parametrize("endpoint_status", ["Updating", "SystemUpdating", "RollingBack"])
def test_an_endpoint_being_updated_still_serves_so_is_200(invoke, event, control_plane, endpoint_status):
    control_plane.statuses["test-dogbreed"] = endpoint_status

    status, _, body = invoke(event("health.json"))

    assert status == 200
    assert body["endpoint"] == {"name": "test-dogbreed", "status": endpoint_status}


@pytest.mark.parametrize("endpoint_status", ["Creating", "Failed", "OutOfService", "Deleting", "UpdateRollbackFailed"])
def test_an_endpoint_not_in_service_is_503_with_its_status(invoke, event, control_plane, endpoint_status):
    control_plane.statuses["test-dogbreed"] = endpoint_status

    status, headers, body = invoke(event("health.json"))

    assert status == 503
    assert body == {
        "error": {
            "code": "endpoint_unavailable",
            "message": f"The model endpoint is {endpoint_status}, not in service.",
        },
        "endpoint": {"name": "test-dogbreed", "status": endpoint_status},
        "request_id": REQUEST_ID,
    }
    assert headers["Retry-After"] == "10" and headers["Cache-Control"] == "no-store"


def test_an_endpoint_that_does_not_exist_is_503_not_found(invoke, event, control_plane):
    control_plane.known_only = True

    status, _, body = invoke(event("health.json"))

    assert status == 503
    assert body["error"] == {"code": "endpoint_unavailable", "message": "The model endpoint does not exist."}
    assert body["endpoint"] == {"name": "test-dogbreed", "status": "not_found"}
    assert "arn:" not in json.dumps(body)


@pytest.mark.parametrize(
    "http_status,error_type", [(400, "ThrottlingException"), (400, "AccessDeniedException"), (500, "InternalFailure")]
)
def test_a_control_plane_refusal_is_503_unknown_and_the_reason_goes_to_the_logs_only(
    invoke, event, control_plane, lambda_logs, http_status, error_type
):
    control_plane.force_error = (http_status, error_type)

    status, _, body = invoke(event("health.json"))

    assert status == 503
    assert body["error"]["code"] == "endpoint_unavailable"
    assert body["endpoint"] == {"name": "test-dogbreed", "status": "unknown"}
    assert "123456789012" not in json.dumps(body) and error_type not in json.dumps(body)
    assert [line["reason"] for line in lambda_logs() if line["message"] == "Endpoint not serving"] == [error_type]


def test_an_unreachable_control_plane_is_503_unreachable_without_a_traceback(invoke, event, reload_app, lambda_logs):
    reload_app(
        AWS_ENDPOINT_URL_SAGEMAKER=f"http://127.0.0.1:{closed_port()}", ENDPOINT_CONNECT_TIMEOUT_SECONDS="0.5"
    )

    status, _, body = invoke(event("health.json"))

    assert status == 503
    assert body["error"] == {"code": "endpoint_unavailable", "message": "The model endpoint cannot be reached."}
    assert body["endpoint"] == {"name": "test-dogbreed", "status": "unreachable"}
    assert not any("exception" in line for line in lambda_logs())  # an expected condition, not a crash


def test_health_checks_within_the_cache_period_ask_the_control_plane_once(invoke, event, control_plane):
    assert invoke(event("health.json"))[0] == 200
    control_plane.statuses["test-dogbreed"] = "Failed"
    assert invoke(event("health.json"))[0] == 200  # still the cached InService

    assert len(control_plane.requests) == 1


def test_a_predict_that_cannot_connect_makes_health_unreachable(invoke, event, reload_app, tiny_images, control_plane):
    reload_app(
        AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=f"http://127.0.0.1:{closed_port()}", ENDPOINT_CONNECT_TIMEOUT_SECONDS="0.5"
    )
    assert invoke(event("health.json"))[0] == 200  # the control plane says InService

    assert invoke(raw_event(tiny_images["jpg"]))[0] == 503
    status, _, body = invoke(event("health.json"))

    assert status == 503
    assert body["endpoint"] == {"name": "test-dogbreed", "status": "unreachable"}


# -- the cache itself, with an injected clock ------------------------------------------------------------------


@pytest.fixture
def fake_control_plane():
    with FakeControlPlaneServer(FakeControlPlane()) as server:
        yield server


def test_the_cache_asks_again_once_its_period_is_over(fake_control_plane):
    clock = Clock()
    made = []

    def factory():
        made.append(1)
        return sagemaker_client(fake_control_plane.url)

    cache = EndpointStatusCache(factory, "prod-dogbreed", ttl_seconds=10, clock=clock)
    assert made == []  # no client until the first question

    assert cache.current().status == "InService"
    fake_control_plane.control_plane.statuses["prod-dogbreed"] = "Updating"
    clock.now += 9.9
    assert cache.current().status == "InService"
    assert len(fake_control_plane.control_plane.requests) == 1

    clock.now += 0.1
    assert cache.current().status == "Updating"
    assert len(fake_control_plane.control_plane.requests) == 2
    assert made == [1]


def test_the_cache_keeps_failures_too():
    clock = Clock()
    url = f"http://127.0.0.1:{closed_port()}"
    cache = EndpointStatusCache(lambda: sagemaker_client(url), "prod-dogbreed", ttl_seconds=5, clock=clock)

    first = cache.current()
    clock.now += 4
    assert cache.current() is first
    assert first.status == "unreachable" and not first.serving
    assert first.reason == "EndpointConnectionError"


def test_an_invocation_that_cannot_connect_counts_until_the_period_ends_or_one_gets_an_answer(fake_control_plane):
    clock = Clock()
    cache = EndpointStatusCache(lambda: sagemaker_client(fake_control_plane.url), "test-dogbreed", clock=clock)
    with FakeEndpointServer(FakeEndpoint()) as endpoint_server:
        reachable = EndpointCaller(runtime_client(endpoint_server.url), "test-dogbreed")
        unreachable = EndpointCaller(runtime_client(f"http://127.0.0.1:{closed_port()}"), "test-dogbreed")
        cache.watch_invocations(reachable.client)
        cache.watch_invocations(unreachable.client)

        with pytest.raises(ApiError):
            unreachable.invoke({"image": "AAAA"})
        assert cache.current().status == "unreachable"
        clock.now += 10
        assert cache.current().status == "InService"

        with pytest.raises(ApiError):
            unreachable.invoke({"image": "AAAA"})
        assert cache.current().status == "unreachable"
        with pytest.raises(ApiError):  # the fake answers 400 (not an image): an answer all the same
            reachable.invoke({"image": "AAAA"})
        assert cache.current().status == "InService"


# -- the local front's control plane, in front of a real GET /ping -----------------------------------------------


def test_local_control_plane_says_in_service_while_ping_answers_200():
    with FakeEndpointServer(FakeEndpoint()) as endpoint_server, LocalControlPlane(endpoint_server.url, "local-dogbreed") as cp:
        described = sagemaker_client(cp.url).describe_endpoint(EndpointName="local-dogbreed")

    assert described["EndpointStatus"] == "InService"
    assert described["EndpointArn"] == "arn:aws:sagemaker:us-east-1:000000000000:endpoint/local-dogbreed"
    assert "FailureReason" not in described


def test_local_control_plane_says_failed_when_ping_answers_another_status():
    with FakeEndpointServer(FakeEndpoint(ping_status=503)) as endpoint_server, LocalControlPlane(
        endpoint_server.url, "local-dogbreed"
    ) as cp:
        described = sagemaker_client(cp.url).describe_endpoint(EndpointName="local-dogbreed")

    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == f"GET {endpoint_server.url}/ping answered 503."


def test_local_control_plane_says_out_of_service_when_nothing_answers_ping():
    endpoint_url = f"http://127.0.0.1:{closed_port()}"
    with LocalControlPlane(endpoint_url, "local-dogbreed") as cp:
        described = sagemaker_client(cp.url).describe_endpoint(EndpointName="local-dogbreed")

    assert described["EndpointStatus"] == "OutOfService"
    assert described["FailureReason"] == f"Nothing answers GET {endpoint_url}/ping."


def test_local_control_plane_does_not_know_other_endpoints():
    with FakeEndpointServer(FakeEndpoint()) as endpoint_server, LocalControlPlane(endpoint_server.url, "local-dogbreed") as cp:
        with pytest.raises(ClientError) as raised:
            sagemaker_client(cp.url).describe_endpoint(EndpointName="prod-dogbreed")
        state = EndpointStatusCache(lambda: sagemaker_client(cp.url), "prod-dogbreed").current()

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not find endpoint" in raised.value.response["Error"]["Message"]
    assert state.status == "not_found"


def test_handler_health_follows_the_local_endpoint_server_up_and_down(invoke, event, reload_app):
    with FakeEndpointServer(FakeEndpoint()) as endpoint_server, LocalControlPlane(endpoint_server.url, "test-dogbreed") as cp:
        app = reload_app(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=endpoint_server.url, AWS_ENDPOINT_URL_SAGEMAKER=cp.url)
        up = invoke(event("health.json"))
        endpoint_server.endpoint.ping_status = 503  # the container reports it cannot serve
        app.endpoint_status.clear()  # the next check after the cache period
        down = invoke(event("health.json"))

    assert up[0] == 200 and up[2]["endpoint"] == {"name": "test-dogbreed", "status": "InService"}
    assert down[0] == 503 and down[2]["endpoint"] == {"name": "test-dogbreed", "status": "Failed"}
    assert "ping" not in json.dumps(down[2])  # FailureReason stays out of the answer
