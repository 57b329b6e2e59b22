"""Training and evaluation presets."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from dogbreed.presets import EvalPreset, TrainPreset, make_presets
from dogbreed.serving import transforms


def photo(size=(120, 90), mode="RGB") -> Image.Image:
    gradient = torch.linspace(0, 255, size[0]).repeat(size[1], 1).to(torch.uint8).numpy()
    image = Image.merge("RGB", [Image.fromarray(gradient)] * 3)
    return image.convert(mode)


def test_eval_preset_is_the_one_serving_uses():
    assert EvalPreset is transforms.EvalPreset


def test_train_preset_crops_normalises_and_augments():
    torch.manual_seed(0)
    preset = TrainPreset(64, [0.5] * 3, [0.25] * 3)
    first, second = preset(photo()), preset(photo())
    assert first.shape == second.shape == (3, 64, 64) and first.dtype == torch.float32
    assert first.min() >= -2.0 - 1e-6 and first.max() <= 2.0 + 1e-6  # (x - 0.5) / 0.25 for x in [0, 1]
    assert not torch.equal(first, second)  # random crop / flip / jitter


def test_train_preset_is_reproducible_with_the_same_seed():
    preset = TrainPreset(48, [0.5] * 3, [0.5] * 3)
    torch.manual_seed(7)
    first = preset(photo())
    torch.manual_seed(7)
    assert torch.equal(first, preset(photo()))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_train_preset_accepts_any_image_mode(mode):
    assert TrainPreset(32, [0.5] * 3, [0.5] * 3)(photo(mode=mode)).shape == (3, 32, 32)


def test_no_augmentation_trains_on_the_evaluation_preset():
    train, evaluation = make_presets(augmentation="none", crop_size=32, resize_size=40, mean=[0.5] * 3, std=[0.5] * 3)
    assert train is evaluation
    assert torch.equal(train(photo()), train(photo()))  # deterministic: features can be cached
    train, evaluation = make_presets(augmentation="standard", crop_size=32, resize_size=40, mean=[0.5] * 3, std=[0.5] * 3)
    assert isinstance(train, TrainPreset) and isinstance(evaluation, EvalPreset)
    assert evaluation.describe() == {"image_size": 32, "resize_size": 40, "mean": [0.5] * 3, "std": [0.5] * 3}
