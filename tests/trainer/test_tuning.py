"""`dogbreed tune`: search-space files, the Optuna study (pruning, resume) and the real end-to-end search."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from dogbreed import train, tuning
from dogbreed.cli import main as dogbreed_cli
from dogbreed.tuning import SearchSpaceError, load_search_space, parse_search_space

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_space(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- search-space files ------------------------------------------------------------------------


def test_default_search_space():
    space = load_search_space(None)
    by_name = {p.name: p for p in space.parameters}
    assert by_name["lr"].kind == "float" and by_name["lr"].log and by_name["lr"].low == 1e-4
    assert by_name["batch-size"].choices == (16, 32, 64)
    assert by_name["weight-decay"].log
    assert by_name["epochs"].kind == "int"
    assert by_name["unfreeze-depth"].kind == "int"
    assert space.fixed == {"mode": "finetune"}
    # Every name is a real `dogbreed train` option.
    tuning.check_space_against_trainer(space, [])


def test_yaml_and_json_spaces_are_equivalent(tmp_path):
    yaml_space = load_search_space(write_space(tmp_path / "s.yaml", "parameters:\n  lr: {type: float, low: 1e-4, high: 0.1, log: true}\n  optimizer: {type: categorical, choices: [adamw, sgd]}\n"))
    json_space = load_search_space(write_space(tmp_path / "s.json", json.dumps({"parameters": {"lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": True}, "optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]}}})))
    # PyYAML reads 1e-4 as a string; it is still a number here.
    assert yaml_space.parameters == json_space.parameters


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "non-empty 'parameters'"),
        ({"parameters": {"lr": {"type": "normal"}}}, "lr: type must be one of float, int, categorical"),
        ({"parameters": {"lr": {"type": "float", "low": 1}}}, "lr: float needs 'low' and 'high'"),
        ({"parameters": {"lr": {"type": "float", "low": 1, "high": 0.1}}}, "lr: low (1.0) is greater than high (0.1)"),
        ({"parameters": {"lr": {"type": "float", "low": 0, "high": 1, "log": True}}}, "lr: a log scale needs low > 0"),
        ({"parameters": {"lr": {"type": "float", "low": "small", "high": 1}}}, "lr: low must be a number"),
        ({"parameters": {"epochs": {"type": "int", "low": 1.5, "high": 3}}}, "epochs: low must be an integer"),
        ({"parameters": {"epochs": {"type": "int", "low": 1, "high": 9, "step": 2, "log": True}}}, "step and log cannot be combined"),
        ({"parameters": {"bs": {"type": "categorical", "choices": []}}}, "bs: categorical needs a non-empty 'choices' list"),
        ({"parameters": {"bs": {"type": "categorical", "choices": [8, 8]}}}, "bs: duplicate choices"),
        ({"parameters": {"lr": {"type": "float", "low": 0.1, "high": 1, "scale": "log"}}}, "lr: unknown key(s) scale"),
        ({"parameters": {"lr": {"type": "float", "low": 0.1, "high": 1}}, "fixed": {"lr": 0.1}}, "lr both fixed and searched"),
        ({"parameters": {"lr": {"type": "float", "low": 0.1, "high": 1}}, "extra": 1}, "unknown top-level key(s) extra"),
        ({"parameters": {"--lr": {"type": "float", "low": 0.1, "high": 1}}}, "without dashes"),
    ],
)
def test_bad_search_spaces(spec, message):
    with pytest.raises(SearchSpaceError) as info:
        parse_search_space(spec, "space.yaml")
    assert message in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(SearchSpaceError, match="not valid YAML"):
        load_search_space(write_space(tmp_path / "s.yaml", "parameters: [unclosed"))
    with pytest.raises(SearchSpaceError, match="not valid JSON"):
        load_search_space(write_space(tmp_path / "s.json", "{"))
    with pytest.raises(SearchSpaceError, match="cannot read search space"):
        load_search_space(tmp_path / "missing.yaml")


def test_suggestions_stay_in_range():
    space = parse_search_space(
        {"parameters": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}, "epochs": {"type": "int", "low": 2, "high": 8, "step": 2}, "bs": {"type": "categorical", "choices": [16, 32]}}}
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        params = space.suggest(study.ask())
        assert 1e-4 <= params["lr"] <= 1e-2
        assert params["epochs"] in (2, 4, 6, 8)
        assert params["bs"] in (16, 32)


def test_trial_argv_and_best_command(tmp_path):
    space = parse_search_space({"parameters": {"lr": {"type": "float", "low": 0.001, "high": 0.1}}, "fixed": {"mode": "finetune", "amp": "none"}})
    base = ["--data", "d", "--amp", "bf16"]
    argv = tuning.trial_argv(base, space, {"lr": 0.01}, tmp_path / "t")
    assert argv == ["--data", "d", "--amp", "bf16", "--mode", "finetune", "--report", "false", "--lr", "0.01", "--output-dir", str(tmp_path / "t")]
    assert train.parse_args(argv).lr == 0.01
    assert tuning.best_command(base, space, {"lr": 0.01}) == "dogbreed train --data d --amp bf16 --mode finetune --lr 0.01"
    assert tuning.format_value(True) == "true" and tuning.format_value(1e-5) == "1e-05"


def test_space_is_checked_against_the_trainer():
    space = parse_search_space({"parameters": {"learning-rate": {"type": "float", "low": 0.1, "high": 1}}}, "s.yaml")
    with pytest.raises(tuning.TuneError, match="s.yaml: not `dogbreed train` options: learning-rate"):
        tuning.check_space_against_trainer(space, [])
    space = load_search_space(None)
    with pytest.raises(tuning.TuneError, match="--lr given on the command line but searched"):
        tuning.check_space_against_trainer(space, ["--data", "x", "--lr=0.1"])
    with pytest.raises(tuning.TuneError, match="--output-dir is set per trial"):
        tuning.check_space_against_trainer(space, ["--output-dir", "x"])


# ---- the study with a scripted trainer (pruning, resume) ---------------------------------------


@pytest.fixture()
def scripted_trainer(monkeypatch, tmp_path):
    """Replace train.main: val_acc1 per epoch is read from the trial's --lr (tiny lr = bad trial)."""
    calls = []

    def fake_main(args, *, on_epoch_end=None, on_step_end=None):
        calls.append(args)
        history = []
        for epoch in range(1, args.epochs + 1):
            acc = min(1.0, args.lr * 10 * epoch)
            history.append(acc)
            on_epoch_end(epoch, {"val_acc1": acc, "val_loss": 1 - acc})
        return train.TrainResult(metrics={"val_acc1": history[-1], "val_loss": 1 - history[-1]}, history=[], artifact=None, report=None, output_dir=Path(args.output_dir), stopped_early=False)

    monkeypatch.setattr(train, "main", fake_main)
    data = tmp_path / "data"
    data.mkdir()
    return calls, data


def test_unpromising_trials_are_pruned(scripted_trainer, tmp_path):
    calls, data = scripted_trainer
    space = parse_search_space({"parameters": {"lr": {"type": "categorical", "choices": [0.05, 0.001]}}, "fixed": {"epochs": 3}})
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s", direction="maximize")
    for lr in (0.05, 0.05, 0.001):
        study.enqueue_trial({"lr": lr})
    tuning.run_study(["--data", str(data)], space=space, output_dir=tmp_path / "out", n_trials=3, storage=str(tmp_path / "s.db"), study_name="s", startup_trials=2, pruner_warmup_epochs=1, echo=lambda m: None)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    pruned = study.trials[2]
    assert pruned.intermediate_values == {1: pytest.approx(0.01)}  # stopped after its first epoch
    assert len(calls) == 3


def test_study_resumes_and_requeues_an_interrupted_trial(scripted_trainer, tmp_path):
    calls, data = scripted_trainer
    space = parse_search_space({"parameters": {"lr": {"type": "float", "low": 0.01, "high": 0.05}}, "fixed": {"epochs": 1}})
    storage = str(tmp_path / "s.db")
    tuning.run_study(["--data", str(data)], space=space, output_dir=tmp_path / "out", n_trials=2, storage=storage, echo=lambda m: None)
    # A process killed mid-trial leaves it RUNNING.
    study = optuna.load_study(study_name="dogbreed", storage=f"sqlite:///{Path(storage).resolve()}")
    killed = study.ask({"lr": optuna.distributions.FloatDistribution(0.01, 0.05)})
    killed_lr = killed.params["lr"]

    messages = []
    study = tuning.run_study(["--data", str(data)], space=space, output_dir=tmp_path / "out", n_trials=3, storage=storage, echo=messages.append)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[3].params["lr"] == killed_lr  # the interrupted trial ran again
    assert messages[0].startswith("resuming study 'dogbreed'") and "2 finished trial(s), 1 interrupted one(s) queued again" in messages[0]
    assert len(calls) == 3
    # Enough finished trials: a rerun trains nothing.
    tuning.run_study(["--data", str(data)], space=space, output_dir=tmp_path / "out", n_trials=3, storage=storage, echo=lambda m: None)
    assert len(calls) == 3


def test_sigterm_stops_the_study_like_ctrl_c_and_keeps_what_finished(monkeypatch, tmp_path):
    """SIGTERM (a stopped job, `docker stop`) mid-trial: finished trials are kept and written, exit 143."""
    import os
    import signal

    data = tmp_path / "data"
    data.mkdir()
    calls = []

    def fake_main(args, *, on_epoch_end=None, on_step_end=None):
        calls.append(args)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread before kill() returns
        on_epoch_end(1, {"val_acc1": 0.5, "val_loss": 0.5})
        return train.TrainResult(metrics={"val_acc1": 0.5, "val_loss": 0.5}, history=[], artifact=None, report=None,
                                 output_dir=Path(args.output_dir), stopped_early=False)

    monkeypatch.setattr(train, "main", fake_main)
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  lr: {type: float, low: 0.01, high: 0.05}\nfixed: {epochs: 1}\n")
    out = tmp_path / "tuning"
    previous = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(dogbreed_cli, ["tune", "--n-trials", "3", "--output-dir", str(out), "--search-space",
                                               str(space), "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == 143, result.output
    assert "stopped by SIGTERM: rerun the same command to continue the study" in result.stderr
    assert "Traceback" not in result.stderr
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL"]  # the interrupted trial is queued again on rerun
    assert len(calls) == 2
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is the run's, not the process's


# ---- the real thing: 4 trials of the real training loop on a tiny folder -----------------------


def test_tune_four_trials_end_to_end(dogimages_dir, tmp_path):
    space = write_space(
        tmp_path / "space.yaml",
        "parameters:\n"
        "  lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}\n"
        "  batch-size: {type: categorical, choices: [6, 9]}\n"
        "  weight-decay: {type: float, low: 1.0e-6, high: 1.0e-2, log: true}\n"
        "  epochs: {type: int, low: 1, high: 2}\n"
        "  unfreeze-depth: {type: int, low: 0, high: 1}\n"
        "fixed: {mode: finetune}\n",
    )
    out = tmp_path / "tuning"
    train_args = ["--data", str(dogimages_dir), "--backbone", "resnet18", "--weights", "none", "--image-size", "32",
                  "--resize-size", "36", "--workers", "0", "--threads", "2", "--amp", "bf16"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(dogbreed_cli, ["tune", "--n-trials", "4", "--output-dir", str(out), "--search-space", str(space), "--startup-trials", "2", *train_args], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr

    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    assert complete and all(0 <= float(r["objective_val_acc1"]) <= 1 for r in complete)
    assert all(float(r["duration_s"]) > 0 for r in rows)

    best = json.loads((out / "best_params.json").read_text())
    assert set(best) == {"lr", "batch-size", "weight-decay", "epochs", "unfreeze-depth", "mode"}
    best_row = max(complete, key=lambda r: float(r["objective_val_acc1"]))
    assert best["lr"] == pytest.approx(float(best_row["lr"]))
    # best_params.json is valid `dogbreed train` input.
    argv = ["--data", str(dogimages_dir)] + [x for k, v in best.items() for x in (f"--{k}", tuning.format_value(v))]
    assert train.parse_args(argv).batch_size == best["batch-size"]

    table = (out / "trials.md").read_text()
    assert result.stdout == table
    assert "| trial | state | val_acc1 | duration (s) | epochs run | lr | batch-size | weight-decay | epochs | unfreeze-depth |" in table
    assert f"| {best_row['number']} **best** | COMPLETE |" in table
    assert "dogbreed train --data" in table and "--report" not in table
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (out / plot).read_bytes()[:8] == PNG_MAGIC
    for r in complete:
        trial_dir = out / "trials" / f"trial-{int(r['number']):03d}"
        assert (trial_dir / "model.tar.gz").is_file()
        assert not (trial_dir / "checkpoints").exists()  # removed once the trial finished
    # The trainer's metric lines went to stderr, the table to stdout.
    assert "epoch=1 train_loss=" in result.stderr and "epoch=" not in result.stdout

    # Rerunning with a higher target continues the same study.
    again = runner.invoke(dogbreed_cli, ["tune", "--n-trials", "5", "--output-dir", str(out), "--search-space", str(space), "--startup-trials", "2", *train_args], catch_exceptions=False)
    assert again.exit_code == 0, again.stderr
    assert "resuming study 'dogbreed'" in again.stderr
    assert len(list(csv.DictReader((out / "trials.csv").open()))) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/nonexistent/dogs"], "Error: data folder not found: /nonexistent/dogs"),
        (["--data", "DATA", "--lr", "0.1"], "Error: --lr given on the command line but searched"),
        ([], "Error: no training data"),
    ],
)
def test_tune_bad_input_exits_2_before_writing(tmp_path, args, message):
    (tmp_path / "DATA").mkdir()
    args = [str(tmp_path / "DATA") if a == "DATA" else a for a in args]
    result = CliRunner().invoke(dogbreed_cli, ["tune", "--output-dir", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert not (tmp_path / "out").exists()


def test_tune_bad_search_space_file(tmp_path):
    space = write_space(tmp_path / "s.yaml", "parameters:\n  lr: {type: float, low: 1, high: 0.1}\n")
    result = CliRunner().invoke(dogbreed_cli, ["tune", "--search-space", str(space), "--data", str(tmp_path), "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {space}: lr: low (1.0) is greater than high (0.1)\n"
