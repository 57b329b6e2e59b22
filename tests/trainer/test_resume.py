"""Checkpoints every epoch, written atomically, and ``--resume`` continuing exactly where a run stopped."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch

import dogbreed.train as train_module
from dogbreed.metric_lines import parse_epoch_line
from dogbreed.train import StorageError, atomic_save, cli_main, list_checkpoints

STEPS_PER_EPOCH = 3  # 18 training images, batch size 6


@pytest.fixture(autouse=True)
def outside_sagemaker(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SM_") or name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
            monkeypatch.delenv(name)


def run(argv, capsys, on_step_end=None, monkeypatch=None):
    if on_step_end is not None:
        real_main = train_module.main
        monkeypatch.setattr(train_module, "main", lambda args: real_main(args, on_step_end=on_step_end))
    code = cli_main([str(a) for a in argv])
    if on_step_end is not None:
        monkeypatch.undo()
    captured = capsys.readouterr()
    return code, [parse_epoch_line(line) for line in captured.out.splitlines() if line.startswith("epoch=")], captured.err


def model_state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_a_run_killed_mid_epoch_resumes_there_and_ends_as_if_never_interrupted(dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    # Reference: three epochs in one go.
    code, reference, stderr = run(train_argv(dogimages_dir, tmp_path / "whole", "--epochs", "3"), capsys)
    assert code == 0, stderr

    # The same run, killed in the middle of epoch 2.
    out = tmp_path / "interrupted"
    argv = train_argv(dogimages_dir, out, "--epochs", "3")

    def crash_in_epoch_two(model, step):
        if step == STEPS_PER_EPOCH + 1:
            raise KeyboardInterrupt

    code, before, stderr = run(argv, capsys, crash_in_epoch_two, monkeypatch)
    assert code == 130 and "resume with --resume auto" in stderr
    assert [e["epoch"] for e in before] == [1]
    assert [epoch for epoch, _ in list_checkpoints(out / "checkpoints")] == [1]
    assert not (out / "model.tar.gz").exists()

    code, after, stderr = run(argv + ["--resume", "auto"], capsys)
    assert code == 0, stderr
    assert "checkpoint-epoch001.pth: 1 epoch(s) done" in stderr
    assert [e["epoch"] for e in after] == [2, 3]  # lost only the epoch it was killed in
    for resumed_epoch, reference_epoch in zip(after, reference[1:], strict=True):
        resumed_epoch.pop("epoch_time"), reference_epoch.pop("epoch_time")
        assert resumed_epoch == pytest.approx(reference_epoch, abs=1e-4)

    resumed = model_state(out / "checkpoints" / "checkpoint-epoch003.pth")
    whole = model_state(tmp_path / "whole" / "checkpoints" / "checkpoint-epoch003.pth")
    for key, value in whole.items():
        assert torch.allclose(resumed[key].float(), value.float(), atol=1e-5), key
    assert (out / "model.tar.gz").is_file()


def test_checkpoint_holds_everything_needed_to_resume(dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    code, _, stderr = run(train_argv(dogimages_dir, out, "--epochs", "3", "--keep-checkpoints", "2"), capsys)
    assert code == 0, stderr
    assert [epoch for epoch, _ in list_checkpoints(out / "checkpoints")] == [2, 3]  # older ones pruned
    checkpoint = torch.load(out / "checkpoints" / "checkpoint-epoch003.pth", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "args", "best", "rng", "classes", "history"} <= set(checkpoint)
    assert checkpoint["epoch"] == 3 and checkpoint["args"]["backbone"] == "resnet18"
    assert checkpoint["classes"] == ["Affenpinscher", "Afghan hound", "Labrador retriever"]
    assert checkpoint["scheduler"]["last_epoch"] == 3
    assert len(checkpoint["optimizer"]["state"]) > 0

    # `dogbreed package --checkpoint` rebuilds the network from it.
    from dogbreed.artifact import model_from_checkpoint

    model, metadata = model_from_checkpoint(out / "checkpoints" / "checkpoint-epoch003.pth")
    assert metadata["classes"] == checkpoint["classes"] and metadata["image_size"] == 40
    assert torch.equal(model.state_dict()["fc.weight"], checkpoint["model"]["fc.weight"])


def test_resuming_a_finished_run_trains_no_more_but_still_writes_the_artifact(dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    assert run(train_argv(dogimages_dir, out), capsys)[0] == 0
    (out / "model.tar.gz").unlink()
    code, epochs, stderr = run(train_argv(dogimages_dir, out, "--resume", "auto"), capsys)
    assert code == 0, stderr
    assert epochs == [] and (out / "model.tar.gz").is_file()


def test_auto_falls_back_to_an_older_checkpoint_when_the_newest_is_damaged(dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    assert run(train_argv(dogimages_dir, out, "--epochs", "2"), capsys)[0] == 0
    (out / "checkpoints" / "checkpoint-epoch002.pth").write_bytes(b"damaged")
    code, epochs, stderr = run(train_argv(dogimages_dir, out, "--epochs", "2", "--resume", "auto"), capsys)
    assert code == 0, stderr
    assert "cannot read checkpoint" in stderr and [e["epoch"] for e in epochs] == [2]


def test_resume_from_a_missing_file_is_refused(dogimages_dir, tmp_path, train_argv, capsys):
    code, _, stderr = run(train_argv(dogimages_dir, tmp_path / "out", "--resume", tmp_path / "nope.pth"), capsys)
    assert code == 2
    assert stderr.strip().splitlines() == [
        f"dogbreed train: error: checkpoint not found: {tmp_path / 'nope.pth'}; --resume takes auto, none, or a checkpoint file"
    ]
    assert not (tmp_path / "out").exists()


def test_resume_with_another_backbone_is_refused(dogimages_dir, tmp_path, train_argv, capsys):
    out = tmp_path / "out"
    assert run(train_argv(dogimages_dir, out), capsys)[0] == 0
    argv = train_argv(dogimages_dir, out, "--resume", "auto")
    argv[argv.index("resnet18")] = "resnet34"
    code, _, stderr = run(argv, capsys)
    assert code == 2
    assert "was trained with --backbone resnet18, not resnet34; resume with the same arguments" in stderr


def test_checkpoints_are_never_half_written(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint-epoch001.pth"
    atomic_save({"epoch": 1}, target)

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(StorageError, match=r"cannot write .*checkpoint-epoch001.pth: No space left on device \(.* MiB free there\)"):
        atomic_save({"epoch": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-epoch001.pth"]


def test_a_full_disk_ends_training_with_one_clear_line_and_keeps_the_last_checkpoint(
        dogimages_dir, tmp_path, train_argv, capsys, monkeypatch):
    real_save = torch.save
    saves = []

    def save_fails_in_epoch_two(obj, f, *args, **kwargs):
        # What torch reports when the disk fills up under it.
        if isinstance(obj, dict) and obj.get("epoch") == 2:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1024 vs 980\nmore detail")
        saves.append(obj.get("epoch") if isinstance(obj, dict) else None)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_fails_in_epoch_two)
    out = tmp_path / "out"
    code, _, stderr = run(train_argv(dogimages_dir, out, "--epochs", "3"), capsys)
    assert code == 1
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"dogbreed train: error: cannot write .*checkpoint-epoch002\.pth: \[enforce fail at "
                        r"inline_container\.cc:664\] \. unexpected pos 1024 vs 980 \(.* MiB free there\); "
                        r"files written before are intact", last), last
    assert "Traceback" not in stderr
    assert [epoch for epoch, _ in list_checkpoints(out / "checkpoints")] == [1]
    assert not [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]  # no temporary files
    assert torch.load(out / "checkpoints" / "checkpoint-epoch001.pth", weights_only=True)["epoch"] == 1
    assert saves.count(1) >= 1


@pytest.mark.parametrize(("killed_writing", "best_epoch"), [("checkpoint-epoch002.pth", 1), ("best-model.pth", 2)])
def test_a_kill_between_the_checkpoint_and_best_model_pth_resumes_with_matching_best_weights(
        dogimages_dir, tmp_path, train_argv, capsys, monkeypatch, killed_writing, best_epoch):
    # Epoch 2 improves on epoch 1; the run is killed while writing one of epoch 2's files. Resumed,
    # no later epoch improves, so the artifact must hold the weights of the best epoch the resumed
    # checkpoint records, never a newer best-model.pth's.
    val_losses = iter([1.0, 0.5] + [1.2, 1.1])  # killed run, then the resumed one
    real_evaluate, real_save = train_module.evaluate, train_module.atomic_save

    def scripted(model, loader, device, **kwargs):
        result = real_evaluate(model, loader, device, **kwargs)
        if kwargs.get("desc") == "validation":
            result["loss"] = next(val_losses)
        return result

    saves = []

    def killed_at_epoch_two(obj, path):
        saves.append(path.name)
        if path.name == killed_writing and "checkpoint-epoch002.pth" in saves:
            raise KeyboardInterrupt
        return real_save(obj, path)

    monkeypatch.setattr(train_module, "evaluate", scripted)
    out = tmp_path / "out"
    argv = train_argv(dogimages_dir, out, "--epochs", "3", "--keep-checkpoints", "5")
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "atomic_save", killed_at_epoch_two)
        assert run(argv, capsys)[0] == 130

    code, epochs, stderr = run(argv + ["--resume", "auto"], capsys)
    assert code == 0, stderr
    assert epochs[0]["epoch"] == best_epoch + 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == best_epoch
    best_weights = model_state(out / "checkpoints" / f"checkpoint-epoch{best_epoch:03d}.pth")
    from dogbreed.serving.loading import load_model

    artifact_state = load_model(out / "model.tar.gz").model.state_dict()
    assert torch.equal(artifact_state["fc.weight"], best_weights["fc.weight"])
    best_model_pth = torch.load(out / "checkpoints" / "best-model.pth", weights_only=True)
    assert torch.equal(best_model_pth["fc.weight"], best_weights["fc.weight"])
