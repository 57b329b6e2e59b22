"""Helpers shared by the Lambda tests (not in conftest.py: `from conftest import` clashes across services)."""

from __future__ import annotations

import base64
import copy
import io
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EVENTS = HERE / "events"
DATA = HERE / "data"
REPO_ROOT = HERE.parents[1]
SERVICE_DIR = REPO_ROOT / "services" / "inference_lambda"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def json_event(document: Any, *, base: str = "predict_json_image.json", query: dict[str, list[str]] | None = None):
    loaded = copy.deepcopy(load_event(base))
    loaded["body"] = document if isinstance(document, str) else json.dumps(document)
    loaded["isBase64Encoded"] = False
    if query is not None:
        loaded["multiValueQueryStringParameters"] = query or None
        loaded["queryStringParameters"] = {k: v[-1] for k, v in query.items()} or None
    return loaded


def raw_event(data: bytes, content_type: str = "image/jpeg", *, query: dict[str, list[str]] | None = None):
    loaded = copy.deepcopy(load_event("predict_raw_jpeg.json"))
    loaded["headers"]["content-type"] = content_type
    loaded["multiValueHeaders"]["content-type"] = [content_type]
    loaded["body"] = base64.b64encode(data).decode()
    loaded["isBase64Encoded"] = True
    loaded["multiValueQueryStringParameters"] = query or None
    loaded["queryStringParameters"] = {k: v[-1] for k, v in (query or {}).items()} or None
    return loaded


def endpoint_response(body: dict[str, Any]) -> dict[str, Any]:
    """An invoke_endpoint response for botocore's Stubber."""

    from botocore.response import StreamingBody

    raw = json.dumps(body).encode()
    return {
        "Body": StreamingBody(io.BytesIO(raw), len(raw)),
        "ContentType": "application/json",
        "InvokedProductionVariant": "AllTraffic",
    }
