"""Turn a file or bytes into what the API gets: upright, bounded in size, checked before sending."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ._contract import MAX_IMAGE_BYTES  # the API refuses decoded images above this (contracts/api.json)
from .errors import ImageError

# Longest side sent by default: the model sees 224 px, so more only costs upload time.
DEFAULT_MAX_SIDE = 1024
JPEG_QUALITY = 90
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})

@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    width: int
    height: int
    reencoded: bool


def format_size(num_bytes: int) -> str:
    return f"{num_bytes / (1024 * 1024):.1f} MiB"


def read_source(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError("no such file", code="file_not_found") from None
    except IsADirectoryError:
        raise ImageError("is a directory", code="file_not_found") from None
    except PermissionError:
        raise ImageError("permission denied", code="file_unreadable") from None
    except OSError as exc:
        raise ImageError(f"cannot read it ({exc.strerror or exc})", code="file_unreadable") from None


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = max_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


# Upright RGB: a byte-for-byte copy of dogbreed/serving/transforms.py's _UPRIGHT, exif_orientation and
# to_rgb (this package installs without dogbreed), so the client rotates and flattens exactly as the
# model was trained and is served. tests/client/test_client_images.py fails if the copies drift.

# EXIF orientation -> the transposition that makes the pixels upright (the table of ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8), or 1 when there is none or the EXIF block cannot be read.

    Metadata is optional: a photo whose EXIF is damaged is still a photo. Pillow's EXIF parser raises
    struct.error, TypeError, AttributeError, ValueError and more on hostile blocks, hence the broad except.
    """
    try:
        value = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - see above
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB: applies the EXIF orientation and flattens greyscale, palette, CMYK and alpha."""
    # Not ImageOps.exif_transpose: it also re-serialises the EXIF block, which fails on damaged ones.
    orientation = exif_orientation(image)
    if orientation != 1:
        image = image.transpose(_UPRIGHT[orientation])
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def prepare_image(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    max_side: int | None = DEFAULT_MAX_SIDE,
    max_bytes: int = MAX_IMAGE_BYTES,
) -> PreparedImage:
    """Read ``source`` and return the bytes to send.

    With ``max_side`` set, an image that is larger or carries an EXIF rotation is rotated upright,
    shrunk so its longest side is at most ``max_side`` and re-encoded as JPEG; any other image is sent
    as it is. With ``max_side=None`` the bytes are always sent as they are (still checked to be an
    image). Raises ``ImageError`` for a missing file, a non-image, or a result over ``max_bytes``.
    """
    data = read_source(source)
    if not data:
        raise ImageError("empty file", code="invalid_image")
    if max_side is None and len(data) > max_bytes:
        # Check before decoding: nothing will shrink it, so spare the work.
        raise ImageError(
            f"{format_size(len(data))}, over the API's {format_size(max_bytes)} limit (resizing is off)",
            code="image_too_large",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            needs_reencode = max_side is not None and (max(width, height) > max_side or exif_orientation(image) != 1)
            if not needs_reencode:
                image.load()  # decode fully so a truncated file fails here, not at the API
                prepared = PreparedImage(data, width, height, reencoded=False)
            else:
                target = _target_size(width, height, max_side)
                # JPEG can decode at 1/2, 1/4, 1/8 scale directly: far faster for camera photos.
                image.draft("RGB", target)
                # White under transparent pixels (JPEG has no alpha), as viewers show them.
                rgb = to_rgb(image)
                target = _target_size(rgb.width, rgb.height, max_side)
                if rgb.size != target:
                    rgb = rgb.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
                buffer = io.BytesIO()
                rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY)
                prepared = PreparedImage(buffer.getvalue(), rgb.width, rgb.height, reencoded=True)
    except UnidentifiedImageError:
        raise ImageError("not an image", code="invalid_image") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"too many pixels to decode safely ({exc})", code="invalid_image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt image ({exc})", code="invalid_image") from None

    if len(prepared.data) > max_bytes:
        raise ImageError(
            f"{format_size(len(prepared.data))} after resizing, over the API's {format_size(max_bytes)} limit",
            code="image_too_large",
        )
    return prepared


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def find_images(directory: Path) -> list[Path]:
    """Image files under ``directory``, recursively, sorted; hidden files and folders are skipped."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / name for name in sorted(files) if is_image_file(Path(name)))
    return found
