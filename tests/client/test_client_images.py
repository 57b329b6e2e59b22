"""Image preparation: EXIF orientation, resizing, local refusal, on generated images and real photos."""

from __future__ import annotations

import ast
import base64
import io
from pathlib import Path

import pytest
from dogclient import MAX_IMAGE_BYTES, ImageError, prepare_image
from dogclient import images
from dogclient.images import find_images
from dogclient_fakes import dog_photos_dir, make_image
from PIL import Image


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_limit_matches_the_api():
    # 4 MiB: its base64 (5.6 MB) must fit Lambda's 6 MB request payload and SageMaker's 6 MB invoke limit.
    assert MAX_IMAGE_BYTES == 4 * 1024 * 1024
    assert len(base64.b64encode(bytes(MAX_IMAGE_BYTES))) < 6 * 1000 * 1000


def test_limit_is_the_lambdas_default():
    settings = pytest.importorskip("inference_lambda.settings")
    assert MAX_IMAGE_BYTES == settings.Settings(endpoint_name="x").max_image_bytes


def test_image_exactly_at_the_default_limit_is_sent_and_one_byte_more_is_refused():
    # A real JPEG padded after its end-of-image marker: decoders ignore the tail, so it is a valid image.
    jpeg = make_image(size=(64, 48), format="JPEG")
    at_limit = jpeg + bytes(MAX_IMAGE_BYTES - len(jpeg))

    prepared = prepare_image(at_limit, max_side=None)
    assert prepared.data == at_limit

    with pytest.raises(ImageError) as caught:
        prepare_image(at_limit + b"\0", max_side=None)
    assert caught.value.code == "image_too_large"
    assert caught.value.message == "4.0 MiB, over the API's 4.0 MiB limit (resizing is off)"


def test_small_upright_image_is_sent_byte_for_byte(tmp_path):
    data = make_image(tmp_path / "small.png", size=(300, 200), format="PNG")
    prepared = prepare_image(tmp_path / "small.png")
    assert prepared.data == data
    assert (prepared.width, prepared.height, prepared.reencoded) == (300, 200, False)


def test_bytes_and_str_paths_are_accepted(tmp_path):
    data = make_image(tmp_path / "dog.jpg")
    assert prepare_image(data).data == data
    assert prepare_image(str(tmp_path / "dog.jpg")).data == data


@pytest.mark.parametrize(
    ("size", "expected"),
    [((2048, 1024), (1024, 512)), ((900, 3000), (307, 1024)), ((1025, 1025), (1024, 1024))],
)
def test_large_image_is_shrunk_to_the_bound_and_reencoded_as_jpeg(size, expected):
    prepared = prepare_image(make_image(size=size, format="PNG"))
    image = decode(prepared.data)
    assert image.format == "JPEG"
    assert image.size == expected == (prepared.width, prepared.height)
    assert prepared.reencoded


def test_max_side_is_configurable():
    prepared = prepare_image(make_image(size=(400, 100)), max_side=200)
    assert decode(prepared.data).size == (200, 50)


def two_colour_image(orientation: int | None, size=(80, 40)) -> bytes:
    """Left half red, right half blue, with the given EXIF orientation tag."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def is_red(pixel) -> bool:
    return pixel[0] > 200 and pixel[2] < 60


def is_blue(pixel) -> bool:
    return pixel[2] > 200 and pixel[0] < 60


def test_exif_orientation_6_is_applied_so_the_sent_image_is_upright():
    # Orientation 6: the camera was turned; viewers rotate 90 degrees clockwise, so left goes to top.
    prepared = prepare_image(two_colour_image(orientation=6))
    image = decode(prepared.data).convert("RGB")
    assert image.size == (40, 80)
    assert is_red(image.getpixel((20, 10)))
    assert is_blue(image.getpixel((20, 70)))
    assert decode(prepared.data).getexif().get(0x0112) in (None, 1)  # no second rotation by the server


def test_exif_orientation_3_turns_the_image_upside_down():
    image = decode(prepare_image(two_colour_image(orientation=3)).data).convert("RGB")
    assert image.size == (80, 40)
    assert is_blue(image.getpixel((10, 20)))
    assert is_red(image.getpixel((70, 20)))


def test_exif_orientation_and_resize_together():
    data = two_colour_image(orientation=8, size=(2400, 1200))  # 8: rotate 90 counter-clockwise
    image = decode(prepare_image(data).data).convert("RGB")
    assert image.size == (512, 1024)
    assert is_blue(image.getpixel((256, 100)))
    assert is_red(image.getpixel((256, 900)))


def test_orientation_1_is_sent_unchanged():
    data = two_colour_image(orientation=1)
    assert prepare_image(data).data == data


def test_no_resize_sends_bytes_as_they_are_even_large_and_rotated():
    data = two_colour_image(orientation=6, size=(2400, 1200))
    prepared = prepare_image(data, max_side=None)
    assert prepared.data == data
    assert not prepared.reencoded


def test_transparent_png_is_flattened_onto_white():
    image = Image.new("RGBA", (2000, 1000), (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 1000, 1000))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    sent = decode(prepare_image(buffer.getvalue()).data).convert("RGB")
    assert sent.size == (1024, 512)
    red, green, blue = sent.getpixel((900, 256))
    assert min(red, green, blue) > 240  # was transparent: white, not black
    red, green, blue = sent.getpixel((100, 256))
    assert green > 100 and red < 40 and blue < 40


@pytest.mark.parametrize(("mode", "color"), [("L", 128), ("P", 3), ("CMYK", (0, 0, 0, 0)), ("I;16", 1000)])
def test_other_modes_become_rgb_jpeg(mode, color):
    format = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    prepared = prepare_image(make_image(size=(1500, 100), mode=mode, color=color, format=format))
    image = decode(prepared.data)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1024, 68))


def test_over_the_limit_without_resize_is_refused_before_decoding():
    with pytest.raises(ImageError) as caught:
        prepare_image(b"x" * 3 * 1024 * 1024, max_side=None, max_bytes=2 * 1024 * 1024)
    assert caught.value.code == "image_too_large"
    assert caught.value.message == "3.0 MiB, over the API's 2.0 MiB limit (resizing is off)"


def test_still_over_the_limit_after_resizing_is_refused():
    noisy = Image.effect_noise((1024, 1024), 100).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    with pytest.raises(ImageError) as caught:
        prepare_image(buffer.getvalue(), max_side=1024, max_bytes=100 * 1024)
    assert caught.value.code == "image_too_large"
    assert caught.value.message.endswith("MiB after resizing, over the API's 0.1 MiB limit")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageError, match=r"^not an image$") as caught:
        prepare_image(tmp_path / "notes.txt")
    assert caught.value.code == "invalid_image"


def test_truncated_jpeg_is_refused_locally():
    data = make_image(size=(400, 300), color=(10, 200, 30))
    with pytest.raises(ImageError, match=r"^corrupt image \(") as caught:
        prepare_image(data[: len(data) // 2])
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize(
    ("name", "message", "code"),
    [("missing.jpg", "no such file", "file_not_found"), ("folder", "is a directory", "file_not_found")],
)
def test_unreadable_paths(tmp_path, name, message, code):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ImageError) as caught:
        prepare_image(tmp_path / name)
    assert (caught.value.message, caught.value.code) == (message, code)


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"^empty file$"):
        prepare_image(tmp_path / "empty.jpg")


def test_find_images_recurses_sorts_and_skips_hidden_and_non_images(tmp_path):
    for relative in ["b.jpg", "a.PNG", "sub/c.jpeg", "sub/deeper/d.webp", "notes.txt", ".hidden.jpg", ".cache/e.jpg"]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    found = [path.relative_to(tmp_path).as_posix() for path in find_images(tmp_path)]
    assert found == ["a.PNG", "b.jpg", "sub/c.jpeg", "sub/deeper/d.webp"]


def udacity_samples():
    folder = dog_photos_dir() / "udacity-samples"
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


@pytest.mark.skipif(not udacity_samples(), reason="../shared/data/dog-photos/udacity-samples not available")
@pytest.mark.parametrize("max_side", [1024, 256])
def test_real_photos_prepare_within_bounds(max_side):
    for photo in udacity_samples():
        original = decode(photo.read_bytes())
        prepared = prepare_image(photo, max_side=max_side)
        image = decode(prepared.data)
        assert max(image.size) <= max_side, photo.name
        assert len(prepared.data) <= MAX_IMAGE_BYTES
        if max(original.size) <= max_side:
            assert prepared.data == photo.read_bytes(), photo.name
        else:
            ratio_before = original.width / original.height
            assert abs(image.width / image.height - ratio_before) < 0.01, photo.name


# --- the upright-RGB copy: the serving package's, byte for byte -----------------------------------

SERVING_TRANSFORMS = Path(__file__).resolve().parents[2] / "services/trainer/src/dogbreed/serving/transforms.py"
SHARED_DEFINITIONS = ("_UPRIGHT", "exif_orientation", "to_rgb")


def top_level_sources(path: Path, names: tuple[str, ...]) -> dict[str, str]:
    """The exact source text of the named top-level functions and assignments of ``path``."""
    source = path.read_text(encoding="utf-8")
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        else:
            continue
        if name in names:
            found[name] = ast.get_source_segment(source, node)
    return found


def test_to_rgb_is_the_serving_packages_byte_for_byte():
    # The client installs without dogbreed, so it carries a copy; the model sees what to_rgb makes.
    if not SERVING_TRANSFORMS.is_file():
        pytest.skip(f"the client is installed on its own: no {SERVING_TRANSFORMS}")
    serving = top_level_sources(SERVING_TRANSFORMS, SHARED_DEFINITIONS)
    client = top_level_sources(Path(images.__file__), SHARED_DEFINITIONS)
    assert sorted(serving) == sorted(client) == sorted(SHARED_DEFINITIONS)
    for name in SHARED_DEFINITIONS:
        assert client[name] == serving[name], f"dogclient/images.py's {name} differs from {SERVING_TRANSFORMS}'s"


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "P-transparent", "P", "L", "CMYK", "I;16", "1"])
def test_to_rgb_flattens_every_mode_onto_white(mode):
    base = Image.new("RGB", (6, 4), (10, 200, 30))
    if mode == "P-transparent":
        image = base.convert("P")
        image.info["transparency"] = image.getpixel((0, 0))
    elif mode in ("RGBA", "LA", "PA"):
        image = base.convert("RGBA" if mode == "PA" else mode)
        image.putalpha(0)
        if mode == "PA":
            image = image.convert("PA")
    else:
        image = base.convert(mode)
    rgb = images.to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (6, 4)
    if mode in ("RGBA", "LA", "PA", "P-transparent"):
        assert rgb.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white, as viewers show it


def test_damaged_exif_counts_as_no_rotation():
    image = Image.new("RGB", (8, 4))
    exif = image.getexif()
    exif[0x0112] = "six"  # not an integer
    assert images.exif_orientation(image) == 1
    assert images.to_rgb(image).size == (8, 4)
