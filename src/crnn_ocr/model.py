"""The CRNN: CNN feature columns -> bidirectional GRU -> per-column class log-probabilities.

Two backbones, both reducing the height by 16 and the width by 4 so that a 128-pixel-wide
image gives 32 columns for CTC:

- ``simple``: five 3x3 conv + BatchNorm + ReLU blocks with max pooling (about 0.5M weights);
- ``resnet18``: conv1..layer3 of torchvision's ResNet-18, with layer2 and layer3 striding by
  2 in height only (the weight shapes are unchanged, so ImageNet weights still load).

The model takes float images in [0, 1] shaped (N, C, H, W) and normalises them itself, so that
exported models and the ``Recognizer`` need no separate preprocessing constants.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


SIMPLE_CHANNELS = (32, 64, 128, 128, 256)


def simple_cnn(channels: int, widths: tuple[int, ...] = SIMPLE_CHANNELS) -> nn.Sequential:
    """Five conv blocks; ``widths`` are their output channels (halve them for a 4x cheaper CNN)."""
    if len(widths) != 5 or min(widths) < 1:
        raise ValueError(f"the simple backbone needs 5 positive channel widths, got {list(widths)}")
    c1, c2, c3, c4, c5 = widths
    return nn.Sequential(
        conv_bn(channels, c1), nn.MaxPool2d(2),  # H/2, W/2
        conv_bn(c1, c2), nn.MaxPool2d(2),  # H/4, W/4
        conv_bn(c2, c3), nn.MaxPool2d((2, 1)),  # H/8: from here on keep every column for CTC
        conv_bn(c3, c4), nn.MaxPool2d((2, 1)),  # H/16
        conv_bn(c4, c5),
    )


def resnet18_cnn(channels: int, imagenet: bool = False) -> nn.Sequential:
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1 if imagenet else None
    # zero_init_residual: every residual branch starts at zero (its last BatchNorm's scale is
    # 0), so each block starts as its shortcut; this shortens the from-scratch plateau where
    # CTC predicts only blanks. Pretrained weights overwrite it.
    r = torchvision.models.resnet18(weights=weights, zero_init_residual=True)
    for layer in (r.layer2, r.layer3):
        layer[0].conv1.stride = (2, 1)
        layer[0].downsample[0].stride = (2, 1)
    if channels == 1:
        # A gray image is an RGB image with three equal channels, so summing the RGB filters
        # gives the same response: pretrained filters keep their meaning.
        conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        with torch.no_grad():
            conv1.weight.copy_(r.conv1.weight.sum(dim=1, keepdim=True))
        r.conv1 = conv1
    return nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)


class CRNN(nn.Module):
    """CNN + BiGRU + linear classifier for CTC.

    Args:
        num_classes: characters + 1 (the CTC blank, index 0).
        backbone: ``"simple"`` or ``"resnet18"``.
        cnn_channels: the simple backbone's five channel widths (default ``SIMPLE_CHANNELS``).
        imagenet: start ``resnet18`` from torchvision's ImageNet weights (downloads once).
        height, width, channels: the input size; it fixes the number of output columns.
        max_label_length: the most CTC columns a label needs (``ctc_required_length``); the
            model refuses to be built if it has fewer output columns.

    >>> model = CRNN(num_classes=20)
    >>> model(torch.rand(2, 1, 32, 128)).shape  # (columns, batch, classes)
    torch.Size([32, 2, 20])
    """

    def __init__(self, num_classes: int, backbone: str = "simple", imagenet: bool = False,
                 height: int = 32, width: int = 128, channels: int = 1,
                 rnn_hidden: int = 128, rnn_layers: int = 2, dropout: float = 0.2, max_label_length: int = 0,
                 cnn_channels: tuple[int, ...] = SIMPLE_CHANNELS):
        super().__init__()
        if backbone == "simple":
            self.cnn = simple_cnn(channels, tuple(cnn_channels))
        elif backbone == "resnet18":
            self.cnn = resnet18_cnn(channels, imagenet)
        else:
            raise ValueError(f"unknown backbone {backbone!r} (expected 'simple' or 'resnet18')")
        if imagenet:
            mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
            if channels == 1:
                mean, std = [sum(mean) / 3], [sum(std) / 3]
        else:
            mean, std = [0.5] * channels, [0.5] * channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

        with torch.no_grad():  # a probe for the output size; eval mode keeps BatchNorm's statistics
            _, c, h, w = self.cnn.eval()(torch.zeros(1, channels, height, width)).shape
        self.cnn.train()
        self.columns = w
        if max_label_length > w:
            raise ValueError(
                f"a {height}x{width} input gives {w} output columns, but the longest label needs "
                f"{max_label_length} (its length plus one blank per repeated neighbour); "
                f"use a wider input (--width) or drop the long labels")
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(c * h, rnn_hidden, num_layers=rnn_layers, bidirectional=True,
                          dropout=dropout if rnn_layers > 1 else 0.0)
        self.fc = nn.Linear(2 * rnn_hidden, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Float images (N, C, H, W) in [0, 1] -> log-probabilities (T, N, num_classes)."""
        x = self.cnn((images - self.mean) / self.std)  # (N, C, H', T)
        x = x.flatten(1, 2).permute(2, 0, 1)  # one feature vector per column: (T, N, C*H')
        x, _ = self.rnn(self.dropout(x))
        return self.fc(self.dropout(x)).log_softmax(2)
