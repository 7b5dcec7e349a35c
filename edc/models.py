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

from edc import physics
from edc.targets import Scaler


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
    """The simulator's physics with learned late decay, corrected by a monotone dB residual.

    The EDC is the image sources' part (exact, order <= 3, their pulses added coherently as
    the simulator adds them, see :func:`edc.physics.coherent_image_energy`) plus, per
    simulated band ``b`` (8, see :mod:`edc.physics`), a late part ``A_b exp(-13.82 t / T_b)``
    switched on by a ramp around the first 4th-order arrival. One MLP shared by the bands
    (it sees one band's absorption, never the others', so it cannot memorise absorption
    profiles) corrects Eyring's ``T_b``, Barron's level ``A_b`` and the ramp; the late bands
    are summed with learned energy shares. The sum is normalised to 0 dB at t = 0. A second
    MLP adds corrections to the per-sample decrements (softplus keeps them positive), on
    knots every ``early_step_ms`` up to ``early_ms`` and evenly spaced after. Output:
    ``(batch, n_out)`` level in dB, non-increasing, from 0 dB (use with ``data.target=db``).
    """

    N_GLOBAL, N_BAND, N_BANDS = 9 + 5, 6, 8

    def __init__(self, n_features: int, n_out: int, fs: float, band_hidden=(256, 256, 256),
                 hidden=(256, 256, 256), n_knots: int = 100, early_ms: float = 100.0, early_step_ms: float = 2.0,
                 floor_db: float = -100.0, dropout: float = 0.0):
        super().__init__()
        self.n_out, self.fs, self.floor_db = n_out, float(fs), floor_db
        n_in = self.N_GLOBAL + self.N_BAND + self.N_BANDS
        self.feature_scaler = Scaler("standard", n_in)
        self.band_net = _mlp(n_in, band_hidden, 4, dropout)  # log T, log A, log t0, log ramp width
        self.residual_net = _mlp(n_in * self.N_BANDS, hidden, n_knots, dropout)
        for last in (self.band_net[-1], self.residual_net[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.band_logit = nn.Parameter(torch.tensor(physics.BAND_ENERGY).log())
        self.register_buffer("knots", _knot_matrix(n_out, fs, n_knots, early_ms, early_step_ms), persistent=False)
        self.register_buffer("t", torch.arange(n_out) / self.fs, persistent=False)

    def band_inputs(self, raw):
        """Unscaled inputs ``(b, 8, 28)`` of the band MLP and the physics the forward pass needs."""
        volume, surface, distance = physics.geometry(raw)
        decay = physics.reverberation_time(raw, "eyring")  # (b, 8)
        arrival_4 = physics.first_arrival(raw, physics.ISM_ORDER + 1)
        sample, ism = physics.image_sources(raw, self.fs)  # (b, k), (b, k, 8)
        alpha = physics.band_absorption(raw)
        air = torch.as_tensor(physics.AIR_ABSORPTION, dtype=raw.dtype, device=raw.device)
        mean_free_path = 4.0 * volume / surface
        glob = torch.cat([raw[:, :9], torch.stack([volume.log(), surface.log(), distance.log(),
                                                   mean_free_path.log(), arrival_4.log()], -1)], -1)
        early = min(round(0.02 * self.fs), self.n_out - 1)
        band = torch.stack([alpha, torch.log(-torch.log1p(-alpha.clamp(max=0.999)) + 1e-3),
                            (air * mean_free_path[:, None]).log(), decay.log(),
                            (ism.sum(1) * distance[:, None] ** 2).log(),  # all images, then those from 20 ms
                            ((ism * (sample >= early)[..., None]).sum(1) * distance[:, None] ** 2 + 1e-9).log()], -1)
        onehot = torch.eye(self.N_BANDS, dtype=raw.dtype, device=raw.device).expand(len(raw), -1, -1)
        inputs = torch.cat([glob[:, None, :].expand(-1, self.N_BANDS, -1), band, onehot], -1)
        return inputs, decay, volume, distance, arrival_4

    def fit_features(self, raw: torch.Tensor) -> None:
        """Fit the input scaler on the training rooms' raw features ``(n, 16)``."""
        with torch.no_grad():
            self.feature_scaler.fit(self.band_inputs(raw.double())[0].flatten(0, 1))

    def forward(self, x, raw):
        inputs, decay, volume, distance, arrival_4 = self.band_inputs(raw.float())
        z = self.feature_scaler(inputs)
        o = self.band_net(z)  # (b, 8, 4)
        decay = decay * torch.exp(o[..., 0])
        rate = physics.DECAY_60_DB / decay
        level = 312.0 * decay / volume[:, None] * torch.exp(o[..., 1])  # Barron's 31200 T / V per 100 / r^2
        onset = arrival_4[:, None] * torch.exp(o[..., 2])
        width = 0.002 * torch.exp(o[..., 3])
        weights = torch.softmax(self.band_logit, 0)  # the bands' energy shares
        # late energy density per band, exp(log(w A k / fs) - k (t + r / c)), times the ramp ...
        log_amplitude = torch.log(weights * level * rate / self.fs) - rate * (distance / physics.SPEED_OF_SOUND)[:, None]
        density = torch.addcmul(log_amplitude[..., None], -rate[..., None], self.t).exp_()  # (b, 8, n)
        # ... sigmoid((t - onset) / width), which is 1.0 in float32 beyond 20 widths: apply it up to there
        n_ramp = min(self.n_out, int(torch.ceil((onset + 20.0 * width).amax() * self.fs)) + 1)
        ramp = torch.sigmoid((self.t[:n_ramp] - onset[..., None]) / width[..., None])
        late = torch.cat([(density[..., :n_ramp] * ramp).sum(1), density[..., n_ramp:].sum(1)], -1)  # all bands
        sample, images = physics.coherent_image_energy(raw.float(), self.fs)
        hist = F.pad(late, (0, 1)).scatter_add(-1, sample.clamp(max=self.n_out), images)
        energy = physics.backward_integral(hist)[:, :self.n_out]  # (b, n): images + late, all bands
        prior = 10.0 * torch.log10((energy / energy[:, :1]).clamp(min=10.0 ** (self.floor_db / 10.0)))
        decrements = -torch.diff(prior, dim=-1)
        inv = decrements + torch.log(-torch.expm1(-decrements.clamp(min=1e-4)))  # softplus^-1
        correction = self.residual_net(z.flatten(1)) @ self.knots.T
        level_db = -torch.cumsum(F.softplus(inv + correction), dim=-1)
        return torch.cat([torch.zeros_like(level_db[:, :1]), level_db], -1).clamp(min=self.floor_db)


def _knot_matrix(n_out: int, fs: float, n_knots: int, early_ms: float, early_step_ms: float) -> torch.Tensor:
    """``(n_out - 1, n_knots)`` linear interpolation from knots to the decrements' times (ms)."""
    end_ms = (n_out - 1) * 1000.0 / fs
    early = torch.arange(0.0, min(early_ms, end_ms), early_step_ms)
    knots = torch.cat([early, torch.linspace(early_ms, end_ms, max(n_knots - len(early), 2))])[:n_knots]
    times = torch.arange(1, n_out) * 1000.0 / fs
    right = torch.searchsorted(knots, times).clamp(1, len(knots) - 1)
    frac = ((times - knots[right - 1]) / (knots[right] - knots[right - 1])).clamp(0.0, 1.0)
    matrix = torch.zeros(n_out - 1, n_knots)
    rows = torch.arange(n_out - 1)
    matrix[rows, right - 1] = 1.0 - frac
    matrix[rows, right] = frac
    return matrix
