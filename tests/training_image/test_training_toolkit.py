"""The exact bundle `dogbreed launch` uploads, run by AWS's real training toolkit (sagemaker-training's
``train`` entry, with sagemaker-pytorch-training as the image sets SAGEMAKER_TRAINING_MODULE), offline.

This env has the default training image's Python, torch and toolkit and no dogbreed package; the bundle,
the CreateTrainingJob request and the wheels of the bundle's requirements.txt were prepared with the
trainer's env by prefetch_wheels.py (tox commands_pre). SAGEMAKER_BASE_DIR stands for /opt/ml, laid out
as SageMaker lays it out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

VENV_BIN = Path(sys.executable).parent
BREEDS = {"001.Affenpinscher": (200, 40, 40), "002.Afghan_hound": (40, 180, 60), "003.Labrador_retriever": (50, 60, 210)}
# The trainer's default checkpoint dir on SageMaker (launch's CheckpointConfig.LocalPath).
CHECKPOINTS = Path("/opt/ml/checkpoints")


def prepared() -> Path:
    folder = os.environ.get("TRAINING_WHEELHOUSE")
    if not folder or not (Path(folder) / "request.json").is_file():
        pytest.fail("TRAINING_WHEELHOUSE is not prepared: tox's training-image env runs prefetch_wheels.py first", pytrace=False)
    return Path(folder)


def private_opt() -> bool:
    return "private /opt" in os.environ.get("DOGBREED_NETNS", "")


def host_name() -> str:
    """SageMaker names the hosts algo-1.. and puts them in /etc/hosts; the toolkit waits until they resolve."""
    if "private /etc" not in os.environ.get("DOGBREED_NETNS", ""):
        return "localhost"  # the host's /etc/hosts is not ours to change
    hosts = Path("/etc/hosts")
    if "algo-1" not in hosts.read_text():
        with hosts.open("a") as f:
            f.write("127.0.0.1 algo-1\n")
    return "algo-1"


def make_channel(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("valid", 2), ("test", 2)):
        for folder, colour in BREEDS.items():
            for i in range(count):
                pixels = np.clip(np.array(colour) + rng.integers(-40, 40, size=(48, 56, 3)), 0, 255).astype(np.uint8)
                path = root / split / folder / f"{i:03d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels, "RGB").save(path, "JPEG")
    return root


_JOB_PYTHON: list[Path] = []


def job_python(root: Path) -> Path:
    """The image's Python for the job: a fresh venv that sees this env's packages (the image's) through a
    .pth file and installs into its own site-packages, so each session's first job pip-installs the
    bundle's requirements.txt from scratch, offline, and this env stays as the image is."""
    if not _JOB_PYTHON:
        venv = root / "job-venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = next((venv / "lib").glob("python3*/site-packages"))
        image_site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
        (site / "image-packages.pth").write_text(image_site + "\n")
        _JOB_PYTHON.append(venv / "bin" / "python")
    return _JOB_PYTHON[0]


class Job:
    """One training job's /opt/ml, as SageMaker lays it out, and the toolkit run on it."""

    def __init__(self, base: Path, hyperparameters: dict[str, str] | None = None, channel: bool = True):
        self.base = base
        request = json.loads((prepared() / "request.json").read_text())
        self.metric_definitions = request["AlgorithmSpecification"]["MetricDefinitions"]
        params = dict(request["HyperParameters"])
        # The toolkit reads a local bundle the way it reads the s3:// one: a tar.gz it extracts to code/.
        params["sagemaker_submit_directory"] = json.dumps(str(prepared() / "sourcedir.tar.gz"))
        if not private_opt():  # the host's /opt/ml would be shared: point the checkpoints elsewhere
            params["checkpoint-dir"] = json.dumps(str(base / "checkpoints"))
        params.update(hyperparameters or {})
        config = base / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(params))
        (config / "inputdataconfig.json").write_text(json.dumps(
            {"training": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}))
        (config / "resourceconfig.json").write_text(json.dumps(
            {"current_host": host_name(), "current_instance_type": "ml.m5.xlarge", "hosts": [host_name()],
             "network_interface_name": "lo"}))
        data = base / "input" / "data" / "training"
        data.mkdir(parents=True)
        if channel:
            make_channel(data)
        for folder in ("model", "output", "output/data"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        self.checkpoints = CHECKPOINTS if private_opt() else base / "checkpoints"
        self.log_path = base / "job.log"

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{job_python(self.base.parent.parent).parent}{os.pathsep}{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.base),
            "LANG": "C.UTF-8",
            "SAGEMAKER_BASE_DIR": str(self.base),
            "SAGEMAKER_TRAINING_MODULE": "sagemaker_pytorch_container.training:main",  # as the image sets it
            "TRAINING_JOB_NAME": "dogbreed-toolkit-test",
            "AWS_REGION": "us-east-1",
            "OMP_NUM_THREADS": "1",
            # The job's pip gets only the prepared wheels (and the image's own packages).
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(prepared() / "wheels"),
            "PIP_NO_CACHE_DIR": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }

    def start(self) -> subprocess.Popen:
        self._log = open(self.log_path, "ab")
        # What the image's `train` console script runs.
        python = job_python(self.base.parent.parent)
        return subprocess.Popen([str(python), "-c", "from sagemaker_training.cli.train import main; main()"], cwd=self.base,
                                env=self.env(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def run(self, timeout: float = 900) -> int:
        process = self.start()
        try:
            return process.wait(timeout=timeout)
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture()
def fresh_checkpoints():
    if CHECKPOINTS.exists() and private_opt():
        shutil.rmtree(CHECKPOINTS)
    yield
    if CHECKPOINTS.exists() and private_opt():
        shutil.rmtree(CHECKPOINTS)


def test_the_bundle_trains_through_the_toolkit(tmp_path, fresh_checkpoints):
    job = Job(tmp_path / "opt-ml")
    code = job.run()
    log = job.log()
    assert code == 0, log[-6000:]
    assert (job.base / "output" / "success").exists()
    assert not (job.base / "output" / "failure").exists()
    # The project package is not installed here: the job ran the bundle's own copy.
    assert subprocess.run([sys.executable, "-c", "import dogbreed"], capture_output=True).returncode != 0
    assert "Installing dependencies from requirements.txt" in log
    # The pinned requirements installed beside the image's torch, offline, without conflicts.
    python = str(job_python(tmp_path.parent))
    versions = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('torch'), m.version('onnxruntime'))"],
                              capture_output=True, text=True)
    assert versions.stdout.split() == ["2.8.0", "1.31.1"], versions.stderr
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    # triton, torch's GPU compiler, is removed from every env here on purpose (tox.ini).
    problems = [line for line in check.stdout.splitlines() if line.strip() and "triton" not in line]
    assert not problems, check.stdout
    # The model: SageMaker tars /opt/ml/model; its files are a servable artifact.
    files = {p.name for p in (job.base / "model").iterdir()}
    assert {"model.pth", "metadata.json", "code"} <= files
    metadata = json.loads((job.base / "model" / "metadata.json").read_text())
    assert metadata["classes"] == ["Affenpinscher", "Afghan hound", "Labrador retriever"]
    assert "OK (" in log  # `dogbreed verify` ran on it inside the job
    served = subprocess.run(
        [sys.executable, "-I", "-c",
         "import sys, io, json; sys.path.insert(0, sys.argv[1] + '/code'); import inference; from PIL import Image; "
         "m = inference.model_fn(sys.argv[1]); b = io.BytesIO(); Image.new('RGB', (60, 50), (200, 40, 40)).save(b, 'JPEG'); "
         "print(inference.output_fn(inference.predict_fn(inference.input_fn(b.getvalue(), 'image/jpeg'), m), 'application/json')[0])",
         str(job.base / "model")], capture_output=True, text=True, cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["predictions"][0]["breed"] in metadata["classes"]
    # Checkpoints where SageMaker syncs them to S3.
    assert sorted(p.name for p in job.checkpoints.glob("checkpoint-epoch*.pth"))
    # The metric definitions sent with the job match the lines in the job's log.
    found = {}
    for definition in job.metric_definitions:
        values = re.findall(definition["Regex"], log)
        assert values, f"{definition['Name']}: {definition['Regex']} matched nothing"
        found[definition["Name"]] = [float(v) for v in values]
    assert len(found["validation:accuracy"]) == 3  # one per epoch
    assert all(0 <= v <= 1 for v in found["validation:accuracy"] + found["test:accuracy"])


@pytest.mark.parametrize(
    ("case", "hyperparameters", "channel", "reason"),
    [
        ("bad hyperparameter", {"epochs": '"many"'}, True, "dogbreed train: error: Invalid value for '--epochs': expected an integer, got 'many'"),
        ("empty channel", {}, False, "dogbreed train: error: "),
    ],
)
def test_a_failing_job_leaves_its_one_line_reason(tmp_path, fresh_checkpoints, case, hyperparameters, channel, reason):
    job = Job(tmp_path / "opt-ml", hyperparameters, channel=channel)
    code = job.run()
    assert code != 0
    failure = (job.base / "output" / "failure").read_text()
    assert not (job.base / "output" / "success").exists()
    first = failure.splitlines()[0]
    assert first.startswith(reason), failure[:2000]
    assert "\n" not in first and len(first) < 1024  # SageMaker keeps the first 1024 characters


def test_a_killed_job_resumes_from_its_checkpoint(tmp_path, fresh_checkpoints):
    first = Job(tmp_path / "first", {"epochs": '"3"'})
    process = first.start()
    try:
        deadline = time.monotonic() + 900
        while not list(first.checkpoints.glob("checkpoint-epoch*.pth")):
            assert process.poll() is None, first.log()[-4000:]
            assert time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.5)
        os.killpg(process.pid, signal.SIGKILL)  # a Spot interruption without grace
        process.wait()
    finally:
        first._log.close()
    kept = sorted(p.name for p in first.checkpoints.glob("checkpoint-epoch*.pth"))
    assert kept
    # The restarted job: a fresh /opt/ml except the checkpoints, which SageMaker restores from S3.
    second = Job(tmp_path / "second", {"epochs": '"3"'})
    if not private_opt():
        shutil.copytree(first.checkpoints, second.checkpoints)
    assert second.run() == 0, second.log()[-6000:]
    log = second.log()
    epochs = [int(e) for e in re.findall(r"^epoch=(\d+) ", log, flags=re.M)]
    assert epochs and epochs[0] > 1, log[-4000:]  # started after the checkpointed epoch, not from 1
    assert epochs[-1] == 3
    assert (second.base / "output" / "success").exists()
