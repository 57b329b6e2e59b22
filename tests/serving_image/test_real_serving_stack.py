"""Every runtime's artifact in the real serving stack, offline, answering what `dogbreed serve` answers."""

from __future__ import annotations

import base64
import json
import re
import tarfile

import pytest
import requests

from conftest import (
    OwnEndpoint,
    RealEndpoint,
    image_bytes,
    onnxruntime_installed,
    package,
    require_artifact,
    uninstall_onnxruntime,
    wheel_cache,
)

JPEG = image_bytes("JPEG", seed=1)
PNG = image_bytes("PNG", size=(200, 300), seed=2)
B64 = base64.b64encode(JPEG).decode()

GOOD = {
    "jpeg": (JPEG, {"Content-Type": "image/jpeg"}),
    "png": (PNG, {"Content-Type": "image/png"}),
    "x-image": (PNG, {"Content-Type": "application/x-image"}),
    "json": (json.dumps({"image": B64}).encode(), {"Content-Type": "application/json"}),
    "json top_k": (json.dumps({"image": B64, "top_k": 2}).encode(), {"Content-Type": "application/json"}),
    "header top_k": (JPEG, {"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "top_k=3"}),
    "batch": (json.dumps({"images": [B64, base64.b64encode(PNG).decode()]}).encode(), {"Content-Type": "application/json"}),
}
BAD = {
    "truncated jpeg": (JPEG[: len(JPEG) // 2], {"Content-Type": "image/jpeg"}, 400, "invalid_image"),
    "not an image": (b"hello, not a picture", {"Content-Type": "image/png"}, 400, "invalid_image"),
    "empty body": (b"", {"Content-Type": "image/jpeg"}, 400, "invalid_image"),
    "bad json": (b'{"image": ', {"Content-Type": "application/json"}, 400, "invalid_json"),
    "bad base64": (b'{"image": "@@@@"}', {"Content-Type": "application/json"}, 400, "invalid_base64"),
    "wrong shape": (b'{"picture": "x"}', {"Content-Type": "application/json"}, 400, "invalid_request"),
    "top_k out of range": (json.dumps({"image": B64, "top_k": 0}).encode(), {"Content-Type": "application/json"}, 422, "invalid_parameter"),
    "content type": (b"hello", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    "accept": (JPEG, {"Content-Type": "image/jpeg", "Accept": "text/csv"}, 406, "not_acceptable"),
}


def post(url: str, body: bytes, headers: dict) -> requests.Response:
    return requests.post(url + "/invocations", data=body, headers=headers, timeout=120)


def first_line_json(response: requests.Response) -> dict:
    """The toolkit's error body: the exception's message (our JSON line), a newline, a traceback."""
    return json.loads(response.text.split("\n", 1)[0])


def without_request_id(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "request_id"}


@pytest.fixture(scope="module", params=["eager", "onnx", "onnx-int8"])
def endpoints(request, artifacts, tmp_path_factory):
    runtime = request.param
    artifact = require_artifact(artifacts, runtime)
    uninstall_onnxruntime()
    assert not onnxruntime_installed(), "the serving env must start without onnxruntime, as the image does"
    real = RealEndpoint(artifact, tmp_path_factory.mktemp(f"real-{runtime}"))
    own = None
    try:
        real.wait_until_serving(JPEG)
        own = OwnEndpoint(artifact, tmp_path_factory.mktemp(f"own-{runtime}"))
        yield runtime, real, own
    finally:
        if own is not None:
            own.stop()
        real.stop()
        uninstall_onnxruntime()


def test_ping_and_the_runtime_really_used(endpoints):
    runtime, real, _ = endpoints
    ping = requests.get(real.url + "/ping", timeout=10)
    assert ping.status_code == 200
    assert ping.json() == {"status": "Healthy"}
    log = real.log()
    if runtime == "eager":
        assert "Successfully installed" not in log  # no requirements.txt: pip never runs
    else:
        # The toolkit ran pip on code/requirements.txt with no index reachable, and it installed code/wheels.
        assert "Processing ./opt-ml/model/code/wheels/onnxruntime-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl" in log
        assert re.search(r"^Successfully installed .*onnxruntime-1\.31\.1", log, flags=re.M)
        assert "failed to install required packages" not in log
    assert f"with runtime {runtime}" in log


@pytest.mark.parametrize("case", list(GOOD))
def test_answers_match_dogbreed_serve(endpoints, case):
    _, real, own = endpoints
    body, headers = GOOD[case]
    theirs, ours = post(real.url, body, headers), post(own.url, body, headers)
    assert (theirs.status_code, ours.status_code) == (200, 200), theirs.text[:500]
    assert theirs.headers["Content-Type"].startswith("application/json")
    assert theirs.json() == without_request_id(ours.json())
    answer = theirs.json()
    results = answer["results"] if case == "batch" else [answer]
    expected_k = {"json top_k": 2, "header top_k": 3}.get(case, 5)
    assert all(len(r["predictions"]) == expected_k for r in results)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_the_documented_4xx(endpoints, case):
    _, real, own = endpoints
    body, headers, status, code = BAD[case]
    theirs, ours = post(real.url, body, headers), post(own.url, body, headers)
    assert theirs.status_code == ours.status_code == status, theirs.text[:500]
    error = first_line_json(theirs)
    assert error["error"]["code"] == code
    assert error == without_request_id(ours.json())


@pytest.mark.parametrize("endpoints", ["eager"], indirect=True)  # the toolkit's behaviour, not a runtime's
def test_what_the_real_toolkit_does_differently(endpoints):
    """services/trainer/README.md, "The real container": pinned here so the docs stay true."""
    _, real, own = endpoints
    latin1 = json.dumps({"image": B64}).encode()[:-1] + b'\xff"}'
    assert post(real.url, latin1, {"Content-Type": "application/json"}).status_code == 500
    assert post(own.url, latin1, {"Content-Type": "application/json"}).status_code == 400
    assert requests.get(real.url + "/invocations", timeout=30).status_code == 415
    assert requests.get(own.url + "/invocations", timeout=30).status_code == 405
    error = post(real.url, b"x", {"Content-Type": "text/plain"})
    assert "Traceback" in error.text and "Content-Type" not in error.headers
    huge = post(real.url, b"\xff" * 6_553_501, {"Content-Type": "image/jpeg"})
    assert huge.status_code == 413 and huge.content == b""
    # Up to TorchServe's limit our own check answers, with the contract's JSON.
    ours = post(real.url, b"\xff" * 6_400_000, {"Content-Type": "image/jpeg"})
    assert ours.status_code == 413 and first_line_json(ours)["error"]["code"] == "payload_too_large"


def test_aarch64_artifacts_carry_graviton_wheels(tmp_path):
    path = package(tmp_path / "arm", "--runtime", "onnx", "--instance-type", "ml.c7g.large", "--wheel-dir", str(wheel_cache()),
                   "--no-verify")
    with tarfile.open(path) as tar:
        wheels = [n for n in tar.getnames() if n.startswith("code/wheels/") and n.endswith(".whl")]
        metadata = json.load(tar.extractfile("metadata.json"))
    assert metadata["serving_target"]["platform"] == "aarch64"
    assert any("onnxruntime" in w and "aarch64" in w for w in wheels)
    assert not any("x86_64" in w for w in wheels)
