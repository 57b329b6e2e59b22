"""Report what the training-toolkit suite runs on (see test_training_toolkit.py)."""

import os
import sys

IMAGE_PYTHON = (3, 12)  # pytorch-training:2.8.0-cpu-py312


def pytest_report_header(config):
    python = ".".join(map(str, sys.version_info[:3]))
    note = "" if sys.version_info[:2] == IMAGE_PYTHON else " (the image has 3.12: nearest available)"
    return [f"training toolkit: Python {python}{note}",
            f"network: {os.environ.get('DOGBREED_NETNS', 'not run through tests/netns.py')}"]
