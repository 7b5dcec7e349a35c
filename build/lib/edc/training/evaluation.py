"""Scoring a model on a set of rooms: predictions, metrics and plots written to a dir."""
from __future__ import annotations

from pathlib import Path

import torch

from edc.io import save_npy, write_json, write_text
from edc.models import Surrogate, predict_in_batches
from edc.training import report
from edc.training.metrics import edc_metrics


def evaluate_split(surrogate: Surrogate, raw: torch.Tensor, curves: torch.Tensor, ids, out_dir: Path,
                   band_floor: dict | None = None) -> dict:
    """Predict ``raw`` ``(n, 16)`` against ``curves`` ``(n, C, n_samples)`` and write ``predictions.npy``,
    ``targets.npy``, ``test_ids.txt``, ``metrics.json`` and the plots (per band with ``band_floor``
    shaded, where C = 8) to ``out_dir``; returns the metrics."""
    target = curves.numpy()
    pred = predict_in_batches(surrogate, raw)[:, : target.shape[1]]
    metrics = edc_metrics(pred, target, surrogate.fs)
    save_npy(out_dir / "predictions.npy", pred)
    save_npy(out_dir / "targets.npy", target)
    write_text(out_dir / "test_ids.txt", "\n".join(map(str, ids)) + "\n")
    write_json(out_dir / "metrics.json", metrics)
    if len(pred):
        report.plot_run(out_dir, pred[:, 0], target[:, 0], surrogate.fs, ids)
        if pred.shape[1] > 1:
            report.plot_bands(out_dir, pred, target, surrogate.fs, ids, band_floor or {})
    return metrics


def print_metrics(metrics: dict, targets: dict, title: str = "test metrics") -> None:
    """The broadband table and, for band curves, the table per band."""
    report.console.print(report.metrics_table(metrics, targets, title=title))
    if "t20_1000_mae" in metrics:
        report.console.print(report.bands_table(metrics, targets))
