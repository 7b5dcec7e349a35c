"""Training losses. Each is ``loss(pred, target, ctx) -> (value, terms)``.

``pred`` and ``target`` are ``(batch, C, n)`` in the model's target space (C curves per room: the
broadband curve, then the 7 octave bands where the data has them); ``ctx`` (:class:`LossContext`)
carries the unscaled target curves (linear energy), a differentiable ``decode`` from target space
to linear curves, and the grid rate. Every curve counts alike, and the region weights of
:class:`WeightedEDCLoss` are found on each curve itself (in every band). ``terms``
are the parts of a loss of several terms, logged per epoch as ``<stage>/<term>``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from edc import acoustics

EDT_REGION_DB = (0.0, -10.0)  # the first 10 dB of decay, which EDT describes (its fit runs -0.1 to -10.1 dB)


@dataclasses.dataclass
class LossContext:
    target_edc: torch.Tensor  # (batch, C, n) linear energy, unscaled
    decode: Callable[[torch.Tensor], torch.Tensor]  # target space -> linear EDC
    fs: float  # Hz of the training grid
    decode_db: Callable[[torch.Tensor], torch.Tensor] | None = None  # target space -> level in dB, where direct

    def level_db(self, y: torch.Tensor, floor_db: float) -> torch.Tensor:
        """Target-space curves -> their level in dB, floored at ``floor_db`` (without the round trip through
        linear energy where the target space is dB)."""
        if self.decode_db is None:
            return _level_db(self.decode(y), floor_db)
        return self.decode_db(y).clamp(min=floor_db)


def _mse(pred, target):
    return torch.mean((pred - target) ** 2)


def _level_db(edc, floor_db: float = -100.0):
    return 10.0 * torch.log10(edc.clamp(min=10.0 ** (floor_db / 10.0)))


class MSELoss(nn.Module):
    """Mean squared error in target space."""

    def forward(self, pred, target, ctx: LossContext):
        return _mse(pred, target), {}


class EDCRIRLoss(nn.Module):
    """MSE plus ``beta`` x MSE of first differences (the curve's shape, i.e. the RIR energy)."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def forward(self, pred, target, ctx: LossContext):
        mse = _mse(pred, target)
        shape = _mse(torch.diff(pred, dim=-1), torch.diff(target, dim=-1))
        return mse + self.beta * shape, {"mse": mse.detach(), "diff_mse": shape.detach()}


class WeightedEDCLoss(nn.Module):
    """Squared error weighted per sample by the ISO 3382-1 region it informs.

    Regions are found on the unscaled target: ``edt_weight`` in the first 10 dB of decay
    (``EDT_REGION_DB``), ``t20_weight`` between T20's fit limits (-5 and -25 dB),
    ``c50_weight`` in the first 50 ms; ``base_weight`` elsewhere. Where regions overlap the largest
    weight applies.
    """

    def __init__(self, edt_weight: float = 1.5, t20_weight: float = 1.5, c50_weight: float = 1.5,
                 base_weight: float = 1.0):
        super().__init__()
        self.edt_weight, self.t20_weight, self.c50_weight = edt_weight, t20_weight, c50_weight
        self.base_weight = base_weight

    def sample_weights(self, ctx: LossContext) -> torch.Tensor:
        """``(batch, C, n)`` weights from each target curve's level and the sample times."""
        level = acoustics.level_db(ctx.target_edc)
        t = torch.arange(level.shape[-1], device=level.device) / ctx.fs
        (edt_upper, edt_lower), (t20_upper, t20_lower) = EDT_REGION_DB, acoustics.DECAY_LIMITS_DB["t20"]
        regions = [((level <= edt_upper) & (level >= edt_lower), self.edt_weight),
                   ((level <= t20_upper) & (level >= t20_lower), self.t20_weight),
                   ((t < 0.05).expand_as(level), self.c50_weight)]
        inside = torch.zeros_like(level, dtype=torch.bool)
        weight = torch.full_like(level, -torch.inf)
        for mask, value in regions:
            weight = torch.where(mask, weight.clamp(min=value), weight)
            inside |= mask
        return torch.where(inside, weight, torch.full_like(level, self.base_weight)).to(ctx.target_edc.dtype)

    def forward(self, pred, target, ctx: LossContext):
        weights = self.sample_weights(ctx)
        return torch.mean(weights * (pred - target) ** 2), {}


class AuxiliaryLoss(nn.Module):
    """MSE + ``aux_weight`` x 0.5 x (|T20 error| in s + |C50 error| in dB).

    T20 and C50 of the prediction come from the differentiable estimators of
    ``edc.acoustics``. A non-finite auxiliary term (undefined T20, a curve at 0)
    falls back to the MSE term alone; ``aux_fallback`` counts those batches.
    """

    def __init__(self, aux_weight: float = 0.1):
        super().__init__()
        self.aux_weight = aux_weight

    def forward(self, pred, target, ctx: LossContext):
        mse = _mse(pred, target)
        pred_edc = ctx.decode(pred).clamp(min=1e-12)
        pred_edc = torch.cummin(pred_edc, dim=-1).values  # an EDC never rises
        t20_err = (acoustics.t20(pred_edc, ctx.fs) - acoustics.t20(ctx.target_edc, ctx.fs)).abs()
        c50_err = (acoustics.c50(pred_edc, ctx.fs) - acoustics.c50(ctx.target_edc, ctx.fs)).abs()
        aux = 0.5 * (t20_err.mean() + c50_err.mean())
        if not torch.isfinite(aux):
            return mse, {"mse": mse.detach(), "aux_fallback": torch.tensor(1.0)}
        return mse + self.aux_weight * aux, {"mse": mse.detach(), "aux": aux.detach(),
                                             "aux_fallback": torch.tensor(0.0)}


class LogEDCLoss(nn.Module):
    """Mean squared error of the level in dB (both floored at ``floor_db``), each sample weighted
    ``1 + early_weight`` where the target is above ``early_db`` (the 0 to -10 dB EDT range and the
    level at 50 ms that C50 reads) ``+ decay_weight`` where it lies between T20's fit limits
    (-5 to -25 dB), plus ``slope_weight`` x MSE of the decay slope (dB/ms)."""

    def __init__(self, slope_weight: float = 0.0, floor_db: float = -80.0, early_weight: float = 0.0,
                 early_db: float = -12.0, decay_weight: float = 0.0):
        super().__init__()
        self.slope_weight, self.floor_db = slope_weight, floor_db
        self.early_weight, self.early_db, self.decay_weight = early_weight, early_db, decay_weight

    def sample_weights(self, target_db: torch.Tensor) -> torch.Tensor:
        """``(batch, C, n)`` weights from the target's level in dB (same shape)."""
        upper, lower = acoustics.DECAY_LIMITS_DB["t20"]
        weights = 1.0 + self.early_weight * (target_db > self.early_db).to(target_db.dtype)
        if self.decay_weight:
            weights = weights + self.decay_weight * ((target_db <= upper) & (target_db >= lower)).to(target_db.dtype)
        return weights

    def forward(self, pred, target, ctx: LossContext):
        pred_db, target_db = ctx.level_db(pred, self.floor_db), ctx.level_db(target, self.floor_db)
        level = torch.mean(self.sample_weights(target_db) * (pred_db - target_db) ** 2)
        logs = {}
        if self.slope_weight:
            per_ms = ctx.fs / 1000.0  # slopes in dB/ms, whatever the grid
            slope = _mse(torch.diff(pred_db, dim=-1) * per_ms, torch.diff(target_db, dim=-1) * per_ms)
            logs = {"db_mse": level.detach(), "slope_mse": slope.detach()}
            level = level + self.slope_weight * slope
        return level, logs
