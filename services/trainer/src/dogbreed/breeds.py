"""Breed names: from folder and file names, and matched to a model's classes (one definition).

Folders (``096.Labrador_retriever``, ``n02099712-Labrador_retriever``) and photo files
(``Labrador_retriever_06449.jpg``) name breeds with underscores, prefixes and any case; a model's
classes are readable names (``Labrador retriever``), and the starter model's are renamed ImageNet
classes (``Basset hound`` for ``basset``). Everything that compares breed names goes through
:func:`breed_key`, so ``Siberian_husky``, ``siberian-husky`` and ``Siberian husky`` are one breed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_DOGIMAGES_PREFIX = re.compile(r"^\d+\.")  # 096.Labrador_retriever
_STANFORD_PREFIX = re.compile(r"^n\d{8}-")  # n02099712-Labrador_retriever
_FILE_NUMBER = re.compile(r"_\d+$")  # Labrador_retriever_06449


def breed_from_folder(folder_name: str) -> str:
    """The human-readable breed of a class folder: ``096.Labrador_retriever`` -> ``Labrador retriever``."""
    name = _STANFORD_PREFIX.sub("", _DOGIMAGES_PREFIX.sub("", folder_name))
    name = " ".join(name.replace("_", " ").split())
    if not name:
        name = folder_name
    return name[:1].upper() + name[1:]


def breed_from_file_name(stem: str) -> str:
    """The label of a photo named ``Label_NNNNN``: ``Labrador_retriever_06449`` -> ``Labrador retriever``."""
    return breed_from_folder(_FILE_NUMBER.sub("", stem))


def breed_key(name: str) -> str:
    """What breed names are compared by: case, spaces, ``_`` and ``-`` ignored (``siberian husky``)."""
    return " ".join(re.sub(r"[_\-\s]+", " ", name).split()).casefold()


def same_breed(a: str, b: str) -> bool:
    return breed_key(a) == breed_key(b)


def class_lookup(classes: Sequence[str], aliases: Mapping[str, Sequence[str]] | None = None) -> dict[str, int]:
    """:func:`breed_key` of each class name (and of its aliases) -> class index.

    ``aliases`` (class name -> other names) defaults to the ImageNet names of the starter model's
    breeds (:func:`dogbreed.imagenet.dog_breed_aliases`). Exact names win over aliases.
    """
    if aliases is None:
        from .imagenet import dog_breed_aliases

        aliases = dog_breed_aliases()
    lookup: dict[str, int] = {}
    for index, name in enumerate(classes):
        for alias in aliases.get(name, ()):
            lookup.setdefault(breed_key(alias), index)
    for index, name in enumerate(classes):
        lookup[breed_key(name)] = index
    return lookup


def match_breed(name: str, lookup: Mapping[str, int]) -> int | None:
    """The class index :func:`class_lookup` gives ``name``, or None when it names no class."""
    return lookup.get(breed_key(name))
