"""The original framework's networks: the 16 features read as a sequence of 16 scalars.

Their size is dominated by the last linear layer (``fc_size x n_out``: 197M parameters at
96000 samples). Each is an :class:`edc.models.surrogate.EdcNet`.
"""
from __future__ import annotations

import torch
from torch import nn

from edc.models.surrogate import EdcNet


class _Head(nn.Module):
    """FC(``fc_size``) + ReLU + dropout + linear to ``n_curves x n_out`` (the originals' head)."""

    def __init__(self, n_in: int, n_out: int, fc_size: int, dropout: float, n_curves: int = 1):
        super().__init__()
        self.shape = (n_curves, n_out)
        self.net = nn.Sequential(nn.Linear(n_in, fc_size), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(fc_size, n_curves * n_out))

    def forward(self, h):
        return self.net(h).view(len(h), *self.shape)


class LSTMModel(EdcNet):
    """The original LSTM: features as a length-16 sequence -> LSTM -> FC head."""

    def __init__(self, n_features: int, n_out: int, hidden_size: int = 128, num_layers: int = 2,
                 fc_size: int = 2048, dropout: float = 0.3, n_curves: int = 1):
        super().__init__()
        self.n_curves = n_curves
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(hidden_size, n_out, fc_size, dropout, n_curves)

    def forward(self, x, raw=None):
        out, _ = self.lstm(x.unsqueeze(-1))
        return self.head(out[:, -1])


def _conv_path(channels, kernel_size: int):
    layers, c_in = [], 1
    for c_out in channels:
        layers += [nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(c_out), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers)


class HybridV1(EdcNet):
    """CNN then LSTM: 1-D convolutions over the feature sequence feed an LSTM."""

    def __init__(self, n_features: int, n_out: int, conv_channels=(32, 64), kernel_size: int = 3,
                 hidden_size: int = 128, num_layers: int = 2, fc_size: int = 2048, dropout: float = 0.3,
                 n_curves: int = 1):
        super().__init__()
        self.n_curves = n_curves
        self.cnn = _conv_path(conv_channels, kernel_size)
        self.lstm = nn.LSTM(conv_channels[-1], hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(hidden_size, n_out, fc_size, dropout, n_curves)

    def forward(self, x, raw=None):
        h = self.cnn(x.unsqueeze(1)).transpose(1, 2)  # (batch, 16, channels)
        out, _ = self.lstm(h)
        return self.head(out[:, -1])


class HybridV2(EdcNet):
    """Parallel CNN and LSTM paths over the feature sequence, concatenated into the head."""

    def __init__(self, n_features: int, n_out: int, conv_channels=(32, 64), kernel_size: int = 3,
                 hidden_size: int = 128, num_layers: int = 2, fc_size: int = 2048, dropout: float = 0.3,
                 n_curves: int = 1):
        super().__init__()
        self.n_curves = n_curves
        self.cnn = _conv_path(conv_channels, kernel_size)
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(conv_channels[-1] * n_features + hidden_size, n_out, fc_size, dropout, n_curves)

    def forward(self, x, raw=None):
        conv = self.cnn(x.unsqueeze(1)).flatten(1)
        out, _ = self.lstm(x.unsqueeze(-1))
        return self.head(torch.cat([conv, out[:, -1]], dim=1))


class HybridV3(EdcNet):
    """Multi-scale CNN (parallel kernels) then LSTM."""

    def __init__(self, n_features: int, n_out: int, conv_channels=(32, 64), kernel_sizes=(3, 5, 7),
                 hidden_size: int = 128, num_layers: int = 2, fc_size: int = 2048, dropout: float = 0.3,
                 n_curves: int = 1):
        super().__init__()
        self.n_curves = n_curves
        self.paths = nn.ModuleList(_conv_path(conv_channels, k) for k in kernel_sizes)
        self.lstm = nn.LSTM(conv_channels[-1] * len(kernel_sizes), hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(hidden_size, n_out, fc_size, dropout, n_curves)

    def forward(self, x, raw=None):
        h = torch.cat([path(x.unsqueeze(1)) for path in self.paths], dim=1).transpose(1, 2)
        out, _ = self.lstm(h)
        return self.head(out[:, -1])
