"""The serving package's copy of contracts/api.json is current, and the endpoint reads its limits from it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPO_ROOT / "scripts" / "gen_contracts.py"
CONTRACT = REPO_ROOT / "contracts" / "api.json"


@pytest.fixture(scope="module")
def gen_contracts():
    """scripts/gen_contracts.py, imported by path (it is no package's module)."""
    if not GENERATOR.is_file():
        pytest.skip("not run from a repository checkout (scripts/gen_contracts.py is absent)")
    spec = importlib.util.spec_from_file_location("gen_contracts", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("group", ["serving", "readme"])
def test_generated_files_match_the_contract(gen_contracts, group):
    problems = gen_contracts.run(check=True, only=group)
    assert not problems, "\n".join(problems) + "\nfix: python scripts/gen_contracts.py"


def test_the_endpoints_limits_and_codes_are_the_contracts():
    if not CONTRACT.is_file():
        pytest.skip("not run from a repository checkout (contracts/api.json is absent)")
    contract = json.loads(CONTRACT.read_text())
    from dogbreed.serving import decoding, errors

    assert decoding.MAX_TOP_K == contract["top_k"]["endpoint_max"] >= contract["top_k"]["api_max"]
    assert decoding.DEFAULT_TOP_K == contract["top_k"]["default"]
    assert decoding.MAX_IMAGES_PER_REQUEST == contract["batch"]["endpoint_max_images"]
    assert decoding.MAX_BODY_BYTES == contract["bytes"]["endpoint_max_body"]
    assert decoding.MAX_PIXELS == contract["endpoint_max_pixels"]
    assert set(decoding.CONTENT_TYPES) == {*contract["content_types"]["endpoint_image"], *contract["content_types"]["json"]}
    endpoint_codes = {code: e["status"] for code, e in contract["errors"].items() if "endpoint" in e["layers"]}
    assert errors.ERROR_CODES == endpoint_codes
    assert errors.ServingError("invalid_image", "x").status == contract["errors"]["invalid_image"]["status"]
