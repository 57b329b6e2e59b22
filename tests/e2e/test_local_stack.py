"""dogclient -> local API front -> Lambda handler -> boto3 invoke_endpoint -> endpoint server -> model."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest
from conftest import jpeg_bytes, service_bin

# The starter model's names for the breeds of ../shared/data/dog-photos/udacity-samples (American water
# spaniel has no ImageNet class).
IMAGENET_NAME = {
    "Brittany": "brittany",
    "Curly-coated retriever": "curly-coated retriever",
    "Labrador retriever": "labrador retriever",
    "Welsh springer spaniel": "welsh springer spaniel",
}


def call(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type},
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def breed_of(path) -> str:
    return re.sub(r"_\d+$", "", path.stem).replace("_", " ")


def test_health_names_the_endpoint(stack):
    status, body = call(f"{stack['api_url']}/health")
    assert status == 200
    assert "local-dogbreed" in json.dumps(body)


def test_dogclient_classifies_every_sample_photo(stack, sample_photos):
    result = subprocess.run([str(service_bin("client", "dogclient")), "predict", "--api-url", stack["api_url"], "--json",
                             "--top-k", "3", *map(str, sample_photos)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(documents) == len(sample_photos)
    hits = known = 0
    for path, document in zip(sample_photos, documents, strict=True):
        predictions = document["predictions"]
        assert len(predictions) == 3
        probabilities = [p["probability"] for p in predictions]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probabilities)
        assert document["model"]["version"]
        assert document["request_id"]
        expected = IMAGENET_NAME.get(breed_of(path))
        if expected:
            assert document["is_dog"] is True, path.name
            known += 1
            hits += expected in [p["breed"].lower() for p in predictions]
    if known:  # real photos: the starter model must recognise most of them
        assert hits >= known - 1, (hits, known)


def test_human_output_lists_breeds(stack, sample_photos):
    result = subprocess.run([str(service_bin("client", "dogclient")), "predict", "--api-url", stack["api_url"], str(sample_photos[0])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "%" in result.stdout


def test_batch_request_through_the_api(stack):
    image = base64.b64encode(jpeg_bytes()).decode()
    status, body = call(f"{stack['api_url']}/predict", json.dumps({"images": [image, image], "top_k": 2}).encode())
    assert status == 200, body
    assert len(body["results"]) == 2
    assert body["results"][0]["predictions"] == body["results"][1]["predictions"]


def test_raw_jpeg_body(stack):
    status, body = call(f"{stack['api_url']}/predict", jpeg_bytes(), content_type="image/jpeg")
    assert status == 200, body
    assert len(body["predictions"]) == 5


@pytest.mark.parametrize(
    "name, body, content_type, status, code",
    [
        ("not an image", json.dumps({"image": base64.b64encode(b"hello, not a picture").decode()}).encode(),
         "application/json", 400, "invalid_image"),
        ("truncated jpeg", json.dumps({"image": base64.b64encode(jpeg_bytes((256, 256))[:300]).decode()}).encode(),
         "application/json", 400, "invalid_image"),
        ("bad base64", b'{"image": "@@@ not base64 @@@"}', "application/json", 400, "invalid_base64"),
        ("bad json", b'{"image": ', "application/json", 400, "invalid_json"),
        ("too large", json.dumps({"image": base64.b64encode(b"\xff\xd8\xff" + bytes(5 * 1024 * 1024 + 10)).decode()})
         .encode(), "application/json", 413, "payload_too_large"),
        ("private url", b'{"url": "https://169.254.169.254/latest/meta-data"}', "application/json", 400,
         "url_not_allowed"),
        ("loopback url", b'{"url": "https://127.0.0.1/dog.jpg"}', "application/json", 400, "url_not_allowed"),
        ("bad top_k", json.dumps({"image": base64.b64encode(jpeg_bytes()).decode(), "top_k": 99}).encode(),
         "application/json", 422, "invalid_parameter"),
        ("unsupported type", b"hello", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_bad_input_gets_its_documented_error(stack, name, body, content_type, status, code):
    got_status, got = call(f"{stack['api_url']}/predict", body, content_type)
    assert (got_status, got["error"]["code"]) == (status, code), got
    assert got["error"]["message"]
    assert "Traceback" not in json.dumps(got)


def test_stack_survives_bad_input_and_reports_status(stack):
    result = subprocess.run([*stack["base"], "status"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("healthy") == 2


def test_up_twice_does_not_start_a_second_copy(stack, starter_model):
    before = sorted(p.read_text() for p in stack["run_dir"].glob("*.pid"))
    result = subprocess.run([*stack["base"], "up", "--model", str(starter_model)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert sorted(p.read_text() for p in stack["run_dir"].glob("*.pid")) == before
