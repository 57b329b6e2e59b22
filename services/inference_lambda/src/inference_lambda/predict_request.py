"""Turning a `POST /predict` proxy event into the images to classify and `top_k`.

Accepted bodies (see openapi.json):
- a raw image (`image/jpeg`, `image/png`, `image/webp`, `application/octet-stream`), base64-encoded by API
  Gateway with `isBase64Encoded: true` because those are the API's binary media types;
- JSON `{"image": "<base64>"}`, `{"images": ["<base64>", ...]}` or `{"url": "https://..."}`, each with an
  optional `"top_k"`.
`top_k` may come from the query string or the JSON body, not both.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _contract
from .errors import ApiError
from .images import check_image, decode_base64_image

# One list (contracts/api.json), shared with the API's binary media types (dogapi-local and Terraform): a raw
# type that API Gateway did not treat as binary would arrive mangled as UTF-8 text.
RAW_IMAGE_TYPES = frozenset(_contract.IMAGE_TYPES)
BINARY_MEDIA_TYPES = tuple(_contract.IMAGE_TYPES)
JSON_TYPES = frozenset(_contract.JSON_TYPES)
# top_k as text (query string): ASCII decimal digits only, optional "+", surrounding blanks. The same grammar
# as the endpoint's (dogbreed.serving.decoding.TOP_K_TEXT; a test checks they agree). A few digits at most,
# so int() never sees "²", "1_0" or a 5000-digit number.
TOP_K_TEXT = re.compile(r"[ \t]*\+?([0-9]{1,6})[ \t]*", re.ASCII)
_JSON_FIELDS = frozenset({"image", "images", "url", "top_k"})


@dataclass(frozen=True)
class PredictRequest:
    images: tuple[bytes, ...]
    top_k: int
    batch: bool
    # "raw", "base64", "batch" or "url": for logs and metrics only.
    source: str


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int
    max_batch_images: int
    default_top_k: int
    max_top_k: int


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def body_bytes(body: str | None, is_base64_encoded: bool) -> bytes:
    if body is None:
        return b""
    if not isinstance(body, str):
        raise ApiError("invalid_request", "The request body could not be decoded.")
    if is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            # API Gateway itself produced this encoding, so a failure means a malformed event.
            raise ApiError("invalid_request", "The request body could not be decoded.") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from "\ud800" escapes in the event): not text
        raise ApiError("invalid_request", "The request body is not valid UTF-8 text.") from None


def parse_predict_request(
    *,
    content_type: str | None,
    body: str | None,
    is_base64_encoded: bool,
    query_top_k: list[str] | None,
    limits: Limits,
    fetch_url: Callable[[str], bytes],
) -> PredictRequest:
    kind = media_type(content_type)
    if kind in RAW_IMAGE_TYPES:
        data = body_bytes(body, is_base64_encoded)
        check_image(data, max_bytes=limits.max_image_bytes, label="The request body")
        top_k = _query_top_k(query_top_k, limits)
        return PredictRequest(images=(data,), top_k=top_k, batch=False, source="raw")
    if kind in JSON_TYPES:
        document = _parse_json(body_bytes(body, is_base64_encoded))
        return _from_json(document, query_top_k, limits, fetch_url)
    shown = kind or "none"
    raise ApiError(
        "unsupported_media_type",
        f"Content-Type {shown} is not accepted; send image/jpeg, image/png, image/webp, "
        "application/octet-stream or application/json.",
    )


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise ApiError("invalid_json", "The request body is empty; expected a JSON object.")
    try:
        return json.loads(raw)
    except RecursionError:
        # json's C scanner recurses once per nesting level: about 1000 levels exhaust the stack.
        raise ApiError("invalid_json", "The request body is nested too deeply to be a prediction request.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError("invalid_json", f"The request body is not valid JSON{where}.") from None


def _from_json(
    document: Any, query_top_k: list[str] | None, limits: Limits, fetch_url: Callable[[str], bytes]
) -> PredictRequest:
    if not isinstance(document, dict):
        raise ApiError("invalid_request", "The JSON body must be an object with one of image, images or url.")
    unknown = sorted(set(document) - _JSON_FIELDS)
    if unknown:
        raise ApiError(
            "invalid_request",
            f"Unknown field(s) {', '.join(map(repr, unknown))}; "
            "expected one of image, images or url, and optionally top_k.",
        )
    given = [name for name in ("image", "images", "url") if name in document]
    if len(given) != 1:
        detail = "none was given" if not given else f"got {' and '.join(given)}"
        raise ApiError("invalid_request", f"Send exactly one of image, images or url ({detail}).")

    if "top_k" in document:
        if query_top_k:
            raise ApiError("invalid_parameter", "top_k is given both in the query string and the body; give it once.")
        top_k = _check_top_k(document["top_k"], limits)
    else:
        top_k = _query_top_k(query_top_k, limits)

    if "image" in document:
        image = decode_base64_image(document["image"], max_bytes=limits.max_image_bytes, label="image")
        return PredictRequest(images=(image,), top_k=top_k, batch=False, source="base64")
    if "images" in document:
        encoded = document["images"]
        if not isinstance(encoded, list) or not encoded:
            raise ApiError("invalid_request", "images must be a non-empty list of base64 strings.")
        if len(encoded) > limits.max_batch_images:
            raise ApiError(
                "batch_too_large",
                f"images holds {len(encoded)} images; at most {limits.max_batch_images} are accepted per request.",
            )
        images = tuple(
            decode_base64_image(item, max_bytes=limits.max_image_bytes, label=f"images[{index}]")
            for index, item in enumerate(encoded)
        )
        return PredictRequest(images=images, top_k=top_k, batch=True, source="batch")
    url = document["url"]
    if not isinstance(url, str) or not url.strip():
        raise ApiError("invalid_request", "url must be a non-empty string.")
    data = fetch_url(url.strip())
    check_image(data, max_bytes=limits.max_image_bytes, label="The image at the URL")
    return PredictRequest(images=(data,), top_k=top_k, batch=False, source="url")


def _query_top_k(values: list[str] | None, limits: Limits) -> int:
    if not values:
        return limits.default_top_k
    if len(values) > 1:
        raise ApiError("invalid_parameter", "top_k is given more than once in the query string.")
    return parse_top_k_text(values[0], max_top_k=limits.max_top_k)


def parse_top_k_text(text: object, *, max_top_k: int) -> int:
    """The one parser of top_k given as text: a plain ASCII integer from 1 to max_top_k, or invalid_parameter."""
    match = TOP_K_TEXT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        shown = repr(text) if isinstance(text, str) and len(text) <= 20 else "a value that is not one"
        raise ApiError("invalid_parameter", f"top_k must be an integer from 1 to {max_top_k}, got {shown}.")
    value = int(match.group(1))
    if not 1 <= value <= max_top_k:
        raise ApiError("invalid_parameter", f"top_k must be from 1 to {max_top_k}, got {value}.")
    return value


def _check_top_k(value: Any, limits: Limits) -> int:
    # bool is an int subclass; {"top_k": true} is a client bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ApiError("invalid_parameter", f"top_k must be an integer from 1 to {limits.max_top_k}.")
    if not 1 <= value <= limits.max_top_k:
        shown = value if abs(value) < 10**6 else "a larger number"  # {"top_k": 1e300} is 301 digits
        raise ApiError("invalid_parameter", f"top_k must be from 1 to {limits.max_top_k}, got {shown}.")
    return value


def single_query_values(
    multi: Mapping[str, list[str]] | None, single: Mapping[str, str] | None, name: str
) -> list[str]:
    """All values of a query parameter from a REST v1 event (multi-value first, as API Gateway fills both)."""
    if multi and name in multi and multi[name] is not None:
        return list(multi[name])
    if single and name in single and single[name] is not None:
        return [single[name]]
    return []
