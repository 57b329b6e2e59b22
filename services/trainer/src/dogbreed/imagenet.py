"""ImageNet-1k class names, and readable names for its 118 dog breeds (outputs 151-268).

The raw names come from torchvision's weight metadata, which ships with the package (no download).
Many of them are terse WordNet lemmas ("basset", "Boston bull", "Pembroke"); the starter model
answers with the breed names people use instead ("Basset hound", "Boston terrier", "Pembroke Welsh
corgi"), and keeps the raw names as aliases so evaluation can still match folders named after them
(Stanford Dogs folders use the raw names: ``n02088238-basset``).
"""

from __future__ import annotations

DOG_INDICES = tuple(range(151, 269))  # ImageNet-1k outputs that are dog breeds

# Raw ImageNet name -> the name the breed clubs (and the dogImages data set) use. Names not listed
# only get their first letter capitalised ("beagle" -> "Beagle").
_READABLE = {
    "Japanese spaniel": "Japanese chin",
    "Maltese dog": "Maltese",
    "Pekinese": "Pekingese",
    "Shih-Tzu": "Shih Tzu",
    "basset": "Basset hound",
    "bluetick": "Bluetick coonhound",
    "black-and-tan coonhound": "Black and tan coonhound",
    "redbone": "Redbone coonhound",
    "Staffordshire bullterrier": "Staffordshire bull terrier",
    "wire-haired fox terrier": "Wire fox terrier",
    "Airedale": "Airedale terrier",
    "cairn": "Cairn terrier",
    "Dandie Dinmont": "Dandie Dinmont terrier",
    "Boston bull": "Boston terrier",
    "Scotch terrier": "Scottish terrier",
    "Lhasa": "Lhasa apso",
    "German short-haired pointer": "German shorthaired pointer",
    "Brittany spaniel": "Brittany",
    "clumber": "Clumber spaniel",
    "English springer": "English springer spaniel",
    "malinois": "Belgian malinois",
    "kelpie": "Australian kelpie",
    "Doberman": "Doberman pinscher",
    "Greater Swiss Mountain dog": "Greater Swiss mountain dog",
    "Appenzeller": "Appenzeller sennenhund",
    "EntleBucher": "Entlebucher mountain dog",
    "bull mastiff": "Bullmastiff",
    "malamute": "Alaskan malamute",
    "Leonberg": "Leonberger",
    "chow": "Chow chow",
    "Brabancon griffon": "Brussels griffon",
    "Pembroke": "Pembroke Welsh corgi",
    "Cardigan": "Cardigan Welsh corgi",
}

# Further names that denote the same ImageNet class (used only to match folder names).
_EXTRA_ALIASES = {
    "groenendael": ("Belgian sheepdog",),
    "German shepherd": ("German shepherd dog",),
    "Mexican hairless": ("Xoloitzcuintli",),
}


def imagenet_classes() -> list[str]:
    """The 1000 raw ImageNet-1k class names in output order, from torchvision (offline)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _readable(raw: str) -> str:
    return _READABLE.get(raw) or raw[:1].upper() + raw[1:]


def dog_breed_names() -> list[str]:
    """Readable names of ImageNet's dog breeds, in the order of :data:`DOG_INDICES`."""
    classes = imagenet_classes()
    return [_readable(classes[i]) for i in DOG_INDICES]


def dog_breed_aliases() -> dict[str, tuple[str, ...]]:
    """Readable breed name -> other names of the same class (the raw ImageNet name first)."""
    classes = imagenet_classes()
    aliases = {}
    for i in DOG_INDICES:
        raw = classes[i]
        aliases[_readable(raw)] = (raw, *_EXTRA_ALIASES.get(raw, ()))
    return aliases
