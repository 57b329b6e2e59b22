"""Regression tests for hostile input found by fuzzing (issue 13), both payload formats, one media-type list."""

from __future__ import annotations

import base64
import json
import re

import pytest

from lambda_fake_endpoint import FakeEndpoint, FakeEndpointServer, fake_predictions
from lambda_test_support import REPO_ROOT, SERVICE_DIR, json_event, raw_event

from inference_lambda.predict_request import BINARY_MEDIA_TYPES, RAW_IMAGE_TYPES, TOP_K_TEXT

MEDIA_TYPES = json.loads((SERVICE_DIR / "src" / "inference_lambda" / "media_types.json").read_text())


@pytest.fixture
def on_fake_endpoint(reload_app):
    with FakeEndpointServer(FakeEndpoint()) as server:

        def point(**env: str):
            reload_app(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=server.url, **env)
            return server

        yield point


# -- 1: deep JSON ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("document", ["[" * 990 + "]" * 990, '{"image": ' + "[" * 5000 + "]" * 5000 + "}"])
def test_deeply_nested_json_is_invalid_json_not_500(invoke, document):
    status, _, body = invoke(json_event(document))
    assert status == 400
    assert body["error"] == {
        "code": "invalid_json",
        "message": "The request body is nested too deeply to be a prediction request.",
    }


# -- 3: one strict parser for top_k -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "٣", "３", "9" * 5000, "+-5", "--0", "1_0", "0x3", "3.0", "", "\x00"])
def test_top_k_query_values_that_are_not_plain_integers_are_422(invoke, tiny_images, value):
    status, _, body = invoke(raw_event(tiny_images["jpg"], query={"top_k": [value]}))
    assert status == 422, body
    assert body["error"]["code"] == "invalid_parameter"
    assert len(body["error"]["message"]) < 120  # a 5000-digit value is not echoed back


@pytest.mark.parametrize("value", [1e300, -(10**30), 3.5, True, [[3]], {"k": 3}, "3"])
def test_top_k_body_values_that_are_not_in_range_integers_are_422_with_a_short_message(invoke, tiny_images, value):
    document = {"image": base64.b64encode(tiny_images["jpg"]).decode(), "top_k": value}
    status, _, body = invoke(json_event(document))
    assert status == 422 and body["error"]["code"] == "invalid_parameter"
    assert len(body["error"]["message"]) < 80


def test_top_k_query_accepts_plain_integers(invoke, on_fake_endpoint, tiny_images):
    on_fake_endpoint()
    for value, expected in (("3", 3), (" +4 ", 4), ("010", 10)):
        status, _, body = invoke(raw_event(tiny_images["jpg"], query={"top_k": [value]}))
        assert status == 200 and len(body["predictions"]) == expected


def test_top_k_text_grammar_is_the_endpoints():
    # The API and the endpoint accept the same top_k text (the packages share no code: the Lambda has no torch).
    decoding = (REPO_ROOT / "services/trainer/src/dogbreed/serving/decoding.py").read_text()
    endpoint_pattern = re.search(r'TOP_K_TEXT = re\.compile\((r"[^"]*")', decoding).group(1)
    assert eval(endpoint_pattern) == TOP_K_TEXT.pattern  # noqa: S307 - a raw string literal from our own source
    assert "re.ASCII" in decoding.split("TOP_K_TEXT = ", 1)[1].splitlines()[0]


def test_body_with_lone_surrogates_is_400(invoke):
    status, _, body = invoke(json_event('{"image": "\ud800"}'))
    assert status == 400 and body["error"]["code"] == "invalid_request"


# -- 6: REST (1.0) and HTTP API (2.0) events through one router ------------------------------------------------


def test_http_api_raw_image(invoke, event, on_fake_endpoint, tiny_images):
    server = on_fake_endpoint()
    result_status, headers, body = invoke(event("v2_predict_raw_jpeg.json"))
    assert result_status == 200
    assert body == {
        **fake_predictions(tiny_images["jpg"], 3),
        "model": {"name": "fake-endpoint", "version": "2026-11-21T12:00:00Z"},
        "request_id": "Xyz12AbCDEFabc=",
    }
    assert headers["X-Request-Id"] == "Xyz12AbCDEFabc="
    sent = json.loads(server.endpoint.requests[-1]["body"])
    assert base64.b64decode(sent["image"]) == tiny_images["jpg"]


def test_http_api_result_has_the_2_0_shape(app_module, event, lambda_context, on_fake_endpoint):
    import sys

    on_fake_endpoint()
    result = sys.modules["inference_lambda.app"].handler(event("v2_health.json"), lambda_context())
    assert "multiValueHeaders" not in result  # format 2.0 has none: API Gateway would drop them
    assert result["statusCode"] == 200
    assert result["headers"]["Content-Type"] == "application/json"
    assert json.loads(result["body"])["status"] == "ok"


def test_http_api_json_image_and_named_stage(invoke, event, on_fake_endpoint, tiny_images):
    on_fake_endpoint()
    status, _, body = invoke(event("v2_predict_json_image.json"))
    assert status == 200 and len(body["predictions"]) == 2
    status, _, body = invoke(event("v2_predict_named_stage.json"))  # rawPath /prod/predict
    assert status == 200 and len(body["predictions"]) == 5


def test_http_api_errors_come_from_the_same_handlers(invoke, event, on_fake_endpoint):
    on_fake_endpoint()
    status, headers, body = invoke(event("v2_health.json", routeKey="$default") | {"rawPath": "/nope"})
    assert status == 404 and body["error"]["code"] == "not_found"
    wrong_method = event("v2_health.json")
    wrong_method["requestContext"]["http"]["method"] = "DELETE"
    status, headers, body = invoke(wrong_method)
    assert status == 405 and headers["Allow"] == "GET"
    deep = event("v2_predict_json_image.json", body="[" * 990 + "]" * 990)
    status, _, body = invoke(deep)
    assert status == 400 and body["error"]["code"] == "invalid_json"


def test_custom_domain_base_path_routes(invoke, event, on_fake_endpoint):
    # REST: `resource` is the route without the base path, so no configuration is needed.
    on_fake_endpoint()
    status, _, body = invoke(event("predict_custom_domain.json"))
    assert status == 200, body
    # HTTP API with a $default route: rawPath keeps the mapping's base path, named by API_BASE_PATHS.
    on_fake_endpoint(API_BASE_PATHS="/dogs")
    status, _, body = invoke(event("v2_predict_custom_domain.json"))
    assert status == 200, body


def test_custom_domain_base_path_is_not_guessed(invoke, event, on_fake_endpoint):
    on_fake_endpoint()
    status, _, body = invoke(event("v2_predict_custom_domain.json"))
    assert status == 404 and body["error"]["code"] == "not_found"


# -- 7: the accepted raw types are the binary media types, everywhere ----------------------------------------------


def test_one_list_of_raw_image_types():
    from inference_lambda.local_front import DEFAULT_BINARY_MEDIA_TYPES

    assert RAW_IMAGE_TYPES == set(MEDIA_TYPES["image"])
    assert tuple(BINARY_MEDIA_TYPES) == tuple(MEDIA_TYPES["image"]) == tuple(DEFAULT_BINARY_MEDIA_TYPES)
    assert "application/x-image" in RAW_IMAGE_TYPES


def test_terraform_binary_media_types_are_the_same_list():
    variables = (REPO_ROOT / "terraform/modules/api/variables.tf").read_text()
    block = re.search(r'variable "binary_media_types" \{(.*?)\n\}', variables, re.S).group(1)
    default = re.search(r"default\s*=\s*(\[[^\]]*\])", block).group(1)
    assert json.loads(default) == MEDIA_TYPES["image"]


def test_x_image_jpeg_arrives_intact_through_the_front(invoke, on_fake_endpoint, tiny_images):
    # The front builds the event as API Gateway does with the default binary media types.
    from inference_lambda.local_front import build_proxy_event

    on_fake_endpoint()
    for media_type in MEDIA_TYPES["image"]:
        proxy_event = build_proxy_event(
            method="POST",
            path="/predict",
            query_items=[],
            header_items=[("content-type", media_type)],
            body=tiny_images["jpg"],
            source_ip="127.0.0.1",
        )
        assert proxy_event["isBase64Encoded"] is True
        status, _, body = invoke(proxy_event)
        assert status == 200, (media_type, body)


def test_openapi_lists_every_accepted_raw_type():
    document = json.loads((SERVICE_DIR / "src" / "inference_lambda" / "openapi.json").read_text())
    content = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(MEDIA_TYPES["image"]) - {"image/jpg"} <= set(content)  # image/jpg: a common misspelling, accepted
