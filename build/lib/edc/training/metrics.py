"""Test metrics of predicted against target EDCs (``metrics.json``).

Keys: ``edc_mae``, ``edc_rmse``, ``edc_r2`` (linear energy), ``edc_db_mae`` (dB, over
samples where the target is at or above -40 dB), and for each of EDT, T20, C50:
``<p>_mae``, ``<p>_rmse``, ``<p>_r2``, ``<p>_n_undefined``. Parameters are computed
the same way on both curves; errors average over rows where both are defined;
``n_undefined`` counts rows whose prediction is undefined while the target is not.
"""
from __future__ import annotations

import numpy as np

from edc import acoustics

PARAMETER_NAMES = ("edt", "t20", "c50")
UNITS = {"edt": "s", "t20": "s", "c50": "dB", "edc_db": "dB"}


def _r2(pred, target) -> float:
    residual = np.sum((target - pred) ** 2)
    total = np.sum((target - target.mean()) ** 2)
    return float(1.0 - residual / total) if total > 0 else float("nan")


def parameter_errors(pred: np.ndarray, target: np.ndarray) -> dict:
    """MAE, RMSE, R2 and n_undefined of ``(n,)`` parameter values."""
    both = np.isfinite(pred) & np.isfinite(target)
    error = pred[both] - target[both]
    return {"mae": float(np.mean(np.abs(error))) if both.any() else float("nan"),
            "rmse": float(np.sqrt(np.mean(error**2))) if both.any() else float("nan"),
            "r2": _r2(pred[both], target[both]) if both.sum() > 1 else float("nan"),
            "n_undefined": int(np.sum(~np.isfinite(pred) & np.isfinite(target)))}


def edc_metrics(pred_edc: np.ndarray, target_edc: np.ndarray, fs: float) -> dict:
    """All metrics of ``(n_rooms, n_samples)`` linear EDCs on a grid of ``fs`` Hz."""
    pred_edc = np.asarray(pred_edc, dtype=np.float64)
    target_edc = np.asarray(target_edc, dtype=np.float64)
    error = pred_edc - target_edc
    out = {"edc_mae": float(np.mean(np.abs(error))), "edc_rmse": float(np.sqrt(np.mean(error**2))),
           "edc_r2": _r2(pred_edc.ravel(), target_edc.ravel())}
    with np.errstate(divide="ignore", invalid="ignore"):
        target_db = 10 * np.log10(target_edc)
        pred_db = 10 * np.log10(np.clip(pred_edc, 1e-30, None))
    region = target_db >= -40.0
    out["edc_db_mae"] = float(np.mean(np.abs(pred_db - target_db)[region]))
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = acoustics.parameters(pred_edc, fs, names=PARAMETER_NAMES)
        expected = acoustics.parameters(target_edc, fs, names=PARAMETER_NAMES)
    for name in PARAMETER_NAMES:
        for key, value in parameter_errors(predicted[name], expected[name]).items():
            out[f"{name}_{key}"] = value
    out["n_rooms"] = int(len(pred_edc))
    return out
