"""One module per ``dogbreed`` subcommand, named after it (``dogbreed package`` is ``commands/package.py``),
each defining ``command``, the thin click command that ``dogbreed.cli`` lists. A command module imports
nothing heavy at import time (no torch, torchvision, numpy, onnxruntime, PIL; its choices and defaults come
from ``dogbreed.choices`` or other torch-free modules), so ``dogbreed SUB --help`` and a mistyped flag answer
at once; the work is done by library modules that the callback imports when the command runs.
"""
