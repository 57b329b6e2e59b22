"""Fixtures for the client tests; the fakes themselves live in dogclient_fakes.py."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # works under any --import-mode

from dogclient_fakes import FakeApi


@pytest.fixture
def fake_api():
    api = FakeApi()
    yield api
    api.close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def config_file(tmp_path, monkeypatch) -> Path:
    """An isolated config file location; the user's real config and environment are never read."""
    path = tmp_path / "config" / "dogclient.json"
    monkeypatch.setenv("DOGCLIENT_CONFIG", str(path))
    monkeypatch.delenv("DOGCLIENT_API_URL", raising=False)
    monkeypatch.delenv("DOGCLIENT_API_KEY", raising=False)
    return path
