"""``dogbreed tune``: the command over ``dogbreed.tuning`` (search space, study, results). Every option it
does not know goes to ``dogbreed train`` for every trial; torch and Optuna are imported only once it runs."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from ..training.arguments import parse_args, resolve_args
from ..training.errors import ConfigError, Terminated, sigterm_as_interrupt
from ..training.logs import configure_logging
from ..tuning import (
    SearchSpaceError,
    TuneError,
    check_space_against_trainer,
    load_search_space,
    run_study,
    sqlite_url,
    trial_argv,
    write_results,
)


@click.command("tune", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--n-trials", default=20, show_default=True, type=click.IntRange(min=1), help="Finished (complete or pruned) trials the study should hold; a resumed study runs only the rest.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Start no new trial after this many seconds. Default: no limit.")
@click.option("--output-dir", default="tuning", show_default=True, type=click.Path(file_okay=False), help="Results, plots, the study database and one folder per trial.")
@click.option("--storage", help="Optuna storage: a SQLite file path or URL (sqlite:///study.db). Default: OUTPUT_DIR/study.db.")
@click.option("--study-name", default="dogbreed", show_default=True, help="Study name inside the storage; rerun with the same name to resume.")
@click.option("--search-space", type=click.Path(exists=True, dir_okay=False), help="YAML/JSON search space. Default: the packaged search_spaces/default.yaml.")
@click.option("--sampler-seed", default=0, show_default=True, type=int, help="Seed of the TPE sampler (reproducible suggestions).")
@click.option("--startup-trials", default=5, show_default=True, type=click.IntRange(min=0), help="Random trials before TPE models the results; also trials before pruning starts.")
@click.option("--pruner-warmup-epochs", default=1, show_default=True, type=click.IntRange(min=1), help="Epochs every trial completes before it may be pruned.")
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def command(n_trials, timeout, output_dir, storage, study_name, search_space, sampler_seed, startup_trials, pruner_warmup_epochs, train_args):
    """Search hyperparameters of `dogbreed train` with Optuna (TPE + median pruning).

    Every other option goes to `dogbreed train` for every trial (e.g. --data DIR --backbone resnet18).
    Objective: validation top-1 accuracy of the model each trial ships. Prints the trials table;
    writes trials.csv, trials.md, best_params.json and plots into --output-dir.
    """
    configure_logging()
    base_argv = list(train_args)
    output = Path(output_dir)
    try:
        space = load_search_space(search_space)
    except SearchSpaceError as exc:
        raise TuneError(str(exc)) from None
    check_space_against_trainer(space, base_argv)
    # Validate the shared arguments (and the data folder) once, before any trial starts.
    probe = trial_argv(base_argv, space, {}, output / "trials" / "probe")
    try:
        args = parse_args(probe)
    except SystemExit as exc:
        raise click.exceptions.Exit(exc.code if isinstance(exc.code, int) else 2) from None
    try:
        resolved = resolve_args(args)
    except ConfigError as exc:
        raise TuneError(str(exc)) from None
    for folder in (resolved.data, resolved.train_dir, resolved.valid_dir):
        if folder and not str(folder).startswith("s3://") and not Path(folder).is_dir():
            raise TuneError(f"data folder not found: {folder}")

    from ..train import USER_ERRORS  # torch: only once the input is known to be good

    exit_code = 0  # 130 after Ctrl-C, 143 after SIGTERM (handled alike: the study is saved, results written)
    study = None
    try:
        with sigterm_as_interrupt():
            study = run_study(
                base_argv, space=space, output_dir=output, n_trials=n_trials, timeout=timeout, storage=storage,
                study_name=study_name, sampler_seed=sampler_seed, startup_trials=startup_trials,
                pruner_warmup_epochs=pruner_warmup_epochs,
            )  # fmt: skip
    except USER_ERRORS as exc:
        raise TuneError(str(exc)) from None
    except KeyboardInterrupt as exc:
        exit_code = 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130
    if study is None:
        import optuna

        study = optuna.load_study(study_name=study_name, storage=sqlite_url(storage, output))
    outputs = write_results(study, space, base_argv, output)
    click.echo(outputs.table_md.read_text(), nl=False)
    click.echo(f"wrote {outputs.table_csv}, {outputs.table_md}, " + (f"{outputs.best_params}, " if outputs.best_params else "") + ", ".join(map(str, outputs.plots)), err=True)
    if exit_code:
        cause = "stopped by SIGTERM" if exit_code == 128 + signal.SIGTERM else "interrupted"
        click.echo(f"{cause}: rerun the same command to continue the study", err=True)
        raise click.exceptions.Exit(exit_code)
