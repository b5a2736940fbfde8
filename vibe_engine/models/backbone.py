"""SPIN/HMR ResNet-50 image feature extractor (VIBE's frozen backbone).

Parameter names equal those of SPIN's ``HMR`` (torchvision ResNet-50 naming without ``fc``):
``conv1``, ``bn1``, ``layer{1..4}.{b}.conv{1,2,3}``, ``bn{1,2,3}``, ``downsample.{0,1}``.
"""
from __future__ import annotations

import torch
from torch import nn

#: Bottleneck blocks per stage and the stage widths (the block output is 4× the width).
STAGE_BLOCKS = (3, 4, 6, 3)
STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
EXPANSION = 4
STEM_WIDTH = 64
#: Output feature size (channels of the last stage).
FEATURE_DIM = 2048
#: Attribute names of the four stages.
STAGE_NAMES = tuple(f"layer{i + 1}" for i in range(len(STAGE_BLOCKS)))
#: Side of the final feature map for a 224×224 crop; VIBE averages it with AvgPool2d(7).
FINAL_MAP_SIDE = 7


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided) → 1×1 convolutions with BN, ReLU, and a residual connection."""

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * EXPANSION
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) → (B, 4·width, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


def _stage(in_ch: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(in_ch, width, stride)]
    layers += [Bottleneck(width * EXPANSION, width, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class HMRBackbone(nn.Module):
    """ResNet-50 trunk of SPIN's HMR: crops (B, 3, 224, 224) → features (B, 2048).

    Input crops are RGB, scaled to [0, 1] and normalised with the ImageNet mean/std.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, STEM_WIDTH, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = STEM_WIDTH
        for i, (blocks, width, stride) in enumerate(zip(STAGE_BLOCKS, STAGE_WIDTHS, STAGE_STRIDES)):
            setattr(self, f"layer{i + 1}", _stage(in_ch, width, blocks, stride))
            in_ch = width * EXPANSION
        self.avgpool = nn.AvgPool2d(FINAL_MAP_SIDE, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) normalised crops → (B, 2048) features, float32 or wider.

        Each stage runs in the dtype of its own weights (the input is cast at the stage's entry), so
        stages may differ in precision (``set_precision``); the final average pool and the features are
        at least float32: rounding the features themselves to bfloat16 costs ~2 mm of joint error
        (benchmarks/generator.py).
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x.to(self.conv1.weight.dtype)))))
        for name in STAGE_NAMES:
            stage = getattr(self, name)
            x = stage(x.to(stage[0].conv1.weight.dtype))
        return torch.flatten(self.avgpool(x.to(torch.promote_types(x.dtype, torch.float32))), 1)

    def set_precision(self, dtype: torch.dtype, wide_stages: tuple[str, ...] = ()) -> "HMRBackbone":
        """Weights in ``dtype``, except the stages named in ``wide_stages`` (e.g. ("layer4",)): float32."""
        self.to(dtype=dtype)
        for name in wide_stages:
            getattr(self, name).to(dtype=torch.float32)
        return self


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv followed by (inference) bn as one biased conv, computed in float64 then rounded once to
    the conv's dtype."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    bias=True).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        out.weight.copy_(conv.weight.double() * scale[:, None, None, None])
        out.bias.copy_(bn.bias.double() - bn.running_mean.double() * scale)
    return out


def fold_batchnorm(backbone: HMRBackbone) -> HMRBackbone:
    """Fold every BatchNorm into the convolution before it (in place; inference only).

    The same function as the unfolded net (BN in eval mode is affine), with each weight rounded once
    to the dtype it is later cast to, instead of conv and BN rounded separately: bfloat16 joints move
    ~2.5× less from float32 (benchmarks/generator.py). The state dict then no longer has ``bn*`` keys.
    """
    backbone.conv1, backbone.bn1 = _folded(backbone.conv1, backbone.bn1), nn.Identity()
    for name in STAGE_NAMES:
        for block in getattr(backbone, name):
            for i in (1, 2, 3):
                conv, bn = getattr(block, f"conv{i}"), getattr(block, f"bn{i}")
                setattr(block, f"conv{i}", _folded(conv, bn))
                setattr(block, f"bn{i}", nn.Identity())
            if block.downsample is not None:
                block.downsample = nn.Sequential(_folded(block.downsample[0], block.downsample[1]))
    return backbone
