"""`dogbreed verify`: the artifact loaded as the serving container loads it, one line on any failure."""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from dogbreed.cli import main
from dogbreed.verify import VerificationError, verify_artifact


def unpacked(artifact: Path, into: Path) -> Path:
    with tarfile.open(artifact) as tar:
        tar.extractall(into, filter="data")
    return into


def test_a_good_artifact_passes_in_a_fresh_interpreter(tiny_artifact):
    result = verify_artifact(tiny_artifact)
    assert result["python"] == sys.version.split()[0]
    assert result["top"]["breed"] in ["Affenpinscher", "Afghan hound", "Labrador retriever"]
    cli = CliRunner().invoke(main, ["verify", str(tiny_artifact)])
    assert cli.exit_code == 0, cli.output
    assert cli.stdout.startswith(f"{tiny_artifact}: OK (") and cli.stdout.count("\n") == 1


def test_a_given_photo_is_classified(tiny_artifact, tmp_path):
    from PIL import Image

    photo = tmp_path / "dog.png"
    Image.new("RGB", (80, 60), (50, 60, 210)).save(photo)
    assert verify_artifact(tiny_artifact, image=photo)["top"]["class_id"] in (0, 1, 2)


def broken(tiny_artifact: Path, tmp_path: Path, how: str) -> Path:
    folder = unpacked(tiny_artifact, tmp_path / how)
    if how == "imports-the-trainer":
        (folder / "code" / "inference.py").write_text("import dogbreed.serving.handlers\n")
    elif how == "downloads":
        handlers = folder / "code" / "dogbreed_serving" / "handlers.py"
        handlers.write_text(handlers.read_text().replace(
            "    _serving_model = load(model_dir)",
            "    import urllib.request; urllib.request.urlopen('https://example.com/weights', timeout=5)\n    _serving_model = load(model_dir)"))
    elif how == "wrong-weights":
        metadata = json.loads((folder / "metadata.json").read_text())
        metadata["num_outputs"] = metadata["num_outputs"] + 1
        metadata["classes"].append("Extra")
        (folder / "metadata.json").write_text(json.dumps(metadata))
    elif how == "no-code":
        shutil.rmtree(folder / "code")
    return folder


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("imports-the-trainer", "import code/inference.py: ModuleNotFoundError: No module named 'dogbreed'"),
        ("downloads", "model_fn: URLError: <urlopen error network access during verification: name lookup of 'example.com'>"),
        ("wrong-weights", "model_fn: "),
        ("no-code", "import code/inference.py: the artifact has no code/inference.py"),
    ],
)
def test_a_broken_artifact_is_one_line_and_exit_1(tiny_artifact, tmp_path, how, reason):
    folder = broken(tiny_artifact, tmp_path, how)
    with pytest.raises(VerificationError) as caught:
        verify_artifact(folder)
    assert str(caught.value).startswith(f"{folder}: {reason}")
    cli = CliRunner().invoke(main, ["verify", str(folder)])
    assert cli.exit_code == 1
    assert cli.stderr.startswith(f"Error: verification failed: {folder}: {reason}") and cli.stderr.count("\n") == 1


def test_not_an_artifact_is_a_clear_error(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(VerificationError, match="not a readable model.tar.gz"):
        verify_artifact(tmp_path / "x.tar.gz")
    with pytest.raises(VerificationError, match="no such file or directory"):
        verify_artifact(tmp_path / "missing.tar.gz")
