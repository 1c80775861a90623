"""The CRNN: CNN feature columns -> bidirectional GRU -> per-column class log-probabilities.

Two backbones, both reducing the height by 16 and the width by 4 so that a 128-pixel-wide
image gives 32 columns for CTC (the simple one by 8 with ``width_pool=8``):

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

from crnn_ocr.config.schema import SIMPLE_CHANNELS


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers added to their input (He et al., 2016). The second
    BatchNorm's scale starts at 0, so a new block starts as the identity: adding blocks to a
    network does not change what it computes until training finds a use for them."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(width, width), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width))
        nn.init.zeros_(self.body[2].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def simple_cnn(channels: int, widths: tuple[int, ...] = SIMPLE_CHANNELS,
               blocks: tuple[int, ...] = (0, 0, 0, 0, 0), width_pool: int = 4) -> nn.Sequential:
    """Five conv blocks; ``widths`` are their output channels (halve them for a 4x cheaper CNN).
    ``blocks[i]`` residual blocks follow conv block ``i`` (a deeper CNN at the same width).
    ``width_pool`` 8 instead of 4 also halves the width at the fourth pooling: half as many
    columns, each seeing a wider stretch of the image."""
    if len(widths) != 5 or min(widths) < 1:
        raise ValueError(f"the simple backbone needs 5 positive channel widths, got {list(widths)}")
    if len(blocks) != 5 or min(blocks) < 0:
        raise ValueError(f"the simple backbone needs 5 residual-block counts of 0 or more, got {list(blocks)}")
    if width_pool not in (4, 8):
        raise ValueError(f"the simple backbone reduces the width by 4 or 8, not {width_pool}")
    pools = [nn.MaxPool2d(2), nn.MaxPool2d(2),  # H/2, W/2, then H/4, W/4
             nn.MaxPool2d((2, 1)),  # H/8: from here on keep every column for CTC
             nn.MaxPool2d(2 if width_pool == 8 else (2, 1)),  # H/16 (and W/8)
             None]
    layers, c_in = [], channels
    for width, n_blocks, pool in zip(widths, blocks, pools):
        layers.append(conv_bn(c_in, width))
        layers += [ResidualBlock(width) for _ in range(n_blocks)]
        if pool is not None:
            layers.append(pool)
        c_in = width
    return nn.Sequential(*layers)


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
        cnn_blocks: residual blocks after each of the simple backbone's five conv blocks.
        column_pool: ``"flatten"`` (the report's: every row of the CNN's last feature map goes
            to the GRU) or ``"max"`` (the maximum over the remaining height, per channel: a
            smaller GRU input that does not care where in the height a stroke is).
        shortcut: add the training-only "CTC shortcut" head (Retsinas et al., 2022): a 1-D
            convolution from the CNN's columns straight to the classes. ``forward(...,
            shortcut=True)`` returns its log-probabilities too, for an auxiliary CTC loss that
            trains the CNN directly; inference never computes it, and loaded models are built
            without it.
        width_pool: the simple backbone's width reduction, 4 (the default) or 8.
        shortcut_pool: the shortcut head reads the CNN's columns max-pooled by this factor: a
            coarser auxiliary CTC, where fewer columns must stay blank (1 = every column).

    >>> model = CRNN(num_classes=20)
    >>> model(torch.rand(2, 1, 32, 128)).shape  # (columns, batch, classes)
    torch.Size([32, 2, 20])
    """

    def __init__(self, num_classes: int, backbone: str = "simple", imagenet: bool = False,
                 height: int = 32, width: int = 128, channels: int = 1,
                 rnn_hidden: int = 128, rnn_layers: int = 2, dropout: float = 0.2, max_label_length: int = 0,
                 cnn_channels: tuple[int, ...] = SIMPLE_CHANNELS, cnn_blocks: tuple[int, ...] = (0, 0, 0, 0, 0),
                 column_pool: str = "flatten", shortcut: bool = False, width_pool: int = 4,
                 shortcut_pool: int = 1):
        super().__init__()
        if column_pool not in ("flatten", "max"):
            raise ValueError(f"unknown column_pool {column_pool!r} (expected 'flatten' or 'max')")
        if backbone == "simple":
            self.cnn = simple_cnn(channels, tuple(cnn_channels), tuple(cnn_blocks), width_pool)
        elif backbone == "resnet18":
            if width_pool != 4:
                raise ValueError("width_pool: the resnet18 backbone reduces the width by 4 only")
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
        self.column_stride = width_pool  # input pixels per output column
        if max_label_length > w:
            raise ValueError(
                f"a {height}x{width} input gives {w} output columns, but the longest label needs "
                f"{max_label_length} (its length plus one blank per repeated neighbour); "
                f"use a wider input (--width) or drop the long labels")
        self.column_pool = column_pool
        self.feature_rows = h if column_pool == "flatten" else 1  # the GRU's input: channel by row
        features = c * self.feature_rows
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(features, rnn_hidden, num_layers=rnn_layers, bidirectional=True,
                          dropout=dropout if rnn_layers > 1 else 0.0)
        self.fc = nn.Linear(2 * rnn_hidden, num_classes)
        # Kernel 3: each column sees its neighbours, a little context where the GRU sees it all.
        self.shortcut = nn.Conv1d(features, num_classes, 3, padding=1) if shortcut else None
        self.shortcut_pool = shortcut_pool

    @classmethod
    def from_config(cls, config, charset, imagenet: bool = False, training: bool = False) -> CRNN:
        """A fresh CRNN for a ``Config`` and a ``Charset``; ``training`` adds the training-only
        heads (the CTC shortcut, when ``config.model.ctc_shortcut`` is on)."""
        d, m = config.data, config.model
        return cls(len(charset), backbone=m.backbone, imagenet=imagenet, height=d.height, width=d.widest,
                   channels=d.channels, rnn_hidden=m.rnn_hidden, rnn_layers=m.rnn_layers, dropout=m.dropout,
                   cnn_channels=tuple(m.cnn_channels), cnn_blocks=tuple(m.cnn_blocks), column_pool=m.column_pool,
                   shortcut=training and m.ctc_shortcut > 0, width_pool=m.width_pool,
                   shortcut_pool=m.shortcut_pool)

    def columns_of(self, images: torch.Tensor) -> torch.Tensor:
        """Float images (N, C, H, W) in [0, 1] -> one feature vector per column (N, F, T)."""
        x = self.cnn((images - self.mean) / self.std)  # (N, C, H', T)
        return x.flatten(1, 2) if self.column_pool == "flatten" else x.amax(dim=2)

    def forward(self, images: torch.Tensor, shortcut: bool = False):
        """Float images (N, C, H, W) in [0, 1] -> log-probabilities (T, N, num_classes);
        with ``shortcut`` (training), also the shortcut head's, shaped the same."""
        x = self.dropout(self.columns_of(images).permute(2, 0, 1))  # (T, N, F)
        out, _ = self.rnn(x)  # (T, N, 2 * hidden)
        log_probs = self.fc(self.dropout(out)).log_softmax(2)
        if not shortcut:
            return log_probs
        if self.shortcut is None:
            raise ValueError("this model has no CTC shortcut head (built with shortcut=False)")
        columns = x.permute(1, 2, 0)  # (N, F, T)
        if self.shortcut_pool > 1:
            columns = nn.functional.max_pool1d(columns, self.shortcut_pool, ceil_mode=True)
        return log_probs, self.shortcut(columns).permute(2, 0, 1).log_softmax(2)
