"""``dogbreed verify ARTIFACT``: check an artifact before it is deployed; the check is ``dogbreed.verify``'s."""

from __future__ import annotations

from pathlib import Path

import click

from ..verify import DEFAULT_TIMEOUT_S


@click.command(name="verify")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="Photo to classify. Default: a generated test image.")
@click.option("--python", "python", default=None,
              help="Interpreter to check with, e.g. one with the serving image's torch. Default: this one.")
@click.option("--timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds to wait for the check.")
def command(artifact, image, python, timeout):
    """Load ARTIFACT as the SageMaker container does and classify one image; exit 1 on any failure.

    A fresh `python -I`, only the artifact's code/ on the path (the dogbreed package unimportable), no
    network: model_fn, then input_fn/predict_fn/output_fn on raw and JSON requests.
    """
    from ..verify import VerificationError, summary, verify_artifact

    try:
        result = verify_artifact(artifact, image=image, python=python, timeout=timeout)
    except VerificationError as exc:
        raise click.ClickException(f"verification failed: {exc}") from None
    click.echo(summary(artifact, result))
