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
        """(B, 3, 224, 224) normalised crops → (B, 2048) features (dtype of the weights)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)
