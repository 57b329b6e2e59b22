"""``dogbreed profile``: training steps of ``dogbreed train`` under ``torch.profiler``, and a report; the work
is ``dogbreed.profiling``'s."""

from __future__ import annotations

from pathlib import Path

import click


class ProfileError(click.ClickException):
    """Bad input to ``dogbreed profile``: one line, exit code 2 (like ``dogbreed train``)."""

    exit_code = 2


def parse_batch_sizes(value: str | None) -> list[int]:
    if not value:
        return []
    try:
        sizes = sorted({int(v) for v in value.replace(" ", "").split(",") if v})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or sizes[0] < 1:
        raise click.BadParameter("batch sizes must be positive integers")
    return sizes


@click.command("profile", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--steps", default=20, show_default=True, type=click.IntRange(min=1), help="Training steps to run and time.")
@click.option("--active-steps", default=10, show_default=True, type=click.IntRange(min=1), help="Steps recorded by torch.profiler (after 1 skipped and 1 warm-up step).")
@click.option("--output-dir", default="profile", show_default=True, type=click.Path(file_okay=False), help="Where report.html, its plots, profile.json and trace.json go.")
@click.option("--batch-sizes", help="Also time a few steps at each of these batch sizes, e.g. 8,16,32 (no profiler). Default: none.")
@click.option("--sweep-steps", default=5, show_default=True, type=click.IntRange(min=1), help="Timed steps per batch size of --batch-sizes (after one warm-up step).")
@click.option("--sample-interval", default=0.2, show_default=True, type=click.FloatRange(min=0.01), help="Seconds between CPU/GPU/memory samples.")
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def command(steps, active_steps, output_dir, batch_sizes, sweep_steps, sample_interval, train_args):
    """Profile N training steps of `dogbreed train` and write an HTML report with findings.

    Every other option goes to `dogbreed train` (e.g. --data DIR --backbone resnet50 --batch-size 32
    --workers 4); the steps are the trainer's own. Prints the report's path.
    """
    from ..training.arguments import parse_args, resolve_args
    from ..training.errors import ConfigError
    from ..training.logs import configure_logging

    configure_logging()
    sizes = parse_batch_sizes(batch_sizes)
    argv = list(train_args)
    if "--output-dir" in argv:
        raise ProfileError("--output-dir is the report folder of dogbreed profile; it is not passed to dogbreed train")
    try:  # before torch is imported, so that a mistyped flag is rejected at once
        args = resolve_args(parse_args(argv))
    except SystemExit as exc:  # argparse already printed the one-line error
        raise click.exceptions.Exit(exc.code if isinstance(exc.code, int) else 2) from None
    except ConfigError as exc:
        raise ProfileError(str(exc)) from None

    # torch from here on
    from ..profiling.analysis import analyse
    from ..profiling.measurement import StepProgress, measure_batch_size, profile_steps
    from ..profiling.rendering import write_report
    from ..profiling.trainer_steps import build_training_setup
    from ..train import USER_ERRORS

    try:
        setup = build_training_setup(args)
    except USER_ERRORS as exc:
        raise ProfileError(str(exc)) from None
    out = Path(output_dir)
    click.echo(f"profiling {steps} training steps on {setup.device} (batch size {setup.settings['batch_size']})", err=True)
    progress = StepProgress("profile", steps)
    result = profile_steps(
        setup.loader_for(setup.settings["batch_size"]), setup.step, steps=steps, device=setup.device, output_dir=out,
        settings=setup.settings, active_steps=active_steps, sample_interval=sample_interval, on_progress=progress,
    )  # fmt: skip
    progress.finish()
    for size in sizes:
        progress = StepProgress(f"batch size {size}", sweep_steps + 1)
        result.sweep.append(measure_batch_size(setup.loader_for(size), setup.step, steps=sweep_steps, device=setup.device, batch_size=size, sample_interval=sample_interval, on_progress=progress))
        progress.finish()
    report = write_report(result, out)
    for finding in analyse(result):
        if finding.triggered:
            click.echo(f"CHECK {finding.title}: {finding.message}", err=True)
    click.echo(str(report))
