"""Request bodies -> images -> network input, with every way that can fail named.

Copied into every artifact (``code/dogbreed_serving/``). Imports PIL and numpy only (no torch):
an ONNX Runtime endpoint starts without importing torch at all, and decoding can run in worker
threads next to the model.

The network input is :func:`.transforms.preprocess`, the function evaluation's :class:`.transforms.EvalPreset`
runs: a served model sees exactly the pixels it was validated on.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

# The shared limits and content types are contracts/api.json's (the generated _contract.py):
# MAX_BODY_BYTES is SageMaker's InvokeEndpoint payload limit; larger than MAX_PIXELS is refused before the
# pixels are decoded; past MAX_ASPECT_RATIO a 1 x 100000 strip would resize to gigapixels; MAX_TOP_K is at
# least the API's, so the Lambda never sends a top_k the endpoint refuses.
from ._contract import (
    DEFAULT_TOP_K,
    IMAGE_CONTENT_TYPES,
    JSON_CONTENT_TYPE,
    MAX_ASPECT_RATIO,
    MAX_BODY_BYTES,
    MAX_IMAGES_PER_REQUEST,
    MAX_PIXELS,
    MAX_TOP_K,
)
from .errors import ServingError
from .transforms import draft_jpeg, to_rgb
from .transforms import preprocess  # noqa: F401 - decoding.preprocess: the request path's last step, defined once

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
CONTENT_TYPES = (*IMAGE_CONTENT_TYPES, JSON_CONTENT_TYPE)

_DATA_URL = re.compile(r"^data:[\w.+/-]*(;[\w=.+-]*)*;base64,", re.IGNORECASE)


@dataclass
class DecodedRequest:
    """What ``input_fn`` hands ``predict_fn``: the network input and how to answer."""

    batch: np.ndarray  # [N, 3, H, W] float32, preprocessed
    top_k: int
    is_batch: bool  # {"images": [...]} -> answer with {"results": [...]}


# --- the request --------------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """``"Image/JPEG; charset=x"`` -> ``"image/jpeg"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_custom_attributes(header: str | None) -> dict[str, str]:
    """``"top_k=3; trace=abc"`` (SageMaker's opaque CustomAttributes header) -> ``{"top_k": "3", ...}``."""
    attributes = {}
    for part in re.split(r"[;,]", header or ""):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            attributes[key.strip().lower()] = value.strip()
    return attributes


# top_k as text: ASCII decimal digits only, optional "+", surrounding blanks; the API's grammar too
# (inference_lambda.predict_request.TOP_K_TEXT, tested to agree). \d would also take "١" or "²".
TOP_K_TEXT = re.compile(r"[ \t]*\+?([0-9]{1,6})[ \t]*", re.ASCII)


def parse_top_k(value: object, source: str) -> int:
    """A ``top_k`` from JSON (int) or a header (str), bounded to 1..MAX_TOP_K."""
    if isinstance(value, str):
        match = TOP_K_TEXT.fullmatch(value)
        if match:
            value = int(match.group(1))
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TOP_K:
        raise ServingError(
            "invalid_parameter",
            f"top_k in the {source} must be an integer from 1 to {MAX_TOP_K}, got {_shown(value)}.",
        )
    return value


def _shown(value: object) -> str:
    """A short rendering of a client's value for a message: never a deep or huge repr."""
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        return "a very large number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_body_size(body: bytes | str, limit: int = MAX_BODY_BYTES) -> None:
    if len(body) > limit:
        raise ServingError("payload_too_large", f"The body is {len(body)} bytes; the limit is {limit} bytes.")


def split_request(
    body: bytes | str, content_type: str | None, custom_attributes: str | None = None
) -> tuple[list[tuple[str, bytes]], int, bool]:
    """The encoded images of a request (each with a label for messages: ``"The body"``,
    ``'"images[2]"'``), its ``top_k`` and whether it was a batch request."""
    kind = media_type(content_type)
    check_body_size(body)
    top_k = DEFAULT_TOP_K
    header_top_k = parse_custom_attributes(custom_attributes).get("top_k")
    if header_top_k is not None:
        top_k = parse_top_k(header_top_k, "CustomAttributes header")
    if kind in IMAGE_CONTENT_TYPES:
        if isinstance(body, str):  # only if a caller decoded it; images are bytes
            try:
                body = body.encode("latin-1", errors="strict")
            except UnicodeEncodeError:
                raise ServingError("invalid_image", "The body is text, not an image's bytes.") from None
        if not body:
            raise ServingError("invalid_image", "The body is empty; send the image's bytes.")
        return [("The body", bytes(body))], top_k, False
    if kind == JSON_CONTENT_TYPE:
        return _split_json(body, top_k)
    shown = kind or "(none)"
    raise ServingError(
        "unsupported_media_type",
        f"Content type {shown} is not supported; use one of: {', '.join(CONTENT_TYPES)}.",
    )


def _split_json(body: bytes | str, top_k: int) -> tuple[list[tuple[str, bytes]], int, bool]:
    try:
        document = json.loads(body)
    except RecursionError:
        # json's scanner recurses once per nesting level: about 1000 levels exhaust the stack.
        raise ServingError("invalid_json", "The body is nested too deeply to be a prediction request.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServingError("invalid_json", f"The body is not valid JSON ({_short(exc)}).") from None
    if not isinstance(document, dict):
        raise ServingError("invalid_request", 'The JSON body must be an object: {"image": "<base64>"}.')
    if "top_k" in document:
        top_k = parse_top_k(document["top_k"], "JSON body")
    has_one, has_many = "image" in document, "images" in document
    if has_one == has_many:
        raise ServingError(
            "invalid_request",
            'The JSON body needs exactly one of "image" (base64 string) or "images" (list of base64 strings).',
        )
    if has_one:
        return [('"image"', _b64decode(document["image"], "image"))], top_k, False
    images = document["images"]
    if not isinstance(images, list) or not images:
        raise ServingError("invalid_request", '"images" must be a non-empty list of base64 strings.')
    if len(images) > MAX_IMAGES_PER_REQUEST:
        raise ServingError(
            "batch_too_large", f"{len(images)} images in one request; the limit is {MAX_IMAGES_PER_REQUEST}."
        )
    labelled = []
    for i, item in enumerate(images):
        labelled.append((f'"images[{i}]"', _b64decode(item, f"images[{i}]")))
    return labelled, top_k, True


def _b64decode(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise ServingError("invalid_request", f'"{where}" must be a base64 string, not {type(value).__name__}.')
    # Line breaks are common (`base64` wraps at 76 columns); a data: URL prefix is dropped.
    text = re.sub(r"\s+", "", _DATA_URL.sub("", value.strip(), count=1))
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:  # URL-safe alphabet, as some clients send it
            data = base64.urlsafe_b64decode(text) if re.fullmatch(r"[\w-]*={0,2}", text) else b""
        except (binascii.Error, ValueError):
            data = b""
        if not data:
            raise ServingError("invalid_base64", f'"{where}" is not valid base64.') from None
    if not data:
        raise ServingError("invalid_image", f'"{where}" is empty.')
    return data


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


# --- one image ----------------------------------------------------------------------------------


def decode_image(data: bytes, draft_size: int | None = None, max_pixels: int = MAX_PIXELS, where: str = "The body"):
    """Encoded bytes -> an upright RGB PIL image, fully decoded (so truncation is caught here).

    ``draft_size`` lets the JPEG decoder shrink big photos by 2/4/8 while decoding, never below
    that size -- exactly what :class:`.transforms.EvalPreset` does, several times faster.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        raise ServingError(
            "invalid_image", f"{where} is not a decodable image (expected {', '.join(IMAGE_FORMATS)})."
        ) from None
    except Image.DecompressionBombError:
        raise _too_large(where, None, max_pixels) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ServingError("invalid_image", f"{where} is not a decodable image ({_short(exc)}).") from None
    width, height = image.size
    if width * height > max_pixels:
        raise _too_large(where, (width, height), max_pixels)
    if width < 1 or height < 1 or max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ServingError(
            "invalid_image", f"{where} is {width}x{height} pixels; the aspect ratio limit is {MAX_ASPECT_RATIO}:1."
        )
    try:
        if draft_size:
            draft_jpeg(image, draft_size)
        image.load()  # decode every pixel now: a truncated file fails here, not later
        image = to_rgb(image)
    except Image.DecompressionBombError:
        raise _too_large(where, (width, height), max_pixels) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        detail = _short(exc)
        if "truncated" in detail.lower() or isinstance(exc, EOFError):
            detail = f"truncated {image.format or 'image'} file"
        raise ServingError("invalid_image", f"{where} is not a decodable image ({detail}).") from None
    return image


def _too_large(where: str, size: tuple[int, int] | None, max_pixels: int) -> ServingError:
    shown = f" ({size[0]}x{size[1]} pixels)" if size else ""
    return ServingError("image_too_large", f"{where} is too large{shown}; the limit is {max_pixels:,} pixels.")
