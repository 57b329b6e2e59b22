"""``dogbreed tune``: hyperparameter search with Optuna, driving the real training loop in-process.

The search space lives in a YAML or JSON file whose parameter names are ``dogbreed train`` options
(without the dashes), so the best values go straight back to ``dogbreed train`` and the same file
drives a SageMaker tuning job (``dogbreed launch tune``)::

    parameters:
      lr:            {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      batch-size:    {type: categorical, choices: [16, 32, 64]}
      weight-decay:  {type: float, low: 1.0e-6, high: 1.0e-2, log: true}
      epochs:        {type: int, low: 2, high: 8}
      unfreeze-depth: {type: int, low: 0, high: 3}
    fixed:           # optional: the same for every trial
      mode: finetune

Each trial trains with TPE's suggestion, reports validation accuracy after every epoch, and is
pruned when the median pruner finds it behind earlier trials at the same epoch. The study lives in
a SQLite file: run the same command again and it continues where it stopped (finished trials are
kept; a trial that was running when the process died is marked failed and the search goes on).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import click

from .training.arguments import option_names, parse_args

logger = logging.getLogger(__name__)

KINDS = ("float", "int", "categorical")


class SearchSpaceError(ValueError):
    """A search-space file that cannot be used (one line naming the problem)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def values(self) -> list:
        """Every value of a categorical or stepped integer parameter."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        raise SearchSpaceError(f"{self.name}: a continuous range has no finite list of values")

    def suggest(self, trial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_categorical(self.name, list(self.choices))


@dataclass(frozen=True)
class SearchSpace:
    parameters: tuple[Parameter, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def suggest(self, trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.parameters}


def _number(name: str, key: str, value: Any, integer: bool) -> float | int:
    # PyYAML reads "1e-4" (no dot) as a string; accept it like every other YAML reader.
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number):
        raise SearchSpaceError(f"{name}: {key} must be a number, got {value!r}")
    if integer:
        if not number.is_integer():
            raise SearchSpaceError(f"{name}: {key} must be an integer, got {value!r}")
        return int(number)
    return number


def parse_parameter(name: str, spec: Any) -> Parameter:
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(f"{name}: expected a mapping with 'type', got {spec!r}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise SearchSpaceError(f"{name}: type must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"}, "categorical": {"type", "choices"}}[kind]
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SearchSpaceError(f"{name}: unknown key(s) {', '.join(unknown)} for type {kind}; allowed: {', '.join(sorted(allowed))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SearchSpaceError(f"{name}: categorical needs a non-empty 'choices' list")
        if any(not isinstance(c, str | int | float | bool) for c in choices):
            raise SearchSpaceError(f"{name}: choices must be strings, numbers or booleans")
        if len(set(map(json.dumps, choices))) != len(choices):
            raise SearchSpaceError(f"{name}: duplicate choices")
        return Parameter(name, kind, choices=tuple(choices))
    integer = kind == "int"
    if "low" not in spec or "high" not in spec:
        raise SearchSpaceError(f"{name}: {kind} needs 'low' and 'high'")
    low = _number(name, "low", spec["low"], integer)
    high = _number(name, "high", spec["high"], integer)
    if low > high:
        raise SearchSpaceError(f"{name}: low ({low}) is greater than high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"{name}: log must be true or false")
    if log and low <= 0:
        raise SearchSpaceError(f"{name}: a log scale needs low > 0")
    step = None
    if spec.get("step") is not None:
        step = _number(name, "step", spec["step"], integer)
        if step <= 0:
            raise SearchSpaceError(f"{name}: step must be > 0")
        if log:
            raise SearchSpaceError(f"{name}: step and log cannot be combined")
    return Parameter(name, kind, low=low, high=high, log=log, step=step)


def parse_search_space(data: Any, source: str = "") -> SearchSpace:
    if not isinstance(data, Mapping) or not isinstance(data.get("parameters"), Mapping) or not data["parameters"]:
        raise SearchSpaceError(f"{source or 'search space'}: expected a mapping with a non-empty 'parameters' mapping")
    unknown = sorted(set(data) - {"parameters", "fixed"})
    if unknown:
        raise SearchSpaceError(f"{source or 'search space'}: unknown top-level key(s) {', '.join(unknown)}; allowed: parameters, fixed")
    try:
        parameters = tuple(parse_parameter(str(name), spec) for name, spec in data["parameters"].items())
    except SearchSpaceError as exc:
        raise SearchSpaceError(f"{source}: {exc}" if source else str(exc)) from None
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise SearchSpaceError(f"{source or 'search space'}: 'fixed' must be a mapping of option -> value")
    clash = sorted(set(fixed) & {p.name for p in parameters})
    if clash:
        raise SearchSpaceError(f"{source or 'search space'}: {', '.join(clash)} both fixed and searched")
    for name in [*(p.name for p in parameters), *fixed]:
        if str(name).startswith("-") or "=" in str(name) or not str(name).strip():
            raise SearchSpaceError(f"{source or 'search space'}: parameter names are `dogbreed train` options without dashes, got {name!r}")
    return SearchSpace(parameters=parameters, fixed=dict(fixed), source=source)


def load_search_space(path: str | os.PathLike | None = None) -> SearchSpace:
    """Read a YAML (``.yaml``/``.yml``) or JSON search space; None = the packaged default."""
    if path is None:
        text = resources.files("dogbreed").joinpath("search_spaces/default.yaml").read_text()
        source, suffix = "search_spaces/default.yaml", ".yaml"
    else:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SearchSpaceError(f"cannot read search space {path}: {exc.strerror or exc}") from None
        source, suffix = str(path), path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SearchSpaceError(f"{source}: not valid JSON: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SearchSpaceError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_search_space(data, source)


# --- the search ---------------------------------------------------------------------------------
OBJECTIVE = "val_acc1"
FINISHED_STATES = ("COMPLETE", "PRUNED")


class TuneError(click.ClickException):
    """Bad input to ``dogbreed tune``: one line, exit code 2 (like ``dogbreed train``)."""

    exit_code = 2


def format_value(value: Any) -> str:
    """A command-line spelling of a hyperparameter value that ``dogbreed train`` parses back exactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def train_option_names(argv: Sequence[str]) -> set[str]:
    """``["--batch_size", "8", "--lr=1"]`` -> ``{"batch-size", "lr"}``."""
    names = set()
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            names.add(token[2:].split("=", 1)[0].replace("_", "-"))
    return names


def check_space_against_trainer(space: SearchSpace, base_argv: Sequence[str]) -> None:
    """Every searched or fixed name must be a ``dogbreed train`` option, and not also given by hand."""
    known = option_names()
    unknown = [name for name in [*space.names, *space.fixed] if name not in known]
    if unknown:
        raise TuneError(f"{space.source}: not `dogbreed train` options: {', '.join(unknown)}")
    clash = sorted(set(space.names) & train_option_names(base_argv))
    if clash:
        raise TuneError(f"{', '.join('--' + c for c in clash)} given on the command line but searched by {space.source}; remove one")
    for reserved in ("output-dir", "model-dir", "checkpoint-dir", "resume"):
        if reserved in train_option_names(base_argv) or reserved in space.fixed:
            raise TuneError(f"--{reserved} is set per trial by dogbreed tune (under --output-dir); remove it")


def trial_argv(base_argv: Sequence[str], space: SearchSpace, params: Mapping[str, Any], trial_dir: Path) -> list[str]:
    given = train_option_names(base_argv)
    argv = list(base_argv)
    for name, value in space.fixed.items():
        if name not in given:  # the command line wins over the file's fixed values
            argv += [f"--{name}", format_value(value)]
    if "report" not in given and "report" not in space.fixed:
        argv += ["--report", "false"]  # an evaluation report per trial costs time; train the best one with it
    for name, value in params.items():
        argv += [f"--{name}", format_value(value)]
    return argv + ["--output-dir", str(trial_dir)]


def sqlite_url(storage: str | None, output_dir: Path) -> str:
    if not storage:
        return f"sqlite:///{(output_dir / 'study.db').resolve()}"
    if "://" not in storage:
        return f"sqlite:///{Path(storage).resolve()}"
    return storage


def recover_interrupted_trials(study, storage) -> int:
    """Trials left RUNNING by a process that died: mark them failed and queue their parameters again.

    Assumes one ``dogbreed tune`` process per study (the SQLite use case).
    """
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    return len(stale)


@dataclass
class TuneOutputs:
    table_csv: Path
    table_md: Path
    best_params: Path | None
    plots: list[Path]


def _trial_rows(study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "objective": t.value if t.values else None,
                "duration_s": duration,
                "epochs": t.user_attrs.get("epochs_done", max(t.intermediate_values) if t.intermediate_values else 0),
                "val_loss": t.user_attrs.get("val_loss"),
                "test_acc1": t.user_attrs.get("test_acc1"),
                "params": dict(t.params),
            }
        )
    return rows


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.{digits}f}"
    return str(value)


def best_trial(study):
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None and math.isfinite(t.value)]
    return max(complete, key=lambda t: t.value) if complete else None


def best_command(base_argv: Sequence[str], space: SearchSpace, params: Mapping[str, Any]) -> str:
    """The `dogbreed train` command line of a trial, without the per-trial output folder and report switch."""
    import shlex

    given = train_option_names(base_argv)
    argv = list(base_argv)
    for name, value in {**space.fixed, **params}.items():
        if name not in given:
            argv += [f"--{name}", format_value(value)]
    return "dogbreed train " + " ".join(shlex.quote(a) for a in argv)


def write_results(study, space: SearchSpace, base_argv: Sequence[str], output_dir: Path) -> TuneOutputs:
    """trials.csv, trials.md, best_params.json and the plots, from whatever the study holds now."""
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = _trial_rows(study)
    names = space.names
    best = best_trial(study)

    csv_path = output_dir / "trials.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "objective_val_acc1", "duration_s", "epochs_run", "val_loss", "test_acc1", *names])
        for r in rows:
            writer.writerow(
                [r["number"], r["state"], "" if r["objective"] is None else r["objective"], "" if r["duration_s"] is None else round(r["duration_s"], 2),
                 r["epochs"], "" if r["val_loss"] is None else r["val_loss"], "" if r["test_acc1"] is None else r["test_acc1"],
                 *(r["params"].get(n, "") for n in names)]
            )  # fmt: skip

    header = ["trial", "state", "val_acc1", "duration (s)", "epochs run", *names]
    lines = [f"# Hyperparameter search: {study.study_name}", ""]
    counts = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    lines.append("Trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) + f". Objective: validation top-1 accuracy (maximised), search space `{space.source}`.")
    lines.append("")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---:" if h not in ("state",) else "---" for h in header) + "|")
    for r in rows:
        mark = " **best**" if best is not None and r["number"] == best.number else ""
        cells = [f"{r['number']}{mark}", r["state"], _fmt(r["objective"]), _fmt(r["duration_s"], 1), str(r["epochs"]), *(_fmt(r["params"].get(n)) for n in names)]
        lines.append("| " + " | ".join(cells) + " |")
    best_path = None
    if best is not None:
        best_values = {**space.fixed, **best.params}
        best_path = output_dir / "best_params.json"
        best_path.write_text(json.dumps(best_values, indent=2) + "\n")
        lines += [
            "",
            f"Best: trial {best.number}, val_acc1 {best.value:.4f}. Train with it:",
            "",
            "```",
            best_command(base_argv, space, best.params),
            "```",
            "",
            "`best_params.json` holds the same values for `dogbreed launch train --hyperparameters-file`.",
        ]
    md_path = output_dir / "trials.md"
    md_path.write_text("\n".join(lines) + "\n")
    plots = write_plots(study, output_dir)
    return TuneOutputs(csv_path, md_path, best_path, plots)


def write_plots(study, output_dir: Path) -> list[Path]:
    """optimisation_history.png and param_importances.png (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4))
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    if complete:
        ax.scatter([t.number for t in complete], [t.value for t in complete], color="#3a78b5", label="complete", zorder=3)
        best_so_far, running = [], -math.inf
        for t in sorted(complete, key=lambda t: t.number):
            running = max(running, t.value)
            best_so_far.append((t.number, running))
        ax.step([n for n, _ in best_so_far], [v for _, v in best_so_far], where="post", color="#c0392b", label="best so far")
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else float("nan") for t in pruned]
        ax.scatter([t.number for t in pruned], last, marker="x", color="#999999", label="pruned (last report)", zorder=3)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy")
    ax.set_title("Optimisation history")
    if complete or pruned:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no finished trials yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    paths.append(output_dir / "optimization_history.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    importances = {}
    note = ""
    if len(complete) >= 2:
        try:
            import optuna

            # PED-ANOVA: no scikit-learn needed (fANOVA needs it); few trials make it coarse.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importances = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
        except (ValueError, RuntimeError, ImportError) as exc:
            note = str(exc).splitlines()[0]
    else:
        note = "needs at least 2 completed trials"
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names], color="#3a78b5")
        ax.set_xlabel("importance (PED-ANOVA; normalised to sum to 1)")
    else:
        ax.text(0.5, 0.5, f"no importances: {note}", ha="center", va="center", transform=ax.transAxes, wrap=True)
        ax.set_axis_off()
    ax.set_title("Hyperparameter importance")
    fig.tight_layout()
    paths.append(output_dir / "param_importances.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def run_study(
    base_argv: Sequence[str],
    *,
    space: SearchSpace,
    output_dir: Path,
    n_trials: int,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str = "dogbreed",
    sampler_seed: int | None = 0,
    startup_trials: int = 5,
    pruner_warmup_epochs: int = 1,
    echo=lambda message: click.echo(message, err=True),
):
    """Run (or continue) the study until it holds ``n_trials`` finished trials or ``timeout`` passes."""
    import optuna
    from optuna.trial import TrialState

    from dogbreed import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    output_dir.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(storage, output_dir)
    rdb = optuna.storages.RDBStorage(url)
    study = optuna.create_study(
        study_name=study_name,
        storage=rdb,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=startup_trials),
        # Steps are 1-based epochs, so the pruner may act after epoch pruner_warmup_epochs.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=pruner_warmup_epochs),
        load_if_exists=True,
    )
    recovered = recover_interrupted_trials(study, rdb)
    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    if finished or recovered:
        echo(f"resuming study {study_name!r} in {url}: {finished} finished trial(s)" + (f", {recovered} interrupted one(s) queued again" if recovered else ""))
    remaining = max(0, n_trials - finished)

    def objective(trial) -> float:
        params = space.suggest(trial)
        trial_dir = output_dir / "trials" / f"trial-{trial.number:03d}"
        argv = trial_argv(base_argv, space, params, trial_dir)
        try:
            args = parse_args(argv)
        except SystemExit:
            raise TuneError(f"trial {trial.number}: dogbreed train rejected {params}") from None
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
        echo(f"trial {trial.number}: {shown}")

        def on_epoch_end(epoch: int, metrics: dict) -> None:
            trial.report(metrics[OBJECTIVE], step=epoch)
            trial.set_user_attr("epochs_done", epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"val_acc1 {metrics[OBJECTIVE]:.4f} after epoch {epoch} is below the median of earlier trials")

        started = time.perf_counter()
        try:
            # The trainer's metric lines go to stderr: stdout carries only the tuning results.
            with contextlib.redirect_stdout(sys.stderr):
                result = train.main(args, on_epoch_end=on_epoch_end)
        finally:
            # Checkpoints only serve to resume a run; a finished or pruned trial is never resumed,
            # and an interrupted one is run again from the start.
            shutil.rmtree(trial_dir / "checkpoints", ignore_errors=True)
        value = result.metrics.get(OBJECTIVE)
        for key in ("val_loss", "test_acc1", "best_epoch"):
            if result.metrics.get(key) is not None:
                trial.set_user_attr(key, result.metrics[key])
        if result.artifact is not None:
            trial.set_user_attr("artifact", str(result.artifact))
        echo(f"trial {trial.number}: val_acc1 {_fmt(value)} in {time.perf_counter() - started:.1f}s")
        return float("nan") if value is None else float(value)

    def log_pruned(study, trial) -> None:
        if trial.state == TrialState.PRUNED:
            echo(f"trial {trial.number}: pruned after epoch {trial.user_attrs.get('epochs_done', '?')}")

    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=timeout, callbacks=[log_pruned], catch=(), gc_after_trial=True)
    return study


def __getattr__(name: str):
    # `dogbreed tune` moved to dogbreed.commands.tune; the old name still finds it.
    if name == "tune_command":
        from .commands.tune import command

        return command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
