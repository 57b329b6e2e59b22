"""Fixtures for the end-to-end tests: a starter model and the local stack on free ports."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def service_bin(service: str, program: str) -> Path:
    """A service's command from that service's own virtualenv (tox sets <SERVICE>_BIN; `make stack-env` builds them)."""
    folder = Path(os.environ.get(f"{service.upper()}_BIN", REPO / ".tox" / service / "bin"))
    path = folder / program
    if not path.exists():
        pytest.fail(f"{path} not found: build the service environments with `make stack-env`", pytrace=False)
    return path


PHOTOS = Path(os.environ.get("DOG_PHOTOS_DIR", REPO.parent / "shared" / "data" / "dog-photos"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def starter_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    subprocess.run([str(service_bin("trainer", "dogbreed")), "package", "--pretrained", "imagenet-dogs", "--output-dir", str(out)],
                   check=True)
    return out / "model.tar.gz"


@pytest.fixture(scope="session")
def stack(tmp_path_factory, starter_model):
    """`scripts/localstack.py up` on free ports, exactly as `make up` runs it; `down` afterwards."""
    run_dir = tmp_path_factory.mktemp("run")
    ports = {"endpoint": free_port(), "api": free_port()}
    base = [sys.executable, str(REPO / "scripts" / "localstack.py"), "--run-dir", str(run_dir),
            "--trainer-bin", str(service_bin("trainer", "dogbreed").parent),
            "--lambda-bin", str(service_bin("lambda", "dogapi-local").parent), "--endpoint-port", str(ports["endpoint"]), "--api-port", str(ports["api"])]
    subprocess.run([*base, "up", "--model", str(starter_model)], check=True)
    try:
        yield {"api_url": f"http://127.0.0.1:{ports['api']}", "endpoint_url": f"http://127.0.0.1:{ports['endpoint']}",
               "run_dir": run_dir, "base": base}
    finally:
        subprocess.run([*base, "down"], check=False)


@pytest.fixture(scope="session")
def sample_photos(tmp_path_factory) -> list[Path]:
    """The real sample photos when ../shared is present, else generated JPEGs."""
    folder = PHOTOS / "udacity-samples"
    if folder.is_dir():
        return sorted(folder.glob("*.jpg"))
    from PIL import Image

    out = tmp_path_factory.mktemp("generated")
    paths = []
    for i, colour in enumerate([(200, 120, 40), (30, 30, 30), (240, 240, 230)]):
        path = out / f"generated_{i}.jpg"
        Image.new("RGB", (320, 240), colour).save(path, quality=90)
        paths.append(path)
    return paths


def jpeg_bytes(size=(64, 64)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()
