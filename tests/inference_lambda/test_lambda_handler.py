"""The handler end to end on API Gateway REST proxy events (fixtures in events/), endpoint stubbed with Stubber."""

from __future__ import annotations

import base64
import json
import sys

import pytest

from lambda_test_support import endpoint_response, json_event, load_event, raw_event

SINGLE = {
    "predictions": [
        {"breed": "Labrador retriever", "probability": 0.912, "class_id": 95},
        {"breed": "Golden retriever", "probability": 0.05, "class_id": 76},
        {"breed": "Beagle", "probability": 0.01, "class_id": 15},
    ],
    "is_dog": True,
    "dog_probability": 0.99,
    "model": {"name": "resnet50-dogimages", "version": "2026-11-21T12:00:00Z"},
}
ONE_RESULT = {k: v for k, v in SINGLE.items() if k != "model"}


def expected_call(payload: dict) -> dict:
    return {
        "EndpointName": "test-dogbreed",
        "Body": json.dumps(payload, separators=(",", ":")).encode(),
        "ContentType": "application/json",
        "Accept": "application/json",
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- the fixtures as API Gateway sends them --------------------------------------------------------------


def test_raw_jpeg_body_is_sent_as_json_and_the_answer_passed_through(invoke, stub, event, tiny_images):
    stub.add_response(
        "invoke_endpoint", endpoint_response(SINGLE), expected_call({"image": b64(tiny_images["jpg"]), "top_k": 3})
    )

    status, headers, body = invoke(event("predict_raw_jpeg.json"))

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body == {**SINGLE, "request_id": "11111111-1111-4111-8111-111111111111"}
    assert headers["X-Request-Id"] == "11111111-1111-4111-8111-111111111111"


def test_json_image_with_mixed_case_header_and_charset(invoke, stub, event, tiny_images):
    stub.add_response(
        "invoke_endpoint", endpoint_response(SINGLE), expected_call({"image": b64(tiny_images["jpg"]), "top_k": 2})
    )

    status, _, body = invoke(event("predict_json_image.json"))

    assert status == 200
    assert body["predictions"] == SINGLE["predictions"]
    assert body["request_id"] == "22222222-2222-4222-8222-222222222222"


def test_json_batch_with_multi_value_headers(invoke, stub, event, tiny_images):
    image = b64(tiny_images["jpg"])
    answer = {"results": [ONE_RESULT, ONE_RESULT], "model": SINGLE["model"]}
    stub.add_response(
        "invoke_endpoint", endpoint_response(answer), expected_call({"images": [image, image], "top_k": 5})
    )

    status, _, body = invoke(event("predict_json_batch.json"))

    assert status == 200
    assert body == {**answer, "request_id": "33333333-3333-4333-8333-333333333333"}


def test_json_body_that_api_gateway_base64_encoded(invoke, stub, event, tiny_images):
    stub.add_response(
        "invoke_endpoint", endpoint_response(SINGLE), expected_call({"image": b64(tiny_images["jpg"]), "top_k": 5})
    )

    status, _, body = invoke(event("predict_json_base64_encoded.json"))

    assert status == 200
    assert body["request_id"] == "44444444-4444-4444-8444-444444444444"


@pytest.mark.parametrize(
    "kind,content_type", [("png", "image/png"), ("webp", "image/webp"), ("jpg", "application/octet-stream")]
)
def test_raw_png_webp_and_octet_stream(invoke, stub, tiny_images, kind, content_type):
    stub.add_response(
        "invoke_endpoint", endpoint_response(SINGLE), expected_call({"image": b64(tiny_images[kind]), "top_k": 5})
    )

    status, _, _ = invoke(raw_event(tiny_images[kind], content_type))

    assert status == 200


def test_health_reports_the_endpoint_and_nothing_secret(invoke, event):
    status, headers, body = invoke(event("health.json"))

    assert status == 200
    assert body == {
        "status": "ok",
        "endpoint_name": "test-dogbreed",
        "endpoint": {"name": "test-dogbreed", "status": "InService"},
        "version": "0.1.0",
        "request_id": "88888888-8888-4888-8888-888888888888",
    }
    text = json.dumps(body) + json.dumps(headers)
    assert "arn:" not in text and "testing" not in text


def test_openapi_document_is_served(invoke, event):
    status, headers, body = invoke(event("health.json", path="/openapi.json", resource="/openapi.json"))

    assert status == 200
    assert body["openapi"].startswith("3.")
    assert set(body["paths"]) == {"/", "/predict", "/health", "/openapi.json"}


# -- 4xx from the API itself ---------------------------------------------------------------------------


def test_wrong_method_is_405_with_allow(invoke, event):
    status, headers, body = invoke(event("get_predict.json"))

    assert status == 405
    assert headers["Allow"] == "POST"
    assert body == {
        "error": {"code": "method_not_allowed", "message": "GET is not allowed on /predict; use POST."},
        "request_id": "99999999-9999-4999-8999-999999999999",
    }


def test_unknown_path_is_404(invoke, event):
    status, _, body = invoke(event("unknown_path.json"))

    assert status == 404
    assert body["error"]["code"] == "not_found"


def test_form_encoded_body_is_415(invoke, event):
    status, _, body = invoke(event("predict_form_encoded.json"))

    assert status == 415
    assert body["error"]["code"] == "unsupported_media_type"
    assert "application/x-www-form-urlencoded" in body["error"]["message"]


def test_missing_content_type_is_415(invoke, event):
    loaded = event("predict_raw_jpeg.json")
    del loaded["headers"]["content-type"]
    del loaded["multiValueHeaders"]["content-type"]

    status, _, body = invoke(loaded)

    assert status == 415
    assert "Content-Type none" in body["error"]["message"]


def test_binary_body_without_base64_encoding_is_400_invalid_image(invoke, event):
    # The API lacked the binary media type, so API Gateway passed the PNG as (mangled) text.
    status, _, body = invoke(event("predict_raw_png_not_base64.json"))

    assert status == 400
    assert body["error"] == {"code": "invalid_image", "message": "The request body is not a JPEG, PNG or WebP image."}


@pytest.mark.parametrize(
    "document,code,message_part",
    [
        ("{not json", "invalid_json", "not valid JSON (line 1, column 2)"),
        ("", "invalid_json", "empty"),
        ("[1, 2]", "invalid_request", "must be an object"),
        ({"imgae": "x"}, "invalid_request", "Unknown field(s) 'imgae'"),
        ({}, "invalid_request", "none was given"),
        ({"image": "x", "url": "https://a.example/x.jpg"}, "invalid_request", "got image and url"),
        ({"image": 5}, "invalid_request", "must be a base64 string"),
        ({"images": []}, "invalid_request", "non-empty list"),
        ({"images": "abc"}, "invalid_request", "non-empty list"),
        ({"url": ""}, "invalid_request", "non-empty string"),
        ({"image": "!!!not base64!!!"}, "invalid_base64", "not valid base64"),
        ({"image": "abcde"}, "invalid_base64", "not valid base64"),
        ({"image": b64(b"hello, this is text")}, "invalid_image", "not a JPEG, PNG or WebP"),
        ({"image": ""}, "invalid_image", "is empty"),
    ],
)
def test_bad_json_bodies_are_400(invoke, document, code, message_part):
    status, _, body = invoke(json_event(document))

    assert status == 400
    assert body["error"]["code"] == code
    assert message_part in body["error"]["message"]


def test_bad_image_in_a_batch_names_its_index(invoke, tiny_images):
    status, _, body = invoke(json_event({"images": [b64(tiny_images["jpg"]), b64(b"GIF89a....")]}))

    assert status == 400
    assert body["error"] == {"code": "invalid_image", "message": "images[1] is not a JPEG, PNG or WebP image."}


def test_empty_raw_body_is_400(invoke):
    loaded = raw_event(b"")
    loaded["body"] = None
    loaded["isBase64Encoded"] = False

    status, _, body = invoke(loaded)

    assert status == 400
    assert body["error"] == {"code": "invalid_image", "message": "The request body is empty."}


@pytest.mark.parametrize(
    "query,document,message_part",
    [
        ({"top_k": ["0"]}, None, "from 1 to 10, got 0"),
        ({"top_k": ["11"]}, None, "from 1 to 10, got 11"),
        ({"top_k": ["three"]}, None, "must be an integer"),
        ({"top_k": ["2", "3"]}, None, "more than once"),
        (None, {"top_k": True}, "must be an integer"),
        (None, {"top_k": 2.5}, "must be an integer"),
        (None, {"top_k": -1}, "got -1"),
        ({"top_k": ["2"]}, {"top_k": 2}, "both in the query string and the body"),
    ],
)
def test_bad_top_k_is_422(invoke, tiny_images, query, document, message_part):
    body_doc = {"image": b64(tiny_images["jpg"]), **(document or {})}
    status, _, body = invoke(json_event(body_doc, query=query))

    assert status == 422
    assert body["error"]["code"] == "invalid_parameter"
    assert message_part in body["error"]["message"]


def test_bad_top_k_in_query_of_raw_upload_is_422(invoke, tiny_images):
    status, _, body = invoke(raw_event(tiny_images["jpg"], query={"top_k": ["99"]}))

    assert status == 422
    assert body["error"]["code"] == "invalid_parameter"


# -- 413 -----------------------------------------------------------------------------------------------


def test_image_over_the_size_limit_is_413(invoke, reload_app):
    reload_app(MAX_IMAGE_BYTES="1000")
    oversized = b"\xff\xd8\xff\xe0" + b"\0" * 1200

    status, _, body = invoke(raw_event(oversized))

    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert "1204 bytes; the limit is 1000 bytes" in body["error"]["message"]


def test_image_at_the_default_limit_fits_lambda_and_the_endpoint_and_one_byte_more_is_413(invoke, stub):
    from inference_lambda.local_front import LAMBDA_MAX_EVENT_BYTES
    from inference_lambda.settings import SAGEMAKER_MAX_PAYLOAD_BYTES, Settings

    limit = Settings(endpoint_name="x").max_image_bytes
    assert limit == 4 * 1024 * 1024
    at_limit = b"\xff\xd8\xff\xe0" + bytes(limit - 4)
    event = raw_event(at_limit)
    # On AWS the raw upload arrives base64-encoded inside the event, and goes on to the endpoint as base64 JSON:
    # both must stay under the 6 MB limits, or the largest accepted image could never be classified.
    assert len(json.dumps(event)) < LAMBDA_MAX_EVENT_BYTES
    call = expected_call({"image": b64(at_limit), "top_k": 5})
    assert len(call["Body"]) < SAGEMAKER_MAX_PAYLOAD_BYTES
    stub.add_response("invoke_endpoint", endpoint_response(SINGLE), call)

    status, _, body = invoke(event)

    assert status == 200
    assert body["predictions"] == SINGLE["predictions"]

    status, _, body = invoke(raw_event(at_limit + b"\0"))

    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert f"{limit + 1} bytes; the limit is {limit} bytes (4.0 MiB)" in body["error"]["message"]


def test_base64_image_over_the_limit_is_413_before_decoding(invoke, reload_app):
    reload_app(MAX_IMAGE_BYTES="1000")
    # Not even valid base64: the length alone decides, so no decode work is spent on it.
    status, _, body = invoke(json_event({"image": "A" * 2000 + "!"}))

    assert status == 413
    assert body["error"]["code"] == "payload_too_large"


def test_batch_over_the_limit_is_413(invoke, tiny_images):
    status, _, body = invoke(json_event({"images": [b64(tiny_images["jpg"])] * 9}))

    assert status == 413
    assert body["error"] == {
        "code": "batch_too_large",
        "message": "images holds 9 images; at most 8 are accepted per request.",
    }


def test_batch_over_the_endpoint_payload_limit_is_413(invoke, reload_app, tiny_images):
    reload_app(ENDPOINT_MAX_PAYLOAD_BYTES="2000")

    status, _, body = invoke(json_event({"images": [b64(tiny_images["jpg"])] * 3}))

    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert "accepts at most 2000 bytes" in body["error"]["message"]


# -- 500 ----------------------------------------------------------------------------------------------


def test_a_bug_is_500_with_a_generic_message_and_the_traceback_only_in_logs(invoke, event, monkeypatch, lambda_logs):
    app_module = sys.modules["inference_lambda.app"]

    def broken(**_):
        raise RuntimeError("secret detail at /var/task/inference_lambda/app.py")

    monkeypatch.setattr(app_module, "parse_predict_request", broken)

    status, _, body = invoke(event("predict_raw_jpeg.json"))

    assert status == 500
    assert body == {
        "error": {"code": "internal_error", "message": "Internal error. Quote the request_id when reporting it."},
        "request_id": "11111111-1111-4111-8111-111111111111",
    }
    errors = [line for line in lambda_logs() if line["level"] == "ERROR"]
    assert errors[0]["message"] == "Unhandled error"
    assert "Traceback" in errors[0]["exception"] and "secret detail" in errors[0]["exception"]
    assert errors[0]["correlation_id"] == "11111111-1111-4111-8111-111111111111"


# -- CORS ---------------------------------------------------------------------------------------------


def test_cors_preflight_and_headers_for_allowed_origins_only(invoke, event, reload_app):
    reload_app(ALLOWED_ORIGINS="https://dogs.example.com, https://admin.example.com")

    status, headers, _ = invoke(event("options_predict.json"))
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "https://dogs.example.com"
    assert "POST" in headers["Access-Control-Allow-Methods"]

    health = event("health.json")
    health["headers"] = {"Origin": "https://admin.example.com"}
    health["multiValueHeaders"] = {"Origin": ["https://admin.example.com"]}
    status, headers, _ = invoke(health)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "X-Request-Id" in headers["Access-Control-Expose-Headers"]

    health["headers"] = {"Origin": "https://evil.example.net"}
    health["multiValueHeaders"] = {"Origin": ["https://evil.example.net"]}
    status, headers, _ = invoke(health)
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers


def test_no_cors_headers_by_default(invoke, event):
    status, headers, _ = invoke(event("options_predict.json"))

    assert status == 405
    assert not any(name.startswith("Access-Control-") for name in headers)


# -- observability ------------------------------------------------------------------------------------


def test_metrics_in_emf_and_logs_with_request_id_but_no_image_data(
    invoke, stub, event, tiny_images, capfd, lambda_logs
):
    stub.add_response(
        "invoke_endpoint", endpoint_response(SINGLE), expected_call({"image": b64(tiny_images["jpg"]), "top_k": 3})
    )
    capfd.readouterr()

    invoke(event("predict_raw_jpeg.json"))

    emf = [json.loads(line) for line in capfd.readouterr().out.splitlines() if "ImagesClassified" in line]
    assert len(emf) == 1
    assert emf[0]["ImagesClassified"] == [1.0]
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DogBreedTest"
    names = {m["Name"] for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"ImagesClassified", "EndpointLatency", "RequestLatency"} <= names
    logs = [line for line in lambda_logs() if line["message"] == "Classified"]
    assert logs and logs[0]["correlation_id"] == "11111111-1111-4111-8111-111111111111"
    assert logs[0]["images"] == 1 and logs[0]["top_k"] == 3 and logs[0]["source"] == "raw"
    everything = "\n".join(json.dumps(line) for line in lambda_logs()) + json.dumps(emf)
    assert b64(tiny_images["jpg"])[:40] not in everything


def test_client_errors_are_counted(invoke, event, capfd):
    capfd.readouterr()

    invoke(event("predict_form_encoded.json"))

    out = capfd.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if '"ClientErrors"' in line and "_aws" in line]
    assert emf and emf[0]["ClientErrors"] == [1.0]


def test_fixture_events_follow_the_rest_v1_format():
    required = {
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    }
    context_keys = {
        "resourceId",
        "resourcePath",
        "httpMethod",
        "requestId",
        "stage",
        "path",
        "identity",
        "accountId",
        "apiId",
        "requestTimeEpoch",
        "protocol",
        "domainName",
    }
    from lambda_test_support import EVENTS

    names = sorted(p.name for p in EVENTS.glob("*.json") if not p.name.startswith("v2_"))  # v2_*: HTTP API
    assert len(names) >= 10
    for name in names:
        loaded = load_event(name)
        assert set(loaded) == required, name
        assert context_keys <= set(loaded["requestContext"]), name
        if loaded["headers"]:
            for header, value in loaded["headers"].items():
                assert loaded["multiValueHeaders"][header][-1] == value, (name, header)
        if loaded["isBase64Encoded"]:
            base64.b64decode(loaded["body"], validate=True)
