"""The evaluation transform, the one definition that evaluation, training's eval loader and serving run.

Copied into every model artifact (``code/dogbreed_serving/``), and imports PIL and numpy only: an
ONNX Runtime endpoint preprocesses without importing torch, and a served model sees exactly the
pixels it was validated on. ``to_rgb`` (with ``exif_orientation`` and ``_UPRIGHT``) is also copied,
byte for byte, into the client (``dogclient/images.py``), which must install without this package;
a test in tests/client fails if the two drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


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


def draft_jpeg(image: Image.Image, size: int) -> None:
    """Let the JPEG decoder shrink a big photo by 2/4/8 while decoding, never below ``size``: several times faster."""
    if image.format == "JPEG" and hasattr(image, "draft"):
        image.draft("RGB", (size, size))


def preprocess(image: Image.Image, crop_size: int, resize_size: int, mean: Sequence[float], std: Sequence[float]):
    """An RGB image -> float32 ``[3, crop, crop]``: resize, centre-crop, scale and normalise.

    The same geometry as torchvision's ``resize(img, resize_size)`` (shorter side, the longer one
    truncated, PIL's antialiased bilinear filter) and ``center_crop`` (rounded offsets) on PIL images.
    """
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize_size, int(resize_size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.BILINEAR)
    top = round((new_h - crop_size) / 2.0)
    left = round((new_w - crop_size) / 2.0)
    image = image.crop((left, top, left + crop_size, top + crop_size))
    pixels = np.asarray(image, dtype=np.uint8)
    # (x / 255 - mean) / std as one multiply-add per channel, written straight into CHW order:
    # within float32 rounding (1e-6) of torchvision's normalize, five times faster.
    scale = 1.0 / (255.0 * np.asarray(std, dtype=np.float64))
    offset = np.asarray(mean, dtype=np.float64) / np.asarray(std, dtype=np.float64)
    out = np.empty((3, crop_size, crop_size), dtype=np.float32)
    for channel in range(3):
        np.multiply(pixels[:, :, channel], np.float32(scale[channel]), out=out[channel], casting="unsafe")
        out[channel] -= np.float32(offset[channel])
    return out


class EvalPreset:
    """Resize the shorter side to ``resize_size``, centre-crop ``crop_size``, normalise: :func:`preprocess`
    of the upright RGB image, as a tensor (for data loaders and eager models)."""

    def __init__(self, crop_size: int, resize_size: int, mean: Sequence[float], std: Sequence[float]):
        self.crop_size = crop_size
        self.resize_size = resize_size
        self.mean = list(mean)
        self.std = list(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        import torch  # here, not at the top: an ONNX Runtime endpoint never calls this

        draft_jpeg(image, self.resize_size)
        pixels = preprocess(to_rgb(image), self.crop_size, self.resize_size, self.mean, self.std)
        return torch.from_numpy(pixels)

    def describe(self) -> dict:
        return {"image_size": self.crop_size, "resize_size": self.resize_size, "mean": self.mean, "std": self.std}
