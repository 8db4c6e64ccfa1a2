"""Efficient Channel Attention (ECA, Wang et al. 2020), the attention ECA-UNet (seed 000) puts in
its encoder: global average pooling, a 1-D convolution across the channel axis, a sigmoid, and
each channel scaled by its weight.

A 1-D convolution instead of SE's two fully connected layers: neighbouring channels interact
without the dimensionality reduction SE needs, for k weights per module instead of 2C²/r.
"""
import math

import torch
from torch import nn


def eca_kernel_size(channels: int, gamma: float = 2, b: float = 1) -> int:
    """k = |log2(C)/γ + b/γ| taken to the odd number: truncated, then one up if even (so the
    1-D convolution has a centre). C = 64 → 3, 128 → 5, 256 → 5, 512 → 5."""
    if channels < 1:
        raise ValueError(f"ECA needs at least one channel, not {channels}.")
    t = int(abs(math.log2(channels) / gamma + b / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    def __init__(self, channels: int, gamma: float = 2, b: float = 1):
        super().__init__()
        self.kernel_size = eca_kernel_size(channels, gamma, b)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, self.kernel_size, padding=self.kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.pool(x).flatten(1).unsqueeze(1)            # [N, 1, C]: channels as a sequence
        weights = torch.sigmoid(self.conv(weights)).transpose(1, 2)  # [N, C, 1]
        return x * weights.unsqueeze(-1)
