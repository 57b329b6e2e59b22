"""How endpoint failures reach the API client: Stubber for SageMaker's errors, a real local server for the rest."""

from __future__ import annotations

import base64
import json
import socket

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from inference_lambda.endpoint import EndpointCaller, map_client_error
from inference_lambda.errors import ApiError

from lambda_fake_endpoint import FakeEndpoint, FakeEndpointServer, fake_predictions
from lambda_test_support import endpoint_response, json_event, raw_event

CONTRACT_ERROR = json.dumps(
    {"error": {"code": "invalid_image", "message": "The body is not a decodable image (truncated JPEG)."}}
)
LOG_STREAM_ARN = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/prod-dogbreed"
SINGLE = {
    "predictions": [{"breed": "Beagle", "probability": 0.8, "class_id": 15}],
    "is_dog": None,
    "dog_probability": None,
    "model": {"name": "m", "version": "v1"},
}


def model_error(stub: Stubber, status: int, original_message: str) -> None:
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f'Received client error ({status}) from primary with message "{original_message}". '
        f"See {LOG_STREAM_ARN} in account 123456789012 for more information.",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": status,
            "OriginalMessage": original_message,
            "LogStreamArn": LOG_STREAM_ARN,
        },
    )


# -- through the handler, SageMaker's errors stubbed -----------------------------------------------------


def test_endpoint_client_fault_keeps_its_status_code_and_message(invoke, stub, tiny_images):
    # A truncated JPEG passes the magic-byte check; the endpoint's decoder rejects it.
    model_error(stub, 400, CONTRACT_ERROR)

    status, _, body = invoke(raw_event(tiny_images["jpg"][:200]))

    assert status == 400
    assert body["error"] == {"code": "invalid_image", "message": "The body is not a decodable image (truncated JPEG)."}
    assert body["request_id"] == "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize("status", [413, 415, 422])
def test_other_endpoint_client_faults_keep_their_status(invoke, stub, tiny_images, status):
    model_error(stub, status, json.dumps({"error": {"code": "image_too_large", "message": "Over 40 megapixels."}}))

    got_status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert got_status == status
    assert body["error"] == {"code": "image_too_large", "message": "Over 40 megapixels."}


def test_toolkit_style_answer_keeps_the_json_and_drops_the_traceback(invoke, stub, tiny_images):
    # SageMaker's inference toolkit answers a BaseInferenceToolkitError with its message, a newline, a traceback.
    model_error(
        stub, 400, CONTRACT_ERROR + '\nTraceback (most recent call last):\n  File "/opt/ml/model/code/inference.py"'
    )

    status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == 400
    assert body["error"] == {"code": "invalid_image", "message": "The body is not a decodable image (truncated JPEG)."}
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize(
    "status,expected_status,expected_code",
    [(503, 503, "endpoint_unavailable"), (504, 504, "endpoint_timeout"), (500, 502, "endpoint_error")],
)
def test_container_5xx_statuses(invoke, stub, tiny_images, status, expected_status, expected_code):
    model_error(
        stub, status, json.dumps({"error": {"code": "model_not_loaded", "message": "The model is still loading."}})
    )

    got_status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert (got_status, body["error"]["code"]) == (expected_status, expected_code)


def test_endpoint_client_fault_outside_the_contract_is_not_echoed(invoke, stub, tiny_images):
    model_error(stub, 400, "Traceback (most recent call last): File /opt/ml/model/code/inference.py")

    status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == 400
    assert body["error"] == {"code": "invalid_image", "message": "The model endpoint rejected the image."}


@pytest.mark.parametrize(
    "error_code,http_status,message,expected_status,expected_code",
    [
        ("ModelError", 424, None, 502, "endpoint_error"),  # the container answered 500
        (
            "ValidationError",
            400,
            "Endpoint prod-dogbreed of account 123456789012 not found.",
            503,
            "endpoint_unavailable",
        ),
        (
            "ValidationError",
            400,
            'Could not find endpoint "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/x".',
            503,
            "endpoint_unavailable",
        ),
        ("ValidationError", 400, "Endpoint prod-dogbreed is not in service", 503, "endpoint_unavailable"),
        ("ValidationError", 400, "1 validation error detected: Value at 'body' failed", 502, "endpoint_error"),
        ("ModelNotReadyException", 429, "Model is loading", 503, "endpoint_unavailable"),
        ("ServiceUnavailable", 503, "Service unavailable", 503, "endpoint_unavailable"),
        ("InternalFailure", 500, "Internal failure", 502, "endpoint_error"),
        ("InternalDependencyException", 530, "Dependency failed", 502, "endpoint_error"),
        (
            "AccessDeniedException",
            403,
            "User arn:aws:sts::123456789012:assumed-role/x is not authorized",
            502,
            "endpoint_error",
        ),
    ],
)
def test_sagemaker_errors_map_to_5xx_without_leaking_details(
    invoke, stub, tiny_images, error_code, http_status, message, expected_status, expected_code
):
    if error_code == "ModelError":
        model_error(stub, 500, "Traceback: CUDA out of memory")
    else:
        stub.add_client_error(
            "invoke_endpoint", service_error_code=error_code, service_message=message, http_status_code=http_status
        )

    status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == expected_status
    assert body["error"]["code"] == expected_code
    text = json.dumps(body)
    assert "arn:" not in text and "123456789012" not in text and "Traceback" not in text


def test_model_error_with_a_non_client_status_is_502(invoke, stub, tiny_images):
    model_error(stub, 404, CONTRACT_ERROR)

    status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == 502
    assert body["error"]["code"] == "endpoint_error"


def test_throttling_is_retried_then_succeeds(invoke, stub, tiny_images, monkeypatch):
    import sys

    app_module = sys.modules["inference_lambda.app"]
    sleeps: list[float] = []
    monkeypatch.setattr(app_module.endpoint, "_sleep", sleeps.append)
    stub.add_client_error("invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400)
    stub.add_client_error("invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400)
    stub.add_response("invoke_endpoint", endpoint_response(SINGLE))

    status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == 200
    assert body["predictions"] == SINGLE["predictions"]
    assert len(sleeps) == 2 and all(0 <= s <= 1.0 for s in sleeps)


def test_throttling_that_persists_is_503_with_retry_after(invoke, stub, tiny_images, monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["inference_lambda.app"].endpoint, "_sleep", lambda s: None)
    for _ in range(3):
        stub.add_client_error("invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400)

    status, headers, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == 503
    assert body["error"]["code"] == "endpoint_unavailable"
    assert headers["Retry-After"] == "1"


def test_model_errors_and_5xx_are_not_retried(invoke, stub, tiny_images):
    model_error(stub, 500, "boom")
    # Stubber fails the test (assert_no_pending_responses / unexpected call) if a retry happened or not.

    status, _, _ = invoke(raw_event(tiny_images["jpg"]))

    assert status == 502


@pytest.mark.parametrize(
    "answer,message",
    [
        ({"predictions": "nope"}, "unexpected response"),
        ({"model": {}}, "unexpected response"),
    ],
)
def test_endpoint_answer_of_the_wrong_shape_is_502(invoke, stub, tiny_images, answer, message):
    stub.add_response("invoke_endpoint", endpoint_response(answer))

    status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == 502
    assert message in body["error"]["message"]


def test_batch_answer_with_the_wrong_number_of_results_is_502(invoke, stub, tiny_images):
    stub.add_response("invoke_endpoint", endpoint_response({"results": [{}], "model": {}}))
    image = base64.b64encode(tiny_images["jpg"]).decode()

    status, _, body = invoke(json_event({"images": [image, image]}))

    assert status == 502
    assert body["error"]["code"] == "endpoint_error"


# -- EndpointCaller on its own ----------------------------------------------------------------------------


@pytest.fixture
def runtime_client(lambda_env):
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


def test_no_retry_when_the_lambda_has_no_time_left(runtime_client):
    sleeps: list[float] = []
    caller = EndpointCaller(
        runtime_client, "e", max_attempts=5, read_timeout_seconds=10, sleep=sleeps.append, jitter=lambda: 1.0
    )
    with Stubber(runtime_client) as stub:
        stub.add_client_error("invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(ApiError) as raised:
            caller.invoke({"image": "x"}, remaining_seconds=lambda: 9.0)
    assert raised.value.code == "endpoint_unavailable"
    assert sleeps == []


def test_backoff_grows_exponentially_and_is_capped(runtime_client):
    sleeps: list[float] = []
    caller = EndpointCaller(
        runtime_client,
        "e",
        max_attempts=6,
        backoff_base_seconds=0.1,
        backoff_max_seconds=0.5,
        sleep=sleeps.append,
        jitter=lambda: 1.0,
    )
    with Stubber(runtime_client) as stub:
        for _ in range(6):
            stub.add_client_error("invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(ApiError):
            caller.invoke({"image": "x"})
    assert sleeps == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_map_client_error_never_returns_sagemaker_text():
    from botocore.exceptions import ClientError

    error = ClientError(
        {"Error": {"Code": "Weird", "Message": "account 123456789012 arn:aws:iam::123456789012:role/x"}},
        "InvokeEndpoint",
    )
    mapped = map_client_error(error)
    assert (mapped.status, mapped.code) == (502, "endpoint_error")
    assert "123456789012" not in mapped.message


# -- real HTTP to a local server on the runtime path --------------------------------------------------------


@pytest.fixture
def handler_against(reload_app):
    """Re-import the handler with its sagemaker-runtime client pointed at a local server, as dogapi-local does."""

    def point(url: str, **env: str):
        return reload_app(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=url, **env)

    return point


@pytest.mark.parametrize("wrap_errors", [True, False], ids=["sagemaker-envelope", "raw-container-error"])
def test_real_http_success_and_client_fault(invoke, handler_against, tiny_images, wrap_errors):
    with FakeEndpointServer(FakeEndpoint(wrap_errors=wrap_errors)) as server:
        handler_against(server.url)

        status, _, body = invoke(raw_event(tiny_images["jpg"], query={"top_k": ["4"]}))
        assert status == 200
        assert body == {
            **fake_predictions(tiny_images["jpg"], 4),
            "model": {"name": "fake-endpoint", "version": "2026-11-21T12:00:00Z"},
            "request_id": "11111111-1111-4111-8111-111111111111",
        }
        sent = server.endpoint.requests[-1]
        assert sent["path"] == "/endpoints/test-dogbreed/invocations"
        assert sent["headers"]["content-type"] == "application/json"
        assert sent["headers"]["accept"] == "application/json"
        assert json.loads(sent["body"]) == {"image": base64.b64encode(tiny_images["jpg"]).decode(), "top_k": 4}

        status, _, body = invoke(raw_event(tiny_images["jpg"][:-2]))  # no EOI marker: truncated
        assert status == 400
        assert body["error"] == {
            "code": "invalid_image",
            "message": "The body is not a decodable image (truncated JPEG).",
        }


def test_real_http_container_crash_is_502(invoke, handler_against, tiny_images):
    with FakeEndpointServer(FakeEndpoint(force_status=500, wrap_errors=False)) as server:
        handler_against(server.url)
        status, _, body = invoke(raw_event(tiny_images["jpg"]))
    assert status == 502
    assert "Traceback" not in json.dumps(body)


def test_real_http_unknown_endpoint_is_503(invoke, handler_against, tiny_images):
    with FakeEndpointServer(FakeEndpoint(endpoint_name="another-endpoint")) as server:
        handler_against(server.url)
        status, _, body = invoke(raw_event(tiny_images["jpg"]))
    assert status == 503
    assert body["error"]["code"] == "endpoint_unavailable"


def test_real_http_read_timeout_is_504(invoke, handler_against, tiny_images):
    with FakeEndpointServer(FakeEndpoint(delay_seconds=1.5)) as server:
        handler_against(server.url, ENDPOINT_TIMEOUT_SECONDS="0.3")
        status, _, body = invoke(raw_event(tiny_images["jpg"]))
        assert len(server.endpoint.requests) == 1  # a timeout is not retried
    assert status == 504
    assert body["error"] == {"code": "endpoint_timeout", "message": "The model endpoint did not answer within 0.3 s."}


def test_real_http_nothing_listening_is_503(invoke, handler_against, tiny_images):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    handler_against(f"http://127.0.0.1:{closed_port}", ENDPOINT_CONNECT_TIMEOUT_SECONDS="0.5")

    status, _, body = invoke(raw_event(tiny_images["jpg"]))

    assert status == 503
    assert body["error"] == {"code": "endpoint_unavailable", "message": "The model endpoint cannot be reached."}


def test_client_is_configured_without_botocore_retries(app_module):
    import sys

    config: Config = sys.modules["inference_lambda.app"].sagemaker_runtime.meta.config
    assert config.retries["total_max_attempts"] == 1
    assert config.read_timeout == 10.0 and config.connect_timeout == 2.0


# -- moto's SageMaker runtime emulation, over real HTTP -------------------------------------------------------


def test_against_motos_sagemaker_runtime(invoke, handler_against, tiny_images):
    """The handler, unchanged, against moto's runtime (signed requests, AWS wire format); moto answers what it is told."""
    requests = pytest.importorskip("requests")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        configured = requests.post(
            url + "/moto-api/static/sagemaker/endpoint-results",
            json={
                "results": [
                    {"Body": json.dumps(SINGLE), "ContentType": "application/json"},
                    {"Body": "<html>not json</html>", "ContentType": "text/html"},
                ]
            },
            timeout=10,
        )
        assert configured.status_code == 201
        handler_against(url)

        status, _, body = invoke(raw_event(tiny_images["jpg"]))
        assert status == 200
        assert body == {**SINGLE, "request_id": "11111111-1111-4111-8111-111111111111"}

        status, _, body = invoke(raw_event(tiny_images["png"], "image/png"))
        assert status == 502
        assert body["error"] == {
            "code": "endpoint_error",
            "message": "The model endpoint returned a response that is not JSON.",
        }
    finally:
        server.stop()


# -- raw image bytes for a serverless endpoint (ENDPOINT_PAYLOAD=raw) ------------------------------------


def test_raw_payload_sends_the_image_bytes_with_top_k_in_custom_attributes(reload_app, invoke, tiny_images):
    app = reload_app(ENDPOINT_PAYLOAD="raw")
    with Stubber(app.sagemaker_runtime) as stub:
        stub.add_response(
            "invoke_endpoint",
            endpoint_response(SINGLE),
            expected_params={
                "EndpointName": app.settings.endpoint_name,
                "Body": tiny_images["jpg"],
                "ContentType": "application/x-image",
                "Accept": "application/json",
                "CustomAttributes": "top_k=3",
            },
        )
        status, _, body = invoke(raw_event(tiny_images["jpg"], query={"top_k": ["3"]}))
        stub.assert_no_pending_responses()

    assert status == 200
    assert body["predictions"][0]["breed"] == "Beagle"


def test_raw_payload_keeps_a_4_mib_image_under_a_4_mb_endpoint_limit():
    # A 4 MiB image is 5.6 MB as base64 JSON, over a serverless endpoint's 4 MB; raw it is 4,194,304 bytes.
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    caller = EndpointCaller(client, "unit", max_payload_bytes=4 * 1024 * 1024)
    image = b"\xff\xd8\xff" + b"\0" * (4 * 1024 * 1024 - 3)
    with Stubber(client) as stub:
        stub.add_response("invoke_endpoint", endpoint_response(SINGLE))
        assert caller.invoke_image(image, top_k=5).body["model"] == SINGLE["model"]

    with pytest.raises(ApiError) as raised:
        caller.invoke({"image": base64.b64encode(image).decode("ascii"), "top_k": 5})
    assert raised.value.code == "payload_too_large"


def test_unknown_endpoint_payload_is_a_configuration_error():
    from inference_lambda.settings import ConfigError, Settings

    with pytest.raises(ConfigError, match="ENDPOINT_PAYLOAD"):
        Settings.from_env({"ENDPOINT_NAME": "unit", "ENDPOINT_PAYLOAD": "xml"})
