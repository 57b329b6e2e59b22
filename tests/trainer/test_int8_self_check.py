"""An onnx-int8 artifact re-measures its agreement with fp32 on the CPU it is loaded on (issue 15):
below its threshold it serves its fp32 graph and says so (log, /ping, `dogbreed verify`)."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile

import numpy as np
import pytest
import requests
import torch
from click.testing import CliRunner
from dogbreed.cli import main
from dogbreed.server import ServerConfig
from dogbreed.serving import handlers
from dogbreed.serving.runtimes import ONNX_FP32_FILE, SELF_CHECK_FILE, check_inputs, cpu_features
from test_optimize import photo_like_images, png_bytes
from test_server import RunningServer


@pytest.fixture(scope="module")
def int8_artifact(tmp_path_factory):
    """The tiny 3-class model as onnx-int8 (through write_artifact), its threshold 0: every check passes
    until a test raises it. A random-init network's near-uniform outputs make its real agreement
    meaningless, so the tests set the threshold they need in a copy."""
    from dogbreed.artifact import build_metadata, write_artifact
    from dogbreed.serving.architectures import build_model
    from dogbreed.serving.transforms import EvalPreset

    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", 3).eval()
    metadata = build_metadata(name="tiny-int8", backbone="efficientnet_lite0", classes=["a", "b", "c"],
                              preset=EvalPreset(32, 36, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                              metrics={}, training_args={})
    images = photo_like_images(tmp_path_factory.mktemp("calibration"), 12)
    return write_artifact(model, metadata, tmp_path_factory.mktemp("int8"), "onnx-int8", images, min_agreement=0.0)


def copy_of(artifact, into, *, threshold=None, corrupt=False):
    """An extracted copy of ``artifact``; ``threshold`` rewrites the artifact's threshold, ``corrupt``
    rotates the stored fp32 outputs so that no top-1 answer matches any more."""
    with tarfile.open(artifact) as tar:
        tar.extractall(into, filter="data")
    if threshold is not None:
        metadata = json.loads((into / "metadata.json").read_text())
        metadata["runtime_info"]["self_check"]["threshold"] = threshold
        (into / "metadata.json").write_text(json.dumps(metadata))
    if corrupt:
        with np.load(into / SELF_CHECK_FILE) as data:
            pixels, reference = data["pixels"], data["reference_probs"]
        np.savez_compressed(into / SELF_CHECK_FILE, pixels=pixels,
                            reference_probs=np.roll(reference, 1, axis=1))
    return into


def test_the_int8_artifact_carries_its_check_and_fp32_graph(int8_artifact):
    with tarfile.open(int8_artifact) as tar:
        names = set(tar.getnames())
        metadata = json.load(tar.extractfile("metadata.json"))
    assert {"model.onnx", ONNX_FP32_FILE, SELF_CHECK_FILE} <= names
    info = metadata["runtime_info"]
    assert info["self_check"]["images"] == info["check"]["images"] == 6
    assert info["self_check"]["threshold"] == 0.0
    assert info["check"]["cpu_features"] == cpu_features()


def test_check_inputs_are_what_serving_feeds_the_network(int8_artifact, tmp_path):
    """The stored uint8 crops rebuild the packaging inputs bit for bit (decoding.preprocess's arithmetic)."""
    from dogbreed.serving import decoding

    folder = copy_of(int8_artifact, tmp_path / "a")
    metadata = json.loads((folder / "metadata.json").read_text())
    image = decoding.decode_image(png_bytes(3), draft_size=36)
    served = decoding.preprocess(image, 32, 36, metadata["mean"], metadata["std"])
    pixels = np.clip(np.rint((served.astype(np.float64) * np.asarray(metadata["std"])[:, None, None]
                              + np.asarray(metadata["mean"])[:, None, None]) * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(check_inputs(pixels[None], metadata["mean"], metadata["std"])[0], served)


def test_a_passing_check_serves_int8(int8_artifact, tmp_path, caplog):
    recorded = json.loads(tarfile.open(int8_artifact).extractfile("metadata.json").read())["runtime_info"]["check"]
    # The threshold the packaging measurement just meets: this machine packaged it, so it passes here.
    folder = copy_of(int8_artifact, tmp_path / "a", threshold=recorded["top1_agreement"])
    with caplog.at_level(logging.INFO, logger="dogbreed"):
        model = handlers.load(folder)
    assert model.runtime_name == "onnx-int8"
    check = model.self_check
    assert check["passed"] and check["serving"] == "onnx-int8"
    assert check["top1_agreement"] == recorded["top1_agreement"] and check["images"] == 6
    assert check["cpu_features"] == cpu_features()
    assert "INT8 self-check passed on this CPU" in caplog.text


def test_a_failing_check_serves_the_fp32_graph_and_says_so(int8_artifact, tmp_path, caplog):
    folder = copy_of(int8_artifact, tmp_path / "a", threshold=0.5, corrupt=True)
    with caplog.at_level(logging.WARNING, logger="dogbreed"):
        model = handlers.load(folder)
    assert model.runtime_name == "onnx"
    assert model.self_check["passed"] is False and model.self_check["serving"] == "onnx"
    assert model.self_check["top1_agreement"] == 0.0
    assert "below the artifact's threshold 50.0%" in model.self_check["reason"]
    assert "INT8 self-check failed on this CPU" in caplog.text and "serving the fp32 graph (onnx)" in caplog.text
    # What it serves is fp32: eager's answers, not INT8's.
    batch = np.stack([model.preprocess_bytes(png_bytes(seed)) for seed in range(4)])
    eager = handlers.load(folder, runtime="eager")
    np.testing.assert_allclose(model.runtime.predict_proba(batch)[0], eager.runtime.predict_proba(batch)[0], atol=1e-5)


def test_an_unreadable_check_also_falls_back(int8_artifact, tmp_path):
    folder = copy_of(int8_artifact, tmp_path / "a")
    (folder / SELF_CHECK_FILE).write_bytes(b"not an npz")
    model = handlers.load(folder)
    assert model.runtime_name == "onnx" and model.self_check["passed"] is False
    assert model.self_check["reason"].startswith(f"{SELF_CHECK_FILE} unusable")
    # Without its fp32 graph it falls back to the eager reference.
    (folder / ONNX_FP32_FILE).unlink()
    assert handlers.load(folder).runtime_name == "eager"


def test_ping_reports_the_check(int8_artifact, tmp_path):
    folder = copy_of(int8_artifact, tmp_path / "a", threshold=0.5, corrupt=True)
    running = RunningServer(ServerConfig(model_path=str(folder)))
    try:
        running.wait_until_ready()
        body = requests.get(f"{running.url}/ping", timeout=5).json()
    finally:
        running.stop()
    assert body["runtime"] == "onnx"
    assert body["self_check"]["passed"] is False and body["self_check"]["serving"] == "onnx"
    assert body["self_check"]["cpu_features"] == cpu_features()


def test_verify_prints_the_agreement_on_this_machine(int8_artifact, tmp_path):
    good = CliRunner().invoke(main, ["verify", str(int8_artifact)])
    assert good.exit_code == 0, good.output
    assert "INT8 self-check on this CPU" in good.stdout and "passed; serving onnx-int8" in good.stdout
    bad = copy_of(int8_artifact, tmp_path / "bad", threshold=0.5, corrupt=True)
    failed = CliRunner().invoke(main, ["verify", str(bad)])
    assert failed.exit_code == 0, failed.output  # it serves (fp32): the artifact is not broken
    assert "top-1 agreement with fp32 0.0% on 6 images, threshold 50.0%: FAILED; serving onnx" in failed.stdout


def test_the_fp32_graph_of_an_int8_artifact_can_be_chosen(int8_artifact, tmp_path, monkeypatch):
    folder = copy_of(int8_artifact, tmp_path / "a")
    monkeypatch.setenv("DOGBREED_RUNTIME", "onnx")
    model = handlers.load(folder)
    assert model.runtime_name == "onnx" and model.self_check is None
    shutil.rmtree(folder)
