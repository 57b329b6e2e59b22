"""DogClient against a real HTTP server on 127.0.0.1: success, every error status, retries, timeouts."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import pytest
from dogclient import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    AuthError,
    BreedScore,
    ConfigError,
    DogClient,
    ImageError,
    Prediction,
)
from dogclient.client import parse_retry_after
from dogclient_fakes import FAKE_MODEL, FakeApi, make_image


class Sleeps(list):
    """Stands in for time.sleep: records each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


def client_for(api, sleeps=None, **kwargs) -> DogClient:
    url = api if isinstance(api, str) else api.url
    return DogClient(url, kwargs.pop("api_key", None), sleep=sleeps if sleeps is not None else time.sleep, **kwargs)


def test_predict_sends_base64_image_and_parses_typed_result(fake_api):
    data = make_image(size=(120, 90))
    prediction = client_for(fake_api, api_key="secret-key").predict(data, top_k=3)

    assert prediction == Prediction(
        breeds=[
            BreedScore("Labrador retriever", 0.912, 95),
            BreedScore("Golden retriever", 0.051, 76),
            BreedScore("Chesapeake bay retriever", 0.02, 40),
        ],
        is_dog=True,
        dog_probability=0.99,
        model_name=FAKE_MODEL["name"],
        model_version=FAKE_MODEL["version"],
        request_id="req-1",
    )
    assert prediction.top == BreedScore("Labrador retriever", 0.912, 95)
    [request] = fake_api.requests
    assert (request.method, request.path) == ("POST", "/predict")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-api-key"] == "secret-key"
    assert request.headers["user-agent"].startswith("dogclient/")
    body = request.json()
    assert body == {"image": body["image"], "top_k": 3}
    assert base64.b64decode(body["image"]) == data


def test_no_key_no_header(fake_api):
    client_for(fake_api).predict(make_image())
    assert "x-api-key" not in fake_api.requests[0].headers


def test_api_url_with_stage_path_and_trailing_slash(fake_api):
    client = DogClient(fake_api.url + "/v1/")
    assert client.api_url == fake_api.url + "/v1"
    with pytest.raises(ApiError) as caught:  # the fake has no /v1 routes: proves the path is kept
        client.predict(make_image())
    assert caught.value.status == 404
    assert fake_api.requests[0].path == "/v1/predict"


def test_predict_url_sends_the_url(fake_api):
    prediction = client_for(fake_api).predict_url("https://example.com/dog.jpg", top_k=1)
    assert [score.breed for score in prediction.breeds] == ["Labrador retriever"]
    assert fake_api.requests[0].json() == {"url": "https://example.com/dog.jpg", "top_k": 1}


def test_null_is_dog_is_kept_as_none(fake_api):
    fake_api.is_dog = None
    fake_api.dog_probability = None
    prediction = client_for(fake_api).predict(make_image())
    assert (prediction.is_dog, prediction.dog_probability) == (None, None)
    assert prediction.to_dict()["is_dog"] is None


def test_health(fake_api):
    assert client_for(fake_api).health() == {
        "status": "ok",
        "endpoint_name": "local-dogbreed",
        "version": "0.1.0",
        "request_id": "req-1",
    }
    assert (fake_api.requests[0].method, fake_api.requests[0].path) == ("GET", "/health")


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "invalid_image", "The body is not a decodable image (truncated JPEG)."),
        (404, "not_found", "No route."),
        (413, "payload_too_large", "The image is over 4 MiB decoded."),
        (415, "unsupported_media_type", "Send application/json."),
        (422, "invalid_parameter", "top_k must be from 1 to 10, got 99."),
        (500, "internal_error", "Something broke."),
    ],
)
def test_client_faults_and_500_raise_the_apis_error_without_retry(fake_api, sleeps, status, code, message):
    fake_api.queue(status, {"error": {"code": code, "message": message}, "request_id": "abc-123"})
    with pytest.raises(ApiError) as caught:
        client_for(fake_api, sleeps).predict(make_image())
    error = caught.value
    assert type(error) is ApiError
    assert (error.status, error.code, error.message, error.request_id) == (status, code, message, "abc-123")
    assert str(error) == f"HTTP {status} {code}: {message}"
    assert len(fake_api.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_raise_auth_error_without_retry(fake_api, sleeps, status):
    fake_api.queue(status, {"message": "Forbidden"})  # API Gateway's own body, not the API's error JSON
    with pytest.raises(AuthError) as caught:
        client_for(fake_api, sleeps, api_key="wrong").predict(make_image())
    assert (caught.value.status, caught.value.message) == (status, "Forbidden")
    assert caught.value.code == {401: "unauthorized", 403: "forbidden"}[status]
    assert len(fake_api.requests) == 1


def test_wrong_key_against_a_key_checking_api(fake_api):
    fake_api.required_key = "right"
    with pytest.raises(AuthError):
        client_for(fake_api, api_key="wrong").predict(make_image())
    assert client_for(fake_api, api_key="right").predict(make_image()).top.breed == "Labrador retriever"


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_status_then_success(fake_api, sleeps, status):
    fake_api.queue(status, {"error": {"code": "busy", "message": "Try again."}}, headers={"Retry-After": "2"})
    prediction = client_for(fake_api, sleeps).predict(make_image())
    assert prediction.top.breed == "Labrador retriever"
    assert len(fake_api.requests) == 2
    assert sleeps == [2.0]  # exactly what Retry-After asked


def test_retry_after_as_http_date(fake_api, sleeps):
    fake_api.queue(
        503,
        {"error": {"code": "busy", "message": "x"}},
        headers={"Retry-After": formatdate(time.time() + 5, usegmt=True)},
    )
    client_for(fake_api, sleeps).predict(make_image())
    [wait] = sleeps
    assert 3.0 <= wait <= 5.0


def test_retries_exhausted_raise_the_last_error(fake_api, sleeps):
    for _ in range(3):
        fake_api.queue(
            502,
            {"error": {"code": "endpoint_error", "message": "The model endpoint failed."}},
            headers={"Retry-After": "0"},
        )
    with pytest.raises(ApiError) as caught:
        client_for(fake_api, sleeps, retries=2).predict(make_image())
    assert (caught.value.status, caught.value.code) == (502, "endpoint_error")
    assert len(fake_api.requests) == 3
    assert sleeps == [0.0, 0.0]


def test_backoff_without_retry_after_grows_exponentially_with_jitter(fake_api, sleeps):
    for _ in range(4):
        fake_api.queue(503, "<html>Service Unavailable</html>")
    with pytest.raises(ApiError) as caught:
        client_for(fake_api, sleeps, retries=3, backoff_base=1.0).predict(make_image())
    assert caught.value.code == "service_unavailable"
    assert caught.value.message == "<html>Service Unavailable</html>"  # non-JSON bodies are quoted, not crashed on
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        full = 2.0**attempt
        assert full / 2 <= wait <= full


def test_retry_after_beyond_max_wait_is_not_waited_for(fake_api, sleeps):
    fake_api.queue(429, {"error": {"code": "throttled", "message": "Slow down."}}, headers={"Retry-After": "120"})
    with pytest.raises(ApiError) as caught:
        client_for(fake_api, sleeps, max_wait=10).predict(make_image())
    assert caught.value.status == 429
    assert len(fake_api.requests) == 1
    assert sleeps == []


def test_real_sleep_with_retry_after_zero(fake_api):
    fake_api.queue(503, {"error": {"code": "busy", "message": "x"}}, headers={"Retry-After": "0"})
    assert client_for(fake_api).predict(make_image()).top.breed == "Labrador retriever"
    assert len(fake_api.requests) == 2


def test_connection_refused_is_retried_then_unreachable(closed_port_url, sleeps):
    with pytest.raises(ApiUnreachable) as caught:
        client_for(closed_port_url, sleeps, retries=2, backoff_base=0.1).predict(make_image())
    assert caught.value.attempts == 3
    assert caught.value.reason == "connection refused"
    assert str(caught.value) == f"API unreachable at {closed_port_url}: connection refused (3 attempts)"
    assert len(sleeps) == 2


def test_connection_error_then_server_up(closed_port_url):
    """The first attempt finds nothing listening; the server comes up during the backoff; the retry succeeds."""
    started = []

    def start_server_instead_of_sleeping(seconds: float) -> None:
        started.append(FakeApi(port=int(closed_port_url.rsplit(":", 1)[1])))

    try:
        client = DogClient(closed_port_url, sleep=start_server_instead_of_sleeping)
        assert client.predict(make_image()).top.breed == "Labrador retriever"
        assert len(started) == 1 and len(started[0].requests) == 1
    finally:
        for api in started:
            api.close()


def test_slow_response_times_out_without_retry(fake_api, sleeps):
    fake_api.queue(200, {"predictions": []}, delay=5)
    started = time.monotonic()
    with pytest.raises(ApiTimeout) as caught:
        client_for(fake_api, sleeps, timeout=0.3).predict(make_image())
    assert time.monotonic() - started < 3
    assert str(caught.value) == f"no response from {fake_api.url}/predict within 0.3s"
    assert len(fake_api.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("body", ["not json", {"unexpected": True}, {"predictions": [{"breed": "x"}]}])
def test_malformed_success_body_is_an_invalid_response(fake_api, body):
    fake_api.queue(200, body)
    with pytest.raises(ApiError) as caught:
        client_for(fake_api).predict(make_image())
    assert (caught.value.status, caught.value.code) == (200, "invalid_response")


def test_image_refused_locally_makes_no_request(fake_api, tmp_path):
    client = client_for(fake_api, max_side=None, max_image_bytes=1000)
    with pytest.raises(ImageError):
        client.predict(make_image(size=(500, 500), mode="L", color=None, format="BMP"))
    with pytest.raises(ImageError):
        client.predict(tmp_path / "missing.jpg")
    assert fake_api.requests == []


def test_the_fake_server_really_decodes_what_is_sent(fake_api):
    """Guards the fake: a body it cannot decode gets the API's 400, so passing tests mean decodable images."""
    client = client_for(fake_api)
    with pytest.raises(ApiError) as caught:
        client._predict({"image": base64.b64encode(b"not an image").decode(), "top_k": 1})
    assert (caught.value.status, caught.value.code) == (400, "invalid_image")


def test_one_client_shared_by_threads(fake_api):
    images = [make_image(size=(50 + index, 40)) for index in range(12)]
    with client_for(fake_api) as client, ThreadPoolExecutor(4) as pool:
        predictions = list(pool.map(client.predict, images))
    assert len(predictions) == 12 and all(p.top.breed == "Labrador retriever" for p in predictions)
    sent_sizes = sorted(request.image().size for request in fake_api.requests)
    assert sent_sizes == sorted((50 + index, 40) for index in range(12))


def test_key_is_not_in_repr():
    assert "hunter2" not in repr(DogClient("https://api.example.com", "hunter2"))


@pytest.mark.parametrize("url", ["", "api.example.com", "ftp://api.example.com", "http://"])
def test_bad_api_url(url):
    with pytest.raises(ConfigError, match="is not an http:// or https:// URL"):
        DogClient(url)


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
def test_bad_top_k_is_refused_locally(top_k):
    with pytest.raises(ValueError):
        DogClient("http://127.0.0.1:9").predict_url("https://example.com/dog.jpg", top_k=top_k)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_date_in_future():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
