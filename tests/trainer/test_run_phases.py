"""The phases of a training run, one at a time: setup, resume, fit, finish (``dogbreed.train``)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from dogbreed import train
from dogbreed.data import DataError
from dogbreed.sagemaker_env import DistributedEnv, SageMakerEnv
from dogbreed.training.errors import ConfigError

SINGLE = DistributedEnv()
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def outside_sagemaker(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SM_") or name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
            monkeypatch.delenv(name)


def resolved(argv) -> object:
    return train.resolve_args(train.parse_args([str(a) for a in argv]), SageMakerEnv.from_environ())


def fitted(argv):
    """setup, prepare_outputs, a fresh state and fit: a run up to (not including) finish."""
    run = train.setup(resolved(argv), SINGLE, CPU)
    train.prepare_outputs(run)
    state = train.new_fit_state(run)
    train.fit(run, state)
    return run, state


def test_setup_writes_nothing(dogimages_dir, tmp_path, train_argv):
    run = train.setup(resolved(train_argv(dogimages_dir, tmp_path / "out")), SINGLE, CPU)
    assert run.data.num_classes == 3 and run.output_dir == tmp_path / "out"
    assert run.checkpoint_dir == tmp_path / "out" / "checkpoints"
    assert not (tmp_path / "out").exists()


def test_setup_refuses_bad_input_before_writing(tmp_path, train_argv):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="data folder is empty"):
        train.setup(resolved(train_argv(tmp_path / "empty", tmp_path / "out")), SINGLE, CPU)
    assert not (tmp_path / "out").exists()


def test_fit_checkpoints_every_epoch_and_records_the_history(dogimages_dir, tmp_path, train_argv, capsys):
    run, state = fitted(train_argv(dogimages_dir, tmp_path / "out", "--epochs", "2", "--keep-checkpoints", "1"))
    assert [record["epoch"] for record in state.history] == [1, 2]
    assert sorted(p.name for p in run.checkpoint_dir.glob("checkpoint-epoch*.pth")) == ["checkpoint-epoch002.pth"]
    assert json.loads((tmp_path / "out" / "history.json").read_text()) == state.history
    assert state.best["epoch"] in (1, 2) and state.best_state is not None
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch=")]) == 2


def test_fit_stops_early_after_patience_epochs_without_improvement(dogimages_dir, tmp_path, train_argv):
    # A validation loss that must fall by 1000 never improves after the first epoch.
    _, state = fitted(train_argv(dogimages_dir, tmp_path / "out", "--epochs", "5", "--patience", "1", "--min-delta", "1000"))
    assert state.stopped_early and len(state.history) == 2 and state.best["epoch"] == 1


def test_resume_restores_the_state_fit_checkpointed(dogimages_dir, tmp_path, train_argv):
    first_run, first = fitted(train_argv(dogimages_dir, tmp_path / "out", "--optimizer", "sgd"))
    again = resolved(train_argv(dogimages_dir, tmp_path / "out", "--optimizer", "sgd", "--epochs", "2", "--resume", "auto"))
    run = train.setup(again, SINGLE, CPU)
    checkpoint = train.load_resume_checkpoint(run)
    assert checkpoint is not None
    state = train.new_fit_state(run)
    train.resume(run, state, checkpoint)
    assert state.start_epoch == 1 and state.history == first.history and state.best == first.best
    assert state.scheduler.last_epoch == first.scheduler.last_epoch == 1
    restored, trained = state.optimizer.state_dict()["state"], first.optimizer.state_dict()["state"]
    assert restored.keys() == trained.keys() and restored
    for key in trained:
        assert torch.equal(restored[key]["momentum_buffer"], trained[key]["momentum_buffer"])
    for name, tensor in first_run.model.state_dict().items():
        assert torch.equal(run.model.state_dict()[name], tensor), name


def test_no_checkpoint_to_resume_is_a_fresh_start_and_a_bad_one_an_error(dogimages_dir, tmp_path, train_argv):
    run = train.setup(resolved(train_argv(dogimages_dir, tmp_path / "out", "--resume", "auto")), SINGLE, CPU)
    assert train.load_resume_checkpoint(run) is None
    (tmp_path / "not-a-checkpoint.pth").write_bytes(b"no")
    run = train.setup(resolved(train_argv(dogimages_dir, tmp_path / "out", "--resume", tmp_path / "not-a-checkpoint.pth")),
                      SINGLE, CPU)
    with pytest.raises((ConfigError, train.DamagedCheckpointError)):
        train.load_resume_checkpoint(run)
    assert not (tmp_path / "out").exists()


def test_finish_evaluates_the_best_weights_and_writes_metrics_and_artifact(dogimages_dir, tmp_path, train_argv, capsys):
    run, state = fitted(train_argv(dogimages_dir, tmp_path / "out", "--epochs", "2"))
    result = train.finish(run, state)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["epochs_trained"] == 2 and metrics["best_epoch"] == state.best["epoch"]
    assert metrics["val_loss"] == pytest.approx(state.best["val_loss"])
    assert "test_acc1" in metrics and result.metrics == pytest.approx(metrics)
    assert result.artifact == tmp_path / "out" / "model.tar.gz" and result.artifact.is_file()
    assert capsys.readouterr().out.splitlines()[-1].startswith("test_loss=")
