"""artifact.py: metadata, model.tar.gz as docs/artifact.md lays it out, atomic writes, `dogbreed package`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from dogbreed import artifact
from dogbreed.artifact import write_artifact
from dogbreed.cli import main
from dogbreed.serving.loading import ArtifactError, load_model

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING_DIR = REPO_ROOT / "services" / "trainer" / "src" / "dogbreed" / "serving"


def extract(tarball: Path, destination: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(destination, filter="data")
    return destination


# ---- metadata ------------------------------------------------------------------------------------


def documented_metadata_keys() -> set[str]:
    """The required keys of docs/artifact.md's metadata table (rows whose type is not "optional")."""
    text = (REPO_ROOT / "docs" / "artifact.md").read_text()
    table = text.split("`metadata.json`:", 1)[1]
    rows = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \| ([^|]+) \|", table, flags=re.M)
    return {key for first, second, kind in rows if "optional" not in kind for key in (first, second) if key}


def test_metadata_has_exactly_the_documented_keys(make_tiny_metadata):
    documented = documented_metadata_keys()
    assert "classes" in documented and "mean" in documented and "std" in documented
    assert set(make_tiny_metadata()) == documented


def test_version_and_created_at_are_the_same_utc_instant(make_tiny_metadata):
    instant = dt.datetime(2026, 11, 21, 12, 0, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    metadata = make_tiny_metadata(created_at=instant)
    assert metadata["version"] == "2026-11-21T10:00:05Z"
    assert dt.datetime.fromisoformat(metadata["created_at"]) == instant.replace(microsecond=0)
    assert metadata["format_version"] == 1 and metadata["runtime"] == "eager"
    assert metadata["num_outputs"] == 3 and metadata["output_indices"] is None and metadata["dog_indices"] is None


def test_training_args_and_metrics_become_plain_json(make_tiny_metadata):
    args = argparse.Namespace(data=Path("/data/dogImages"), fractions=(0.7, 0.15, 0.15), lr=3e-4, best=math.inf)
    metadata = make_tiny_metadata(training_args=args, metrics={"val_acc1": torch.tensor(0.5), "warnings": ("a",)})
    assert json.loads(json.dumps(metadata)) == metadata
    assert metadata["training_args"] == {"data": "/data/dogImages", "fractions": [0.7, 0.15, 0.15], "lr": 3e-4, "best": None}
    assert metadata["metrics"] == {"val_acc1": 0.5, "warnings": ["a"]}


def test_build_metadata_refuses_inconsistent_classes(make_tiny_metadata):
    with pytest.raises(ArtifactError, match="2 classes but output_indices gives 3 breed outputs"):
        make_tiny_metadata(classes=["a", "b"], output_indices=[0, 1, 2], num_outputs=10)


# ---- model.tar.gz ----------------------------------------------------------------------------------


def test_tarball_layout_matches_docs_artifact_md(tiny_artifact):
    with tarfile.open(tiny_artifact) as tar:
        members = {m.name: m for m in tar.getmembers()}
    serving_modules = {f"code/dogbreed_serving/{p.name}" for p in SERVING_DIR.glob("*.py")}
    files = {name for name, m in members.items() if m.isfile()}
    assert files == {"model.pth", "metadata.json", "code/inference.py", *serving_modules}
    assert "code/dogbreed_serving/loading.py" in files
    assert all(m.uid == 0 and m.gid == 0 and not m.name.startswith(("/", "./")) for m in members.values())


def test_model_pth_is_a_plain_state_dict(tiny_artifact, tmp_path, make_tiny_model):
    extracted = extract(tiny_artifact, tmp_path / "model")
    state = torch.load(extracted / "model.pth", weights_only=True)
    expected = make_tiny_model().state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_round_trip_gives_the_same_outputs_as_the_model_it_was_written_from(tiny_artifact, make_tiny_model):
    torch.manual_seed(1)
    batch = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        expected = make_tiny_model()(batch).softmax(dim=1)
    breed_probs, dog_prob = load_model(tiny_artifact).predict_proba(batch)
    assert torch.allclose(breed_probs, expected, atol=1e-6)
    assert dog_prob is None


FRESH_INTERPRETER = textwrap.dedent(
    """
    import importlib.abc, json, socket, sys

    class NoDogbreed(importlib.abc.MetaPathFinder):  # an installed trainer must not be found
        def find_spec(self, name, path=None, target=None):
            if name == "dogbreed" or name.startswith("dogbreed."):
                raise ImportError("the trainer package is not available in a serving container")

    def refuse(*args, **kwargs):
        raise OSError("network disabled")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    sys.meta_path.insert(0, NoDogbreed())
    code_dir, model_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, code_dir)

    import torch
    from dogbreed_serving.loading import load_model

    torch.manual_seed(1)
    loaded = load_model(model_dir)
    breed_probs, _ = loaded.predict_proba(torch.randn(4, 3, 32, 32))
    result = {"probs": breed_probs.tolist(), "classes": loaded.classes}
    try:
        import inference  # the SageMaker entry point, when the handlers exist
    except ModuleNotFoundError as exc:
        result["inference"] = f"missing: {exc.name}"
    else:
        result["inference"] = sorted(n for n in ("model_fn", "input_fn", "predict_fn", "output_fn") if callable(getattr(inference, n, None)))
    result["dogbreed_imported"] = any(m == "dogbreed" or m.startswith("dogbreed.") for m in sys.modules)
    print(json.dumps(result))
    """
)


def test_code_dir_loads_the_model_without_the_trainer_package_and_without_network(tiny_artifact, tmp_path, make_tiny_model):
    model_dir = extract(tiny_artifact, tmp_path / "opt" / "ml" / "model")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", FRESH_INTERPRETER, str(model_dir / "code"), str(model_dir)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result["dogbreed_imported"] is False
    assert result["classes"] == ["Affenpinscher", "Afghan hound", "Labrador retriever"]
    torch.manual_seed(1)
    batch = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        expected = make_tiny_model()(batch).softmax(dim=1)
    assert torch.allclose(torch.tensor(result["probs"]), expected, atol=1e-5)
    if (SERVING_DIR / "handlers.py").exists():
        assert result["inference"] == ["input_fn", "model_fn", "output_fn", "predict_fn"]


def test_a_failed_write_leaves_the_previous_artifact_untouched(tiny_artifact, tmp_path, monkeypatch, make_tiny_model, make_tiny_metadata):
    output = tmp_path / "out"
    output.mkdir()
    previous = output / "model.tar.gz"
    previous.write_bytes(tiny_artifact.read_bytes())

    def fail_midway(staging, destination):
        destination.write_bytes(b"half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(artifact, "_write_tarball", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        write_artifact(make_tiny_model(seed=3), make_tiny_metadata(), output)
    assert sorted(p.name for p in output.iterdir()) == ["model.tar.gz"]
    assert previous.read_bytes() == tiny_artifact.read_bytes()
    with pytest.raises(OSError):
        write_artifact(make_tiny_model(), make_tiny_metadata(), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_new_artifact_replaces_the_old_one(tiny_artifact, tmp_path, make_tiny_model, make_tiny_metadata):
    output = tmp_path / "out"
    first = write_artifact(make_tiny_model(seed=1), make_tiny_metadata(name="first"), output)
    second = write_artifact(make_tiny_model(seed=2), make_tiny_metadata(name="second"), output)
    assert first == second == output / "model.tar.gz"
    assert load_model(second).name == "second"
    assert sorted(p.name for p in output.iterdir()) == ["model.tar.gz"]


def test_head_width_must_match_the_metadata(tmp_path, make_tiny_model, make_tiny_metadata):
    with pytest.raises(ArtifactError, match="metadata says 3 outputs but the network has 5"):
        write_artifact(make_tiny_model(num_outputs=5), make_tiny_metadata(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_num_outputs_is_taken_from_the_network_when_output_indices_are_given(tmp_path, make_tiny_model, make_tiny_metadata):
    metadata = make_tiny_metadata(output_indices=[1, 3, 4], dog_indices=[1, 3, 4, 5])
    assert metadata["num_outputs"] is None
    path = write_artifact(make_tiny_model(num_outputs=6), metadata, tmp_path / "out")
    loaded = load_model(path)
    assert loaded.metadata["num_outputs"] == 6
    breed_probs, dog_prob = loaded.predict_proba(torch.randn(2, 3, 32, 32))
    assert breed_probs.shape == (2, 3) and dog_prob.shape == (2,)


def test_wrapped_models_are_saved_without_wrapper_prefixes(tmp_path, make_tiny_model, make_tiny_metadata):
    path = write_artifact(nn.DataParallel(make_tiny_model()), make_tiny_metadata(), tmp_path / "out")
    state = torch.load(extract(path, tmp_path / "x") / "model.pth", weights_only=True)
    assert not any(key.startswith("module.") for key in state)


def test_dir_layout_writes_the_same_files_into_a_new_folder(tmp_path, make_tiny_model, make_tiny_metadata):
    target = tmp_path / "plain"
    assert write_artifact(make_tiny_model(), make_tiny_metadata(), target, layout="dir") == target
    assert {p.name for p in target.iterdir()} == {"model.pth", "metadata.json", "code"}
    assert load_model(target).classes == make_tiny_metadata()["classes"]
    assert [p.name for p in tmp_path.iterdir()] == ["plain"]  # no staging folder left behind
    with pytest.raises(ArtifactError, match="is not empty"):
        write_artifact(make_tiny_model(), make_tiny_metadata(), target, layout="dir")


def test_onnx_runtime_adds_the_graph_and_the_serving_requirement(tmp_path, make_tiny_model, make_tiny_metadata):
    pytest.importorskip("dogbreed.optimize")
    pytest.importorskip("onnxruntime")
    path = write_artifact(make_tiny_model(), make_tiny_metadata(), tmp_path / "out", runtime="onnx")
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("code/requirements.txt").read().decode()
    assert {"model.onnx", "model.pth", "code/requirements.txt"} <= names
    # Installable with no index (the container runs pip before TorchServe, maybe without internet).
    lines = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert lines[:2] == ["--no-index", "--find-links wheels"] and lines[2].startswith("onnxruntime==")
    metadata = load_model(path).metadata
    assert metadata["runtime"] == "onnx"
    assert metadata["serving_target"]["python"] == "3.12" and metadata["serving_target"]["platform"] == "x86_64"
    assert {f"code/wheels/{name}" for name in metadata["serving_target"]["wheels"]} <= names
    assert any(name.startswith("onnxruntime-") and "cp312" in name and "x86_64" in name for name in metadata["serving_target"]["wheels"])


def test_instance_types_pick_the_wheels_cpu():
    from dogbreed.artifact import serving_platform

    assert serving_platform("ml.m5.large") == "x86_64"
    assert serving_platform("ml.g4dn.xlarge") == "x86_64"
    assert serving_platform("ml.c7g.large") == "aarch64"
    assert serving_platform("ml.c6gn.xlarge") == "aarch64"
    with pytest.raises(ArtifactError, match="not a SageMaker instance type"):
        serving_platform("m5.large")


def test_missing_wheels_offline_is_one_clear_error(tmp_path, make_tiny_model, make_tiny_metadata, monkeypatch):
    pytest.importorskip("dogbreed.optimize")
    # A Python no serving image has: no wheels exist for it anywhere, cached or on the index.
    with pytest.raises(ArtifactError, match=r"cannot get the wheels of onnxruntime==.* for Python 3\.99 on x86_64"):
        write_artifact(make_tiny_model(), make_tiny_metadata(), tmp_path / "out", runtime="onnx",
                       serving_target={"python": "3.99", "wheel_cache": tmp_path / "cache"})
    assert not (tmp_path / "out").exists()


# ---- training checkpoints --------------------------------------------------------------------------


def write_checkpoint(path: Path, model: nn.Module, **extra) -> Path:
    """A checkpoint as `dogbreed train` writes it (see train.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "model": model.state_dict(), "optimizer": {}, "scheduler": {}, "scaler": None, "epoch": 3,
        "args": {"backbone": "efficientnet_lite0", "data": "/data/dogImages/", "image_size": 32, "resize_size": 36,
                 "name": None, "lr": 0.001},
        "best": {"val_loss": 0.5, "val_acc1": 0.8, "val_acc5": 1.0, "epoch": 2},
        "warnings": ["validation loss rose for 2 epochs"],
        "class_folders": ["001.Affenpinscher", "002.Afghan_hound", "003.Labrador_retriever"],
        "classes": ["Affenpinscher", "Afghan hound", "Labrador retriever"],
        **extra,
    }, path)
    return path


def test_a_checkpoint_becomes_an_artifact_with_its_args_metrics_and_warnings(tmp_path, make_tiny_model):
    checkpoint = write_checkpoint(tmp_path / "checkpoints" / "checkpoint-epoch003.pth", make_tiny_model(seed=5))
    result = CliRunner().invoke(main, ["package", "--checkpoint", str(checkpoint), "--output-dir", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "m" / "model.tar.gz")
    loaded = load_model(tmp_path / "m" / "model.tar.gz")
    meta = loaded.metadata
    assert meta["name"] == "efficientnet_lite0-dogimages"
    assert (meta["image_size"], meta["resize_size"], meta["mean"]) == (32, 36, [0.5, 0.5, 0.5])
    assert meta["metrics"] == {"val_loss": 0.5, "val_acc1": 0.8, "val_acc5": 1.0, "best_epoch": 2, "epochs_trained": 3,
                               "warnings": ["validation loss rose for 2 epochs"]}
    assert meta["training_args"]["lr"] == 0.001
    batch = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = make_tiny_model(seed=5)(batch).softmax(dim=1)
    assert torch.allclose(loaded.predict_proba(batch)[0], expected, atol=1e-6)


def test_a_checkpoint_folder_packages_its_best_model(tmp_path, make_tiny_model):
    folder = tmp_path / "checkpoints"
    write_checkpoint(folder / "checkpoint-epoch002.pth", make_tiny_model(seed=1))
    write_checkpoint(folder / "checkpoint-epoch003.pth", make_tiny_model(seed=2))
    torch.save(make_tiny_model(seed=7).state_dict(), folder / "best-model.pth")
    result = CliRunner().invoke(main, ["package", "--checkpoint", str(folder), "--output-dir", str(tmp_path / "m"),
                                       "--name", "my-model", "--format", "dir"])
    assert result.exit_code == 0, result.output
    loaded = load_model(tmp_path / "m")
    assert loaded.name == "my-model"
    batch = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = make_tiny_model(seed=7)(batch).softmax(dim=1)
    assert torch.allclose(loaded.predict_proba(batch)[0], expected, atol=1e-6)


@pytest.mark.parametrize("best_seed, expected_seed", [(9, 9), (None, 2)])
def test_a_checkpoint_folder_prefers_the_best_weights_inside_the_newest_checkpoint(
        tmp_path, make_tiny_model, best_seed, expected_seed):
    # best-model.pth is stale (seed 7), as after a kill between the two writes; None means the
    # checkpoint's own epoch was the best.
    folder = tmp_path / "checkpoints"
    best = make_tiny_model(seed=best_seed).state_dict() if best_seed is not None else None
    write_checkpoint(folder / "checkpoint-epoch003.pth", make_tiny_model(seed=2), best_model=best)
    torch.save(make_tiny_model(seed=7).state_dict(), folder / "best-model.pth")
    result = CliRunner().invoke(main, ["package", "--checkpoint", str(folder), "--output-dir", str(tmp_path / "m"),
                                       "--format", "dir"])
    assert result.exit_code == 0, result.output
    batch = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = make_tiny_model(seed=expected_seed)(batch).softmax(dim=1)
    assert torch.allclose(load_model(tmp_path / "m").predict_proba(batch)[0], expected, atol=1e-6)


# ---- `dogbreed package` bad input --------------------------------------------------------------------


@pytest.fixture()
def nonempty_dir(tmp_path) -> Path:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    return folder


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give exactly one of --pretrained imagenet-dogs or --checkpoint PATH"),
        (["--pretrained", "imagenet-dogs", "--checkpoint", "x.pth"], "give exactly one of --pretrained imagenet-dogs or --checkpoint PATH"),
        (["--checkpoint", "{tmp}/missing.pth"], "--checkpoint {tmp}/missing.pth: no such file or directory"),
        (["--checkpoint", "{tmp}/garbage.pth", "--backbone", "resnet50"],
         "--backbone applies to --pretrained only; a checkpoint records its own backbone"),
        (["--checkpoint", "{tmp}"], "--checkpoint {tmp}: no checkpoint-epoch*.pth in this folder"),
        (["--checkpoint", "{tmp}/garbage.pth"], None),
        (["--pretrained", "imagenet-dogs", "--runtime", "onnx-int8"],
         "--runtime onnx-int8 needs --calibration-data DIR (a few hundred representative photos)"),
        (["--pretrained", "imagenet-dogs", "--runtime", "onnx-int8", "--calibration-data", "{tmp}/none"],
         "--calibration-data {tmp}/none: no such directory"),
        (["--pretrained", "imagenet-dogs", "--format", "dir", "--output-dir", "{tmp}/taken"],
         "--output-dir {tmp}/taken is not empty; --format dir writes into an empty or new folder"),
    ],
    ids=["neither", "both", "missing-checkpoint", "backbone-with-checkpoint", "empty-checkpoint-dir", "garbage-checkpoint", "int8-uncalibrated",
         "missing-calibration", "dir-not-empty"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, nonempty_dir, argv, message):
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--output-dir" not in argv:
        argv += ["--output-dir", str(tmp_path / "model")]
    result = CliRunner().invoke(main, ["package", *argv])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    if message is None:
        assert re.fullmatch(rf"Error: {re.escape(str(tmp_path))}/garbage.pth: not a loadable training checkpoint \(.+\)\n", result.stderr)
    else:
        assert result.stderr == f"Error: {message.format(tmp=tmp_path)}\n"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_resnet_starter_without_network_says_what_to_do(tmp_path, no_network, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached weights
    result = CliRunner().invoke(main, ["package", "--pretrained", "imagenet-dogs", "--backbone", "resnet50",
                                       "--output-dir", str(tmp_path / "model")])
    assert result.exit_code == 2
    error = result.stderr.splitlines()[-1]  # after the progress line
    assert error.startswith("Error: cannot get torchvision's ImageNet weights for resnet50 (")
    assert error.endswith("offline, use --backbone efficientnet_lite0, whose weights ship in a Python package")
    assert not (tmp_path / "model").exists()
