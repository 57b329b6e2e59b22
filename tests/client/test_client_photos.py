"""Real dog photos (../shared/data/dog-photos) through the CLI and over HTTP.

Against the fake API always (when the photos exist); against a running stack too when
DOGCLIENT_TEST_API_URL points at one (``make up`` serves it at http://127.0.0.1:3000).
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from click.testing import CliRunner
from dogclient.cli import cli
from dogclient_fakes import dog_photos_dir
from PIL import Image

SAMPLES = dog_photos_dir() / "udacity-samples"
PHOTOS = sorted(SAMPLES.glob("*.jpg")) if SAMPLES.is_dir() else []
needs_samples = pytest.mark.skipif(not PHOTOS, reason=f"{SAMPLES} not available")


def large_photos(limit: int = 4) -> list:
    """The first few real photos over 1024 px (udacity-dogimages-test has some), [] without the folder."""
    found = []
    for path in sorted((dog_photos_dir() / "udacity-dogimages-test").glob("*/*.jpg")):
        with Image.open(path) as image:
            if max(image.size) > 1024:
                found.append((path, image.size))
        if len(found) == limit:
            break
    return found


def predict_folder(*args: str):
    return CliRunner().invoke(cli, ["predict", str(SAMPLES), "--json", *args], catch_exceptions=False)


@needs_samples
def test_every_sample_photo_is_sent_and_answered(fake_api, config_file):
    result = predict_folder("--api-url", fake_api.url, "--top-k", "3")
    assert result.exit_code == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [document["image"] for document in documents] == [str(photo) for photo in PHOTOS]
    sent = {base64.b64decode(request.json()["image"]) for request in fake_api.requests}
    # All samples are under 1024 px and upright, so they travel byte for byte.
    assert sent == {photo.read_bytes() for photo in PHOTOS}


@needs_samples
def test_every_sample_photo_shrunk(fake_api, config_file):
    result = predict_folder("--api-url", fake_api.url, "--max-side", "200")
    assert result.exit_code == 0, result.stderr
    sizes = [request.image().size for request in fake_api.requests]
    assert len(sizes) == len(PHOTOS) and all(max(size) == 200 for size in sizes)


def test_large_real_photos_are_shrunk_before_sending(fake_api, config_file):
    photos = large_photos()
    if not photos:
        pytest.skip("no real photo over 1024 px in ../shared/data/dog-photos/udacity-dogimages-test")
    result = CliRunner().invoke(
        cli, ["predict", *(str(path) for path, _ in photos), "--api-url", fake_api.url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    sent = sorted(request.image().size for request in fake_api.requests)
    expected = sorted(
        (1024, round(height * 1024 / width)) if width >= height else (round(width * 1024 / height), 1024)
        for _, (width, height) in photos
    )
    assert sent == expected


@needs_samples
@pytest.mark.skipif(not os.environ.get("DOGCLIENT_TEST_API_URL"), reason="DOGCLIENT_TEST_API_URL not set")
def test_every_sample_photo_through_a_running_stack(config_file):
    result = predict_folder("--api-url", os.environ["DOGCLIENT_TEST_API_URL"], "--top-k", "3")
    assert result.exit_code == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == len(PHOTOS)
    for document in documents:
        probabilities = [p["probability"] for p in document["predictions"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probabilities)
        assert document["request_id"] and document["model"]["name"]
