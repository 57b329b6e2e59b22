"""The event fixtures are real API Gateway events: each one validates against Powertools' parser models
(written from AWS's event schemas, independently of this project), REST (1.0) and HTTP API (2.0) alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, APIGatewayProxyEventV2Model

EVENTS = Path(__file__).parent / "events"
# A REST API console "Test" invocation sends `"headers": null`; real requests always carry headers.
CONSOLE_TEST_EVENTS = {"health.json"}


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda path: path.name)
def test_fixture_is_a_valid_api_gateway_event(path):
    event = json.loads(path.read_text())
    if path.name in CONSOLE_TEST_EVENTS:
        assert event["headers"] is None
        event = {**event, "headers": {}, "multiValueHeaders": {}}
    model = APIGatewayProxyEventV2Model if event.get("version") == "2.0" else APIGatewayProxyEventModel
    model.model_validate(event)


def test_both_payload_formats_are_covered():
    versions = {json.loads(path.read_text()).get("version", "1.0") for path in EVENTS.glob("*.json")}
    assert versions == {"1.0", "2.0"}
