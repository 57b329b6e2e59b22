"""Command-line and Python client for the dog-breed classifier API.

Usage::

    from dogclient import DogClient

    client = DogClient("https://abc.execute-api.eu-west-1.amazonaws.com/v1", api_key="...")
    prediction = client.predict("dog.jpg", top_k=3)
    print(prediction.top.breed, prediction.top.probability)
"""

from ._version import __version__
from .client import DogClient
from .errors import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    AuthError,
    ConfigError,
    DogClientError,
    ImageError,
)
from .images import DEFAULT_MAX_SIDE, MAX_IMAGE_BYTES, prepare_image
from .models import BreedScore, Prediction

__all__ = [
    "DEFAULT_MAX_SIDE",
    "MAX_IMAGE_BYTES",
    "ApiError",
    "ApiTimeout",
    "ApiUnreachable",
    "AuthError",
    "BreedScore",
    "ConfigError",
    "DogClient",
    "DogClientError",
    "ImageError",
    "Prediction",
    "__version__",
    "prepare_image",
]
