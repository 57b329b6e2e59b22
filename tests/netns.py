"""Run a command with no network: a network namespace with only loopback, and a private mount namespace.

``python tests/netns.py CMD ARGS...`` re-executes itself under ``unshare --net --mount`` (root only),
brings ``lo`` up, overlays /etc and /opt so files the real toolkits write there
(/etc/sagemaker-ts.properties, /opt/ml/checkpoints) stay inside, then execs CMD. Where the namespaces cannot be made (not root, no unshare, a container
without the capability) CMD runs as it is and ``DOGBREED_NETNS`` says why, for the tests to print.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def private(folder: str, scratch: str) -> str:
    """``folder`` as an overlay whose writes land in ``scratch``; '' or the reason it could not be made."""
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    os.makedirs(upper)
    os.makedirs(work)
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={folder},upperdir={upper},workdir={work}", folder],
                          capture_output=True, text=True)
    return "" if done.returncode == 0 else f"{folder} not private ({done.stderr.strip()})"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: netns.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if os.environ.get("DOGBREED_NETNS") == "inside":
        loopback_up()
        notes = []
        # The overlays' writes land here; CMD runs as a child (not exec'd) so they can be removed after it.
        scratch = tempfile.mkdtemp(prefix="netns-")
        mounted = []
        try:
            for folder in ("/etc", "/opt"):  # /etc/sagemaker-ts.properties, /opt/ml/checkpoints
                os.makedirs(folder, exist_ok=True)
                problem = private(folder, os.path.join(scratch, folder.strip("/")))
                notes.append(problem or f"private {folder}")
                if not problem:
                    mounted.append(folder)
            os.environ["DOGBREED_NETNS"] = "loopback-only network namespace, " + ", ".join(notes)
            return subprocess.run(argv).returncode
        finally:
            for folder in reversed(mounted):
                subprocess.run(["umount", "--lazy", folder], capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        reason = "not root" if os.geteuid() != 0 else "no unshare command"
    else:
        probe = subprocess.run([unshare, "--net", "--mount", "true"], capture_output=True, text=True)
        if probe.returncode == 0:
            os.environ["DOGBREED_NETNS"] = "inside"
            os.execv(unshare, [unshare, "--net", "--mount", "--propagation", "private", sys.executable, os.path.abspath(__file__), *argv])
        reason = f"unshare failed: {probe.stderr.strip()}"
    os.environ["DOGBREED_NETNS"] = f"none ({reason}): the network stays reachable; pip is pointed at an unreachable index instead"
    os.execvp(argv[0], argv)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
