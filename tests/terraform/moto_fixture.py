"""Start and stop terraform/scripts/moto_server.py (moto plus the stack's extension) for a test."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tf_support import SCRIPTS_DIR

REGION = "us-east-1"
START_TIMEOUT_SECONDS = 60


@contextmanager
def moto_server() -> Iterator[str]:
    """Yield the endpoint URL of a fresh moto server on 127.0.0.1 and a free port; stop it afterwards."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPTS_DIR / "moto_server.py"), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        endpoint = _read_endpoint(process)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _read_endpoint(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server.py exited with {process.returncode} before serving")
        if selector.select(timeout=0.5):
            line = process.stdout.readline().strip()
            if line.startswith("MOTO_ENDPOINT="):
                return line.split("=", 1)[1]
    raise RuntimeError(f"moto_server.py printed no MOTO_ENDPOINT within {START_TIMEOUT_SECONDS} s")


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
