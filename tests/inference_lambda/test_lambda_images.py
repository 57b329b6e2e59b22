"""Magic-byte sniffing and strict base64 decoding (no image decoder in the Lambda)."""

from __future__ import annotations

import base64

import pytest
from inference_lambda.errors import ApiError
from inference_lambda.images import decode_base64_image, max_base64_length, sniff_image_format


def test_sniffs_the_three_formats(tiny_images):
    assert sniff_image_format(tiny_images["jpg"]) == "jpeg"
    assert sniff_image_format(tiny_images["png"]) == "png"
    assert sniff_image_format(tiny_images["webp"]) == "webp"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a\x01\x00",
        b"BM\x00\x00",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x00\x1cftypheic",
        b"%PDF-1.7",
        b"\xff\xd8",
    ],
)
def test_other_files_are_not_images(data):
    assert sniff_image_format(data) is None


@pytest.mark.parametrize(
    "encode",
    [
        lambda d: base64.b64encode(d).decode(),
        lambda d: base64.urlsafe_b64encode(d).decode(),
        lambda d: base64.b64encode(d).decode().rstrip("="),
        lambda d: "data:image/jpeg;base64," + base64.b64encode(d).decode(),
        lambda d: "\n".join(base64.encodebytes(d).decode().split("\n")),
    ],
    ids=["standard", "urlsafe", "unpadded", "data-url", "mime-lines"],
)
def test_base64_variants_decode_to_the_same_bytes(tiny_images, encode):
    assert decode_base64_image(encode(tiny_images["jpg"]), max_bytes=10_000) == tiny_images["jpg"]


def test_oversized_base64_is_refused_by_length_alone():
    with pytest.raises(ApiError) as raised:
        decode_base64_image("A" * (max_base64_length(1000) + 8), max_bytes=1000)
    assert (raised.value.status, raised.value.code) == (413, "payload_too_large")


def test_decoded_size_limit_is_exact(tiny_images):
    data = tiny_images["jpg"]
    assert decode_base64_image(base64.b64encode(data).decode(), max_bytes=len(data)) == data
    with pytest.raises(ApiError) as raised:
        decode_base64_image(base64.b64encode(data).decode(), max_bytes=len(data) - 1)
    assert raised.value.code == "payload_too_large"
