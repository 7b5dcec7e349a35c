"""Networks mapping room features to an EDC on the training grid.

Every model has ``forward(x, raw) -> (batch, n_out)``: ``x`` is the scaled feature
vector ``(batch, n_features)``, ``raw`` the same rooms in physical units
``(batch, 16)`` (m, absorption); ``n_out`` is the number of grid samples. The
output lives in the target space of the data (see ``edc.targets``).

The originals (``lstm``, ``hybrid_v1..v3``) read the 16 features as a sequence of
16 scalars; their size is dominated by the last linear layer (``fc_size x n_out``:
197M parameters at 96000 samples).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edc.physics import barron_edc, geometry, reverberation_time


class _Head(nn.Module):
    """FC(``fc_size``) + ReLU + dropout + linear to ``n_out`` (the originals' head)."""

    def __init__(self, n_in: int, n_out: int, fc_size: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, fc_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc_size, n_out))

    def forward(self, h):
        return self.net(h)


class LSTMModel(nn.Module):
    """The original LSTM: features as a length-16 sequence -> LSTM -> FC head."""

    def __init__(self, n_features: int, n_out: int, hidden_size: int = 128, num_layers: int = 2,
                 fc_size: int = 2048, dropout: float = 0.3):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(hidden_size, n_out, fc_size, dropout)

    def forward(self, x, raw=None):
        out, _ = self.lstm(x.unsqueeze(-1))
        return self.head(out[:, -1])


def _conv_path(channels, kernel_size: int):
    layers, c_in = [], 1
    for c_out in channels:
        layers += [nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(c_out), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers)


class HybridV1(nn.Module):
    """CNN then LSTM: 1-D convolutions over the feature sequence feed an LSTM."""

    def __init__(self, n_features: int, n_out: int, conv_channels=(32, 64), kernel_size: int = 3,
                 hidden_size: int = 128, num_layers: int = 2, fc_size: int = 2048, dropout: float = 0.3):
        super().__init__()
        self.cnn = _conv_path(conv_channels, kernel_size)
        self.lstm = nn.LSTM(conv_channels[-1], hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(hidden_size, n_out, fc_size, dropout)

    def forward(self, x, raw=None):
        h = self.cnn(x.unsqueeze(1)).transpose(1, 2)  # (batch, 16, channels)
        out, _ = self.lstm(h)
        return self.head(out[:, -1])


class HybridV2(nn.Module):
    """Parallel CNN and LSTM paths over the feature sequence, concatenated into the head."""

    def __init__(self, n_features: int, n_out: int, conv_channels=(32, 64), kernel_size: int = 3,
                 hidden_size: int = 128, num_layers: int = 2, fc_size: int = 2048, dropout: float = 0.3):
        super().__init__()
        self.cnn = _conv_path(conv_channels, kernel_size)
        self.lstm = nn.LSTM(1, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(conv_channels[-1] * n_features + hidden_size, n_out, fc_size, dropout)

    def forward(self, x, raw=None):
        conv = self.cnn(x.unsqueeze(1)).flatten(1)
        out, _ = self.lstm(x.unsqueeze(-1))
        return self.head(torch.cat([conv, out[:, -1]], dim=1))


class HybridV3(nn.Module):
    """Multi-scale CNN (parallel kernels) then LSTM."""

    def __init__(self, n_features: int, n_out: int, conv_channels=(32, 64), kernel_sizes=(3, 5, 7),
                 hidden_size: int = 128, num_layers: int = 2, fc_size: int = 2048, dropout: float = 0.3):
        super().__init__()
        self.paths = nn.ModuleList(_conv_path(conv_channels, k) for k in kernel_sizes)
        self.lstm = nn.LSTM(conv_channels[-1] * len(kernel_sizes), hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0)
        self.head = _Head(hidden_size, n_out, fc_size, dropout)

    def forward(self, x, raw=None):
        h = torch.cat([path(x.unsqueeze(1)) for path in self.paths], dim=1).transpose(1, 2)
        out, _ = self.lstm(h)
        return self.head(out[:, -1])


def _mlp(n_in: int, hidden, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    layers = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.GELU()] + ([nn.Dropout(dropout)] if dropout else [])
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class MLP(nn.Module):
    """A plain multilayer perceptron from the features to the curve."""

    def __init__(self, n_features: int, n_out: int, hidden=(512, 512, 512), dropout: float = 0.0):
        super().__init__()
        self.net = _mlp(n_features, hidden, n_out, dropout)

    def forward(self, x, raw=None):
        return self.net(x)


class PhysicsEDC(nn.Module):
    """Physics-informed model: Barron's EDC as a prior, corrected by an MLP, in dB.

    From the raw features it computes what the grid cannot teach (volume, surface,
    distance, Eyring decay per band, the Barron prior curve). An MLP on the scaled
    features plus these quantities predicts per-sample decrements in dB added to the
    prior's; a softplus keeps every decrement positive, so the predicted level
    ``L(t) = -sum decrements`` starts at 0 dB and never rises. Output: ``(batch, n_out)``
    level in dB (use with ``data.target=db``).
    """

    def __init__(self, n_features: int, n_out: int, fs: float, hidden=(512, 512, 512), n_knots: int | None = None,
                 floor_db: float = -100.0, dropout: float = 0.0):
        super().__init__()
        self.n_out, self.fs, self.floor_db = n_out, fs, floor_db
        n_knots = n_knots or n_out - 1  # None: one correction per grid step
        n_physics = 3 + 7 + 2
        self.net = _mlp(n_features + n_physics, hidden, n_knots, dropout)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def physics_features(self, raw):
        volume, surface, distance = geometry(raw)
        decay = reverberation_time(raw, "eyring")
        mean_free_path = 4.0 * volume / surface
        drr = 100.0 / distance**2 / (31200.0 * decay.mean(-1) / volume)
        return torch.cat([torch.stack([volume.log(), surface.log(), distance], -1), decay.log(),
                          torch.stack([mean_free_path, drr.log()], -1)], -1)

    def prior_decrements(self, raw):
        level = 10.0 * torch.log10(barron_edc(raw, self.fs, self.n_out).clamp(min=1e-30))
        level = level.clamp(min=self.floor_db - 20.0).to(raw.dtype)
        return -torch.diff(level, dim=-1)  # (batch, n_out - 1), >= 0

    def forward(self, x, raw):
        knots = self.net(torch.cat([x, self.physics_features(raw)], dim=-1))
        correction = knots if knots.shape[-1] == self.n_out - 1 else F.interpolate(
            knots.unsqueeze(1), size=self.n_out - 1, mode="linear", align_corners=True).squeeze(1)
        prior = self.prior_decrements(raw)
        # softplus^-1 of the prior decrement plus a learned correction, then softplus.
        inv_prior = prior + torch.log(-torch.expm1(-prior.clamp(min=1e-4)))
        decrements = F.softplus(inv_prior + correction)
        level = -torch.cumsum(decrements, dim=-1)
        return torch.cat([torch.zeros_like(level[:, :1]), level], dim=-1).clamp(min=self.floor_db)
