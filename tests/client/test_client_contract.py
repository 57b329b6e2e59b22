"""dogclient's copy of contracts/api.json is current, and the client enforces the API's limits before sending."""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path

import pytest
from dogclient import DogClient, _contract
from dogclient_fakes import FAKE_MODEL, make_image
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPO_ROOT / "scripts" / "gen_contracts.py"


@pytest.fixture(scope="module")
def gen_contracts():
    """scripts/gen_contracts.py, imported by path (it is no package's module)."""
    if not GENERATOR.is_file():
        pytest.skip("not run from a repository checkout (scripts/gen_contracts.py is absent)")
    spec = importlib.util.spec_from_file_location("gen_contracts", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("group", ["client", "readme"])
def test_generated_files_match_the_contract(gen_contracts, group):
    problems = gen_contracts.run(check=True, only=group)
    assert not problems, "\n".join(problems) + "\nfix: python scripts/gen_contracts.py"


def test_the_check_names_the_file_that_drifted_and_the_fix(gen_contracts, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "_contract.py"
    stale.write_text(gen_contracts.client_module(gen_contracts.load()).replace("MAX_TOP_K = ", "MAX_TOP_K = 1"))
    monkeypatch.setattr(gen_contracts, "ROOT", tmp_path)
    monkeypatch.setattr(gen_contracts, "CLIENT_PKG", tmp_path)

    assert gen_contracts.main(["--check", "--only", "client"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "_contract.py differs from contracts/api.json",
        "run: python scripts/gen_contracts.py (in the Lambda env for openapi.json)",
    ]


def test_the_clients_limits_are_the_apis():
    if not (REPO_ROOT / "contracts" / "api.json").is_file():
        pytest.skip("not run from a repository checkout (contracts/api.json is absent)")
    contract = json.loads((REPO_ROOT / "contracts" / "api.json").read_text())

    assert _contract.MAX_TOP_K == contract["top_k"]["api_max"]
    assert _contract.MAX_BATCH_IMAGES == contract["batch"]["api_max_images"]
    assert _contract.MAX_IMAGE_BYTES == contract["bytes"]["max_image"]
    assert set(_contract.ERROR_CODES) == set(contract["errors"])


# -- batches -------------------------------------------------------------------------------------------


def batch_answer(count: int) -> dict:
    results = [
        {"predictions": [{"breed": f"breed {i}", "probability": 0.5, "class_id": i}], "is_dog": True, "dog_probability": 0.9}
        for i in range(count)
    ]
    return {"results": results, "model": FAKE_MODEL, "request_id": "req-batch"}


def test_predict_batch_sends_one_request_and_returns_one_prediction_per_image(fake_api):
    images = [make_image(size=(40 + i, 30)) for i in range(3)]
    fake_api.queue(200, batch_answer(3))

    predictions = DogClient(fake_api.url).predict_batch(images, top_k=2)

    assert [p.top.breed for p in predictions] == ["breed 0", "breed 1", "breed 2"]
    assert {(p.model_name, p.request_id) for p in predictions} == {(FAKE_MODEL["name"], "req-batch")}
    (request,) = fake_api.requests
    sent = request.json()
    assert sent["top_k"] == 2 and len(sent["images"]) == 3


@pytest.mark.parametrize("count", [0, _contract.MAX_BATCH_IMAGES + 1])
def test_a_batch_outside_the_apis_limit_is_refused_before_any_request(fake_api, count):
    images = [make_image() for _ in range(count)]

    with pytest.raises(ValueError, match=f"a batch is 1 to {_contract.MAX_BATCH_IMAGES} images \\(the API's limit\\), not {count}"):
        DogClient(fake_api.url).predict_batch(images)
    assert fake_api.requests == []


def test_a_batch_with_more_base64_than_one_request_carries_is_refused_before_any_request(fake_api):
    def noise_png() -> bytes:  # incompressible: about 3 MB as PNG, 4 MB as base64
        buffer = io.BytesIO()
        Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000)).save(buffer, format="PNG", compress_level=0)
        return buffer.getvalue()

    with pytest.raises(ValueError, match=f"over the {_contract.MAX_BATCH_BASE64_BYTES} one request carries"):
        DogClient(fake_api.url, max_side=None).predict_batch([noise_png(), noise_png()])
    assert fake_api.requests == []


def test_a_batch_answer_without_one_result_per_image_is_an_invalid_response(fake_api):
    from dogclient import ApiError

    fake_api.queue(200, batch_answer(1))
    with pytest.raises(ApiError, match="not one result per image"):
        DogClient(fake_api.url).predict_batch([make_image(), make_image()])


def test_predict_batch_checks_top_k_against_the_apis_limit(fake_api):
    with pytest.raises(ValueError, match=f"top_k must be at most {_contract.MAX_TOP_K}"):
        DogClient(fake_api.url).predict_batch([make_image()], top_k=_contract.MAX_TOP_K + 1)
    assert fake_api.requests == []


@pytest.mark.parametrize(
    "text,message",
    [
        ("{not json", "api.json is not valid JSON"),
        ('{"top_k": {"default": 5}}', "api.json lacks an entry or has one of the wrong type (KeyError"),
    ],
)
def test_a_broken_contract_is_one_line_not_a_traceback(gen_contracts, tmp_path, monkeypatch, capsys, text, message):
    broken = tmp_path / "api.json"
    broken.write_text(text)
    monkeypatch.setattr(gen_contracts.load, "__defaults__", (broken,))

    assert gen_contracts.main(["--check", "--only", "client"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(message)
