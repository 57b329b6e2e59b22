"""Property-based fuzzing of the endpoint's request parsing and image decoding, and of the training loader on the
same files: the only outcomes allowed are a result or a documented 4xx ServingError (the loader: a sample or
"skip this file"), never another exception.

Images: small JPEG/PNG/WebP/GIF/TIFF/BMP files (some with EXIF, including an orientation), mutated by flipping,
cutting and splicing bytes, with extra weight on the EXIF segment. Bounded and derandomized under `make test`;
`make fuzz` runs the deep profile (tests/fuzz_support.py).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dogbreed.serving import decoding
from dogbreed.serving.errors import ERROR_CODES, ServingError
from dogbreed.serving.transforms import EvalPreset, to_rgb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fuzz_support.py, shared with the Lambda
from fuzz_support import count, examples, write_counts  # noqa: E402

# Pillow warns about every odd TIFF/EXIF tag it skips: expected here, thousands of times.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
CLIENT_STATUSES = {status for status in ERROR_CODES.values() if 400 <= status < 500}
_STARTED = time.time()


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    write_counts("trainer", _STARTED)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "FuzzCam"  # Make
    exif[0x8769] = {0x9003: "2026:12:04 02:00:00"}  # Exif IFD: DateTimeOriginal
    return exif.tobytes()


def _seed_images() -> dict[str, bytes]:
    image = Image.new("RGB", (12, 9), (200, 120, 40))
    image.putpixel((1, 1), (0, 0, 255))
    seeds = {}
    for name, fmt, kwargs in [
        ("jpeg", "JPEG", {}),
        ("jpeg-exif", "JPEG", {"exif": _exif(6)}),
        ("png", "PNG", {}),
        ("png-exif", "PNG", {"exif": _exif(3)}),
        ("webp", "WEBP", {}),
        ("webp-exif", "WEBP", {"exif": _exif(8)}),
        ("gif", "GIF", {}),
        ("tiff", "TIFF", {}),
        ("bmp", "BMP", {}),
    ]:
        out = io.BytesIO()
        source = image.convert("P") if fmt == "GIF" else image
        source.save(out, fmt, **kwargs)
        seeds[name] = out.getvalue()
    return seeds


SEEDS = _seed_images()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(sorted(SEEDS.values()))))
    # Where the EXIF block is, when there is one: most parser bugs live there.
    exif_at = max(data.find(b"Exif\x00\x00"), data.find(b"eXIf"), data.find(b"EXIF"))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        if exif_at >= 0 and draw(st.booleans()):
            at = min(len(data) - 1, exif_at + draw(st.integers(0, 120)))
        else:
            at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "flip", "byte", "cut", "insert", "delete"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(max_size=24))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@st.composite
def exif_blocks(draw) -> bytes:
    """A TIFF-structured EXIF block: a real orientation (so it gets applied) plus entries of any tag, type,
    count and value/offset. Byte flips alone rarely make a block that parses this far."""
    order = draw(st.sampled_from(["<", ">"]))
    entries = [(0x0112, 3, 1, struct.pack(order + "HH", draw(st.integers(1, 8)), 0))]
    for _ in range(draw(st.integers(0, 4))):
        # Mostly tags Pillow knows a type for, given another type or count: what its writer trips on.
        tag = draw(st.sampled_from([0x8769, 0x8825, 0x010F, 0xA005, 0x0132, 0x0112, 0x011A, 0x0131, 0x9003])
                   | st.integers(0, 0xFFFF))
        kind = draw(st.sampled_from([1, 2, 3, 4, 5, 7, 9, 10, 11, 12]) | st.integers(0, 14))
        count = draw(st.sampled_from([0, 1, 2, 3]) | st.sampled_from([0, 1, 2, 3]) | st.integers(0, 2**32 - 1))
        entries.append((tag, kind, count, draw(st.binary(min_size=4, max_size=4))))
    ifd = struct.pack(order + "H", len(entries)) + b"".join(
        struct.pack(order + "HHI", tag, kind, count) + value for tag, kind, count, value in entries
    )
    header = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    return b"Exif\x00\x00" + header + ifd + b"\x00\x00\x00\x00" + draw(st.binary(max_size=32))


@st.composite
def images_with_hostile_exif(draw) -> bytes:
    fmt = draw(st.sampled_from(["JPEG", "WEBP", "PNG"]))
    out = io.BytesIO()
    Image.new("RGB", (6, 4), (10, 200, 30)).save(out, fmt, exif=draw(exif_blocks()))
    return out.getvalue()


images = (
    mutated_images() | images_with_hostile_exif() | st.sampled_from(sorted(SEEDS.values())) | st.binary(max_size=64)
)
# For the decoders: hostile EXIF half the time on top, since only a few percent of those blocks trip Pillow.
decoder_inputs = images_with_hostile_exif() | images


def assert_client_error(error: ServingError) -> None:
    assert error.status in CLIENT_STATUSES, f"{error!r} is not a documented client error"
    assert "Traceback" not in error.detail


# -- image decoding: the endpoint and the training loader ---------------------------------------------------


@settings(max_examples=examples(600))
@given(data=decoder_inputs, draft=st.sampled_from([None, 8, 256]))
def test_decode_image_answers_an_rgb_image_or_a_client_error(data, draft):
    count("decode_image")
    try:
        image = decoding.decode_image(data, draft_size=draft)
    except ServingError as error:
        assert_client_error(error)
        return
    assert image.mode == "RGB" and image.size[0] >= 1 and image.size[1] >= 1
    pixels = decoding.preprocess(image, 8, 9, [0.5] * 3, [0.25] * 3)
    assert pixels.shape == (3, 8, 8)


@settings(max_examples=examples(300))
@given(data=decoder_inputs)
def test_training_loader_gives_a_sample_or_skips_the_file(data, tmp_path_factory):
    count("training_loader")
    from dogbreed.data import ImageDataset

    path = tmp_path_factory.getbasetemp() / "fuzz-photo.jpg"  # one file, rewritten per example
    path.write_bytes(data)
    dataset = ImageDataset([(str(path), 0)], EvalPreset(8, 9, [0.5] * 3, [0.25] * 3))
    item = dataset[0]  # may raise nothing: one bad photo must not stop an epoch
    assert item is None or tuple(item[0].shape) == (3, 8, 8)


@settings(max_examples=examples(200))
@given(orientation=st.integers(-70000, 70000) | st.integers(1, 8))
def test_to_rgb_handles_any_orientation_value(orientation):
    count("exif_orientation")
    image = Image.new("RGB", (4, 2))
    image.getexif()[0x0112] = orientation
    upright = to_rgb(image)
    assert upright.mode == "RGB"
    assert upright.size in ((4, 2), (2, 4))


# -- request parsing ----------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
top_k_texts = (
    st.text(max_size=12)
    | st.from_regex(r"[+-]{0,2}[0-9]{1,8}", fullmatch=True)
    | st.sampled_from(["9" * 5000, "²", "٣", "1_0", " 3 ", "3.0", "+-5", "\x00"])
)
base64_text = images.map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=40)


@st.composite
def json_bodies(draw) -> str:
    kind = draw(st.sampled_from(["shape", "nested", "text"]))
    if kind == "nested":
        depth = draw(st.integers(1, 3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + "1" + closer * depth
        field = draw(st.sampled_from(["", "image", "images", "top_k"]))
        return inner if not field else '{"%s": %s}' % (field, inner)
    if kind == "text":
        return draw(st.text(max_size=60))
    document = draw(st.dictionaries(st.sampled_from(["image", "images", "top_k", "x"]), json_values, max_size=3))
    if draw(st.booleans()):
        document["image"] = draw(base64_text)
    if draw(st.booleans()):
        document["images"] = draw(st.lists(base64_text, max_size=20))
    if draw(st.booleans()):
        document["top_k"] = draw(json_values | top_k_texts)
    return json.dumps(document)


content_types = st.sampled_from(
    ["application/json", "image/jpeg", "application/x-image", "image/png", "IMAGE/WEBP; x=1", "text/plain", ""]
) | st.text(max_size=20)
custom_attributes = st.none() | top_k_texts.map(lambda t: f"top_k={t}") | st.text(max_size=30)


def split(body, content_type, attributes=None):
    try:
        encoded, top_k, is_batch = decoding.split_request(body, content_type, attributes)
    except ServingError as error:
        assert_client_error(error)
        return
    assert 1 <= top_k <= decoding.MAX_TOP_K
    assert 1 <= len(encoded) <= decoding.MAX_IMAGES_PER_REQUEST
    assert all(isinstance(data, bytes) and data for _, data in encoded)


@settings(max_examples=examples(300))
@given(body=json_bodies(), as_text=st.booleans())
def test_json_request_answers_images_or_a_client_error(body, as_text):
    count("json_request")
    split(body if as_text else body.encode("utf-8", "surrogatepass"), "application/json")


@settings(max_examples=examples(300))
@given(attributes=custom_attributes)
def test_custom_attributes_answer_a_value_or_a_client_error(attributes):
    count("custom_attributes")
    split(SEEDS["jpeg"], "image/jpeg", attributes)


@settings(max_examples=examples(300))
@given(body=images | st.text(max_size=40), content_type=st.none() | content_types)
def test_content_types_and_bodies_answer_images_or_a_client_error(body, content_type):
    count("content_type_body")
    split(body, content_type)


@settings(max_examples=examples(300))
@given(text=top_k_texts)
def test_top_k_text_parser_is_strict(text):
    count("top_k_text")
    try:
        value = decoding.parse_top_k(text, "CustomAttributes header")
    except ServingError as error:
        assert error.code == "invalid_parameter"
        return
    stripped = text.strip(" \t").lstrip("+")
    assert stripped.isascii() and stripped.isdigit() and value == int(stripped)


# -- regressions of what the fuzzing found -------------------------------------------------------------------


def _with_exif(fmt: str, entries: list[tuple[int, int, int, bytes]]) -> bytes:
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", *e[:3]) + e[3] for e in entries)
    out = io.BytesIO()
    image = Image.new("RGB", (6, 4), (10, 200, 30))
    image.putpixel((0, 0), (255, 0, 0))
    image.save(out, fmt, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + ifd + b"\x00\x00\x00\x00")
    return out.getvalue()


# Orientation 6 plus an entry Pillow cannot write back (struct.error) or parses into the wrong type
# (AttributeError): ImageOps.exif_transpose raised on both.
ORIENTATION_6 = (0x0112, 3, 1, b"\x06\x00\x00\x00")
BROKEN_EXIF = {
    "struct.error": [ORIENTATION_6, (0xA005, 1, 3, b"\x13\x9a\xabO"), (0x5546, 9, 0, b"+eq\x1f")],
    "AttributeError": [ORIENTATION_6, (0x0132, 11, 1, b"\xc6\x96>`"), (0xA005, 7, 2, b"&\x16\x14\xf8")],
}


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
@pytest.mark.parametrize("case", sorted(BROKEN_EXIF))
def test_photo_with_malformed_exif_is_decoded_upright(fmt, case):
    data = _with_exif(fmt, BROKEN_EXIF[case])
    image = decoding.decode_image(data)
    assert image.mode == "RGB"
    assert image.size == (4, 6)  # orientation 6 still applied: the pixels are fine, only the metadata is odd


@pytest.mark.parametrize("case", sorted(BROKEN_EXIF))
def test_training_loader_reads_a_photo_with_malformed_exif(tmp_path, case):
    from dogbreed.data import ImageDataset

    path = tmp_path / "dog.jpg"
    path.write_bytes(_with_exif("JPEG", BROKEN_EXIF[case]))
    tensor, label = ImageDataset([(str(path), 3)], EvalPreset(8, 9, [0.5] * 3, [0.25] * 3))[0]
    assert tuple(tensor.shape) == (3, 8, 8) and label == 3


def test_to_rgb_applies_the_orientation_like_exif_transpose():
    from PIL import ImageOps

    for orientation in range(1, 9):
        image = Image.new("RGB", (3, 2))
        image.putpixel((0, 0), (255, 0, 0))
        image.getexif()[0x0112] = orientation
        out = io.BytesIO()
        image.save(out, "PNG", exif=image.getexif())
        loaded = Image.open(io.BytesIO(out.getvalue()))
        assert to_rgb(loaded).tobytes() == ImageOps.exif_transpose(loaded).convert("RGB").tobytes(), orientation


@pytest.mark.parametrize("body", ["[" * 990 + "]" * 990, '{"image": ' + "[" * 5000 + "]" * 5000 + "}"])
def test_deeply_nested_json_is_invalid_json(body):
    with pytest.raises(ServingError) as caught:
        decoding.split_request(body.encode(), "application/json")
    assert (caught.value.status, caught.value.code) == (400, "invalid_json")


@pytest.mark.parametrize("text", ["١", "²", "３", "9" * 5000, "+-5", "1_0"])
def test_top_k_header_values_that_are_not_plain_integers_are_422(text):
    with pytest.raises(ServingError) as caught:
        decoding.split_request(SEEDS["jpeg"], "image/jpeg", f"top_k={text}")
    assert (caught.value.status, caught.value.code) == (422, "invalid_parameter")
    assert len(caught.value.detail) < 120


def test_top_k_in_json_is_not_echoed_when_deep():
    with pytest.raises(ServingError) as caught:
        decoding.split_request(json.dumps({"image": "AAAA", "top_k": [[[[1]]]]}), "application/json")
    assert caught.value.code == "invalid_parameter" and "array" in caught.value.detail


def test_text_body_with_an_image_type_is_400():
    with pytest.raises(ServingError) as caught:
        decoding.split_request("Ā", "image/jpeg")
    assert (caught.value.status, caught.value.code) == (400, "invalid_image")
