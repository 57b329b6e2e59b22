"""``dogbreed launch``: run the trainer as a SageMaker training job or hyperparameter tuning job.

Built on plain boto3 rather than the SageMaker Python SDK: the SDK is a large dependency (and pins
its own boto3/protobuf ranges) for what amounts to two API calls here, and with boto3 the exact
``CreateTrainingJob`` / ``CreateHyperParameterTuningJob`` request is ours to build, print
(``--dry-run``) and test against moto. The requests follow the SDK's conventions so a job launched
here looks like one launched by ``sagemaker.pytorch.PyTorch``:

- the AWS PyTorch training image (Deep Learning Container) for the region, version and device;
- the trainer's source bundled as ``sourcedir.tar.gz`` in S3, run through the
  ``sagemaker_program`` / ``sagemaker_submit_directory`` hyperparameters by the image's training
  toolkit, which also ``pip install -r requirements.txt`` from the bundle;
- hyperparameters JSON-encoded (``"64"``, ``"\\"adamw\\""``), as the toolkit decodes them;
- several instances only with the ``torch_distributed`` launcher (torchrun on every host), so no
  job can pay for N hosts that each repeat the same training.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from dogbreed import s3

ENTRY_POINT = "sagemaker_train.py"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
OBJECTIVE_METRIC = "validation:accuracy"
PACKAGE_NAME = "dogbreed-trainer"

# AWS Deep Learning Containers: the ECR account that hosts the PyTorch images in each region
# (from the SageMaker Python SDK's image_uri_config). Other regions: pass --image-uri.
DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ca-central-1": "763104351884",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-1": "763104351884",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "me-south-1": "217643126080",
    "sa-east-1": "763104351884",
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-gov-west-1": "442386744353",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
}
DEFAULT_FRAMEWORK_VERSION = "2.8.0"
DEFAULT_PY_VERSION = "py312"
DEFAULT_INSTANCE_TYPE = "ml.g4dn.xlarge"

# Instances with several GPUs: one process per GPU needs the torch_distributed launcher even on a
# single instance (otherwise the trainer uses one GPU and the rest idle).
MULTI_GPU_INSTANCES = {
    "ml.g4dn.12xlarge": 4, "ml.g4dn.metal": 8,
    "ml.g5.12xlarge": 4, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8,
    "ml.g6.12xlarge": 4, "ml.g6.24xlarge": 4, "ml.g6.48xlarge": 8,
    "ml.g6e.12xlarge": 4, "ml.g6e.24xlarge": 4, "ml.g6e.48xlarge": 8,
    "ml.p3.8xlarge": 4, "ml.p3.16xlarge": 8, "ml.p3dn.24xlarge": 8,
    "ml.p4d.24xlarge": 8, "ml.p4de.24xlarge": 8, "ml.p5.48xlarge": 8, "ml.p5e.48xlarge": 8, "ml.p5en.48xlarge": 8,
}  # fmt: skip

# Provided by the training image, built for its CUDA: never reinstalled from the bundle.
PROVIDED_BY_IMAGE = {"torch", "torchvision"}

_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
TUNING_JOB_NAME_MAX = 32


class LaunchConfigError(ValueError):
    """A launch request that SageMaker would reject or that could not train correctly."""


# --- pieces of the request ----------------------------------------------------------------------


def is_gpu_instance(instance_type: str) -> bool:
    """``ml.g4dn.xlarge``, ``ml.p4d.24xlarge``... -> True; ``ml.m5.xlarge`` -> False."""
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[0] != "ml":
        raise LaunchConfigError(f"not a SageMaker instance type: {instance_type!r} (expected e.g. ml.g4dn.xlarge)")
    return parts[1].startswith(("p", "g"))


def training_image_uri(region: str, instance_type: str, framework_version: str = DEFAULT_FRAMEWORK_VERSION, py_version: str = DEFAULT_PY_VERSION) -> str:
    """The AWS PyTorch training image, e.g. ``763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-gpu-py312``."""
    account = DLC_ACCOUNTS.get(region)
    if account is None:
        raise LaunchConfigError(f"no known PyTorch training image for region {region!r}; pass --image-uri")
    device = "gpu" if is_gpu_instance(instance_type) else "cpu"
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/pytorch-training:{framework_version}-{device}-{py_version}"


def json_encode_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """SageMaker takes strings; like the SDK, JSON-encode every value (the toolkit decodes them)."""
    return {str(k): json.dumps(v) for k, v in hyperparameters.items()}


def parse_value(text: str) -> Any:
    """``"64"`` -> 64, ``"1e-3"`` -> 0.001, ``"true"`` -> True, anything else stays a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_key_values(pairs: Sequence[str], what: str = "hyperparameter") -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LaunchConfigError(f"{what} {pair!r} is not KEY=VALUE")
        out[key.strip()] = parse_value(value)
    return out


def parse_train_args(args: Sequence[str]) -> dict[str, Any]:
    """``["--epochs", "5", "--amp", "--lr=0.01"]`` -> ``{"epochs": 5, "amp": True, "lr": 0.01}``."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) == 2:
            raise LaunchConfigError(f"unexpected argument {token!r}; trainer options look like --name VALUE")
        name, sep, value = token[2:].partition("=")
        if sep:
            out[name] = parse_value(value)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[name] = parse_value(args[i + 1])
            i += 1
        else:
            out[name] = True
        i += 1
    return out


def load_hyperparameters_file(path: str | Path) -> dict[str, Any]:
    """A JSON object of flag name -> value, e.g. the ``best_params.json`` that ``dogbreed tune`` writes."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise LaunchConfigError(f"cannot read hyperparameters from {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        data = data["params"]
    if not isinstance(data, dict):
        raise LaunchConfigError(f"{path} must hold a JSON object of hyperparameter name -> value")
    return data


def input_channels(data: str | None, train: str | None, valid: str | None, test: str | None, input_mode: str = "File") -> list[dict]:
    """One ``training`` channel (split folders inside) or separate ``train``/``valid``/``test`` channels."""
    if data and (train or valid or test):
        raise LaunchConfigError("pass either --data or --train/--valid/--test, not both")
    if data:
        named = {"training": data}
    elif train:
        named = {"train": train, "valid": valid, "test": test}
    else:
        raise LaunchConfigError("no training data: pass --data s3://... (or --train s3://... [--valid ...] [--test ...])")
    channels = []
    for name, uri in named.items():
        if uri is None:
            continue
        if not s3.is_s3_uri(uri):
            raise LaunchConfigError(f"channel {name}: {uri!r} is not an s3:// URI")
        channels.append(
            {
                "ChannelName": name,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
                "InputMode": input_mode,
            }
        )
    return channels


def distribution_hyperparameters(distribution: str, instance_count: int, instance_type: str) -> dict[str, Any]:
    """The SDK's ``distribution={"torch_distributed": {"enabled": True}}`` as hyperparameters."""
    if distribution == "auto":
        several = instance_count > 1 or MULTI_GPU_INSTANCES.get(instance_type, 1) > 1
        distribution = "torch_distributed" if several else "none"
    if distribution == "none":
        if instance_count > 1:
            raise LaunchConfigError(
                f"--instance-count {instance_count} needs --distribution torch_distributed: without a distributed "
                "launcher every instance would repeat the same training"
            )
        return {}
    if distribution != "torch_distributed":
        raise LaunchConfigError(f"unknown distribution {distribution!r}; choose auto, torch_distributed or none")
    return {"sagemaker_torch_distributed_enabled": True, "sagemaker_instance_type": instance_type}


def stopping_condition(max_run: int, spot: bool, max_wait: int | None) -> dict[str, int]:
    condition = {"MaxRuntimeInSeconds": int(max_run)}
    if spot:
        wait = int(max_wait) if max_wait is not None else 2 * int(max_run)
        if wait < max_run:
            raise LaunchConfigError(f"--max-wait ({wait}s) must be at least --max-run ({max_run}s) for Spot training")
        condition["MaxWaitTimeInSeconds"] = wait
    elif max_wait is not None:
        raise LaunchConfigError("--max-wait only applies to Spot training (add --spot)")
    return condition


def check_job_name(name: str, max_length: int = 63) -> str:
    if len(name) > max_length or not _JOB_NAME.match(name):
        raise LaunchConfigError(
            f"invalid job name {name!r}: up to {max_length} letters, digits and hyphens, starting with a letter or digit"
        )
    return name


def check_role(role: str | None) -> str:
    if not role:
        raise LaunchConfigError("no execution role: pass --role arn:aws:iam::ACCOUNT:role/NAME (or set DOGBREED_SAGEMAKER_ROLE)")
    if not _ROLE_ARN.match(role):
        raise LaunchConfigError(f"--role {role!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
    return role


def default_job_name(prefix: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{prefix}-{now:%Y%m%d-%H%M%S}"


def join_s3(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


# --- the source bundle --------------------------------------------------------------------------

ENTRY_POINT_SOURCE = '''"""SageMaker entry point: ``dogbreed train`` with the job's hyperparameters as flags.

The training toolkit runs this script (through torchrun on every host when the
torch_distributed launcher is enabled) from the unpacked sourcedir.tar.gz, so ``dogbreed``
below is the bundled copy of the package.
"""

import sys

from dogbreed.train import cli_main

if __name__ == "__main__":
    sys.exit(cli_main(prog="dogbreed train"))
'''


# The training image's Python and platform, for the environment markers of the bundle's requirements.
TARGET_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "implementation_name": "cpython",
                  "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
                  "os_name": "posix", "platform_machine": "x86_64", "extra": ""}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _direct_requirements() -> list[str]:
    try:
        requirements = importlib.metadata.requires(PACKAGE_NAME) or []
    except importlib.metadata.PackageNotFoundError:
        requirements = _requirements_from_pyproject()
    return [r for r in requirements if "extra ==" not in r.replace('"', "").replace("'", "")]


def _applies(requirement) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(TARGET_MARKERS)


def container_requirements() -> list[str]:
    """requirements.txt of the bundle: the trainer's runtime dependencies and theirs, each pinned to the
    version installed here (requirements/constraints.txt's, in every env this repository builds), so
    a job installs what was tested, not the newest releases. torch and torchvision, and what only they
    need, are left to the training image, which builds them for its CUDA."""
    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    unpinned: dict[str, str] = {}
    queue = [Requirement(r) for r in _direct_requirements()]
    while queue:
        requirement = queue.pop(0)
        key = _canonical(requirement.name)
        if key in PROVIDED_BY_IMAGE or key in pins or key in unpinned or not _applies(requirement):
            continue
        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unpinned[key] = str(requirement)  # not installed here (another platform's dependency)
            continue
        pins[key] = f"{distribution.metadata['Name']}=={distribution.version}"
        for sub in distribution.requires or []:
            sub_requirement = Requirement(sub)
            if _applies(sub_requirement):
                queue.append(sub_requirement)
    return [pins[key] for key in sorted(pins)] + [unpinned[key] for key in sorted(unpinned)]


def _requirements_from_pyproject() -> list[str]:
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    except (OSError, KeyError, ValueError):
        return []


def build_source_bundle(destination: str | Path) -> Path:
    """Write ``sourcedir.tar.gz``: the entry point, a copy of the ``dogbreed`` package, requirements.txt.

    No ``setup.py`` on purpose: the toolkit would then treat the bundle as a package, which its
    torch_distributed launcher refuses to run.
    """
    package_dir = Path(__file__).resolve().parent
    destination = Path(destination)

    def add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))

    def skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if "__pycache__" in parts or info.name.endswith((".pyc", ".pyo")):
            return None
        return info

    with tarfile.open(destination, "w:gz") as tar:
        add_text(tar, ENTRY_POINT, ENTRY_POINT_SOURCE)
        add_text(tar, "requirements.txt", "\n".join(container_requirements()) + "\n")
        tar.add(package_dir, arcname="dogbreed", filter=skip_caches)
    return destination


# --- requests -----------------------------------------------------------------------------------


def _base_hyperparameters(job_name: str, region: str, submit_directory: str) -> dict[str, Any]:
    return {
        "sagemaker_program": ENTRY_POINT,
        "sagemaker_submit_directory": submit_directory,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": job_name,
        "sagemaker_region": region,
    }


def build_training_job_request(
    *,
    job_name: str,
    role: str,
    region: str,
    channels: list[dict],
    output_path: str,
    source_uri: str,
    hyperparameters: Mapping[str, Any] | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    instance_count: int = 1,
    volume_size_gb: int = 50,
    distribution: str = "auto",
    spot: bool = False,
    max_run: int = 6 * 3600,
    max_wait: int | None = None,
    checkpoint_s3_uri: str | None = None,
    image_uri: str | None = None,
    framework_version: str = DEFAULT_FRAMEWORK_VERSION,
    py_version: str = DEFAULT_PY_VERSION,
    metric_definitions: list[dict] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request (keyword arguments of ``sagemaker.create_training_job``)."""
    from dogbreed.metric_lines import METRIC_DEFINITIONS

    check_job_name(job_name)
    check_role(role)
    if instance_count < 1:
        raise LaunchConfigError("--instance-count must be at least 1")
    if not s3.is_s3_uri(output_path):
        raise LaunchConfigError(f"--output-path {output_path!r} is not an s3:// URI")
    reserved = [k for k in (hyperparameters or {}) if k.startswith("sagemaker_")]
    if reserved:
        raise LaunchConfigError(f"hyperparameter names starting with sagemaker_ are reserved: {', '.join(reserved)}")
    all_hyperparameters = {
        **(hyperparameters or {}),
        **_base_hyperparameters(job_name, region, source_uri),
        **distribution_hyperparameters(distribution, instance_count, instance_type),
    }
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "RoleArn": role,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri or training_image_uri(region, instance_type, framework_version, py_version),
            "TrainingInputMode": channels[0]["InputMode"] if channels else "File",
            "MetricDefinitions": list(metric_definitions if metric_definitions is not None else METRIC_DEFINITIONS),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": json_encode_hyperparameters(all_hyperparameters),
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": int(instance_count), "VolumeSizeInGB": int(volume_size_gb)},
        "StoppingCondition": stopping_condition(max_run, spot, max_wait),
        "EnableManagedSpotTraining": bool(spot),
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }
    if spot or checkpoint_s3_uri:
        # The trailing slash matters: SageMaker syncs every key that starts with the URI.
        uri = (checkpoint_s3_uri or join_s3(output_path, job_name, "checkpoints")).rstrip("/") + "/"
        request["CheckpointConfig"] = {"S3Uri": uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    if not request["Tags"]:
        del request["Tags"]
    return request


def parameter_ranges(space) -> dict[str, list[dict]]:
    """SageMaker ``ParameterRanges`` for a :class:`dogbreed.tuning.SearchSpace`."""
    ranges: dict[str, list[dict]] = {"ContinuousParameterRanges": [], "IntegerParameterRanges": [], "CategoricalParameterRanges": []}
    for p in space.parameters:
        if p.kind == "categorical" or (p.kind == "int" and p.step not in (None, 1)):
            # Values JSON-encoded like the hyperparameters (the SDK's as_json_range for frameworks).
            ranges["CategoricalParameterRanges"].append({"Name": p.name, "Values": [json.dumps(v) for v in p.values()]})
        else:
            key = "ContinuousParameterRanges" if p.kind == "float" else "IntegerParameterRanges"
            ranges[key].append(
                {"Name": p.name, "MinValue": str(p.low), "MaxValue": str(p.high), "ScalingType": "Logarithmic" if p.log else "Linear"}
            )
    return {k: v for k, v in ranges.items() if v}


def build_tuning_job_request(
    *,
    tuning_job_name: str,
    space,
    max_jobs: int,
    max_parallel_jobs: int,
    role: str,
    region: str,
    channels: list[dict],
    output_path: str,
    source_uri: str,
    static_hyperparameters: Mapping[str, Any] | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    instance_count: int = 1,
    volume_size_gb: int = 50,
    distribution: str = "auto",
    spot: bool = False,
    max_run: int = 6 * 3600,
    max_wait: int | None = None,
    image_uri: str | None = None,
    framework_version: str = DEFAULT_FRAMEWORK_VERSION,
    py_version: str = DEFAULT_PY_VERSION,
    strategy: str = "Bayesian",
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``CreateHyperParameterTuningJob`` request for the search space ``space``."""
    from dogbreed.metric_lines import METRIC_DEFINITIONS

    check_job_name(tuning_job_name, TUNING_JOB_NAME_MAX)
    if max_jobs < 1 or max_parallel_jobs < 1:
        raise LaunchConfigError("--max-jobs and --max-parallel-jobs must be at least 1")
    if max_parallel_jobs > max_jobs:
        raise LaunchConfigError(f"--max-parallel-jobs ({max_parallel_jobs}) cannot exceed --max-jobs ({max_jobs})")
    if OBJECTIVE_METRIC not in {d["Name"] for d in METRIC_DEFINITIONS}:
        raise LaunchConfigError(f"the objective {OBJECTIVE_METRIC} has no metric definition")
    static = {**space.fixed, **(static_hyperparameters or {})}
    clash = sorted(set(static) & set(space.names))
    if clash:
        raise LaunchConfigError(f"hyperparameters both fixed and tuned: {', '.join(clash)}")
    # Reuse the training-job builder for validation and the shared pieces.
    job = build_training_job_request(
        job_name=tuning_job_name,
        role=role,
        region=region,
        channels=channels,
        output_path=output_path,
        source_uri=source_uri,
        hyperparameters=static,
        instance_type=instance_type,
        instance_count=instance_count,
        volume_size_gb=volume_size_gb,
        distribution=distribution,
        spot=spot,
        max_run=max_run,
        max_wait=max_wait,
        image_uri=image_uri,
        framework_version=framework_version,
        py_version=py_version,
        metric_definitions=METRIC_DEFINITIONS,
    )
    static_encoded = dict(job["HyperParameters"])
    static_encoded.pop("sagemaker_job_name")  # each training job gets its own name
    definition = {
        "StaticHyperParameters": static_encoded,
        "AlgorithmSpecification": {
            "TrainingImage": job["AlgorithmSpecification"]["TrainingImage"],
            "TrainingInputMode": job["AlgorithmSpecification"]["TrainingInputMode"],
            "MetricDefinitions": job["AlgorithmSpecification"]["MetricDefinitions"],
        },
        "RoleArn": role,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": job["ResourceConfig"],
        "StoppingCondition": job["StoppingCondition"],
        "EnableManagedSpotTraining": bool(spot),
        # No CheckpointConfig: all training jobs of a tuning job would share its S3 prefix, and a
        # restarted trial must never resume another trial's checkpoint. An interrupted Spot
        # trial starts over instead.
    }
    request: dict[str, Any] = {
        "HyperParameterTuningJobName": tuning_job_name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": OBJECTIVE_METRIC},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": int(max_jobs), "MaxParallelTrainingJobs": int(max_parallel_jobs)},
            "ParameterRanges": parameter_ranges(space),
            "TrainingJobEarlyStoppingType": "Auto",
        },
        "TrainingJobDefinition": definition,
    }
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return request


# --- results of a tuning job --------------------------------------------------------------------


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def tuning_job_results(client, tuning_job_name: str) -> tuple[dict, list[dict]]:
    """(DescribeHyperParameterTuningJob, one row per training job sorted best first)."""
    description = client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_job_name)
    objective = description["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    summaries = []
    paginator = client.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
    for page in paginator.paginate(HyperParameterTuningJobName=tuning_job_name):
        summaries.extend(page["TrainingJobSummaries"])
    rows = []
    for summary in summaries:
        metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        rows.append(
            {
                "job": summary["TrainingJobName"],
                "status": summary["TrainingJobStatus"],
                "objective": metric.get("Value"),
                "duration_s": _seconds(summary.get("TrainingStartTime"), summary.get("TrainingEndTime")),
                "params": {k: s3_strip_json(v) for k, v in (summary.get("TunedHyperParameters") or {}).items()},
            }
        )
    maximise = objective["Type"] == "Maximize"
    rows.sort(key=lambda r: (r["objective"] is None, -(r["objective"] or 0) if maximise else (r["objective"] or 0)))
    return description, rows


def s3_strip_json(value: str) -> str:
    """Tuned values come back JSON-encoded for categorical ranges (``'"adamw"'``); show them plain."""
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return value
    return decoded if isinstance(decoded, str) else value


def format_results_table(objective_name: str, rows: list[dict]) -> str:
    params = sorted({k for r in rows for k in r["params"]})
    header = ["training job", "status", objective_name, "duration", *params]
    body = [
        [
            r["job"],
            r["status"],
            "-" if r["objective"] is None else f"{r['objective']:.4f}",
            format_duration(r["duration_s"]),
            *(str(r["params"].get(p, "-")) for p in params),
        ]
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- CLI ----------------------------------------------------------------------------------------


def _clients(region: str | None):
    import boto3

    # boto3 reads AWS_DEFAULT_REGION and the config file but not AWS_REGION, which the SDKs and the
    # README's worked example use.
    session = boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if not session.region_name:
        raise click.ClickException("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    return session, session.region_name


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _aws_call(what: str, call: Callable[[], Any]) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise click.ClickException(f"{what} failed: {error.get('Code', 'Error')}: {error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise click.ClickException(f"{what} failed: {exc}") from None


def _upload_bundle(session, source_uri: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = build_source_bundle(Path(tmp) / "sourcedir.tar.gz")
        click.echo(f"uploading the trainer source to {source_uri}", err=True)
        _aws_call("uploading the source bundle", lambda: s3.upload_file(bundle, source_uri, progress=False, client=session.client("s3")))


def common_job_options(f):
    options = [
        click.option("--role", envvar="DOGBREED_SAGEMAKER_ROLE", help="IAM execution role ARN for the job (env DOGBREED_SAGEMAKER_ROLE). Required."),
        click.option("--data", help="s3:// prefix of a dataset with train/ valid/ test/ folders (or the Stanford layout): one 'training' channel. Default: none (use --train...)."),
        click.option("--train", "train_uri", help="s3:// prefix of the training split (the 'train' channel). Default: none."),
        click.option("--valid", "valid_uri", help="s3:// prefix of the validation split (the 'valid' channel). Default: none."),
        click.option("--test", "test_uri", help="s3:// prefix of the test split (the 'test' channel). Default: none."),
        click.option("--output-path", required=True, help="s3:// prefix for model artifacts; the source bundle and checkpoints go below it too. Required."),
        click.option("--instance-type", default=DEFAULT_INSTANCE_TYPE, show_default=True, help="SageMaker instance type."),
        click.option("--instance-count", default=1, show_default=True, type=click.IntRange(min=1), help="Instances per training job; >1 requires the torch_distributed launcher."),
        click.option(
            "--distribution",
            type=click.Choice(["auto", "torch_distributed", "none"]),
            default="auto",
            show_default=True,
            help="Distributed launcher. auto = torch_distributed (torchrun on every instance, one process per GPU) when --instance-count > 1 or the instance type has several GPUs; none = one process.",
        ),
        click.option("--volume-size", default=50, show_default=True, type=click.IntRange(min=1), help="EBS volume per instance, GB."),
        click.option("--spot/--on-demand", default=False, show_default=True, help="Managed Spot training (cheaper; may be interrupted and resumed from checkpoints)."),
        click.option("--max-run", default=6 * 3600, show_default=True, type=click.IntRange(min=1), help="Maximum training time per job, seconds."),
        click.option("--max-wait", type=click.IntRange(min=1), help="Spot only: maximum time including waiting for capacity, seconds (>= --max-run). Default: 2 x --max-run."),
        click.option("--image-uri", help="Training image; default: the AWS PyTorch training image for the region, --framework-version, --py-version and device."),
        click.option("--framework-version", default=DEFAULT_FRAMEWORK_VERSION, show_default=True, help="PyTorch version of the AWS training image."),
        click.option("--py-version", default=DEFAULT_PY_VERSION, show_default=True, help="Python version tag of the AWS training image."),
        click.option("--input-mode", type=click.Choice(["File", "FastFile"]), default="File", show_default=True, help="How SageMaker provides the data channels."),
        click.option("-H", "--hyperparameter", "hyperparameter_pairs", multiple=True, metavar="KEY=VALUE", help="A `dogbreed train` option, e.g. -H epochs=10 -H backbone=resnet50 (repeatable). Default: none."),
        click.option("--hyperparameters-file", type=click.Path(exists=True, dir_okay=False), help="JSON object of `dogbreed train` options, e.g. best_params.json from `dogbreed tune`. Default: none."),
        click.option("--tag", "tag_pairs", multiple=True, metavar="KEY=VALUE", help="Tag for the job (repeatable). Default: none."),
        click.option("--region", help="AWS region. Default: from the AWS configuration."),
        click.option("--dry-run", is_flag=True, help="Print the request as JSON and stop: nothing is uploaded or created."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _collect_hyperparameters(hyperparameters_file, pairs, extra_args) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if hyperparameters_file:
        values.update(load_hyperparameters_file(hyperparameters_file))
    values.update(parse_train_args(list(extra_args)))
    values.update(parse_key_values(pairs))
    return values


@click.group("launch", context_settings={"help_option_names": ["-h", "--help"]})
def launch_group() -> None:
    """Run training or hyperparameter tuning as SageMaker jobs (boto3; needs AWS credentials)."""


@launch_group.command("train", context_settings={"ignore_unknown_options": True})
@common_job_options
@click.option("--job-name", help="Training job name. Default: dogbreed-YYYYMMDD-HHMMSS (UTC).")
@click.option("--checkpoint-s3-uri", help="Where /opt/ml/checkpoints is synced (Spot resumes from it). Default with --spot: OUTPUT_PATH/JOB_NAME/checkpoints/.")
@click.option("--wait", is_flag=True, help="Wait for the job to finish, printing status changes; exit 1 unless it completes.")
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def train_job_command(role, data, train_uri, valid_uri, test_uri, output_path, instance_type, instance_count, distribution, volume_size, spot, max_run, max_wait, image_uri, framework_version, py_version, input_mode, hyperparameter_pairs, hyperparameters_file, tag_pairs, region, dry_run, job_name, checkpoint_s3_uri, wait, train_args):
    """Start a SageMaker training job running `dogbreed train`.

    Trainer options go after `--` (`-- --epochs 10 --backbone resnet50`) or as -H KEY=VALUE. Prints the
    job name and ARN (or, with --dry-run, the request).
    """
    session, region = _clients(region)
    job_name = job_name or default_job_name("dogbreed")
    try:
        hyperparameters = _collect_hyperparameters(hyperparameters_file, hyperparameter_pairs, train_args)
        channels = input_channels(data, train_uri, valid_uri, test_uri, input_mode)
        check_role(role)
        source_uri = join_s3(output_path, job_name, "source", "sourcedir.tar.gz")
        request = build_training_job_request(
            job_name=job_name, role=role, region=region, channels=channels, output_path=output_path, source_uri=source_uri,
            hyperparameters=hyperparameters, instance_type=instance_type, instance_count=instance_count, volume_size_gb=volume_size,
            distribution=distribution, spot=spot, max_run=max_run, max_wait=max_wait, checkpoint_s3_uri=checkpoint_s3_uri,
            image_uri=image_uri, framework_version=framework_version, py_version=py_version, tags=parse_key_values(tag_pairs, "tag"),
        )  # fmt: skip
    except LaunchConfigError as exc:
        raise _fail(exc) from None
    if dry_run:
        click.echo(json.dumps(request, indent=2, sort_keys=True))
        return
    _upload_bundle(session, source_uri)
    sagemaker = session.client("sagemaker")
    response = _aws_call("CreateTrainingJob", lambda: sagemaker.create_training_job(**request))
    click.echo(f"{job_name}\t{response['TrainingJobArn']}")
    if wait:
        status = wait_for_training_job(sagemaker, job_name)
        if status != "Completed":
            raise click.ClickException(f"training job {job_name} ended {status}")


def wait_for_training_job(client, job_name: str, poll_seconds: float = 30, sleep: Callable[[float], None] = time.sleep) -> str:
    last = None
    while True:
        description = _aws_call("DescribeTrainingJob", lambda: client.describe_training_job(TrainingJobName=job_name))
        status = (description["TrainingJobStatus"], description.get("SecondaryStatus"))
        if status != last:
            click.echo(f"{job_name}: {status[0]} ({status[1]})", err=True)
            last = status
        if status[0] in ("Completed", "Failed", "Stopped"):
            if status[0] == "Failed":
                click.echo(f"failure reason: {description.get('FailureReason', 'unknown')}", err=True)
            return status[0]
        sleep(poll_seconds)


@launch_group.command("tune", context_settings={"ignore_unknown_options": True})
@common_job_options
@click.option("--search-space", type=click.Path(exists=True, dir_okay=False), help="YAML/JSON search space (same file as `dogbreed tune`). Default: the packaged search_spaces/default.yaml.")
@click.option("--max-jobs", default=20, show_default=True, type=click.IntRange(min=1), help="Training jobs in total.")
@click.option("--max-parallel-jobs", default=2, show_default=True, type=click.IntRange(min=1), help="Training jobs at once.")
@click.option("--strategy", type=click.Choice(["Bayesian", "Random"]), default="Bayesian", show_default=True, help="Search strategy (with early stopping Auto).")
@click.option("--job-name", help="Tuning job name (at most 32 characters). Default: dogbreed-hpo-YYMMDD-HHMMSS (UTC).")
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def tune_job_command(role, data, train_uri, valid_uri, test_uri, output_path, instance_type, instance_count, distribution, volume_size, spot, max_run, max_wait, image_uri, framework_version, py_version, input_mode, hyperparameter_pairs, hyperparameters_file, tag_pairs, region, dry_run, search_space, max_jobs, max_parallel_jobs, strategy, job_name, train_args):
    """Start a SageMaker hyperparameter tuning job over the search space.

    Objective: validation:accuracy (maximised), read from the trainer's epoch lines; early stopping
    Auto. Options after `--` or -H are fixed for every training job.
    """
    from dogbreed.tuning import SearchSpaceError, load_search_space

    session, region = _clients(region)
    job_name = job_name or dt.datetime.now(dt.UTC).strftime("dogbreed-hpo-%y%m%d-%H%M%S")
    try:
        space = load_search_space(search_space)
        static = _collect_hyperparameters(hyperparameters_file, hyperparameter_pairs, train_args)
        for name in space.names:  # a best_params.json passed as the base must not pin tuned values
            static.pop(name, None)
        channels = input_channels(data, train_uri, valid_uri, test_uri, input_mode)
        check_role(role)
        source_uri = join_s3(output_path, job_name, "source", "sourcedir.tar.gz")
        request = build_tuning_job_request(
            tuning_job_name=job_name, space=space, max_jobs=max_jobs, max_parallel_jobs=max_parallel_jobs, role=role,
            region=region, channels=channels, output_path=output_path, source_uri=source_uri, static_hyperparameters=static,
            instance_type=instance_type, instance_count=instance_count, volume_size_gb=volume_size, distribution=distribution,
            spot=spot, max_run=max_run, max_wait=max_wait, image_uri=image_uri, framework_version=framework_version,
            py_version=py_version, strategy=strategy, tags=parse_key_values(tag_pairs, "tag"),
        )  # fmt: skip
    except (LaunchConfigError, SearchSpaceError) as exc:
        raise _fail(exc) from None
    if dry_run:
        click.echo(json.dumps(request, indent=2, sort_keys=True))
        return
    _upload_bundle(session, source_uri)
    sagemaker = session.client("sagemaker")
    response = _aws_call("CreateHyperParameterTuningJob", lambda: sagemaker.create_hyper_parameter_tuning_job(**request))
    click.echo(f"{job_name}\t{response['HyperParameterTuningJobArn']}")


@launch_group.command("results")
@click.argument("tuning_job_name")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Output format.")
@click.option("--region", help="AWS region. Default: from the AWS configuration.")
def results_command(tuning_job_name, output_format, region):
    """Print every training job of a tuning job: hyperparameters, objective, status, duration (best first)."""
    session, _ = _clients(region)
    sagemaker = session.client("sagemaker")
    description, rows = _aws_call("reading the tuning job", lambda: tuning_job_results(sagemaker, tuning_job_name))
    objective = description["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    if output_format == "json":
        click.echo(json.dumps({"tuning_job": tuning_job_name, "status": description["HyperParameterTuningJobStatus"], "objective": objective, "training_jobs": rows}, indent=2))
        return
    click.echo(f"{tuning_job_name}: {description['HyperParameterTuningJobStatus']}, objective {objective['MetricName']} ({objective['Type']})", err=True)
    if not rows:
        click.echo("no training jobs yet", err=True)
        return
    click.echo(format_results_table(objective["MetricName"], rows))


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - convenience
    launch_group.main(args=list(argv) if argv is not None else sys.argv[1:])
