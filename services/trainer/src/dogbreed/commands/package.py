"""``dogbreed package``: write a model artifact; the work is ``dogbreed.artifact``'s."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.core import ParameterSource

from ..choices import BACKBONES, LAYOUTS, RUNTIMES, SERVING_PYTHON


@click.command(name="package")
@click.option(
    "--pretrained",
    type=click.Choice(["imagenet-dogs"]),
    default=None,
    help="Build the no-training starter model: ImageNet weights, dog classes 151-268 as the breeds. Default: off.",
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="Package `dogbreed train` checkpoints: an epoch checkpoint file, or the checkpoint folder "
    "(its best-model.pth). Default: none.",
)
@click.option(
    "--backbone",
    type=click.Choice(BACKBONES),
    default="efficientnet_lite0",
    show_default=True,
    help="Backbone of the --pretrained starter (ResNets need torchvision's weights: network or cache).",
)
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path),
    default=Path("model"),
    show_default=True,
    help="Folder to write model.tar.gz into (or the artifact folder itself with --format dir).",
)
@click.option(
    "--format",
    "layout",
    type=click.Choice(LAYOUTS),
    default="tar.gz",
    show_default=True,
    help="model.tar.gz, or the same files as a plain folder (for `dogbreed serve`).",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default="eager",
    show_default=True,
    help="Inference runtime the artifact opts into; eager PyTorch is the reference.",
)
@click.option(
    "--calibration-data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of representative photos to calibrate INT8 quantisation (needed by onnx-int8). Default: none.",
)
@click.option("--name", default=None, help="Model name in metadata and API responses. Default: derived from the backbone and data.")
@click.option("--instance-type", default="ml.m5.large", show_default=True,
              help="SageMaker instance type the artifact will serve on: picks the wheels' CPU architecture "
              "for optimised runtimes (Graviton types such as ml.c7g.large: aarch64).")
@click.option("--serving-python", default=SERVING_PYTHON, show_default=True,
              help="Python of the serving image (pytorch-inference:2.6.0-cpu-py312: 3.12), for the wheels of optimised runtimes.")
@click.option("--wheel-dir", type=click.Path(path_type=Path), default=None,
              help="Wheel cache for optimised runtimes: used offline when it holds them, else filled from the "
              "package index. Default: $DOGBREED_WHEEL_CACHE or ~/.cache/dogbreed/wheels.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Run `dogbreed verify` on the written artifact (a fresh interpreter, only code/, no network).")
def command(pretrained, checkpoint, backbone, output_dir, layout, runtime, calibration_data, name,
                    instance_type, serving_python, wheel_dir, verify):
    """Write a model artifact (model.tar.gz) for SageMaker and `dogbreed serve`.

    Either the starter model (--pretrained imagenet-dogs, no training, works offline) or a training
    checkpoint (--checkpoint PATH). Prints the artifact's path.
    """
    from ..artifact import (
        ArtifactError,
        InputError,
        calibration_images_in,
        model_from_checkpoint,
        serving_platform,
        starter_model,
        write_artifact,
    )

    if (pretrained is None) == (checkpoint is None):
        raise InputError("give exactly one of --pretrained imagenet-dogs or --checkpoint PATH")
    if checkpoint is not None and click.get_current_context().get_parameter_source("backbone") is ParameterSource.COMMANDLINE:
        raise InputError("--backbone applies to --pretrained only; a checkpoint records its own backbone")
    try:
        if runtime == "onnx-int8" and calibration_data is None:
            raise ArtifactError("--runtime onnx-int8 needs --calibration-data DIR (a few hundred representative photos)")
        calibration = calibration_images_in(calibration_data) if calibration_data is not None else None
        if layout == "dir" and output_dir.is_dir() and any(output_dir.iterdir()):
            raise ArtifactError(f"--output-dir {output_dir} is not empty; --format dir writes into an empty or new folder")
        if checkpoint is not None:
            model, metadata = model_from_checkpoint(checkpoint)
        else:
            click.echo(f"Building the ImageNet dog-breed starter model ({backbone})", err=True)
            model, metadata = starter_model(backbone)
        if name:
            metadata["name"] = name
        click.echo(f"Writing the {runtime} artifact to {output_dir}", err=True)
        if not re.fullmatch(r"3\.\d+", serving_python):
            raise ArtifactError(f"--serving-python {serving_python!r}: give MAJOR.MINOR, e.g. 3.12")
        target = {"python": serving_python, "platform": serving_platform(instance_type), "wheel_cache": wheel_dir}
        from ..optimize import instance_cpu_features

        target["cpu_features"] = instance_cpu_features(instance_type)
        path = write_artifact(model, metadata, output_dir, runtime, calibration, layout=layout, serving_target=target)
    except ArtifactError as exc:
        raise InputError(str(exc)) from None
    if verify:
        from ..verify import VerificationError, summary, verify_artifact

        try:
            click.echo(summary(path, verify_artifact(path)), err=True)
        except VerificationError as exc:
            # Kept for inspection, but the exit status says it must not be deployed.
            raise click.ClickException(f"the artifact was written but fails verification: {exc}") from None
    click.echo(str(path))
