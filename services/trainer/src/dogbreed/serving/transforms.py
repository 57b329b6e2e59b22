"""Image loading and the evaluation preset, shared by evaluation and serving.

Copied into every model artifact: inference preprocesses exactly as evaluation did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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


class EvalPreset:
    """Resize the shorter side to ``resize_size``, centre-crop ``crop_size``, normalise."""

    def __init__(self, crop_size: int, resize_size: int, mean: Sequence[float], std: Sequence[float]):
        self.crop_size = crop_size
        self.resize_size = resize_size
        self.mean = list(mean)
        self.std = list(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        # Imported here: torchvision costs about a second to import, and an ONNX Runtime endpoint
        # only needs to_rgb from this module (see decoding.preprocess).
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        if image.format == "JPEG" and hasattr(image, "draft"):
            # Decode big JPEGs at a reduced scale (still >= the resize target): several times faster.
            image.draft("RGB", (self.resize_size, self.resize_size))
        image = to_rgb(image)
        image = TF.resize(image, self.resize_size, interpolation=InterpolationMode.BILINEAR, antialias=True)
        image = TF.center_crop(image, self.crop_size)
        tensor = TF.pil_to_tensor(image).float().div_(255)
        return TF.normalize(tensor, self.mean, self.std)

    def describe(self) -> dict:
        return {"image_size": self.crop_size, "resize_size": self.resize_size, "mean": self.mean, "std": self.std}
