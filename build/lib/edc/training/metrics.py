"""Test metrics of predicted against target curves (``metrics.json``).

Broadband keys (the curve of channel 0): ``edc_mae``, ``edc_rmse``, ``edc_r2`` (linear energy),
``edc_db_mae`` (dB, over samples where the target is at or above -40 dB), and for each of EDT, T20,
C50: ``<p>_mae``, ``<p>_rmse``, ``<p>_r2``, ``<p>_n_undefined`` (decay times also ``<p>_rel_mae``).

Per band (curves ``(n, 8, n_samples)``: broadband, then 125 Hz to 8 kHz), for each of EDT, T20, T30,
C50, C80 and D50: ``<p>_<band>_mae`` ... (``edt_125_mae``, ``d50_8000_r2``), and ``edt_mid_*``,
``t20_mid_*`` for the mean of the 500 Hz and 1 kHz values (T_mid), with ``band_db_mae`` over all bands.

Parameters are computed the same way on both curves; errors average over rooms where both are
defined; ``n_undefined`` counts rooms whose prediction is undefined while the target is not.
"""
from __future__ import annotations

import numpy as np

from edc import acoustics
from edc.acoustics.iso3382 import band_parameters

PARAMETER_NAMES = ("edt", "t20", "c50")  # what the broadband metrics and the console's first table show
DECAY_TIMES = ("edt", "t20", "t30")
UNITS = {"edt": "s", "t20": "s", "t30": "s", "c50": "dB", "c80": "dB", "d50": "", "edc_db": "dB"}


def _r2(pred, target) -> float:
    residual = np.sum((target - pred) ** 2)
    total = np.sum((target - target.mean()) ** 2)
    return float(1.0 - residual / total) if total > 0 else float("nan")


def parameter_errors(pred: np.ndarray, target: np.ndarray, relative: bool = False) -> dict:
    """MAE, RMSE, R2 and n_undefined of ``(n,)`` parameter values (and the MAE relative to the target)."""
    both = np.isfinite(pred) & np.isfinite(target)
    error = pred[both] - target[both]
    out = {"mae": float(np.mean(np.abs(error))) if both.any() else float("nan"),
           "rmse": float(np.sqrt(np.mean(error**2))) if both.any() else float("nan"),
           "r2": _r2(pred[both], target[both]) if both.sum() > 1 else float("nan"),
           "n_undefined": int(np.sum(~np.isfinite(pred) & np.isfinite(target)))}
    if relative:
        out["rel_mae"] = float(np.mean(np.abs(error) / target[both])) if both.any() else float("nan")
    return out


def _db_mae(pred_edc: np.ndarray, target_edc: np.ndarray, chunk: int = 256) -> float:
    """Mean |dB error| where the target is at or above -40 dB (256 rooms at a time: bounded memory)."""
    total, count = 0.0, 0
    for start in range(0, len(pred_edc), chunk):
        with np.errstate(divide="ignore", invalid="ignore"):
            target_db = 10 * np.log10(np.asarray(target_edc[start : start + chunk], np.float64))
            pred_db = 10 * np.log10(np.clip(np.asarray(pred_edc[start : start + chunk], np.float64), 1e-30, None))
        region = target_db >= -40.0
        total, count = total + np.abs(pred_db - target_db)[region].sum(), count + region.sum()
    return float(total / count)


def edc_metrics(pred: np.ndarray, target: np.ndarray, fs: float) -> dict:
    """All metrics of linear curves ``(n_rooms, C, n_samples)`` (C = 1 or 8) on a grid of ``fs`` Hz."""
    pred = pred[:, : target.shape[1]]  # a band model on broadband-only data is scored on its broadband curve
    pred_edc, target_edc = np.asarray(pred[:, 0], np.float64), np.asarray(target[:, 0], np.float64)
    error = pred_edc - target_edc
    out = {"edc_mae": float(np.mean(np.abs(error))), "edc_rmse": float(np.sqrt(np.mean(error**2))),
           "edc_r2": _r2(pred_edc.ravel(), target_edc.ravel()), "edc_db_mae": _db_mae(pred_edc, target_edc)}
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = acoustics.parameters(pred_edc, fs, names=PARAMETER_NAMES)
        expected = acoustics.parameters(target_edc, fs, names=PARAMETER_NAMES)
    for name in PARAMETER_NAMES:
        for key, value in parameter_errors(predicted[name], expected[name], name in DECAY_TIMES).items():
            out[f"{name}_{key}"] = value
    if pred.shape[1] > 1:
        out["band_db_mae"] = _db_mae(pred[:, 1:], target[:, 1:])
        predicted, expected = band_parameters(pred[:, 1:], fs), band_parameters(target[:, 1:], fs)
        for name in predicted:
            relative = name.split("_")[0] in DECAY_TIMES
            for key, value in parameter_errors(predicted[name], expected[name], relative).items():
                out[f"{name}_{key}"] = value
    out["n_rooms"] = int(len(pred))
    return out
