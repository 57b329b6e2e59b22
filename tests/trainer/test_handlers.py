"""The SageMaker handlers (dogbreed.serving.handlers): every input format and mode, every bad input."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from dogbreed.breeds import breed_from_file_name, same_breed
from dogbreed.serving import decoding, handlers
from dogbreed.serving.errors import ERROR_CODES, ServingError
from dogbreed.serving.transforms import EvalPreset
from PIL import Image

# --- artifacts ------------------------------------------------------------------------------------

BREEDS = ["Beagle", "Boxer", "Collie", "Dalmatian", "Pug", "Vizsla"]


@pytest.fixture(scope="module")
def tiny_model(tiny_artifact):
    """The conftest's tiny 3-class artifact (32 px), loaded through model_fn."""
    return handlers.model_fn(str(tiny_artifact))


@pytest.fixture(scope="module")
def dog_aware_artifact(tmp_path_factory) -> Path:
    """A 10-output network whose outputs 2..7 are six breeds and also the "dog" outputs (as the starter)."""
    from dogbreed.artifact import build_metadata, write_artifact
    from dogbreed.serving.architectures import build_model

    torch.manual_seed(1)
    model = build_model("efficientnet_lite0", 10).eval()
    metadata = build_metadata(
        name="dog-aware", backbone="efficientnet_lite0", classes=BREEDS,
        preset=EvalPreset(32, 36, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), metrics={}, training_args={},
        output_indices=range(2, 8), dog_indices=range(2, 8), num_outputs=10,
    )
    return write_artifact(model, metadata, tmp_path_factory.mktemp("dog-aware") / "model", layout="dir")


@pytest.fixture(scope="module")
def dog_aware(dog_aware_artifact):
    return handlers.load(dog_aware_artifact)


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    """The real starter model: EfficientNet-Lite0 with ImageNet weights, dog outputs as breeds."""
    from dogbreed.artifact import starter_model, write_artifact

    model, metadata = starter_model("efficientnet_lite0")
    return handlers.load(write_artifact(model, metadata, tmp_path_factory.mktemp("starter") / "model", layout="dir"))


# --- images ---------------------------------------------------------------------------------------


def gradient(size=(48, 40)) -> Image.Image:
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(255, 0, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, (x + y) / 2], axis=2).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def image_in_mode(mode: str) -> Image.Image:
    rgb = gradient()
    if mode == "P-transparent":
        image = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
        image.info["transparency"] = 0
        return image
    if mode == "P":
        return rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    if mode in ("RGBA", "LA"):
        image = rgb.convert(mode)
        image.putalpha(Image.linear_gradient("L").resize(rgb.size))
        return image
    if mode == "I;16":
        return rgb.convert("L").convert("I;16")
    return rgb.convert(mode)


FORMAT_MODES = [
    ("PNG", "RGB"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "P"), ("PNG", "P-transparent"), ("PNG", "RGBA"),
    ("PNG", "I;16"), ("PNG", "1"),
    ("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK"),
    ("WEBP", "RGB"), ("WEBP", "RGBA"),
]
CONTENT_TYPE = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def reference_input(data: bytes, model: handlers.ServingModel) -> np.ndarray:
    """What evaluation feeds the network for these bytes: transforms.EvalPreset on the opened file."""
    preset = EvalPreset(model.crop_size, model.resize_size, model.mean, model.std)
    return preset(Image.open(io.BytesIO(data))).numpy()


def assert_same_result(a: dict, b: dict, tolerance: float = 1e-5) -> None:
    """Two per-image results agree: same breeds in the same order, probabilities within ``tolerance``."""
    assert [p["class_id"] for p in a["predictions"]] == [p["class_id"] for p in b["predictions"]]
    for x, y in zip(a["predictions"], b["predictions"], strict=True):
        assert x["probability"] == pytest.approx(y["probability"], abs=tolerance)
    assert a["is_dog"] == b["is_dog"]
    assert (a["dog_probability"] is None) == (b["dog_probability"] is None)
    if a["dog_probability"] is not None:
        assert a["dog_probability"] == pytest.approx(b["dog_probability"], abs=tolerance)


# --- every format and mode ------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "mode"), FORMAT_MODES)
def test_every_format_and_mode_preprocesses_exactly_like_evaluation(tiny_model, fmt, mode):
    data = encode(image_in_mode(mode), fmt)
    decoded = handlers.input_fn(data, CONTENT_TYPE[fmt])
    assert decoded.batch.shape == (1, 3, 32, 32)
    assert decoded.batch.dtype == np.float32
    np.testing.assert_allclose(decoded.batch[0], reference_input(data, tiny_model), atol=1e-6)


@pytest.mark.parametrize("content_type", ["application/x-image", "image/jpeg", "image/png", "image/webp",
                                          "IMAGE/JPEG; charset=binary"])
def test_raw_image_content_types_all_answer(tiny_model, content_type):
    data = encode(gradient(), "PNG")  # the decoder reads the bytes, not the label
    body, response_type = handlers.output_fn(handlers.predict_fn(handlers.input_fn(data, content_type), tiny_model),
                                             "application/json")
    assert response_type == "application/json"
    document = json.loads(body)
    assert [p["breed"] for p in document["predictions"]] and document["model"]["name"] == "tiny-test"


def test_json_image_gives_the_same_answer_as_raw_bytes(tiny_model):
    data = encode(gradient(), "JPEG")
    raw = handlers.output_fn(handlers.predict_fn(handlers.input_fn(data, "image/jpeg"), tiny_model), None)[0]
    payload = json.dumps({"image": base64.b64encode(data).decode()})
    as_json = handlers.output_fn(handlers.predict_fn(handlers.input_fn(payload, "application/json"), tiny_model), None)[0]
    data_url = json.dumps({"image": "data:image/jpeg;base64," + base64.b64encode(data).decode()}).encode()
    as_data_url = handlers.output_fn(
        handlers.predict_fn(handlers.input_fn(data_url, "application/json"), tiny_model), None
    )[0]
    wrapped = base64.encodebytes(data).decode()  # MIME style: a newline every 76 characters
    as_wrapped = handlers.output_fn(
        handlers.predict_fn(handlers.input_fn(json.dumps({"image": wrapped}), "application/json"), tiny_model), None
    )[0]
    assert json.loads(raw) == json.loads(as_json) == json.loads(as_data_url) == json.loads(as_wrapped)


def test_exif_orientation_is_applied(tiny_model):
    # 60x30, left half red, right half blue; EXIF orientation 6 = "rotate 90 degrees clockwise to view".
    pixels = np.zeros((30, 60, 3), np.uint8)
    pixels[:, :30] = (255, 0, 0)
    pixels[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    upright = decoding.decode_image(data)
    assert upright.size == (30, 60)
    top, bottom = np.asarray(upright)[5, 15], np.asarray(upright)[55, 15]
    assert top[0] > 200 and top[2] < 60  # red on top after rotating clockwise
    assert bottom[2] > 200 and bottom[0] < 60
    np.testing.assert_allclose(handlers.input_fn(data, "image/jpeg").batch[0], reference_input(data, tiny_model),
                               atol=1e-6)


def test_big_jpeg_takes_the_draft_path_like_evaluation(dog_aware):
    data = encode(gradient((1600, 1200)), "JPEG", quality=90)
    np.testing.assert_allclose(dog_aware.preprocess_bytes(data), reference_input(data, dog_aware), atol=1e-6)


# --- predictions and the response -----------------------------------------------------------------


def test_predict_fn_returns_probabilities_not_logits(dog_aware):
    batch = handlers.decode_request(dog_aware, encode(gradient(), "PNG"), "image/png")
    prediction = handlers.predict_fn(batch, dog_aware)
    assert prediction.breed_probs.shape == (1, len(BREEDS))
    assert np.all(prediction.breed_probs >= 0)
    np.testing.assert_allclose(prediction.breed_probs.sum(axis=1), 1.0, rtol=1e-5)
    assert 0.0 <= float(prediction.dog_probs[0]) <= 1.0


def test_response_follows_the_contract(dog_aware):
    prediction = handlers.predict_fn(handlers.decode_request(dog_aware, encode(gradient(), "PNG"), "image/png"), dog_aware)
    document = handlers.render(prediction)
    assert set(document) == {"predictions", "is_dog", "dog_probability", "model"}
    assert len(document["predictions"]) == 5  # the default top_k
    probabilities = [p["probability"] for p in document["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    for entry in document["predictions"]:
        assert set(entry) == {"breed", "probability", "class_id"}
        assert BREEDS[entry["class_id"]] == entry["breed"]
    assert document["is_dog"] == (document["dog_probability"] >= 0.5)
    assert document["model"] == {"name": "dog-aware", "version": dog_aware.metadata["version"]}


def test_breed_only_model_says_it_cannot_tell_dogs(tiny_model):
    document = handlers.render(handlers.predict_fn(handlers.input_fn(encode(gradient(), "PNG"), "image/png"), tiny_model))
    assert document["is_dog"] is None and document["dog_probability"] is None
    assert len(document["predictions"]) == 3  # top_k 5 but only three classes


def test_top_k_from_json_body_and_from_custom_attributes(dog_aware):
    image = base64.b64encode(encode(gradient(), "PNG")).decode()
    from_body = handlers.decode_request(dog_aware, json.dumps({"image": image, "top_k": 2}), "application/json")
    assert from_body.top_k == 2
    from_header = handlers.decode_request(dog_aware, encode(gradient(), "PNG"), "image/png", "trace=1; top_k=3")
    assert from_header.top_k == 3
    both = handlers.decode_request(dog_aware, json.dumps({"image": image, "top_k": 4}), "application/json", "top_k=1")
    assert both.top_k == 4  # the body is the more specific of the two
    document = handlers.render(handlers.predict_fn(from_header, dog_aware))
    assert len(document["predictions"]) == 3


def test_input_fn_reads_custom_attributes_from_the_model_server_context(tiny_model):
    class RequestProcessor:
        def get_request_properties(self):
            return {"Content-Type": "image/png", "X-Amzn-SageMaker-Custom-Attributes": "top_k=2"}

    class Context:
        request_processor = [RequestProcessor()]

    assert handlers.input_fn(encode(gradient(), "PNG"), "image/png", Context()).top_k == 2


def test_batch_request_answers_in_request_order(dog_aware):
    first, second = encode(gradient(), "PNG"), encode(gradient().rotate(90, expand=True), "PNG")
    body = json.dumps({"images": [base64.b64encode(d).decode() for d in (first, second, first)], "top_k": 3})
    document = handlers.render(handlers.predict_fn(handlers.decode_request(dog_aware, body, "application/json"), dog_aware))
    assert set(document) == {"results", "model"}
    results = document["results"]
    assert len(results) == 3 and all("model" not in r for r in results)
    single = handlers.render(handlers.predict_fn(handlers.decode_request(dog_aware, second, "image/png", "top_k=3"), dog_aware))
    del single["model"]
    assert_same_result(results[1], single)
    assert_same_result(results[0], results[2])


def test_model_fn_loads_tarball_and_plain_directory_alike(tiny_artifact, tmp_path):
    import tarfile

    with tarfile.open(tiny_artifact) as tar:
        tar.extractall(tmp_path, filter="data")
    data = encode(gradient(), "PNG")
    from_tar, from_dir = handlers.load(tiny_artifact), handlers.load(tmp_path)
    a = handlers.predict_fn(handlers.decode_request(from_tar, data, "image/png"), from_tar).breed_probs
    b = handlers.predict_fn(handlers.decode_request(from_dir, data, "image/png"), from_dir).breed_probs
    np.testing.assert_array_equal(a, b)


def test_numpy_probabilities_match_the_reference(dog_aware):
    from dogbreed.serving.loading import probabilities as torch_probabilities
    from dogbreed.serving.runtimes import probabilities

    logits = torch.randn(4, 10) * 8
    logits[0, 2:8] -= 60  # an image far from every dog class
    expected_breed, expected_dog = torch_probabilities(logits, list(range(2, 8)), list(range(2, 8)))
    breed, dog = probabilities(logits.numpy(), list(range(2, 8)), list(range(2, 8)))
    np.testing.assert_allclose(breed, expected_breed.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dog, expected_dog.numpy(), rtol=1e-4, atol=1e-12)


# --- real photos ----------------------------------------------------------------------------------


def test_starter_model_names_real_breeds_and_spots_non_dogs(starter, dog_photos):
    samples = sorted((dog_photos / "udacity-samples").glob("Labrador_retriever_*.jpg"))[:2]
    samples += sorted((dog_photos / "mixed-pets").glob("Dalmatian_*.jpg"))[:1]
    for path in samples:
        document = json.loads(handlers.output_fn(handlers.predict_fn(
            handlers.decode_request(starter, path.read_bytes(), "image/jpeg"), starter), "application/json")[0])
        expected = breed_from_file_name(path.stem)
        assert any(same_breed(expected, p["breed"]) for p in document["predictions"]), (path.name, document)
        assert document["is_dog"] is True
    not_dogs = [p for p in sorted((dog_photos / "mixed-pets").glob("*.jpg")) if p.name.startswith(("cat_", "gecko_"))]
    for path in not_dogs:
        document = handlers.render(handlers.predict_fn(
            handlers.decode_request(starter, path.read_bytes(), "image/jpeg"), starter))
        assert document["is_dog"] is False, (path.name, document["dog_probability"])


# --- bad input ------------------------------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def bomb_png() -> bytes:
    return encode(Image.new("1", (8000, 6000)), "PNG")  # 48 megapixels in a few kB


BAD_INPUTS = {
    "garbage bytes": (b"this is not an image at all", "image/jpeg", None, "invalid_image", "not a decodable image"),
    "empty body": (b"", "image/png", None, "invalid_image", "empty"),
    "truncated jpeg": (truncated(encode(gradient((320, 240)), "JPEG")), "image/jpeg", None, "invalid_image", "truncated"),
    "truncated png": (truncated(encode(gradient((320, 240)), "PNG")), "image/png", None, "invalid_image", "not a decodable image"),
    "gif": (encode(gradient(), "GIF"), "application/x-image", None, "invalid_image", "JPEG, PNG, WEBP"),
    "decompression bomb": (bomb_png(), "image/png", None, "image_too_large", "40,000,000 pixels"),
    "thin strip": (encode(Image.new("RGB", (4000, 20)), "PNG"), "image/png", None, "invalid_image", "aspect ratio"),
    "over 6 MB": (b"\xff" * (6 * 1024 * 1024 + 1), "image/jpeg", None, "payload_too_large", "limit is 6291456 bytes"),
    "unknown content type": (b"hello", "text/plain", None, "unsupported_media_type", "text/plain is not supported"),
    "no content type": (b"hello", None, None, "unsupported_media_type", "(none)"),
    "invalid json": (b'{"image": ', "application/json", None, "invalid_json", "not valid JSON"),
    "json list": (b"[1, 2]", "application/json", None, "invalid_request", "must be an object"),
    "json without image": (b'{"picture": "abc"}', "application/json", None, "invalid_request", 'exactly one of "image"'),
    "json with both": (b'{"image": "YQ==", "images": ["YQ=="]}', "application/json", None, "invalid_request", "exactly one"),
    "image not a string": (b'{"image": 12}', "application/json", None, "invalid_request", "base64 string, not int"),
    "bad base64": (b'{"image": "not base64 !!"}', "application/json", None, "invalid_base64", '"image" is not valid base64'),
    "base64 of garbage": (b'{"image": "aGVsbG8="}', "application/json", None, "invalid_image", '"image" is not a decodable'),
    "empty images list": (b'{"images": []}', "application/json", None, "invalid_request", "non-empty list"),
    "too many images": (json.dumps({"images": ["YQ=="] * 17}).encode(), "application/json", None, "batch_too_large", "limit is 16"),
    "bad image in a batch": (
        json.dumps({"images": [base64.b64encode(encode(gradient(), "PNG")).decode(), "aGVsbG8="]}).encode(),
        "application/json", None, "invalid_image", '"images[1]" is not a decodable image'),
    "top_k zero": (b'{"image": "YQ==", "top_k": 0}', "application/json", None, "invalid_parameter", "from 1 to 20"),
    "top_k too big": (b'{"image": "YQ==", "top_k": 21}', "application/json", None, "invalid_parameter", "from 1 to 20"),
    "top_k not a number": (b'{"image": "YQ==", "top_k": "many"}', "application/json", None, "invalid_parameter", "JSON body"),
    "top_k boolean": (b'{"image": "YQ==", "top_k": true}', "application/json", None, "invalid_parameter", "got True"),
    "top_k header": (encode(gradient(), "PNG"), "image/png", "top_k=abc", "invalid_parameter", "CustomAttributes header"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_a_4xx_with_a_clear_message(tiny_model, case):
    body, content_type, attributes, code, message = BAD_INPUTS[case]
    with pytest.raises(ServingError) as caught:
        handlers.decode_request(tiny_model, body, content_type, attributes)
    error = caught.value
    assert error.code == code
    assert 400 <= error.status < 500 and error.status == ERROR_CODES[code]
    assert message in error.detail
    assert error.to_dict() == {"error": {"code": code, "message": error.detail}}
    assert "Traceback" not in error.detail


def test_input_fn_uses_the_same_checks(tiny_model):
    with pytest.raises(ServingError) as caught:
        handlers.input_fn(b"nope", "image/jpeg")
    assert caught.value.code == "invalid_image"


def test_unacceptable_accept_header_is_406(tiny_model):
    prediction = handlers.predict_fn(handlers.input_fn(encode(gradient(), "PNG"), "image/png"), tiny_model)
    for accept in (None, "*/*", "application/json", "text/html, application/json;q=0.9", "application/*"):
        assert handlers.output_fn(prediction, accept)[1] == "application/json"
    with pytest.raises(ServingError) as caught:
        handlers.output_fn(prediction, "text/csv")
    assert (caught.value.code, caught.value.status) == ("not_acceptable", 406)


def test_in_the_sagemaker_container_errors_keep_their_4xx_status(tmp_path):
    """With the inference toolkit importable, ServingError is its BaseInferenceToolkitError, whose
    status_code the toolkit answers with (instead of a 500), and the body's first line is our JSON."""
    fake = tmp_path / "sagemaker_inference"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "errors.py").write_text(textwrap.dedent("""
        class BaseInferenceToolkitError(Exception):
            def __init__(self, status_code, message, phrase):
                self.status_code, self.message, self.phrase = status_code, message, phrase
                super().__init__(status_code, message, phrase)
    """))
    script = textwrap.dedent("""
        import json
        from sagemaker_inference.errors import BaseInferenceToolkitError
        from dogbreed.serving.decoding import split_request
        from dogbreed.serving.errors import ServingError
        try:
            split_request(b"x", "text/plain")
        except BaseInferenceToolkitError as exc:
            assert isinstance(exc, ServingError)
            print(json.dumps({"status": exc.status_code, "phrase": exc.phrase,
                              "first_line": json.loads(exc.message.splitlines()[0]), "str": str(exc)}))
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["status"] == 415 and seen["phrase"] == "Unsupported Media Type"
    assert seen["first_line"]["error"]["code"] == "unsupported_media_type"
    assert "text/plain" in seen["str"]


def test_the_artifacts_own_code_serves_without_the_dogbreed_package(tiny_artifact, tmp_path):
    """code/inference.py as SageMaker imports it: only the copied dogbreed_serving package, no dogbreed."""
    import tarfile

    with tarfile.open(tiny_artifact) as tar:
        tar.extractall(tmp_path, filter="data")
    script = textwrap.dedent(f"""
        import base64, json, sys
        sys.path.insert(0, {str(tmp_path / "code")!r})
        import inference
        model = inference.model_fn({str(tmp_path)!r})
        body = json.dumps({{"image": {base64.b64encode(encode(gradient(), "PNG")).decode()!r}, "top_k": 2}})
        response, content_type = inference.output_fn(
            inference.predict_fn(inference.input_fn(body, "application/json"), model), "application/json")
        try:
            inference.input_fn(b"junk", "image/png")
        except Exception as exc:
            error = (exc.code, exc.status)
        print(json.dumps({{"response": json.loads(response), "type": content_type, "error": error,
                          "dogbreed_imported": any(m == "dogbreed" or m.startswith("dogbreed.") for m in sys.modules)}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["dogbreed_imported"] is False
    assert seen["type"] == "application/json" and len(seen["response"]["predictions"]) == 2
    assert seen["error"] == ["invalid_image", 400]
