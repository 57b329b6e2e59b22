"""Training survives SIGTERM and damaged checkpoints; serving refuses damaged weights (issue 13).

SIGTERM is sent to a real `dogbreed train` subprocess while it writes a checkpoint (the write is slowed down
in that process so the signal reliably lands inside it). Damage is bytes overwritten in the middle of a
file, the way a bad disk or an interrupted copy leaves it: torch.load alone does not notice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

from dogbreed.metric_lines import parse_epoch_line
from dogbreed.train import cli_main, list_checkpoints

SLOW_CHECKPOINT_WRITER = textwrap.dedent(
    """
    import io, sys, time
    import torch
    import dogbreed.train as train

    real_save = torch.save

    def slow_save(obj, f, *args, **kwargs):
        # Checkpoints only: write in small pieces with pauses, as a large checkpoint on a slow disk does.
        if not (isinstance(obj, dict) and "epoch" in obj):
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        step = max(1, len(data) // 40)
        for start in range(0, len(data), step):
            f.write(data[start:start + step])
            f.flush()
            time.sleep(0.05)

    torch.save = slow_save
    sys.exit(train.cli_main(sys.argv[1:]))
    """
)


@pytest.fixture(autouse=True)
def outside_sagemaker(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SM_") or name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
            monkeypatch.delenv(name)


def run(argv, capsys):
    code = cli_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, [parse_epoch_line(line) for line in captured.out.splitlines() if line.startswith("epoch=")], captured.err


def damage(path: Path, size: int = 4096) -> None:
    """Overwrite `size` bytes in the middle of `path` (tensor data, in a checkpoint of a network)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = bytes((b ^ 0x5A) for b in data[middle : middle + size])
    path.write_bytes(bytes(data))


def temporary_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


# -- SIGTERM -------------------------------------------------------------------------------------------------


def test_sigterm_during_a_checkpoint_write_finishes_it_exits_143_and_resume_continues(
        dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    checkpoints = out / "checkpoints"
    argv = [str(a) for a in train_argv(dogimages_dir, out, "--epochs", "2")]
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHECKPOINT_WRITER, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # Wait until the first checkpoint is being written: its temporary file exists.
        deadline = time.monotonic() + 240
        while not (checkpoints.is_dir() and temporary_files(checkpoints)):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the checkpoint write never started"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    stop_lines = [line for line in stderr.splitlines() if "SIGTERM" in line]
    assert stop_lines == [
        "dogbreed train: stopped by SIGTERM; the last completed epoch's checkpoint is kept (resume with --resume auto)"
    ]
    assert temporary_files(out) == []  # no partial files anywhere
    # The write in progress was a safe point's work: it was finished, so epoch 1 is not lost.
    assert [epoch for epoch, _ in list_checkpoints(checkpoints)] == [1]
    assert torch.load(checkpoints / "checkpoint-epoch001.pth", weights_only=True)["epoch"] == 1
    assert not (out / "model.tar.gz").exists()

    code, epochs, stderr = run(train_argv(dogimages_dir, out, "--epochs", "2", "--resume", "auto"), capsys)
    assert code == 0, stderr
    assert "checkpoint-epoch001.pth: 1 epoch(s) done" in stderr
    assert [e["epoch"] for e in epochs] == [2]
    assert (out / "model.tar.gz").is_file()


# -- damaged checkpoints -----------------------------------------------------------------------------------------


def test_a_damaged_checkpoint_is_named_in_one_line_and_resume_falls_back_to_the_newest_intact_one(
        dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    assert run(train_argv(dogimages_dir, out, "--epochs", "2"), capsys)[0] == 0
    newest = out / "checkpoints" / "checkpoint-epoch002.pth"
    damage(newest)
    assert torch.load(newest, weights_only=True)["epoch"] == 2  # torch alone loads it without a word

    code, epochs, stderr = run(train_argv(dogimages_dir, out, "--epochs", "3", "--resume", "auto"), capsys)
    assert code == 0, stderr
    # (set: after other tests in the same session a second handler on the dogbreed logger may echo each line)
    warnings = {line for line in stderr.splitlines() if "checkpoint-epoch002.pth" in line and "damaged" in line}
    assert warnings == {
        f"WARNING cannot read checkpoint {newest} (damaged: its content does not match the sha256 stored in it); "
        "trying an older one"
    }
    assert "checkpoint-epoch001.pth: 1 epoch(s) done" in stderr
    assert [e["epoch"] for e in epochs] == [2, 3]
    # The damaged weights went nowhere: the new epoch-2 checkpoint and best-model.pth are intact and verified.
    from dogbreed.training.checkpoints import read_checkpoint as _read_checkpoint

    for _, path in list_checkpoints(out / "checkpoints"):
        assert _read_checkpoint(path)[1] is None, path


def test_no_intact_checkpoint_stops_with_exit_1(dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    assert run(train_argv(dogimages_dir, out, "--epochs", "2"), capsys)[0] == 0
    for _, path in list_checkpoints(out / "checkpoints"):
        damage(path)

    code, epochs, stderr = run(train_argv(dogimages_dir, out, "--epochs", "3", "--resume", "auto"), capsys)
    assert code == 1 and epochs == []
    assert stderr.strip().splitlines()[-1] == (
        f"dogbreed train: error: no intact checkpoint in {out / 'checkpoints'}: all 2 are damaged or unreadable; "
        "move them away (or use another --checkpoint-dir) to start afresh"
    )

    explicit = out / "checkpoints" / "checkpoint-epoch002.pth"
    code, _, stderr = run(train_argv(dogimages_dir, out, "--epochs", "3", "--resume", explicit), capsys)
    assert code == 1
    assert stderr.strip().splitlines()[-1] == (
        f"dogbreed train: error: cannot read checkpoint {explicit}: "
        "damaged: its content does not match the sha256 stored in it"
    )


def test_packaging_a_damaged_checkpoint_is_refused(dogimages_dir, tmp_path, train_argv, capsys):
    from dogbreed.artifact import ArtifactError, model_from_checkpoint

    out = tmp_path / "out"
    assert run(train_argv(dogimages_dir, out), capsys)[0] == 0
    checkpoint = out / "checkpoints" / "checkpoint-epoch001.pth"
    model_from_checkpoint(checkpoint)  # intact: fine
    damage(checkpoint)
    with pytest.raises(ArtifactError, match="damaged: its content does not match the sha256 stored in it"):
        model_from_checkpoint(checkpoint)


# -- damaged artifact ---------------------------------------------------------------------------------------------


def test_an_artifact_with_damaged_weights_is_refused_by_the_serving_loader(tiny_artifact, tmp_path):
    from dogbreed.serving.handlers import model_fn
    from dogbreed.serving.loading import ArtifactError

    model_dir = tmp_path / "opt-ml-model"
    with tarfile.open(tiny_artifact) as tar:
        tar.extractall(model_dir, filter="data")
    assert len((model_dir / "metadata.json").read_text().split('"weights_sha256"')) == 2
    model_fn(str(model_dir))  # intact: loads

    damage(model_dir / "model.pth")
    with pytest.raises(ArtifactError) as caught:
        model_fn(str(model_dir))
    assert str(caught.value) == (
        f"{model_dir}: model.pth is damaged: its sha256 does not match weights_sha256 in metadata.json"
    )
    assert "\n" not in str(caught.value)
