"""What `make demo-train` does: fine-tune on a labelled folder, then serve the new artifact."""

from __future__ import annotations

import base64
import json
import subprocess

from conftest import jpeg_bytes, service_bin
from PIL import Image
from test_local_stack import call

BREEDS = {"n02088364-beagle": (200, 140, 60), "n02110185-Siberian_husky": (90, 90, 110),
          "n02113624-toy_poodle": (245, 245, 240)}


def make_stanford_folder(root):
    for folder, colour in BREEDS.items():
        (root / folder).mkdir(parents=True)
        for i in range(8):
            shade = tuple(min(255, c + 4 * i) for c in colour)
            Image.new("RGB", (80, 64), shade).save(root / folder / f"{folder.split('-')[0]}_{i}.jpg")
    return root


def test_retrained_model_replaces_the_served_one(stack, starter_model, tmp_path):
    data = make_stanford_folder(tmp_path / "my-dogs")
    out = tmp_path / "trained"
    subprocess.run([str(service_bin("trainer", "dogbreed")), "train", "--data", str(data), "--backbone", "efficientnet_lite0",
                    "--weights", "imagenet", "--mode", "frozen", "--augmentation", "none", "--epochs", "2",
                    "--image-size", "64", "--resize-size", "72", "--workers", "0", "--output-dir", str(out)],
                   check=True, capture_output=True, text=True)
    assert (out / "report" / "report.md").exists()
    subprocess.run([*stack["base"], "restart-endpoint", "--model", str(out / "model.tar.gz")], check=True)
    try:
        status, body = call(f"{stack['api_url']}/predict",
                            json.dumps({"image": base64.b64encode(jpeg_bytes()).decode(), "top_k": 3}).encode())
        assert status == 200, body
        assert body["model"]["name"] == "efficientnet_lite0-my-dogs"
        assert sorted(p["breed"] for p in body["predictions"]) == ["Beagle", "Siberian husky", "Toy poodle"]
        assert body["is_dog"] is None and body["dog_probability"] is None
    finally:
        # The stack is shared by the session: later tests (the web page's) expect the starter model.
        subprocess.run([*stack["base"], "restart-endpoint", "--model", str(starter_model)], check=True)
