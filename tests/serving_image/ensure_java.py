"""TorchServe's frontend is Java: install a headless JRE with apt-get when none is on PATH (root only).

Runs before tests/netns.py takes the network away. Never fails the run itself: without Java the tests
skip with the reason (and fail when CI=true).
"""

import os
import shutil
import subprocess
import sys

if shutil.which("java"):
    sys.exit(0)
if os.geteuid() != 0 or not shutil.which("apt-get"):
    print("no java and no way to install it here (needs root and apt-get): the serving-stack tests will skip", file=sys.stderr)
    sys.exit(0)
env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "default-jre-headless"]):
    if subprocess.run(command, env=env).returncode != 0:
        print(f"{' '.join(command)} failed: the serving-stack tests will skip", file=sys.stderr)
        sys.exit(0)
