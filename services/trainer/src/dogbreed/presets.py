"""Image presets as small callable classes (after torchvision's references/classification/presets.py).

``TrainPreset`` augments; ``EvalPreset`` (from ``serving.transforms``, copied into every artifact)
is a tensor of ``serving.transforms.preprocess``, the numpy function an endpoint runs: evaluation,
the validation loader and inference compute the same arrays, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms import InterpolationMode

from .serving.transforms import EvalPreset, to_rgb

__all__ = ["EvalPreset", "TrainPreset", "make_presets"]


class TrainPreset:
    """Random resized crop, horizontal flip and colour jitter, then normalise.

    ``min_scale`` is the smallest crop area as a fraction of the image: dogs fill most of a typical
    photo, so the ImageNet default of 0.08 would often crop the dog away.
    """

    def __init__(
        self,
        crop_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        hflip_prob: float = 0.5,
        min_scale: float = 0.25,
        color_jitter: float = 0.2,
    ):
        self.crop_size = crop_size
        self.mean = list(mean)
        self.std = list(std)
        steps = [
            T.RandomResizedCrop(crop_size, scale=(min_scale, 1.0), interpolation=InterpolationMode.BILINEAR, antialias=True)
        ]
        if hflip_prob > 0:
            steps.append(T.RandomHorizontalFlip(hflip_prob))
        if color_jitter > 0:
            steps.append(T.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
        steps += [T.PILToTensor(), T.ToDtype(torch.float32, scale=True), T.Normalize(self.mean, self.std)]
        self.transforms = T.Compose(steps)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transforms(to_rgb(image))


def make_presets(
    *, augmentation: str, crop_size: int, resize_size: int, mean: Sequence[float], std: Sequence[float]
) -> tuple[TrainPreset | EvalPreset, EvalPreset]:
    """(training preset, evaluation preset). ``augmentation="none"`` trains on the evaluation preset,
    which makes the inputs of every epoch identical and so the backbone's features cacheable."""
    eval_preset = EvalPreset(crop_size=crop_size, resize_size=resize_size, mean=mean, std=std)
    if augmentation == "none":
        return eval_preset, eval_preset
    if augmentation == "standard":
        return TrainPreset(crop_size, mean, std), eval_preset
    raise ValueError(f"unknown augmentation {augmentation!r}; choose standard or none")
