"""dogbreed: train, evaluate, package and serve a dog-breed classifier."""

__version__ = "0.1.0"
