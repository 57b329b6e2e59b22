"""Prepare what a SageMaker job would get, with the trainer's python (run by tox before going offline).

Writes into DIR: ``sourcedir.tar.gz`` built by `dogbreed launch`'s own code, ``request.json`` (the
CreateTrainingJob request it would send for a small CPU job), and ``wheels/``: every requirement the
bundle's requirements.txt pins, for the training image's Python 3.12 on x86_64 (no dependencies:
what the image already has must satisfy the rest, which is what the test checks).
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from dogbreed import launch

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
bundle = launch.build_source_bundle(out / "sourcedir.tar.gz")
train_args = ["--backbone", "resnet18", "--weights", "none", "--image-size", "40", "--resize-size", "44",
              "--batch-size", "6", "--epochs", "3", "--workers", "0", "--threads", "1", "--lr", "0.01"]
request = launch.build_training_job_request(
    job_name="dogbreed-toolkit-test", role="arn:aws:iam::123456789012:role/test", region="us-east-1",
    channels=launch.input_channels("s3://bucket/data", None, None, None), output_path="s3://bucket/models",
    source_uri="s3://bucket/models/dogbreed-toolkit-test/source/sourcedir.tar.gz",
    hyperparameters=launch.parse_train_args(train_args), instance_type="ml.m5.xlarge")
(out / "request.json").write_text(json.dumps(request, indent=1, default=str))
with tarfile.open(bundle) as tar:
    requirements = tar.extractfile("requirements.txt").read().decode()
(out / "requirements.txt").write_text(requirements)
platforms = [arg for minor in range(17, 36) for arg in ("--platform", f"manylinux_2_{minor}_x86_64")]
# Exactly the bundle's pins: not this env's constraints (the image's versions), which the job's pip does not see.
env = {key: value for key, value in os.environ.items() if key != "PIP_CONSTRAINT"}
done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                       "--implementation", "cp", "--python-version", "3.12", *platforms, "--platform", "manylinux2014_x86_64",
                       "--platform", "linux_x86_64", "--dest", str(out / "wheels"), "-r", str(out / "requirements.txt")], env=env)
sys.exit(done.returncode)
