"""A per-band network after the description of the paper authors' 2026 model (``convNetModel/`` of
TUIlmenauAMS/LSTM-Model-Energy-Decay-Curves): the room features and the band's centre frequency go
through an MLP encoder, a 1-D convolutional decoder draws the curve, made monotone as
``exp(-cumsum(softplus))``. Written from that description, not from their code; one network serves
every band (and the broadband curve, as one more "band").
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from edc.acoustics.iso3382 import OCTAVE_BANDS_HZ
from edc.models.mlp import mlp
from edc.models.surrogate import EdcNet

DB_PER_NEPER = 10.0 / math.log(10.0)  # 10 log10(e^-x) = -4.34 x dB


class BandConvNet(EdcNet):
    """Features ``(b, n_features)`` and a band token -> the band's level in dB, ``(b, n_curves, n_out)``.

    The token of an octave band is ``log2(f / 1000 Hz)``; the broadband curve (channel 0) has its own
    flag. The encoder maps features and token to ``channels x length`` values, the decoder doubles the
    length ``n_upsample`` times (nearest-neighbour upsampling and a convolution each), the last layer
    gives per-sample decrements (softplus, so the curve never rises), interpolated to ``n_out``.
    """

    def __init__(self, n_features: int, n_out: int, n_curves: int = 1, hidden=(256, 256), channels: int = 16,
                 length: int = 125, n_upsample: int = 4, kernel_size: int = 5):
        super().__init__()
        self.n_out, self.n_curves, self.channels, self.length = n_out, n_curves, channels, length
        tokens = [[0.0, 1.0]] + [[math.log2(f / 1000.0), 0.0] for f in OCTAVE_BANDS_HZ]  # (log2 f, broadband)
        self.register_buffer("tokens", torch.tensor(tokens[:n_curves] if n_curves > 1 else tokens[:1]), persistent=False)
        self.encoder = mlp(n_features + 2, hidden, channels * length)
        layers = []
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2), nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2),
                       nn.GELU()]
        self.decoder = nn.Sequential(*layers, nn.Conv1d(channels, 1, kernel_size, padding=kernel_size // 2))
        nn.init.constant_(self.decoder[-1].bias, -3.5)  # start near 0.12 dB/ms (T about 0.5 s), not 3 dB/ms

    def forward(self, x, raw=None):
        b, c = len(x), len(self.tokens)
        inputs = torch.cat([x[:, None, :].expand(-1, c, -1), self.tokens.expand(b, -1, -1)], -1).flatten(0, 1)
        h = self.decoder(self.encoder(inputs).view(b * c, self.channels, self.length))  # (b c, 1, L')
        decrements = F.interpolate(F.softplus(h), size=self.n_out - 1, mode="linear", align_corners=True)[:, 0]
        level = -DB_PER_NEPER * torch.cumsum(decrements, -1)
        return torch.cat([torch.zeros_like(level[:, :1]), level], -1).view(b, c, self.n_out)
