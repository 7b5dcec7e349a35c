"""Scoring a model on a set of rooms: predictions, metrics and plots written to a dir."""
from __future__ import annotations

from pathlib import Path

import torch

from edc.io import save_npy, write_json, write_text
from edc.models import Surrogate, predict_in_batches
from edc.training import report
from edc.training.metrics import edc_metrics


def evaluate_split(surrogate: Surrogate, raw: torch.Tensor, edcs: torch.Tensor, ids, out_dir: Path) -> dict:
    """Predict ``raw`` ``(n, 16)`` against ``edcs`` ``(n, n_samples)`` and write ``predictions.npy``,
    ``targets.npy``, ``test_ids.txt``, ``metrics.json`` and the plots to ``out_dir``; returns the metrics."""
    pred = predict_in_batches(surrogate, raw)
    target = edcs.numpy()
    metrics = edc_metrics(pred, target, surrogate.fs)
    save_npy(out_dir / "predictions.npy", pred)
    save_npy(out_dir / "targets.npy", target)
    write_text(out_dir / "test_ids.txt", "\n".join(map(str, ids)) + "\n")
    write_json(out_dir / "metrics.json", metrics)
    if len(pred):
        report.plot_run(out_dir, pred, target, surrogate.fs, ids)
    return metrics
