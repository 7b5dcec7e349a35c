"""MLflow tracking of a training run (``logger=mlflow``, docs/training.md): the resolved config as
parameters, the metrics of every epoch (Lightning's logger), the test metrics, plots and best checkpoint
as artifacts; the MLflow run id in ``metadata.json``, so that a resumed or requeued run goes on in the
same MLflow run. The run's own ``logs/metrics.csv`` is kept beside it."""
from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger, MLFlowLogger

from edc.io import read_json, update_metadata

ARTIFACTS = ("config.yaml", "metrics.json", "splits.json", "*.png")


def with_run_log(logger, run_dir: Path) -> list:
    """The loggers of a run: its CSV log ``logs/metrics.csv`` (what compare, monitor and resume read), then
    the configured one where that is another (MLflow, TensorBoard). ``logger`` False: none."""
    if logger is False or logger is None:
        return []
    if isinstance(logger, CSVLogger):
        return [logger]
    return [CSVLogger(save_dir=str(run_dir), name="logs", version=""), logger]


def resumed_run(run_dir: Path) -> dict:
    """``{"run_id": ...}`` of the MLflow run an earlier part of this run dir logged to, else ``{}``."""
    run_id = (read_json(run_dir / "metadata.json") or {}).get("mlflow_run_id")
    return {"run_id": run_id} if run_id else {}


def _mlflow(trainer: pl.Trainer) -> MLFlowLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)), None)


def start(trainer: pl.Trainer, config: dict, run_dir: Path, continuing: bool) -> None:
    """Log the resolved ``config`` (the first part of a run only: MLflow keeps a parameter's first value)
    and record the MLflow run in ``metadata.json``."""
    logger = _mlflow(trainer)
    if logger is None or not trainer.is_global_zero:
        return
    if not continuing:
        logger.log_hyperparams(config)
    update_metadata(run_dir, mlflow_run_id=logger.run_id, mlflow_tracking_uri=logger._tracking_uri)


def finish(trainer: pl.Trainer, run_dir: Path, metrics: dict, best: str | None) -> None:
    """Log the test metrics (``test/...``) and the run's files: config, metrics, plots, best checkpoint."""
    logger = _mlflow(trainer)
    if logger is None:
        return
    numbers = {f"test/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    logger.log_metrics(numbers, step=trainer.current_epoch)
    files = [p for pattern in ARTIFACTS for p in sorted(run_dir.glob(pattern))]
    for path in files:
        logger.experiment.log_artifact(logger.run_id, str(path))
    if best:
        logger.experiment.log_artifact(logger.run_id, best, artifact_path="checkpoints")
