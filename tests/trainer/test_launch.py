"""`dogbreed launch`: SageMaker training/tuning job requests against moto, results via botocore's Stubber."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import click
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from moto import mock_aws

from dogbreed import launch, train
from dogbreed.commands import launch as launch_command
from dogbreed.metric_lines import METRIC_DEFINITIONS
from dogbreed.tuning import load_search_space

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "dogbreed-ml"
ROLE = "arn:aws:iam::123456789012:role/dogbreed-sagemaker-training"
IMAGE_GPU = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.8.0-gpu-py312"


@pytest.fixture()
def aws(monkeypatch):
    """moto's in-process AWS with a bucket; yields a boto3 session whose SageMaker requests are recorded."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER", "DOGBREED_SAGEMAKER_ROLE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=BUCKET)
        sent: dict[str, list[dict]] = {}

        def record(params, model, **_):
            sent.setdefault(model.name, []).append(json.loads(json.dumps(params, default=str)))

        # What actually goes over the wire (moto rewrites some fields when describing a job).
        session.events.register("provide-client-params.sagemaker.*", record)
        monkeypatch.setattr(launch_command, "_clients", lambda region: (session, REGION))
        session.sent = sent
        yield session


def toolkit_argv(hyperparameters: dict[str, str]) -> list[str]:
    """What SageMaker's training toolkit passes the entry point: JSON-decoded values, sagemaker_* removed."""
    argv = []
    for key in sorted(hyperparameters):
        if key.startswith("sagemaker_"):
            continue
        try:
            value = json.loads(hyperparameters[key])
        except ValueError:
            value = hyperparameters[key]
        argv += [f"--{key}", str(value)]
    return argv


def run_cli(*args: str):
    return CliRunner().invoke(launch_command.command, list(args), catch_exceptions=False)


TRAIN_ARGS = [
    "train",
    "--role", ROLE,
    "--data", f"s3://{BUCKET}/datasets/dogimages",
    "--output-path", f"s3://{BUCKET}/jobs",
    "--job-name", "dogbreed-test-1",
]  # fmt: skip


# ---- request pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "instance", "expected"),
    [
        ("us-east-1", "ml.g4dn.xlarge", IMAGE_GPU),
        ("eu-west-1", "ml.m5.xlarge", "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.8.0-cpu-py312"),
        ("af-south-1", "ml.p3.2xlarge", "626614931356.dkr.ecr.af-south-1.amazonaws.com/pytorch-training:2.8.0-gpu-py312"),
        ("cn-north-1", "ml.c5.xlarge", "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:2.8.0-cpu-py312"),
    ],
)
def test_training_image_uri(region, instance, expected):
    assert launch.training_image_uri(region, instance) == expected


def test_unknown_region_or_instance_is_a_clear_error():
    with pytest.raises(launch.LaunchConfigError, match="pass --image-uri"):
        launch.training_image_uri("xx-nowhere-1", "ml.g4dn.xlarge")
    with pytest.raises(launch.LaunchConfigError, match="not a SageMaker instance type"):
        launch.training_image_uri("us-east-1", "g4dn.xlarge")


def test_channels():
    one = launch.input_channels("s3://b/data", None, None, None)
    assert [c["ChannelName"] for c in one] == ["training"]
    assert one[0]["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix", "S3Uri": "s3://b/data", "S3DataDistributionType": "FullyReplicated"}
    split = launch.input_channels(None, "s3://b/train", "s3://b/valid", None, "FastFile")
    assert [(c["ChannelName"], c["InputMode"]) for c in split] == [("train", "FastFile"), ("valid", "FastFile")]
    with pytest.raises(launch.LaunchConfigError, match="either --data or --train"):
        launch.input_channels("s3://b/d", "s3://b/t", None, None)
    with pytest.raises(launch.LaunchConfigError, match="not an s3:// URI"):
        launch.input_channels("/local/data", None, None, None)
    with pytest.raises(launch.LaunchConfigError, match="no training data"):
        launch.input_channels(None, None, None, None)


def test_distribution():
    assert launch.distribution_hyperparameters("auto", 1, "ml.g5.xlarge") == {}
    expected = {"sagemaker_torch_distributed_enabled": True, "sagemaker_instance_type": "ml.g5.xlarge"}
    assert launch.distribution_hyperparameters("auto", 2, "ml.g5.xlarge") == expected
    assert launch.distribution_hyperparameters("torch_distributed", 1, "ml.g5.xlarge") == expected
    # One instance with 4 GPUs: one process per GPU.
    assert launch.distribution_hyperparameters("auto", 1, "ml.g5.12xlarge")["sagemaker_torch_distributed_enabled"] is True
    assert launch.distribution_hyperparameters("none", 1, "ml.g5.12xlarge") == {}
    with pytest.raises(launch.LaunchConfigError, match="every instance would repeat the same training"):
        launch.distribution_hyperparameters("none", 2, "ml.g5.xlarge")


def test_stopping_condition():
    assert launch.stopping_condition(3600, False, None) == {"MaxRuntimeInSeconds": 3600}
    assert launch.stopping_condition(3600, True, None) == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    with pytest.raises(launch.LaunchConfigError, match="must be at least --max-run"):
        launch.stopping_condition(3600, True, 60)
    with pytest.raises(launch.LaunchConfigError, match="only applies to Spot"):
        launch.stopping_condition(3600, False, 7200)


def test_parse_train_args_and_encoding():
    values = launch.parse_train_args(["--epochs", "5", "--amp", "--lr=1e-3", "--backbone", "resnet50"])
    assert values == {"epochs": 5, "amp": True, "lr": 0.001, "backbone": "resnet50"}
    assert launch.json_encode_hyperparameters(values) == {"epochs": "5", "amp": "true", "lr": "0.001", "backbone": '"resnet50"'}
    with pytest.raises(launch.LaunchConfigError, match="unexpected argument 'oops'"):
        launch.parse_train_args(["oops"])


def test_reserved_hyperparameters_are_refused():
    with pytest.raises(launch.LaunchConfigError, match="reserved: sagemaker_program"):
        launch.build_training_job_request(
            job_name="j", role=ROLE, region=REGION, channels=launch.input_channels("s3://b/d", None, None, None),
            output_path="s3://b/o", source_uri="s3://b/o/s.tar.gz", hyperparameters={"sagemaker_program": "x.py"},
        )  # fmt: skip


# ---- the source bundle -------------------------------------------------------------------------


def test_source_bundle_runs_the_trainer_from_its_own_copy(tmp_path):
    bundle = launch.build_source_bundle(tmp_path / "sourcedir.tar.gz")
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        requirements = tar.extractfile("requirements.txt").read().decode().split()
        tar.extractall(tmp_path / "code", filter="data")
    assert launch.ENTRY_POINT in names
    assert "dogbreed/train.py" in names and "dogbreed/serving/architectures.py" in names
    assert "dogbreed/search_spaces/default.yaml" in names
    assert "setup.py" not in names  # torch_distributed refuses "package" entry points
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [r for r in requirements if r.split("=")[0].split(">")[0] in ("torch", "torchvision")]
    # Every requirement, and every requirement's requirement, pinned to requirements/constraints.txt.
    constraints = dict(line.split("==") for line in (REPO_ROOT / "requirements" / "constraints.txt").read_text().splitlines()
                       if "==" in line)
    constraints = {name.lower().replace("_", "-"): version for name, version in constraints.items()}
    pins = dict(r.split("==") for r in requirements)
    assert {"click", "onnxruntime", "optuna", "numpy", "protobuf", "sqlalchemy"} <= {n.lower().replace("_", "-") for n in pins}
    assert all(constraints[name.lower().replace("_", "-")] == version for name, version in pins.items())
    assert not {"filelock", "networkx", "fsspec", "nvidia-cublas"} & {n.lower() for n in pins}  # torch's alone
    # The toolkit runs `python sagemaker_train.py ARGS` from the unpacked bundle.
    result = subprocess.run(
        [sys.executable, "-c", "import runpy, sys; sys.argv = ['sagemaker_train.py', '--help']; sys.path.insert(0, '.'); "
         "import dogbreed; print('FROM', dogbreed.__file__); runpy.run_path('sagemaker_train.py', run_name='__main__')"],
        cwd=tmp_path / "code", capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"FROM {tmp_path / 'code' / 'dogbreed' / '__init__.py'}" in result.stdout
    assert "--epochs" in result.stdout


# ---- launch train against moto -----------------------------------------------------------------


def test_launch_train_creates_the_job(aws):
    result = run_cli(
        *TRAIN_ARGS, "--spot", "--max-run", "7200", "--instance-type", "ml.g4dn.xlarge",
        "-H", "batch-size=32", "-H", "channels-last=false", "--tag", "project=dogbreed", "--", "--epochs", "3", "--backbone", "resnet50",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == f"dogbreed-test-1\tarn:aws:sagemaker:{REGION}:123456789012:training-job/dogbreed-test-1\n"

    job = aws.client("sagemaker").describe_training_job(TrainingJobName="dogbreed-test-1")
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE_GPU
    source = f"s3://{BUCKET}/jobs/dogbreed-test-1/source/sourcedir.tar.gz"
    assert job["HyperParameters"] == {
        "epochs": "3",
        "backbone": '"resnet50"',
        "batch-size": "32",
        "channels-last": "false",
        "sagemaker_program": '"sagemaker_train.py"',
        "sagemaker_submit_directory": json.dumps(source),
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": '"dogbreed-test-1"',
        "sagemaker_region": '"us-east-1"',
    }
    assert job["InputDataConfig"][0]["ChannelName"] == "training"
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/datasets/dogimages"
    assert job["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/jobs"}
    assert job["ResourceConfig"] == {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400}
    assert job["CheckpointConfig"] == {"S3Uri": f"s3://{BUCKET}/jobs/dogbreed-test-1/checkpoints/", "LocalPath": "/opt/ml/checkpoints"}
    assert job["RoleArn"] == ROLE

    # The trainer's own parser accepts what the toolkit will pass it.
    args = train.parse_args(toolkit_argv(job["HyperParameters"]))
    assert (args.epochs, args.backbone, args.batch_size, args.channels_last) == (3, "resnet50", 32, False)

    [request] = aws.sent["CreateTrainingJob"]
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert request["Tags"] == [{"Key": "project", "Value": "dogbreed"}]
    # The bundle the hyperparameters point at was uploaded.
    body = aws.client("s3").get_object(Bucket=BUCKET, Key="jobs/dogbreed-test-1/source/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert launch.ENTRY_POINT in tar.getnames()


def test_launch_train_multi_instance_uses_torch_distributed(aws, tmp_path):
    params = tmp_path / "best_params.json"
    params.write_text(json.dumps({"lr": 0.0003, "batch-size": 64}))
    result = run_cli(
        "train", "--role", ROLE, "--train", f"s3://{BUCKET}/d/train", "--valid", f"s3://{BUCKET}/d/valid",
        "--test", f"s3://{BUCKET}/d/test", "--output-path", f"s3://{BUCKET}/jobs", "--job-name", "ddp-job",
        "--instance-count", "2", "--instance-type", "ml.g5.12xlarge", "--hyperparameters-file", str(params),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = aws.client("sagemaker").describe_training_job(TrainingJobName="ddp-job")
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"
    assert job["HyperParameters"]["sagemaker_instance_type"] == '"ml.g5.12xlarge"'
    assert job["HyperParameters"]["lr"] == "0.0003" and job["HyperParameters"]["batch-size"] == "64"
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "valid", "test"]
    assert "CheckpointConfig" not in job and job["EnableManagedSpotTraining"] is False


def test_multi_instance_without_ddp_is_refused_and_nothing_is_created(aws):
    result = CliRunner().invoke(launch_command.command, [*TRAIN_ARGS, "--instance-count", "2", "--distribution", "none"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --instance-count 2 needs --distribution torch_distributed: without a distributed launcher every "
        "instance would repeat the same training\n"
    )
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="jobs/")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "not-an-arn"], "is not an IAM role ARN"),
        (["--job-name", "bad_name!"], "invalid job name 'bad_name!'"),
        (["--output-path", "/tmp/out"], "--output-path '/tmp/out' is not an s3:// URI"),
        (["--max-wait", "10", "--spot"], "must be at least --max-run"),
    ],
)
def test_bad_train_options(aws, args, message):
    result = CliRunner().invoke(launch_command.command, [*TRAIN_ARGS, *args])
    assert result.exit_code == 1
    assert message in result.stderr
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_missing_role_names_the_option(aws):
    args = [a for a in TRAIN_ARGS if a not in ("--role", ROLE)]
    result = CliRunner().invoke(launch_command.command, args)
    assert result.exit_code == 1
    assert "no execution role: pass --role" in result.stderr


def test_dry_run_prints_the_request_and_creates_nothing(aws):
    result = run_cli(*TRAIN_ARGS, "--dry-run", "--image-uri", "my/image:1")
    assert result.exit_code == 0
    request = json.loads(result.stdout)
    assert request["TrainingJobName"] == "dogbreed-test-1"
    assert request["AlgorithmSpecification"]["TrainingImage"] == "my/image:1"
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket=BUCKET)


def test_wait_reports_the_final_status(aws):
    result = run_cli(*TRAIN_ARGS, "--wait")  # moto's jobs complete at once
    assert result.exit_code == 0
    assert "dogbreed-test-1: Completed (Completed)" in result.stderr


# ---- launch tune against moto ------------------------------------------------------------------


def test_launch_tune_creates_the_tuning_job(aws):
    result = run_cli(
        "tune", "--role", ROLE, "--data", f"s3://{BUCKET}/datasets/dogimages", "--output-path", f"s3://{BUCKET}/hpo",
        "--job-name", "dogbreed-hpo-1", "--max-jobs", "12", "--max-parallel-jobs", "3", "--spot",
        "--", "--backbone", "resnet50",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("dogbreed-hpo-1\tarn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/dogbreed-hpo-1")

    described = aws.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="dogbreed-hpo-1")
    config = described["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["Strategy"] == "Bayesian"
    assert config["ParameterRanges"] == {
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.01", "ScalingType": "Logarithmic"},
            {"Name": "weight-decay", "MinValue": "1e-06", "MaxValue": "0.01", "ScalingType": "Logarithmic"},
        ],
        "IntegerParameterRanges": [
            {"Name": "epochs", "MinValue": "3", "MaxValue": "10", "ScalingType": "Linear"},
            {"Name": "unfreeze-depth", "MinValue": "0", "MaxValue": "3", "ScalingType": "Linear"},
        ],
        "CategoricalParameterRanges": [{"Name": "batch-size", "Values": ["16", "32", "64"]}],
    }
    definition = described["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE_GPU
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    static = definition["StaticHyperParameters"]
    assert static["backbone"] == '"resnet50"' and static["mode"] == '"finetune"'
    assert static["sagemaker_program"] == '"sagemaker_train.py"'
    assert static["sagemaker_submit_directory"] == f'"s3://{BUCKET}/hpo/dogbreed-hpo-1/source/sourcedir.tar.gz"'
    assert not set(static) & {"lr", "batch-size", "weight-decay", "epochs", "unfreeze-depth", "sagemaker_job_name"}
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 21600, "MaxWaitTimeInSeconds": 43200}
    assert "CheckpointConfig" not in definition
    assert [c["ChannelName"] for c in definition["InputDataConfig"]] == ["training"]
    # Any point of the search space, with the static values, parses as `dogbreed train` arguments.
    tuned = {r["Name"]: r["MinValue"] for key in ("ContinuousParameterRanges", "IntegerParameterRanges") for r in config["ParameterRanges"][key]}
    tuned |= {r["Name"]: r["Values"][-1] for r in config["ParameterRanges"]["CategoricalParameterRanges"]}
    args = train.parse_args(toolkit_argv({**static, **tuned}))
    assert (args.batch_size, args.unfreeze_depth, args.mode, args.lr) == (64, 0, "finetune", 0.0001)
    assert aws.client("s3").head_object(Bucket=BUCKET, Key="hpo/dogbreed-hpo-1/source/sourcedir.tar.gz")["ContentLength"] > 0


def test_launch_tune_multi_instance_trials_use_torch_distributed(aws):
    result = run_cli(
        "tune", "--role", ROLE, "--data", f"s3://{BUCKET}/d", "--output-path", f"s3://{BUCKET}/hpo", "--job-name", "hpo-ddp",
        "--instance-count", "2", "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0
    static = json.loads(result.stdout)["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["sagemaker_torch_distributed_enabled"] == "true"


def test_launch_tune_name_and_limits(aws):
    base = ["tune", "--role", ROLE, "--data", f"s3://{BUCKET}/d", "--output-path", f"s3://{BUCKET}/hpo"]
    too_long = CliRunner().invoke(launch_command.command, [*base, "--job-name", "x" * 33])
    assert too_long.exit_code == 1 and "up to 32 letters" in too_long.stderr
    limits = CliRunner().invoke(launch_command.command, [*base, "--max-jobs", "2", "--max-parallel-jobs", "4"])
    assert limits.exit_code == 1 and "--max-parallel-jobs (4) cannot exceed --max-jobs (2)" in limits.stderr


def test_launch_tune_with_a_custom_search_space(aws, tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"parameters": {"lr": {"type": "float", "low": 0.001, "high": 0.1}, "optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]}}}))
    result = run_cli("tune", "--role", ROLE, "--data", f"s3://{BUCKET}/d", "--output-path", f"s3://{BUCKET}/hpo", "--search-space", str(space), "--dry-run")
    ranges = json.loads(result.stdout)["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges == {
        "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ['"adamw"', '"sgd"']}],
    }


def test_stepped_int_becomes_categorical():
    space = load_search_space(None)
    from dogbreed.tuning import parse_search_space

    stepped = parse_search_space({"parameters": {"epochs": {"type": "int", "low": 2, "high": 8, "step": 3}}})
    assert launch.parameter_ranges(stepped) == {"CategoricalParameterRanges": [{"Name": "epochs", "Values": ["2", "5", "8"]}]}
    assert set(space.names) == {"lr", "batch-size", "weight-decay", "epochs", "unfreeze-depth"}


# ---- launch results via Stubber (moto lacks ListTrainingJobsForHyperParameterTuningJob) --------


class StubbedSession:
    def __init__(self, client):
        self._client = client

    def client(self, name):
        assert name == "sagemaker"
        return self._client


def test_results_table(monkeypatch):
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    start = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    objective = {"Type": "Maximize", "MetricName": "validation:accuracy"}
    with Stubber(client) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            {
                "HyperParameterTuningJobName": "hpo-1",
                "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/hpo-1",
                "HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "HyperParameterTuningJobObjective": objective, "ResourceLimits": {"MaxParallelTrainingJobs": 2}},
                "HyperParameterTuningJobStatus": "Completed",
                "CreationTime": start,
                "TrainingJobStatusCounters": {},
                "ObjectiveStatusCounters": {},
            },
            {"HyperParameterTuningJobName": "hpo-1"},
        )

        def summary(name, status, value, minutes, params):
            item = {
                "TrainingJobName": name,
                "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
                "CreationTime": start,
                "TrainingJobStatus": status,
                "TunedHyperParameters": params,
                "TrainingStartTime": start,
            }
            if minutes is not None:
                item["TrainingEndTime"] = start + dt.timedelta(minutes=minutes, seconds=5)
            if value is not None:
                item["FinalHyperParameterTuningJobObjectiveMetric"] = {"MetricName": "validation:accuracy", "Value": value}
            return item

        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": [summary("hpo-1-001-a", "Completed", 0.81, 12, {"lr": "0.001", "batch-size": '"32"'})], "NextToken": "page2"},
            {"HyperParameterTuningJobName": "hpo-1"},
        )
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {
                "TrainingJobSummaries": [
                    summary("hpo-1-002-b", "Completed", 0.9, 61, {"lr": "0.0003", "batch-size": '"64"'}),
                    summary("hpo-1-003-c", "Stopped", None, None, {"lr": "0.01", "batch-size": '"16"'}),
                ]
            },
            {"HyperParameterTuningJobName": "hpo-1", "NextToken": "page2"},
        )
        monkeypatch.setattr(launch_command, "_clients", lambda region: (StubbedSession(client), REGION))
        result = CliRunner().invoke(launch_command.command, ["results", "hpo-1"])
        stub.assert_no_pending_responses()
    assert result.exit_code == 0, result.output
    assert result.stderr == "hpo-1: Completed, objective validation:accuracy (Maximize)\n"
    assert result.stdout == (
        "training job  status     validation:accuracy  duration  batch-size  lr\n"
        "------------  ---------  -------------------  --------  ----------  ------\n"
        "hpo-1-002-b   Completed  0.9000               1h01m05s  64          0.0003\n"
        "hpo-1-001-a   Completed  0.8100               12m05s    32          0.001\n"
        "hpo-1-003-c   Stopped    -                    -         16          0.01\n"
    )


def test_results_for_unknown_job_is_a_clear_error(aws):
    result = CliRunner().invoke(launch_command.command, ["results", "nope"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: reading the tuning job failed: ")
    assert "Could not find hyper parameter tuning job 'nope'" in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"AWS_REGION": "eu-west-1"}, "eu-west-1"), ({"AWS_DEFAULT_REGION": "eu-west-2"}, "eu-west-2")],
)
def test_region_comes_from_aws_region_or_aws_default_region(monkeypatch, tmp_path, env, expected):
    # The README's worked example exports only AWS_REGION.
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert launch_command._clients(None)[1] == expected
    assert launch_command._clients("ap-south-1")[1] == "ap-south-1"


def test_no_region_at_all_is_a_clear_error(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(click.ClickException, match="no AWS region: pass --region or set AWS_REGION"):
        launch_command._clients(None)
