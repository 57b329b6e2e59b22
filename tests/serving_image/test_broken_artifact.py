"""A broken artifact: the real stack calls it healthy, `dogbreed verify` rejects it with one line.

Its own module, so no other TorchServe is running when it starts one (TorchServe refuses a second).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import RealEndpoint, onnxruntime_installed, trainer_bin, uninstall_onnxruntime


def verify(artifact: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(trainer_bin("dogbreed")), "verify", str(artifact), *args], capture_output=True, text=True)


def test_verify_passes_the_eager_artifact_in_the_image_python(artifacts):
    done = verify(artifacts["eager"], "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    assert f"Python {sys.version.split()[0]}" in done.stdout


def test_verify_installs_an_onnx_artifacts_wheels_offline_in_the_image_python(artifacts):
    uninstall_onnxruntime()
    assert not onnxruntime_installed()  # as in the image: only the artifact's own wheels can provide it
    done = verify(artifacts["onnx"], "--python", sys.executable)
    assert done.returncode == 0, done.stderr
    assert "requirements installed offline from code/wheels" in done.stdout
    assert not onnxruntime_installed()  # into a scratch folder, not the interpreter's environment


@pytest.fixture(scope="module")
def broken_artifact(artifacts, tmp_path_factory) -> Path:
    """The eager artifact with weights that do not fit its network: model_fn fails on every retry."""
    folder = tmp_path_factory.mktemp("broken")
    with tarfile.open(artifacts["eager"]) as tar:
        tar.extractall(folder / "files", filter="data")
    metadata = json.loads((folder / "files" / "metadata.json").read_text())
    metadata["backbone"] = "resnet18"
    (folder / "files" / "metadata.json").write_text(json.dumps(metadata))
    path = folder / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for item in sorted((folder / "files").iterdir()):
            tar.add(item, arcname=item.name)
    shutil.rmtree(folder / "files")
    return path


def test_verify_rejects_a_broken_artifact_with_one_line(broken_artifact):
    for python in (None, sys.executable):
        done = verify(broken_artifact, *(["--python", python] if python else []))
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: verification failed: ")
        assert "model_fn" in done.stderr


def test_the_real_stack_says_healthy_for_a_broken_artifact(broken_artifact, tmp_path):
    """Why `dogbreed verify` exists: SageMaker's health check passes a model that can never answer."""
    real = RealEndpoint(broken_artifact, tmp_path)
    try:
        ping = real.wait_for_ping()
        assert ping.status_code == 200 and ping.json() == {"status": "Healthy"}
    finally:
        real.stop()
