"""SageMaker script-mode entry point for ``dogbreed train``.

Use it with ``source_dir=services/trainer`` and ``entry_point=sagemaker_entry/train.py`` (the SageMaker
PyTorch estimator) when the package is not installed in the training image: the ``src/`` folder next to
this one is put on ``sys.path``. Hyperparameters arrive as ``--name value`` arguments, exactly as
``dogbreed train`` takes them. (``dogbreed launch train`` builds its own bundle with an equivalent entry.)
"""

import sys
from pathlib import Path

try:
    import dogbreed.train  # noqa: F401 -- installed
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dogbreed.train import cli_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli_main(prog="train.py"))
