"""Cheap image checks that need no decoder.

The Lambda stays small (no Pillow): it rejects bodies that are plainly not a JPEG, PNG or WebP file by
their magic bytes, and leaves the real decode (truncation, pixel limits, EXIF) to the endpoint, whose
4xx answers are passed back to the client unchanged.
"""

from __future__ import annotations

import base64
import binascii
import re

from .errors import ApiError

SUPPORTED_FORMATS = ("jpeg", "png", "webp")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def sniff_image_format(data: bytes) -> str | None:
    """The image format that `data` starts like, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == _PNG_SIGNATURE:
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_image(data: bytes, *, max_bytes: int, label: str = "The image") -> str:
    """Return the sniffed format of `data` or raise the ApiError the client should get."""
    if not data:
        raise ApiError("invalid_image", f"{label} is empty.")
    if len(data) > max_bytes:
        raise ApiError(
            "payload_too_large",
            f"{label} is {len(data)} bytes; the limit is {max_bytes} bytes ({max_bytes / 1048576:.1f} MiB).",
        )
    image_format = sniff_image_format(data)
    if image_format is None:
        raise ApiError("invalid_image", f"{label} is not a JPEG, PNG or WebP image.")
    return image_format


def max_base64_length(max_bytes: int) -> int:
    return 4 * ((max_bytes + 2) // 3)


def decode_base64_image(text: object, *, max_bytes: int, label: str = "The image") -> bytes:
    """Decode a base64 string (standard or URL-safe alphabet, optional data: URL prefix) strictly.

    The length is checked before decoding, so an oversized string costs no decode.
    """
    if not isinstance(text, str):
        raise ApiError("invalid_request", f"{label} must be a base64 string.")
    text = _DATA_URL.sub("", text, count=1)
    if any(c in text for c in " \t\r\n"):
        # MIME-style line breaks are common in copy-pasted base64.
        text = _WHITESPACE.sub("", text)
    if len(text) > max_base64_length(max_bytes) + 2:
        raise ApiError(
            "payload_too_large",
            f"{label} is over the limit of {max_bytes} bytes ({max_bytes / 1048576:.1f} MiB) once decoded.",
        )
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    if len(text) % 4:
        # Unpadded base64 is common from URL-safe encoders; restore the padding it implies.
        text += "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("invalid_base64", f"{label} is not valid base64.") from None
    check_image(data, max_bytes=max_bytes, label=label)
    return data
