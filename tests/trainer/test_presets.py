"""Training and evaluation presets."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
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


# --- training's evaluation preset and serving's preprocessing: the same arrays ------------------------

SIZES = {"efficientnet_lite0": (224, 256), "resnet50": (32, 36)}  # (crop, resize): the starter's and a tiny one


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _scene(size=(160, 120)) -> Image.Image:
    """An asymmetric picture, so a wrong rotation or flip changes the pixels."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    pixels[: size[1] // 3, : size[0] // 4] = (250, 20, 20)
    return Image.fromarray(pixels, "RGB")


def _with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encoded(_scene(), "JPEG", quality=90, exif=exif)


def _synthetic_images() -> dict[str, bytes]:
    scene = _scene()
    rgba = scene.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(scene.size))
    transparent = scene.convert("P", palette=Image.Palette.ADAPTIVE)
    transparent.info["transparency"] = 0
    images = {f"jpeg-orientation-{o}": _with_orientation(o) for o in range(1, 9)}
    images |= {
        "png-rgba": _encoded(rgba, "PNG"),
        "png-la": _encoded(scene.convert("L").convert("LA"), "PNG"),
        "png-p": _encoded(scene.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "png-p-transparent": _encoded(transparent, "PNG"),
        "png-l": _encoded(scene.convert("L"), "PNG"),
        "png-16-bit": _encoded(scene.convert("L").convert("I;16"), "PNG"),
        "jpeg-l": _encoded(scene.convert("L"), "JPEG"),
        "jpeg-cmyk": _encoded(scene.convert("CMYK"), "JPEG"),
        "webp-rgba": _encoded(rgba, "WEBP", lossless=True),
        "jpeg-big": _encoded(_scene((1200, 900)), "JPEG"),  # takes the JPEG draft path
    }
    return images


def _training_and_serving_arrays(path: Path, backbone: str) -> tuple[np.ndarray, np.ndarray]:
    """What training's validation loader feeds the network for ``path``, and what an endpoint does."""
    from dogbreed.data import ImageDataset
    from dogbreed.serving import decoding
    from dogbreed.serving.architectures import NORMALISATION

    crop, resize = SIZES[backbone]
    mean, std = NORMALISATION[backbone]
    _, eval_preset = make_presets(augmentation="standard", crop_size=crop, resize_size=resize, mean=mean, std=std)
    tensor, _ = ImageDataset([(str(path), 0)], eval_preset)[0]
    image = decoding.decode_image(path.read_bytes(), draft_size=resize)  # as ServingModel.preprocess_bytes
    return tensor.numpy(), decoding.preprocess(image, crop, resize, mean, std)


@pytest.mark.parametrize("backbone", sorted(SIZES))
def test_eval_preset_and_serving_give_identical_arrays_for_every_mode_and_orientation(tmp_path, backbone):
    for name, data in _synthetic_images().items():
        path = tmp_path / name
        path.write_bytes(data)
        trained_on, served = _training_and_serving_arrays(path, backbone)
        assert trained_on.dtype == served.dtype == np.float32, name
        assert trained_on.shape == served.shape == (3, SIZES[backbone][0], SIZES[backbone][0]), name
        np.testing.assert_array_equal(trained_on, served, err_msg=name)


def test_orientations_really_differ():
    # Guards the test above: were EXIF ignored, all eight orientations would give one array.
    arrays = set()
    for orientation in range(1, 9):
        image = transforms.to_rgb(Image.open(io.BytesIO(_with_orientation(orientation))))
        arrays.add(transforms.preprocess(image, 64, 72, [0.5] * 3, [0.5] * 3).tobytes())
    assert len(arrays) == 8


@pytest.mark.parametrize("backbone", sorted(SIZES))
def test_eval_preset_and_serving_give_identical_arrays_for_real_photos(dog_photos, backbone):
    photos = sorted(p for p in dog_photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[::6]
    assert photos, f"no photos under {dog_photos}"
    for path in photos:
        trained_on, served = _training_and_serving_arrays(path, backbone)
        np.testing.assert_array_equal(trained_on, served, err_msg=str(path))


def test_eval_preset_is_torchvisions_resize_crop_normalise():
    # The numpy definition keeps torchvision's geometry and arithmetic (to float32 rounding).
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    image = _scene((150, 97))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = TF.resize(image, 40, interpolation=InterpolationMode.BILINEAR, antialias=True)
    expected = TF.normalize(TF.pil_to_tensor(TF.center_crop(expected, 33)).float().div_(255), mean, std)
    torch.testing.assert_close(EvalPreset(33, 40, mean, std)(image), expected, atol=1e-6, rtol=0)


def test_serving_preprocesses_without_importing_torch(tmp_path):
    # An ONNX Runtime endpoint has no torch: decoding and the eval transform must not need it.
    import subprocess
    import sys

    path = tmp_path / "dog.jpg"
    path.write_bytes(_with_orientation(6))
    script = (
        "import sys\n"
        "from dogbreed.serving import decoding\n"
        f"image = decoding.decode_image(open({str(path)!r}, 'rb').read(), draft_size=36)\n"
        "print(decoding.preprocess(image, 32, 36, [0.5] * 3, [0.5] * 3).shape, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "(3, 32, 32) False"
