"""The default SageMaker serving stack, for real: TorchServe + sagemaker-pytorch-inference, as in
pytorch-inference:2.6.0-cpu-py312, started through the toolkit's own ``serving.main()`` as the image's
``serve`` entrypoint does, with the artifact extracted to SAGEMAKER_BASE_DIR/model.

This env (tox ``serving-image``) has the image's Python, torch, torchvision, TorchServe and toolkit and
no dogbreed package; artifacts are built with the trainer's env (TRAINER_BIN), as a user builds them.
tests/netns.py runs the whole session in a loopback-only network namespace.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
IMAGE_PYTHON = (3, 12)  # pytorch-inference:2.6.0-cpu-py312
READY_TIMEOUT_S = 300  # model load on a shared 2-core machine; a readiness wait, not an assertion


def pytest_report_header(config):
    python = ".".join(map(str, sys.version_info[:3]))
    note = "" if sys.version_info[:2] == IMAGE_PYTHON else f" (the image has {'.'.join(map(str, IMAGE_PYTHON))}: nearest available)"
    return [f"serving stack: Python {python}{note}; java: {shutil.which('java') or 'missing'}",
            f"network: {os.environ.get('DOGBREED_NETNS', 'not run through tests/netns.py')}"]


def trainer_bin(program: str) -> Path:
    path = Path(os.environ.get("TRAINER_BIN", REPO / ".tox" / "trainer" / "bin")) / program
    if not path.exists():
        pytest.fail(f"{path} not found: build the trainer env first (tox run -e trainer --notest)", pytrace=False)
    return path


def require_java() -> None:
    if shutil.which("java") is None:
        message = "no Java runtime: TorchServe needs one (tests/serving_image/ensure_java.py installs it with apt-get as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


_next_port = [11100 + (os.getpid() % 40) * 20]


def free_port() -> int:
    """A free port in 11000-11999 (TorchServe's own defaults, 8080-8082 and 7070-7071, are never used)."""
    while _next_port[0] < 12000:
        port = _next_port[0]
        _next_port[0] += 1
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 11000-11999")


def image_bytes(kind: str = "JPEG", size=(320, 240), seed: int = 0) -> bytes:
    from PIL import Image

    picture = Image.new("RGB", size)
    picture.putdata([((x * 3 + seed) % 256, (y * 2 + seed * 7) % 256, (x + y) % 256) for y in range(size[1]) for x in range(size[0])])
    buffer = io.BytesIO()
    picture.save(buffer, kind, **({"quality": 90} if kind == "JPEG" else {}))
    return buffer.getvalue()


def package(out: Path, *args: str) -> Path:
    done = subprocess.run([str(trainer_bin("dogbreed")), "package", "--pretrained", "imagenet-dogs", "--output-dir", str(out), *args],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out / "model.tar.gz"


def wheel_cache() -> Path:
    cache = os.environ.get("SERVING_WHEEL_CACHE")
    if not cache:
        pytest.fail("SERVING_WHEEL_CACHE is not set: tox's serving-image env fills it before going offline", pytrace=False)
    return Path(cache)


PHOTOS = Path(os.environ.get("DOG_PHOTOS_DIR", REPO.parent / "shared" / "data" / "dog-photos"))


@pytest.fixture(scope="session")
def calibration_dir(tmp_path_factory) -> Path | None:
    """Real dog photos for INT8 calibration (packaging refuses an INT8 graph that disagrees with eager,
    which generated pictures make it do); None when there are none here."""
    photos = sorted((PHOTOS / "stanford-dogs-3breeds").rglob("*.jpg"))[::4][:48]
    if not photos:
        return None
    folder = tmp_path_factory.mktemp("calibration")
    for photo in photos:
        shutil.copy(photo, folder / f"{len(list(folder.iterdir()))}-{photo.name}")
    return folder


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, calibration_dir) -> dict[str, Path]:
    """The starter as every runtime's artifact, packaged offline (wheels from the prefetched cache)."""
    root = tmp_path_factory.mktemp("artifacts")
    made = {"eager": package(root / "eager"),
            "onnx": package(root / "onnx", "--runtime", "onnx", "--wheel-dir", str(wheel_cache()))}
    if calibration_dir is not None:
        made["onnx-int8"] = package(root / "onnx-int8", "--runtime", "onnx-int8", "--wheel-dir", str(wheel_cache()),
                                    "--calibration-data", str(calibration_dir))
    return made


def require_artifact(artifacts: dict[str, Path], runtime: str) -> Path:
    if runtime not in artifacts:
        message = f"no {runtime} artifact: INT8 calibration needs real photos ({PHOTOS}/stanford-dogs-3breeds, DOG_PHOTOS_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return artifacts[runtime]


class RealEndpoint:
    """The toolkit's serving.main() in a subprocess: TorchServe's frontend, one Python worker."""

    def __init__(self, artifact: Path, workdir: Path):
        require_java()
        self.base = workdir / "opt-ml"
        model_dir = self.base / "model"
        model_dir.mkdir(parents=True)
        with tarfile.open(artifact) as tar:
            tar.extractall(model_dir, filter="data")  # as SageMaker does into /opt/ml/model
        self.port = free_port()
        self.log_path = workdir / "serve.log"
        env = {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "TMPDIR": str(workdir),  # TorchServe's pid file: refuses to start while another's exists
            "SAGEMAKER_BASE_DIR": str(self.base),  # the toolkit's /opt/ml
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SAGEMAKER_SAFE_PORT_RANGE": "11000-11999",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
            # TorchServe's own listeners (enable_envvars_config=true in the toolkit's config).
            "TS_METRICS_ADDRESS": f"http://127.0.0.1:{free_port()}",
            "TS_GRPC_INFERENCE_PORT": str(free_port()),
            "TS_GRPC_MANAGEMENT_PORT": str(free_port()),
            "OMP_NUM_THREADS": "1",
            # The image's pip has no index reachable (network isolation, no NAT): no config file, a dead index.
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(self.log_path, "w")
        # What the image's entrypoint runs for `serve`.
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from sagemaker_pytorch_serving_container import serving; serving.main()"],
            cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_ping(self) -> requests.Response:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the serving stack exited ({self.process.returncode}):\n{self.log()[-4000:]}", pytrace=False)
            try:
                return requests.get(self.url + "/ping", timeout=5)
            except requests.ConnectionError:
                time.sleep(0.5)
        pytest.fail(f"no /ping answer within {READY_TIMEOUT_S} s:\n{self.log()[-4000:]}", pytrace=False)

    def wait_until_serving(self, body: bytes) -> None:
        """/ping is 200 before model_fn ends, so readiness is the first answered invocation."""
        self.wait_for_ping()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the serving stack exited ({self.process.returncode}):\n{self.log()[-4000:]}", pytrace=False)
            response = requests.post(self.url + "/invocations", data=body, headers={"Content-Type": "image/jpeg"}, timeout=120)
            if response.status_code == 200:
                return
            time.sleep(1)
        pytest.fail(f"the model never answered within {READY_TIMEOUT_S} s:\n{self.log()[-4000:]}", pytrace=False)

    def stop(self) -> None:
        # serving.main() forwards SIGTERM to TorchServe's frontend; the worker goes with the session.
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self._log.close()


class OwnEndpoint:
    """``dogbreed serve`` from the trainer's env on the same artifact, for the same requests."""

    def __init__(self, artifact: Path, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(workdir / "dogbreed-serve.log", "w")
        self.process = subprocess.Popen([str(trainer_bin("dogbreed")), "serve", "--model", str(artifact), "--port", str(self.port)],
                                        stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (workdir / "dogbreed-serve.log").read_text()
            try:
                if requests.get(self.url + "/ping", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        pytest.fail("dogbreed serve never became healthy", pytrace=False)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def onnxruntime_installed() -> bool:
    return subprocess.run([sys.executable, "-c", "import onnxruntime"], capture_output=True).returncode == 0


def uninstall_onnxruntime() -> None:
    """The image has no onnxruntime: each run starts without it, so the artifact's own wheels must install."""
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "onnxruntime", "flatbuffers", "protobuf"],
                   capture_output=True)
