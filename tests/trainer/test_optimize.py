"""Package-time optimisation (dogbreed.optimize) and the ONNX Runtime serving path."""

from __future__ import annotations

import io
import json
import random
import tarfile

import numpy as np
import pytest
import torch
from dogbreed import optimize
from dogbreed.serving import handlers
from dogbreed.serving.runtimes import RuntimeLoadError, cpu_features
from PIL import Image


def photo_like_images(folder, count: int, size=(96, 80)) -> list:
    """Smooth random colour fields saved as JPEGs (calibration data for the tiny tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize(size, Image.BILINEAR)
        path = folder / f"img_{i:02d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def png_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def onnx_artifact(tmp_path_factory):
    """The tiny 3-class model packaged with the fp32 ONNX runtime (through artifact.write_artifact)."""
    from dogbreed.artifact import build_metadata, write_artifact
    from dogbreed.serving.architectures import build_model
    from dogbreed.serving.transforms import EvalPreset

    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", 3).eval()
    metadata = build_metadata(name="tiny-onnx", backbone="efficientnet_lite0", classes=["a", "b", "c"],
                              preset=EvalPreset(32, 36, (0.5,) * 3, (0.5,) * 3), metrics={}, training_args={})
    images = photo_like_images(tmp_path_factory.mktemp("check"), 6)
    return write_artifact(model, metadata, tmp_path_factory.mktemp("onnx"), "onnx", images)


def test_onnx_artifact_holds_the_graph_and_records_the_check(onnx_artifact):
    with tarfile.open(onnx_artifact) as tar:
        names = set(tar.getnames())
        metadata = json.load(tar.extractfile("metadata.json"))
        requirements = tar.extractfile("code/requirements.txt").read().decode()
    assert {"model.pth", "model.onnx", "metadata.json", "code/inference.py"} <= names
    assert {"code/dogbreed_serving/handlers.py", "code/dogbreed_serving/runtimes.py"} <= names
    assert "onnxruntime" in requirements
    assert metadata["runtime"] == "onnx"
    check = metadata["runtime_info"]["check"]
    assert check == {"images": 6, "top1_agreement": 1.0, "max_abs_prob_diff": check["max_abs_prob_diff"],
                     "cpu_features": cpu_features()}
    assert metadata["runtime_info"]["check"]["max_abs_prob_diff"] < 1e-4


def test_onnx_runtime_serves_what_eager_serves(onnx_artifact):
    optimised = handlers.load(onnx_artifact)
    reference = handlers.load(onnx_artifact, runtime="eager")
    assert (optimised.runtime_name, reference.runtime_name) == ("onnx", "eager")
    batch = np.stack([optimised.preprocess_bytes(png_bytes(seed)) for seed in range(5)])
    fast, _ = optimised.runtime.predict_proba(batch)
    slow, _ = reference.runtime.predict_proba(batch)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    # batch sizes the export never saw
    np.testing.assert_allclose(optimised.runtime.predict_proba(batch[:1])[0], slow[:1], atol=1e-5)


def test_runtime_override_must_be_eager_or_the_packaged_one(onnx_artifact, monkeypatch):
    monkeypatch.setenv("DOGBREED_RUNTIME", "eager")
    assert handlers.load(onnx_artifact).runtime_name == "eager"
    monkeypatch.setenv("DOGBREED_RUNTIME", "onnx-int8")
    with pytest.raises(RuntimeLoadError, match="packaged for 'onnx'"):
        handlers.load(onnx_artifact)


def test_onnx_artifact_without_its_graph_fails_to_load_clearly(onnx_artifact, tmp_path):
    with tarfile.open(onnx_artifact) as tar:
        tar.extractall(tmp_path, filter="data")
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(RuntimeLoadError, match="needs model.onnx, which is missing"):
        handlers.load(tmp_path)


def test_int8_runtime_is_built_from_calibration_images(tmp_path, make_tiny_model, make_tiny_metadata):
    images = photo_like_images(tmp_path / "calibration", 8)
    model, metadata = make_tiny_model(), make_tiny_metadata()
    out = tmp_path / "staging"
    out.mkdir()
    # A random-init network has near-uniform outputs, so agreement means little here: no threshold.
    updates = optimize.build_runtime(model, metadata, out, "onnx-int8", images, min_agreement=0.0)
    assert updates["runtime"] == "onnx-int8"
    info = updates["runtime_info"]
    assert info["quantization"]["calibration_images"] == 4 and info["check"]["images"] == 4
    import onnx

    ops = {node.op_type for node in onnx.load(out / "model.onnx").graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_calibration_and_check_images_never_overlap():
    images = [f"/photos/{i:03d}.jpg" for i in range(300)]
    calibration, check = optimize.split_images(images, quantised=True)
    assert len(calibration) == optimize.MAX_CALIBRATION_IMAGES
    assert len(check) == optimize.MAX_CHECK_IMAGES
    assert not set(calibration) & set(check)
    assert optimize.split_images(images, quantised=True) == (calibration, check)  # seeded


def test_bad_requests_are_refused(tmp_path, make_tiny_model, make_tiny_metadata):
    with pytest.raises(optimize.OptimizeError, match="unknown runtime 'tensorrt'"):
        optimize.build_runtime(make_tiny_model(), make_tiny_metadata(), tmp_path, "tensorrt", [])
    unreadable = tmp_path / "broken.jpg"
    unreadable.write_bytes(b"not a jpeg")
    with pytest.raises(optimize.OptimizeError, match="none of the given images could be read"):
        optimize.build_runtime(make_tiny_model(), make_tiny_metadata(), tmp_path, "onnx-int8", [unreadable])
    assert not (tmp_path / "model.onnx").exists()


def test_optimised_runtimes_agree_with_eager_on_real_photos(dog_photos, tmp_path):
    """The starter model (real ImageNet weights): calibrate on Stanford photos, check on *other* photos.

    fp32 ONNX must agree on every photo. INT8 post-training quantisation of EfficientNet-Lite0
    measures ~95-96% (bench/results/serving.md); the bound here only catches a broken graph.
    """
    from dogbreed.artifact import starter_model

    model, metadata = starter_model("efficientnet_lite0")
    stanford = sorted((dog_photos / "stanford-dogs-3breeds").rglob("*.jpg"))
    random.Random(0).shuffle(stanford)
    others = sorted((dog_photos / "udacity-samples").glob("*.jpg")) + sorted((dog_photos / "mixed-pets").glob("*.jpg"))
    calibration, check = stanford[:24], others[:40]
    check_batch = optimize.load_batch(check, metadata)
    fp32_dir, int8_dir = tmp_path / "fp32", tmp_path / "int8"
    fp32_dir.mkdir()
    int8_dir.mkdir()
    optimize.build_runtime(model, metadata, fp32_dir, "onnx", [])
    fp32 = optimize.agreement(model, fp32_dir / "model.onnx", metadata, check_batch)
    assert fp32["top1_agreement"] == 1.0 and fp32["max_abs_prob_diff"] < 1e-3
    calibration_batch = optimize.load_batch(calibration, metadata)
    optimize.quantize_int8(fp32_dir / "model.onnx", int8_dir / "model.onnx", calibration_batch)
    int8 = optimize.agreement(model, int8_dir / "model.onnx", metadata, check_batch)
    assert int8["top1_agreement"] >= 0.85, int8



def test_the_int8_recipe_follows_the_serving_cpu():
    assert optimize.recipe_for(["avx2", "fma", "avx512f", "avx512_vnni"]) == "vnni"
    assert optimize.recipe_for(["avx2", "fma"]) == "avx2"
    assert optimize.recipe_for(["asimd", "asimddp"]) == "vnni"  # Arm's dot product is exact too
    assert optimize.recipe_for(optimize.instance_cpu_features("ml.c6i.xlarge")) == "vnni"
    assert optimize.recipe_for(optimize.instance_cpu_features("ml.m7i.large")) == "vnni"
    # m5/c5 hosts are Skylake (no VNNI) or Cascade Lake: the recipe must hold on both.
    assert optimize.recipe_for(optimize.instance_cpu_features("ml.m5.large")) == "avx2"
    assert optimize.instance_cpu_features("ml.unknown9.large") is None


@pytest.mark.parametrize("recipe", ["avx2", "vnni, fp32 project convs"])
def test_recipes_quantise_what_they_say(recipe, tmp_path, make_tiny_model, make_tiny_metadata):
    images = photo_like_images(tmp_path / "calibration", 6)
    out = tmp_path / "staging"
    out.mkdir()
    updates = optimize.build_runtime(make_tiny_model(), make_tiny_metadata(), out, "onnx-int8", images,
                                     min_agreement=0.0, recipe=recipe)
    quantization = updates["runtime_info"]["quantization"]
    assert quantization["recipe"] == recipe
    import onnx

    graph = onnx.load(out / "model.onnx").graph
    dequantised = {name for node in graph.node if node.op_type == "DequantizeLinear" for name in node.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    fp32_convs = [node for node in convs if node.input[1] not in dequantised]
    if recipe == "avx2":
        assert "reduce_range" in quantization["weights"] and not fp32_convs
    else:
        # The stem, the head and every linear-bottleneck conv stay fp32; expand/depthwise convs are INT8.
        assert quantization["fp32_nodes"] == len(fp32_convs) + 1  # + the classifier
        assert convs[0] in fp32_convs and convs[-1] in fp32_convs and len(fp32_convs) < len(convs)


def test_a_damaged_onnx_graph_is_refused_in_one_line(onnx_artifact, tmp_path):
    from dogbreed.serving.loading import ArtifactError, file_sha256

    model_dir = tmp_path / "opt-ml-model"
    with tarfile.open(onnx_artifact) as tar:
        tar.extractall(model_dir, filter="data")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["graph_sha256"] == {"model.onnx": file_sha256(model_dir / "model.onnx")}
    graph = model_dir / "model.onnx"
    data = bytearray(graph.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 256] = bytes(b ^ 0x5A for b in data[middle:middle + 256])  # inside the weights
    graph.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as caught:
        handlers.load(model_dir)
    assert str(caught.value) == "model.onnx is damaged: its sha256 does not match graph_sha256 in metadata.json"
    assert handlers.load(model_dir, runtime="eager").runtime_name == "eager"  # the intact weights still serve
