"""Fill the wheel cache the tests package optimised artifacts from (run with the trainer's python).

`dogbreed package --runtime onnx` vendors onnxruntime's wheels for the serving image's Python and CPU;
the tests package offline inside a network namespace, so the wheels are fetched here, before, into
the same cache `dogbreed package --wheel-dir` reads.
"""

import sys
import tempfile
from pathlib import Path

from dogbreed.artifact import serving_requirements, vendor_wheels

cache = Path(sys.argv[1])
for platform in ("x86_64", "aarch64"):
    with tempfile.TemporaryDirectory() as scratch:
        names = vendor_wheels(serving_requirements("onnx"), Path(scratch), platform=platform, wheel_cache=cache)
    print(f"{platform}: {', '.join(names)}")
