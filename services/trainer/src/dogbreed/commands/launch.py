"""``dogbreed launch``: SageMaker training and tuning jobs. The click layer: options, AWS clients and errors
as one line each; the requests are built by ``dogbreed.launch`` (torch-free, like this module)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from .. import s3
from ..launch import (
    DEFAULT_FRAMEWORK_VERSION,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_PY_VERSION,
    LaunchConfigError,
    build_source_bundle,
    build_training_job_request,
    build_tuning_job_request,
    check_role,
    default_job_name,
    format_results_table,
    input_channels,
    join_s3,
    load_hyperparameters_file,
    parse_key_values,
    parse_train_args,
    tuning_job_results,
)


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
def command() -> None:
    """Run training or hyperparameter tuning as SageMaker jobs (boto3; needs AWS credentials)."""


@command.command("train", context_settings={"ignore_unknown_options": True})
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


@command.command("tune", context_settings={"ignore_unknown_options": True})
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
    from ..tuning import SearchSpaceError, load_search_space

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


@command.command("results")
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
    command.main(args=list(argv) if argv is not None else sys.argv[1:])
