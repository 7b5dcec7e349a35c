"""Scalers and the target space the networks are trained in (configured under ``model.``).

A :class:`Scaler` is fitted on the training split only (by
:meth:`edc.models.surrogate.Surrogate.fit_scalers`) and kept as buffers, so it is saved
inside the checkpoint. :class:`TargetTransform` maps linear-energy EDCs to
the model's target space and back, differentiably:

* ``representation=linear``: the EDC itself (the original framework);
* ``representation=db``: ``10 log10 E`` floored at ``floor_db`` (default -100 dB);

followed by a per-sample scaler.
"""
from __future__ import annotations

import math

import torch
from torch import nn

SCALERS = ("standard", "minmax", "robust", "none")
REPRESENTATIONS = ("linear", "db")


class Scaler(nn.Module):
    """Per-column affine scaler ``(x - shift) / scale``; columns of constant value get scale 1."""

    def __init__(self, kind: str, n_columns: int):
        super().__init__()
        if kind not in SCALERS:
            raise ValueError(f"scaler must be one of {SCALERS}, got {kind!r}")
        self.kind = kind
        self.register_buffer("shift", torch.zeros(n_columns))
        self.register_buffer("scale", torch.ones(n_columns))

    def fit(self, data: torch.Tensor) -> "Scaler":
        """Fit on ``(n_rows, n_columns)`` training data."""
        data = data.double()
        if self.kind == "standard":
            shift, scale = data.mean(0), data.std(0, unbiased=False)
        elif self.kind == "minmax":
            shift, scale = data.amin(0), data.amax(0) - data.amin(0)
        elif self.kind == "robust":
            q = torch.quantile(data, torch.tensor([0.25, 0.5, 0.75], dtype=data.dtype), dim=0)
            shift, scale = q[1], q[2] - q[0]
        else:
            shift, scale = torch.zeros_like(data[0]), torch.ones_like(data[0])
        scale = torch.where(scale > 1e-12 * scale.abs().max().clamp(min=1e-30), scale, torch.ones_like(scale))
        self.shift.copy_(shift.float())
        self.scale.copy_(scale.float())
        return self

    def forward(self, x):
        return (x - self.shift) / self.scale

    def inverse(self, y):
        return y * self.scale + self.shift


class TargetTransform(nn.Module):
    """Linear EDC ``(batch, n)`` <-> model target space ``(batch, n)``."""

    def __init__(self, representation: str, scaler: str, n_samples: int, floor_db: float = -100.0):
        super().__init__()
        if representation not in REPRESENTATIONS:
            raise ValueError(f"target representation must be one of {REPRESENTATIONS}, got {representation!r}")
        self.representation, self.floor_db = representation, floor_db
        self.scaler = Scaler(scaler, n_samples)

    def to_representation(self, edc):
        if self.representation == "linear":
            return edc
        return 10.0 * torch.log10(edc.clamp(min=10.0 ** (self.floor_db / 10.0)))

    def fit(self, edc: torch.Tensor) -> "TargetTransform":
        self.scaler.fit(self.to_representation(edc))
        return self

    def encode(self, edc):
        """Linear EDC -> scaled target."""
        return self.scaler(self.to_representation(edc))

    def decode(self, y):
        """Scaled target -> linear EDC (differentiable)."""
        value = self.scaler.inverse(y)
        return value if self.representation == "linear" else torch.exp(value * (math.log(10.0) / 10.0))  # 10^(dB/10)
