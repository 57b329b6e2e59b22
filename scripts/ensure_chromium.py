#!/usr/bin/env python3
"""Make sure a headless Chromium exists for the browser tests (tests/e2e/test_web_page.py).

Run by tox's `stack` env before the tests. Uses Debian's `chromium` package (Playwright is told to use it:
it never downloads a browser). Installs it with apt-get when it is missing and this machine can (root and
apt-get present); otherwise says why and leaves the tests to skip, except under CI=true, where a missing
browser fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
# fonts-dejavu-core: without any font the screenshots show boxes instead of text.
PACKAGES = ["chromium", "fonts-dejavu-core"]


def main() -> int:
    if os.path.exists(CHROMIUM):
        return 0
    required = os.environ.get("CI", "").lower() == "true"
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        why = "apt-get is not available" if apt_get is None else "installing packages needs root"
        print(f"ensure_chromium: {CHROMIUM} is missing and {why}; install Debian's `chromium` package "
              f"(or set CHROMIUM_BIN) to run the browser tests", file=sys.stderr)
        return 1 if required else 0
    print(f"ensure_chromium: installing {' '.join(PACKAGES)} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run([apt_get, "update", "-qq"], check=True, env=env)
        subprocess.run([apt_get, "install", "-y", "-qq", "--no-install-recommends", *PACKAGES], check=True, env=env)
    except subprocess.CalledProcessError as exc:
        print(f"ensure_chromium: apt-get failed ({exc}); the browser tests will skip", file=sys.stderr)
        return 1 if required else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
