"""GET /: the web page is served by the handler as text/html with a hash-based CSP; the local front's
API key and stage-path emulation. The page itself is driven in a real browser by tests/e2e/test_web_page.py."""

from __future__ import annotations

import base64
import hashlib
import re
import sys

import pytest
import requests
from inference_lambda.local_front import FORBIDDEN_MESSAGE, InProcessInvoker, create_app

from lambda_fake_endpoint import FakeEndpoint, FakeEndpointServer
from test_lambda_local_front import RunningFront


def page_event(event, method: str = "GET"):
    return event("health.json", path="/", resource="/", httpMethod=method)


def headers_of(result) -> dict[str, str]:
    # Powertools answers REST events with multiValueHeaders; API Gateway merges both maps.
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.setdefault(name.lower(), values[-1])
    return headers


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_page_is_html_text_not_base64(app_module, event, lambda_context):
    result = sys.modules["inference_lambda.app"].handler(page_event(event), lambda_context())

    assert result["statusCode"] == 200
    assert result.get("isBase64Encoded") in (False, None)  # API Gateway must pass it through as text
    headers = headers_of(result)
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert result["body"].startswith("<!doctype html>")
    assert 'name="viewport"' in result["body"]


def test_csp_allows_exactly_the_inline_script_and_style(app_module, event, lambda_context):
    result = sys.modules["inference_lambda.app"].handler(page_event(event), lambda_context())
    headers = headers_of(result)
    csp = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    body = result["body"]
    scripts = re.findall(r"<script>(.*?)</script>", body, re.S)
    styles = re.findall(r"<style>(.*?)</style>", body, re.S)

    assert len(scripts) == 1 and len(styles) == 1
    assert csp["script-src"] == sha256_source(scripts[0])
    assert csp["style-src"] == sha256_source(styles[0])
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    # Nothing secret and no absolute API address in the page: it calls predict relative to itself.
    assert "x-api-key" in body and "execute-api" not in body and "127.0.0.1" not in body


def test_post_to_the_page_is_405(invoke, event):
    status, headers, body = invoke(page_event(event, "POST"))

    assert status == 405
    assert headers["Allow"] == "GET"
    assert body["error"]["code"] == "method_not_allowed"


@pytest.fixture
def keyed_front(reload_app):
    with FakeEndpointServer(FakeEndpoint()) as endpoint_server:
        reload_app(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=endpoint_server.url)
        app = create_app(InProcessInvoker(), api_key="s3cret", base_path="/prod")
        with RunningFront(app) as running:
            yield running


def test_front_requires_the_key_everywhere_but_the_page(keyed_front, tiny_images):
    base = keyed_front.url + "/prod"
    image = {"image": base64.b64encode(tiny_images["jpg"]).decode()}

    for url in (base, base + "/"):
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for key in (None, "wrong"):
        refused = requests.post(base + "/predict", json=image, headers={"x-api-key": key} if key else {}, timeout=10)
        assert refused.status_code == 403
        assert refused.json()["error"] == {"code": "forbidden", "message": FORBIDDEN_MESSAGE}
    assert requests.get(base + "/health", timeout=10).status_code == 403
    accepted = requests.post(base + "/predict", json=image, headers={"x-api-key": "s3cret"}, timeout=10)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["predictions"]


def test_front_with_a_base_path_serves_nothing_outside_it(keyed_front):
    outside = requests.get(keyed_front.url + "/predict", timeout=10)

    assert outside.status_code == 404
    assert outside.json()["error"]["code"] == "not_found"
