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


ROBUST_ROWS = 8192  # the robust scaler's quantiles come from at most this many rows (the first chunks)


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
        return self.fit_chunks([data])

    def fit_chunks(self, chunks) -> "Scaler":
        """Fit on training data given as ``(rows, n_columns)`` chunks, in the memory of one chunk
        (standard: running sums in float64; minmax: running extremes; robust: the first ROBUST_ROWS rows)."""
        count, total, squares, low, high, kept = 0, 0.0, 0.0, None, None, []
        for chunk in chunks:
            chunk = chunk.double()
            count += len(chunk)
            if self.kind == "standard":
                total, squares = total + chunk.sum(0), squares + chunk.square().sum(0)
            elif self.kind == "minmax":
                low = chunk.amin(0) if low is None else torch.minimum(low, chunk.amin(0))
                high = chunk.amax(0) if high is None else torch.maximum(high, chunk.amax(0))
            elif self.kind == "robust" and sum(map(len, kept)) < ROBUST_ROWS:
                kept.append(chunk)
        if self.kind == "standard":
            shift = total / count
            scale = (squares / count - shift.square()).clamp(min=0.0).sqrt()
        elif self.kind == "minmax":
            shift, scale = low, high - low
        elif self.kind == "robust":
            q = torch.quantile(torch.cat(kept)[:ROBUST_ROWS], torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64),
                               dim=0)
            shift, scale = q[1], q[2] - q[0]
        else:
            return self
        scale = torch.where(scale > 1e-12 * scale.abs().max().clamp(min=1e-30), scale, torch.ones_like(scale))
        self.shift.copy_(shift.float())
        self.scale.copy_(scale.float())
        return self

    def forward(self, x):
        return x if self.kind == "none" else (x - self.shift) / self.scale

    def inverse(self, y):
        return y if self.kind == "none" else y * self.scale + self.shift


class TargetTransform(nn.Module):
    """Linear curves ``(batch, C, n)`` <-> the network's target space ``(batch, C, n)``; the scaler has one
    column per curve and sample (``C * n``)."""

    def __init__(self, representation: str, scaler: str, n_columns: int, floor_db: float = -100.0):
        super().__init__()
        if representation not in REPRESENTATIONS:
            raise ValueError(f"target representation must be one of {REPRESENTATIONS}, got {representation!r}")
        self.representation, self.floor_db = representation, floor_db
        self.scaler = Scaler(scaler, n_columns)

    @property
    def is_level_db(self) -> bool:
        """Whether the target is the level in dB itself (no scaling): decoding is ``10^(y / 10)``."""
        return self.representation == "db" and self.scaler.kind == "none"

    def to_representation(self, edc):
        if self.representation == "linear":
            return edc
        return 10.0 * torch.log10(edc.clamp(min=10.0 ** (self.floor_db / 10.0)))

    def fit(self, chunks) -> "TargetTransform":
        """Fit on the training curves, given as ``(rows, C, n)`` chunks."""
        self.scaler.fit_chunks(self.to_representation(chunk).flatten(1) for chunk in chunks)
        return self

    def encode(self, edc):
        """Linear curves ``(b, C, n)`` -> scaled target ``(b, C, n)``."""
        return self.scaler(self.to_representation(edc).flatten(1)).view(edc.shape)

    def _scaling(self, y, curves):
        """The scaler's ``(scale, shift)`` for the channels ``curves`` of ``y`` ``(b, C', n)``."""
        return (v.view(-1, y.shape[-1])[curves] for v in (self.scaler.scale, self.scaler.shift))

    def decode(self, y, curves=slice(None), out=None):
        """Scaled target ``(b, C, n)`` -> linear curves (differentiable); ``y`` may hold only the channels
        ``curves`` (a slice) of the C the transform was fitted on. ``out`` (same shape and dtype, no
        autograd): written in place and returned, with no intermediate copy."""
        to_neper = math.log(10.0) / 10.0  # 10^(dB/10) = e^(dB to_neper)
        if self.scaler.kind == "none":  # no per-sample pass for an identity scaler
            if self.representation == "linear":
                return y if out is None else out.copy_(y)
            return torch.mul(y, to_neper, out=out).exp_()
        scale, shift = self._scaling(y, curves)
        if self.representation == "linear":
            return torch.addcmul(shift, y, scale, out=out)
        return torch.addcmul(shift * to_neper, y, scale * to_neper, out=out).exp_()

    def decode_db(self, y, curves=slice(None)):
        """Scaled target ``(b, C, n)`` -> level in dB (differentiable; ``curves`` as in :meth:`decode`)."""
        if self.representation == "linear":
            return 10.0 * torch.log10(self.decode(y, curves).clamp(min=10.0 ** (self.floor_db / 10.0)))
        scale, shift = self._scaling(y, curves)
        return torch.addcmul(shift, y, scale)
