"""Image loading and the evaluation preset, shared by evaluation and serving.

Copied into every model artifact: inference preprocesses exactly as evaluation did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PIL import Image, ImageOps

if TYPE_CHECKING:
    import torch


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright RGB: applies the EXIF orientation and flattens greyscale, palette, CMYK and alpha."""
    image = ImageOps.exif_transpose(image)
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
