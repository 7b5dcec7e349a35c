"""ISO 3382-1 room-acoustic parameters of energy decay curves (EDT, T20, T30, C50, C80, D50).

One implementation in torch serves numpy and torch inputs alike: numpy arrays go
in and come out as numpy (float64), torch tensors stay tensors and keep their
autograd graph, so the losses can differentiate through T20 and C50.

Conventions follow ``pyrato`` (the test oracle) and ``docs/data.md``:

* ``edc`` is linear energy of shape ``(..., n_samples)`` sampled at ``fs`` Hz,
  with ``L(t) = 10 log10(E(t) / E(0))`` in dB.
* Decay times: ``iu`` / ``il`` are the samples whose level is nearest the upper /
  lower limit; a least-squares line is fitted to ``L`` over ``iu <= n < il`` and
  the decay time is ``-60 / slope`` (s). It is NaN (undefined) where the curve's
  lowest level stays above the lower limit, or where fewer than two samples fall
  in the fit window. A curve reaching exactly 0 (-inf dB) reaches every limit.
* Energy ratios use the EDC's value at the sample nearest the early time limit:
  ``C_te = 10 log10(E(0) / E(te) - 1)`` dB, ``D_te = 1 - E(te) / E(0)``.
"""
from __future__ import annotations

import numpy as np
import torch

# (upper, lower) level limits in dB of each decay-time estimator (ISO 3382-1).
OCTAVE_BANDS_HZ = (125, 250, 500, 1000, 2000, 4000, 8000)  # nominal mid-band frequencies (IEC 61260-1)
DECAY_LIMITS_DB = {"edt": (-0.1, -10.1), "t20": (-5.0, -25.0), "t30": (-5.0, -35.0)}


def to_tensor(x):
    """Return ``(tensor, was_numpy)``; numpy input becomes float64 torch."""
    if isinstance(x, torch.Tensor):
        return x, False
    return torch.as_tensor(np.asarray(x, dtype=np.float64)), True


def from_tensor(x: torch.Tensor, was_numpy: bool):
    return x.detach().cpu().numpy() if was_numpy else x


def level_db(edc: torch.Tensor) -> torch.Tensor:
    """Level ``10 log10(E / E(0))`` in dB, shape as ``edc``; -inf where E is 0.

    With gradients on, written so that they stay finite where E is 0 (no 0 * inf).
    """
    ratio = edc / edc[..., :1]
    if not ratio.requires_grad:
        return 10.0 * torch.log10(ratio.clamp_(min=0.0))
    positive = ratio > 0
    safe = torch.where(positive, ratio, torch.ones_like(ratio))
    return torch.where(positive, 10.0 * torch.log10(safe), torch.full_like(ratio, -torch.inf))


def decay_time(edc, fs: float, upper_db: float, lower_db: float):
    """Decay time (s) from a linear fit of the level between two limits.

    Args:
        edc: linear-energy EDC, ``(..., n_samples)``, numpy or torch.
        fs: sampling rate of ``edc`` in Hz.
        upper_db, lower_db: fit limits in dB (e.g. -5 and -25 for T20).

    Returns:
        ``(...)`` decay times in s extrapolated to 60 dB; NaN where undefined.
    """
    edc, was_numpy = to_tensor(edc)
    return from_tensor(_fitted_decay_time(*_fit_inputs(edc), fs, upper_db, lower_db), was_numpy)


def _fit_inputs(edc: torch.Tensor) -> tuple:
    """What every decay-time fit of ``edc`` reads: its level in dB, the level's ``_prefix_sums``
    and ``_rising``. ``parameters`` computes them once for all decay times."""
    level = level_db(edc)
    return level, _prefix_sums(level), _rising(level)


def _prefix_sums(level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive prefix sums of the level and of ``k * level`` over samples ``k``, ``(..., n)``
    each: every decay-time fit of one curve reads its window sums from these."""
    y = torch.nan_to_num(level, nan=0.0, posinf=0.0, neginf=0.0)  # -inf never lies in a window
    k = torch.arange(level.shape[-1], dtype=level.dtype, device=level.device)
    return torch.cumsum(y, -1), torch.cumsum(k * y, -1)


def _rising(level: torch.Tensor):
    """``-level`` where every curve is non-increasing (a Schroeder EDC always is), so that the fit
    limits can be found by binary search; None otherwise (or with NaN)."""
    rising = level.neg()
    return rising if bool((rising[..., 1:] >= rising[..., :-1]).all()) else None


@torch.no_grad()
def _nearest_sample(level: torch.Tensor, rising, limit_db: float) -> torch.Tensor:
    """Index ``(..., 1)`` of the first sample whose level is nearest ``limit_db``, i.e.
    ``argmin(|level - limit_db|)``; by binary search in ``rising`` (``_rising(level)``) if given."""
    if rising is None:
        return torch.argmin((level - limit_db).abs(), dim=-1, keepdim=True)
    n = level.shape[-1]
    limit = torch.full((*level.shape[:-1], 1), -limit_db, dtype=level.dtype, device=level.device)
    below = torch.searchsorted(rising, limit)  # first sample at or below the limit; n if none is
    above = (below - 1).clamp(min=0)  # the last sample above it (if below > 0)
    gap_above = torch.where(below > 0, level.gather(-1, above) - limit_db, torch.inf)
    gap_below = torch.where(below < n, limit_db - level.gather(-1, below.clamp(max=n - 1)), torch.inf)
    first_above = torch.searchsorted(rising, rising.gather(-1, above))  # argmin takes the first of a plateau
    return torch.where(gap_above <= gap_below, first_above, below)


def _fitted_decay_time(level, prefix_sums, rising, fs: float, upper_db: float, lower_db: float):
    """``decay_time`` from ``_fit_inputs``: least squares
    over samples ``iu <= k < il`` with no per-curve loop (sums of level and k * level by two
    gathers each, sums of k and k^2 in closed form)."""
    i_upper = _nearest_sample(level, rising, upper_db)
    i_lower = _nearest_sample(level, rising, lower_db)
    defined = (level.amin(-1) <= lower_db) & (i_lower - i_upper >= 2).squeeze(-1)

    def window_sum(prefix):  # sum over [iu, il) = prefix[il - 1] - prefix[iu - 1]
        before = prefix.gather(-1, (i_upper - 1).clamp(min=0)) * (i_upper > 0)
        return (prefix.gather(-1, (i_lower - 1).clamp(min=0)) - before).squeeze(-1)

    sum_y, sum_ky = map(window_sum, prefix_sums)
    lo, hi = i_upper.squeeze(-1).to(level.dtype), i_lower.squeeze(-1).to(level.dtype)
    count = hi - lo
    sum_k = (lo + hi - 1) * count / 2
    sum_kk = ((hi - 1) * hi * (2 * hi - 1) - (lo - 1) * lo * (2 * lo - 1)) / 6
    denominator = torch.where(defined, count * sum_kk - sum_k**2, torch.ones_like(count))
    slope = (count * sum_ky - sum_k * sum_y) / denominator * fs  # dB/s
    return torch.where(defined, -60.0 / slope, torch.full_like(slope, torch.nan))


def edt(edc, fs: float):
    """Early decay time (s): fit from -0.1 to -10.1 dB, extrapolated to 60 dB. ``(...)``."""
    return decay_time(edc, fs, *DECAY_LIMITS_DB["edt"])


def t20(edc, fs: float):
    """T20 reverberation time (s): fit from -5 to -25 dB, extrapolated to 60 dB. ``(...)``."""
    return decay_time(edc, fs, *DECAY_LIMITS_DB["t20"])


def t30(edc, fs: float):
    """T30 reverberation time (s): fit from -5 to -35 dB, extrapolated to 60 dB. ``(...)``."""
    return decay_time(edc, fs, *DECAY_LIMITS_DB["t30"])


def _early_energy_ratio(edc, fs: float, early_time_limit_ms: float):
    """``(E(te) / E(0), was_numpy)`` with ``te`` the sample nearest the limit (only those two samples
    of each curve are read, and converted)."""
    index = int(round(early_time_limit_ms * 1e-3 * fs))
    if not 0 < index < edc.shape[-1]:
        raise ValueError(f"early time limit {early_time_limit_ms} ms is outside the EDC "
                         f"({edc.shape[-1]} samples at {fs} Hz)")
    pair, was_numpy = to_tensor(edc[..., [index, 0]])  # (..., 2): E(te), E(0)
    return pair[..., 0] / pair[..., 1], was_numpy


def clarity(edc, fs: float, early_time_limit_ms: float = 50.0):
    """Clarity ``C_te = 10 log10(E(0) / E(te) - 1)`` in dB, shape ``(...)``."""
    late, was_numpy = _early_energy_ratio(edc, fs, early_time_limit_ms)
    return from_tensor(10.0 * torch.log10(1.0 / late - 1.0), was_numpy)


def definition(edc, fs: float, early_time_limit_ms: float = 50.0):
    """Definition ``D_te = 1 - E(te) / E(0)`` (fraction of energy before te), ``(...)``."""
    late, was_numpy = _early_energy_ratio(edc, fs, early_time_limit_ms)
    return from_tensor(1.0 - late, was_numpy)


def c50(edc, fs: float):
    """C50 clarity in dB (early limit 50 ms), shape ``(...)``."""
    return clarity(edc, fs, 50.0)


def c80(edc, fs: float):
    """C80 clarity in dB (early limit 80 ms), shape ``(...)``."""
    return clarity(edc, fs, 80.0)


def d50(edc, fs: float):
    """D50 definition (fraction, 0 to 1), shape ``(...)``."""
    return definition(edc, fs, 50.0)


PARAMETERS = {"edt": edt, "t20": t20, "t30": t30, "c50": c50, "c80": c80, "d50": d50}


CHUNK_ROOMS = 256  # numpy curves are computed this many at a time: a chunk's float64 copies stay in cache (2-4x faster)


def parameters(edc, fs: float, names=("edt", "t20", "t30", "c50", "c80", "d50")) -> dict:
    """All named parameters of ``edc`` as ``{name: (...)}`` (what the decay-time fits read is
    computed once for all of them)."""
    if isinstance(edc, np.ndarray) and edc.ndim > 1 and len(edc) > CHUNK_ROOMS:
        parts = [parameters(edc[i : i + CHUNK_ROOMS], fs, names) for i in range(0, len(edc), CHUNK_ROOMS)]
        return {name: np.concatenate([part[name] for part in parts]) for name in names}
    tensor, was_numpy = to_tensor(edc)
    fit = _fit_inputs(tensor) if any(n in DECAY_LIMITS_DB for n in names) else None
    return {name: from_tensor(_fitted_decay_time(*fit, fs, *DECAY_LIMITS_DB[name]), was_numpy)
            if name in DECAY_LIMITS_DB else PARAMETERS[name](edc, fs) for name in names}


BAND_PARAMETERS = ("edt", "t20", "t30", "c50", "c80", "d50")
MID_BANDS = (500, 1000)  # T_mid, EDT_mid: the mean of these bands' values (ISO 3382-1)


def band_parameters(curves, fs: float) -> dict:
    """``{"t20_1000": (n,), ..., "t20_mid": (n,), "edt_mid": (n,)}`` of octave-band curves ``(n, 7, n_samples)``
    (125 Hz to 8 kHz)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        values = parameters(curves, fs, names=BAND_PARAMETERS)  # each (n, 7)
    out = {f"{name}_{band}": values[name][:, b] for name in BAND_PARAMETERS for b, band in enumerate(OCTAVE_BANDS_HZ)}
    for name in ("edt", "t20"):
        out[f"{name}_mid"] = np.mean([out[f"{name}_{band}"] for band in MID_BANDS], axis=0)
    return out


def parameter_columns(curves, fs: float) -> dict:
    """The columns of a parameter table for curves ``(n, C, n_samples)`` (C = 1: broadband; C = 8: broadband,
    then 125 Hz to 8 kHz): ``EDT, T20, T30, C50, C80, D50`` (s, s, s, dB, dB, a fraction) and, with bands,
    ``EDT_125 ... D50_8000``, ``EDT_mid``, ``T20_mid``; NaN where a value is undefined. The columns
    ``edc.predict`` writes and ``edc.generate``'s ``params.csv``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        values = parameters(curves[:, 0], fs, names=BAND_PARAMETERS)
    columns = {name.upper(): values[name] for name in BAND_PARAMETERS}
    if curves.shape[1] > 1:
        columns |= {key.upper().replace("_MID", "_mid"): value for key, value in band_parameters(curves[:, 1:], fs).items()}
    return columns
