"""Names and defaults that ``--help`` shows, in a module that imports nothing heavy.

``dogbreed train``'s flags (``training/arguments.py``) and the other commands' options use these, so
the flags can be declared without importing torch; the library modules import them from here. The one
exception is ``BACKBONES``: its home is ``serving/architectures.py``, which is copied into every artifact
and must stand alone, so this is a copy, kept equal by tests/trainer/test_cli.py.
"""

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "efficientnet_lite0")
MODES = ("finetune", "frozen", "staged")  # dogbreed train --mode
DEFAULT_SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # train, valid, test of a folder with no split folders
LAYOUTS = ("tar.gz", "dir")  # dogbreed package --format
SERVING_PYTHON = "3.12"  # Python of the serving image (pytorch-inference:2.6.0-cpu-py312)
FORMATS = ("md", "html")  # dogbreed evaluate --format
SPLIT_CHOICES = ("train", "valid", "test", "all")  # dogbreed evaluate --split
