"""`dogbreed serve` over real HTTP on 127.0.0.1: the container contract, the runtime API via boto3,
limits, timeouts, logs, and graceful shutdown."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests
from botocore.config import Config
from dogbreed.server import ServerConfig, create_server
from dogbreed.serving import handlers
from PIL import Image

DOGBREED = Path(sys.executable).parent / "dogbreed"


def jpeg(seed: int = 0, size=(64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


class RunningServer:
    """uvicorn in a background thread on a free port of 127.0.0.1."""

    def __init__(self, config: ServerConfig):
        self.server, self.model_server = create_server(config, "127.0.0.1", 0, "warning")
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while requests.get(f"{self.url}/ping", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "model never loaded"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def endpoint(tiny_artifact):
    running = RunningServer(ServerConfig(model_path=str(tiny_artifact), max_wait_ms=5, decode_threads=2))
    running.wait_until_ready()
    yield running
    running.stop()


def runtime_client(url: str):
    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))


# --- the container contract -----------------------------------------------------------------------


def test_ping_is_503_until_the_model_is_loaded(tiny_artifact, monkeypatch):
    release = threading.Event()
    real_load = handlers.load

    def slow_load(*args, **kwargs):
        release.wait(30)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(handlers, "load", slow_load)
    running = RunningServer(ServerConfig(model_path=str(tiny_artifact)))
    try:
        response = requests.get(f"{running.url}/ping", timeout=5)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_not_loaded"
        early = requests.post(f"{running.url}/invocations", data=jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=5)
        assert early.status_code == 503 and early.json()["error"]["code"] == "model_not_loaded"
        release.set()
        running.wait_until_ready()
        body = requests.get(f"{running.url}/ping", timeout=5).json()
        assert body == {"status": "ok", "model": {"name": "tiny-test", "version": body["model"]["version"]},
                        "runtime": "eager"}
    finally:
        release.set()
        running.stop()


def test_invocations_answers_an_image(endpoint):
    response = requests.post(f"{endpoint.url}/invocations", data=jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert [p["breed"] for p in document["predictions"]]
    assert document["model"]["name"] == "tiny-test"
    assert document["is_dog"] is None


def test_invocations_answers_a_json_batch_with_top_k_header(endpoint):
    images = [base64.b64encode(jpeg(seed)).decode() for seed in range(3)]
    response = requests.post(f"{endpoint.url}/invocations", json={"images": images},
                             headers={"X-Amzn-SageMaker-Custom-Attributes": "top_k=2"}, timeout=30)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3 and all(len(r["predictions"]) == 2 for r in results)


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code"), [
    ("post", "/invocations", {"data": b"not an image", "headers": {"Content-Type": "image/jpeg"}}, 400, "invalid_image"),
    ("post", "/invocations", {"data": b"{", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ("post", "/invocations", {"data": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
    ("post", "/invocations", {"data": jpeg(), "headers": {"Content-Type": "image/jpeg", "Accept": "text/csv"}}, 406,
     "not_acceptable"),
    ("post", "/invocations", {"json": {"image": "YQ==", "top_k": 99}}, 422, "invalid_parameter"),
    ("get", "/invocations", {}, 405, "method_not_allowed"),
    ("get", "/nowhere", {}, 404, "not_found"),
])
def test_client_faults_are_4xx_json_and_the_server_survives(endpoint, method, path, kwargs, status, code):
    response = getattr(requests, method)(f"{endpoint.url}{path}", timeout=30, **kwargs)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert requests.get(f"{endpoint.url}/ping", timeout=5).status_code == 200


def test_body_size_limit_with_and_without_content_length(endpoint, monkeypatch):
    monkeypatch.setattr(endpoint.model_server.config, "max_body_bytes", 10_000)
    declared = requests.post(f"{endpoint.url}/invocations", data=b"\xff" * 20_000,
                             headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

    def chunks():  # chunked transfer: no Content-Length to check up front
        for _ in range(20):
            yield b"\xff" * 1000

    streamed = requests.post(f"{endpoint.url}/invocations", data=chunks(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"


def test_slow_requests_time_out_with_504_and_later_ones_succeed(endpoint, monkeypatch):
    class SlowRuntime:
        name = "slow"

        def __init__(self, runtime):
            self.runtime = runtime

        def predict_proba(self, batch):
            time.sleep(0.5)
            return self.runtime.predict_proba(batch)

    model = endpoint.model_server.model
    monkeypatch.setattr(endpoint.model_server.config, "request_timeout", 0.1)
    monkeypatch.setattr(model, "runtime", SlowRuntime(model.runtime))
    response = requests.post(f"{endpoint.url}/invocations", data=jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert response.status_code == 504 and response.json()["error"]["code"] == "request_timeout"
    monkeypatch.undo()
    time.sleep(0.5)  # the abandoned forward pass finishes
    ok = requests.post(f"{endpoint.url}/invocations", data=jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert ok.status_code == 200


def test_concurrent_clients_get_the_answers_they_would_get_alone(endpoint):
    bodies = [jpeg(seed, size=(64 + seed, 48)) for seed in range(8)]

    def post(body):
        response = requests.post(f"{endpoint.url}/invocations", data=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
        assert response.status_code == 200
        return response.json()

    alone = [post(body) for body in bodies]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(post, bodies * 2))
    for got, expected in zip(together, alone * 2, strict=True):
        assert [p["class_id"] for p in got["predictions"]] == [p["class_id"] for p in expected["predictions"]]
        for a, b in zip(got["predictions"], expected["predictions"], strict=True):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)


def test_every_request_is_one_json_access_log_line(endpoint, caplog):
    with caplog.at_level(logging.INFO, logger="dogbreed.access"):
        requests.post(f"{endpoint.url}/invocations", data=jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=30)
        requests.post(f"{endpoint.url}/invocations", data=b"bad", headers={"Content-Type": "image/png"}, timeout=30)
        # The line is written once the response is sent, which may be just after the client has it.
        deadline = time.monotonic() + 5
        while True:
            lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dogbreed.access"]
            if any(line.get("error_code") == "invalid_image" for line in lines) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    ok = [line for line in lines if line["status"] == 200][-1]
    bad = [line for line in lines if line["status"] == 400][-1]
    assert (ok["method"], ok["path"], ok["status"], ok["images"]) == ("POST", "/invocations", 200, 1)
    assert ok["bytes_in"] > 0 and ok["bytes_out"] > 0 and ok["duration_ms"] > 0
    assert (bad["status"], bad["error_code"]) == (400, "invalid_image")


# --- the SageMaker runtime API through boto3 ------------------------------------------------------


def test_boto3_invoke_endpoint_gets_a_real_response(endpoint):
    client = runtime_client(endpoint.url)
    response = client.invoke_endpoint(EndpointName="local-dogbreed", Body=jpeg(), ContentType="image/jpeg",
                                      Accept="application/json", CustomAttributes="top_k=2")
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    document = json.loads(response["Body"].read())
    assert len(document["predictions"]) == 2 and document["model"]["name"] == "tiny-test"


def test_boto3_finds_the_endpoint_through_the_service_specific_variable(endpoint, monkeypatch):
    # contracts.md: the local Lambda sets AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME and nothing else.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", endpoint.url)
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    body = json.dumps({"image": base64.b64encode(jpeg()).decode()})
    response = client.invoke_endpoint(EndpointName="any-name", Body=body, ContentType="application/json")
    assert "predictions" in json.loads(response["Body"].read())


def test_boto3_sees_model_errors_as_modelerror_with_the_original_status(endpoint):
    client = runtime_client(endpoint.url)
    with pytest.raises(client.exceptions.ModelError) as caught:
        client.invoke_endpoint(EndpointName="local-dogbreed", Body=b"not an image", ContentType="image/jpeg")
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert json.loads(error["OriginalMessage"])["error"]["code"] == "invalid_image"
    assert "Received client error (400)" in error["Error"]["Message"]


# --- the command ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_command_answers_then_shuts_down_gracefully_on_sigterm(tiny_artifact):
    port = free_port()
    process = subprocess.Popen([str(DOGBREED), "serve", "--model", str(tiny_artifact), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.1)
        response = requests.post(f"{url}/invocations", data=jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=30)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every log line is JSON
    assert any("ready" in line.get("message", "") and "after process start" in line["message"] for line in lines)
    assert any(line.get("path") == "/invocations" and line.get("status") == 200 for line in lines)
    assert any("Finished server process" in line.get("message", "") for line in lines)


def test_serve_command_refuses_a_missing_model(tmp_path):
    result = subprocess.run([str(DOGBREED), "serve", "--model", str(tmp_path / "nope.tar.gz")],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: --model {tmp_path / 'nope.tar.gz'}: no such file or directory"


def test_serve_command_exits_when_the_model_cannot_load(tmp_path):
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"not a tarball")
    result = subprocess.run([str(DOGBREED), "serve", "--model", str(broken), "--port", str(free_port())],
                            check=False, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 1
    assert "Error: could not load the model:" in result.stderr
    assert "not a readable model.tar.gz" in result.stderr


def test_requests_whose_clients_gave_up_during_a_stall_are_not_run(endpoint, monkeypatch):
    class StallingRuntime:
        name = "stalling"

        def __init__(self, runtime):
            self.runtime = runtime
            self.release = threading.Event()
            self.calls = 0

        def predict_proba(self, batch):
            self.calls += 1
            if self.calls == 1:
                assert self.release.wait(30), "never released"
            return self.runtime.predict_proba(batch)

    model = endpoint.model_server.model
    batcher = endpoint.model_server.batcher
    stalling = StallingRuntime(model.runtime)
    monkeypatch.setattr(model, "runtime", stalling)
    dropped_before = batcher.dropped

    def give_up(seed: int) -> None:
        with pytest.raises(requests.exceptions.ReadTimeout):  # the client gives up and closes the connection
            requests.post(f"{endpoint.url}/invocations", data=jpeg(seed), headers={"Content-Type": "image/jpeg"},
                          timeout=(5, 0.5))

    give_up(0)  # stalls the model
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(give_up, range(1, 5)))  # queued behind the stall, then abandoned
    stalling.release.set()
    deadline = time.monotonic() + 30
    while batcher.dropped < dropped_before + 4 or not batcher.idle():
        assert time.monotonic() < deadline, (batcher.dropped, stalling.calls)
        time.sleep(0.02)
    assert stalling.calls == 1  # only the pass that was already running when its client left
    ok = requests.post(f"{endpoint.url}/invocations", data=jpeg(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert ok.status_code == 200 and stalling.calls == 2
