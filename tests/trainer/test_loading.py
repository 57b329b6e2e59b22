"""serving/loading.py: probabilities as docs/artifact.md defines them, and loading artifacts safely."""

from __future__ import annotations

import ast
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from dogbreed.serving import loading
from dogbreed.serving.loading import ArtifactError, load_model, probabilities

SERVING_DIR = Path(loading.__file__).parent


# ---- probabilities ---------------------------------------------------------------------------------


def test_breed_probabilities_are_the_renormalised_softmax_over_the_breed_outputs():
    torch.manual_seed(0)
    logits = torch.randn(4, 10) * 3
    breeds, dogs = [2, 5, 7], [2, 5, 7, 8]
    breed_probs, dog_prob = probabilities(logits, breeds, dogs)
    full = logits.softmax(dim=1)
    expected = full[:, breeds] / full[:, breeds].sum(dim=1, keepdim=True)
    assert torch.allclose(breed_probs, expected, atol=1e-6)
    assert torch.allclose(dog_prob, full[:, dogs].sum(dim=1), atol=1e-6)


def test_without_indices_it_is_a_plain_softmax_and_the_model_cannot_tell_dogs():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    breed_probs, dog_prob = probabilities(logits)
    assert torch.allclose(breed_probs, logits.softmax(dim=1))
    assert dog_prob is None


def test_an_image_far_from_every_dog_class_still_gets_finite_probabilities():
    logits = torch.zeros(1, 6)
    logits[0, 0] = 200.0  # a confident "cat": the dog outputs' softmax mass underflows to 0 in fp32
    assert logits.softmax(dim=1)[0, 3:].sum() == 0  # the naive renormalisation would divide 0 by 0
    breed_probs, dog_prob = probabilities(logits, [3, 4, 5], [3, 4, 5])
    assert torch.isfinite(breed_probs).all()
    assert torch.allclose(breed_probs, torch.full((1, 3), 1 / 3))
    assert dog_prob.item() == pytest.approx(0.0, abs=1e-30)


def test_half_precision_logits_give_float32_probabilities():
    breed_probs, dog_prob = probabilities(torch.randn(2, 5).half(), [0, 1], [0, 1])
    assert breed_probs.dtype == torch.float32 and dog_prob.dtype == torch.float32


# ---- loading -------------------------------------------------------------------------------------


def extract(tarball: Path, destination: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(destination, filter="data")
    return destination


def test_tarball_extracted_folder_and_a_folder_holding_the_tarball_load_the_same_model(tiny_artifact, tmp_path):
    extracted = extract(tiny_artifact, tmp_path / "opt-ml-model")
    batch = torch.randn(2, 3, 32, 32)
    results = [load_model(path).predict_proba(batch) for path in (tiny_artifact, extracted, tiny_artifact.parent)]
    for breed_probs, dog_prob in results:
        assert breed_probs.shape == (2, 3)
        assert dog_prob is None  # trained-on-breeds models cannot tell dogs from other things
        assert torch.equal(breed_probs, results[0][0])


def test_loaded_model_is_in_eval_mode_with_the_metadata_preset(tiny_artifact):
    loaded = load_model(tiny_artifact)
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.classes == ["Affenpinscher", "Afghan hound", "Labrador retriever"]
    assert (loaded.preset.crop_size, loaded.preset.resize_size) == (32, 36)
    assert loaded.preset.mean == [0.5, 0.5, 0.5]
    assert loaded.name == "tiny-test"
    # Eval mode matters: dropout and batch-norm statistics would make repeated calls differ.
    batch = torch.randn(3, 3, 32, 32)
    assert torch.equal(loaded.predict_proba(batch)[0], loaded.predict_proba(batch)[0])


def test_the_temporary_copy_of_a_tarball_is_removed_with_the_model(tiny_artifact):
    loaded = load_model(tiny_artifact)
    model_dir = loaded.model_dir
    assert (model_dir / "metadata.json").is_file()
    del loaded
    import gc

    gc.collect()
    assert not model_dir.exists()


@pytest.fixture()
def artifact_dir(tiny_artifact, tmp_path) -> Path:
    return extract(tiny_artifact, tmp_path / "artifact")


def rewrite_metadata(artifact_dir: Path, **changes) -> None:
    path = artifact_dir / "metadata.json"
    metadata = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            del metadata[key]
        else:
            metadata[key] = value
    path.write_text(json.dumps(metadata))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 2}, "unsupported artifact format_version 2; this loader reads 1"),
        ({"backbone": "vgg16"}, "unknown backbone 'vgg16'; known: resnet18, resnet34, resnet50, resnet101, efficientnet_lite0"),
        ({"classes": ["a", "b"]}, "2 classes but num_outputs gives 3 breed outputs"),
        ({"classes": ["a", "a", "b"]}, "metadata.json 'classes' has duplicate names"),
        ({"output_indices": [0, 1, 5]}, "metadata.json 'output_indices' must list distinct outputs in 0..2"),
        ({"mean": [0.5, 0.5]}, "metadata.json 'mean' must be 3 numbers"),
        ({"image_size": "224"}, "metadata.json 'image_size' must be int, got '224'"),
        ({"resize_size": 16}, "resize_size must be at least image_size"),
        ({"num_outputs": ...}, "metadata.json has no 'num_outputs'"),
    ],
)
def test_bad_metadata_is_refused_with_a_message_naming_the_problem(artifact_dir, changes, message):
    rewrite_metadata(artifact_dir, **changes)
    with pytest.raises(ArtifactError) as caught:
        load_model(artifact_dir)
    assert str(caught.value) == f"{artifact_dir}: {message}"


def test_unparseable_metadata(artifact_dir):
    (artifact_dir / "metadata.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"unreadable metadata.json \(Expecting property name"):
        load_model(artifact_dir)


def test_weights_that_do_not_fit_the_backbone(artifact_dir, make_tiny_model):
    torch.save(make_tiny_model(num_outputs=5).state_dict(), artifact_dir / "model.pth")
    rewrite_metadata(artifact_dir, weights_sha256=...)  # a hand-made artifact: no digest to check
    with pytest.raises(ArtifactError) as caught:
        load_model(artifact_dir)
    assert str(caught.value).startswith(
        f"{artifact_dir}: model.pth does not fit a efficientnet_lite0 with 3 outputs (Error(s) in loading state_dict"
    )


class _Exploit:
    """Unpickling this would run code: writes a marker file."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_code_in_the_weights_is_never_run(artifact_dir, tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker
    torch.save({"_conv_stem.weight": exploit}, artifact_dir / "model.pth")
    rewrite_metadata(artifact_dir, weights_sha256=...)  # (with it, the digest check refuses the file first)
    with pytest.raises(ArtifactError, match="model.pth is not a loadable state dict"):
        load_model(artifact_dir)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing.tar.gz", "{path}: no such file or directory"),
        (lambda root: root, "{path}: not a model artifact (no metadata.json or model.tar.gz inside)"),
        (lambda root: (root / "model.tar.gz").write_bytes(b"not gzip") and root / "model.tar.gz", None),
    ],
    ids=["missing", "empty-dir", "corrupt-tarball"],
)
def test_paths_that_are_not_artifacts(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ArtifactError) as caught:
        load_model(path)
    if message:
        assert str(caught.value) == message.format(path=path)
    else:
        assert str(caught.value).startswith(f"{path}: not a readable model.tar.gz (")


def test_tarball_members_escaping_the_folder_are_refused(tiny_artifact, tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar, tarfile.open(tiny_artifact) as good:
        for member in good.getmembers():
            tar.addfile(member, good.extractfile(member) if member.isfile() else None)
        payload = b"owned"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ArtifactError, match="not a readable model.tar.gz"):
        load_model(evil)
    assert not (tmp_path / "escaped.txt").exists()


def test_a_tarball_without_metadata_at_its_top(tiny_artifact, tmp_path):
    nested = tmp_path / "nested.tar.gz"
    extracted = extract(tiny_artifact, tmp_path / "x" / "model")
    with tarfile.open(nested, "w:gz") as tar:
        tar.add(extracted, arcname="model")
    with pytest.raises(ArtifactError) as caught:
        load_model(nested)
    assert str(caught.value) == f"{nested}: not a model artifact (no metadata.json at the top of the archive)"


def test_state_dict_saved_from_a_ddp_wrapped_model_loads(artifact_dir):
    state = torch.load(artifact_dir / "model.pth", weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, artifact_dir / "model.pth")
    rewrite_metadata(artifact_dir, weights_sha256=...)
    assert load_model(artifact_dir).classes


# ---- the package copied into every artifact --------------------------------------------------------

ALLOWED_THIRD_PARTY = {"torch", "torchvision", "PIL", "numpy", "onnxruntime"}


@pytest.mark.parametrize("module", sorted(p.name for p in SERVING_DIR.glob("*.py")))
def test_serving_modules_import_only_what_a_serving_container_has(module):
    """dogbreed/serving/ is copied into artifacts as code/dogbreed_serving/: no dogbreed imports, only
    relative ones, the standard library, and torch/torchvision/PIL/numpy/onnxruntime (plus optional
    imports guarded by ``except ImportError``, e.g. SageMaker's own toolkit)."""
    tree = ast.parse((SERVING_DIR / module).read_text())
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in node.handlers
        ):
            guarded.update(id(child) for statement in node.body for child in ast.walk(statement))
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, f"{module} imports {name}"


def test_resolve_artifact_keeps_a_plain_folder_in_place(artifact_dir):
    model_dir, tempdir = loading.resolve_artifact(artifact_dir)
    assert model_dir == artifact_dir and tempdir is None
    shutil.rmtree(artifact_dir / "code")  # the loader itself never needs code/
    assert load_model(artifact_dir).classes
