"""The run's own callback (its status in ``metadata.json``, the divergence guard, signals) and the
checkpoint writer."""
from __future__ import annotations

import math
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from edc.errors import EXIT_DIVERGED, EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM
from edc.io import atomic_path, now, update_metadata

DIVERGENCE_CURES = ("a lower learning rate (model.optimizer.lr), gradient clipping (trainer.gradient_clip_val, "
                    "1.0 by default), 32-bit precision (precision=32-true), a smaller loss.aux_weight")


class RunStatus(pl.Callback):
    """Records the run's status and stops it when it diverges.

    * Divergence: a non-finite training loss, or a validation loss or EDC error
      above ``factor`` x its best (the untrained model's, from Lightning's sanity
      check, counts) for ``patience`` epochs in a row, stops training with
      ``status: diverged`` (exit code 3); ``best.ckpt`` is kept.
    * SIGINT / SIGTERM: Lightning turns them into an exit inside ``fit``, so the
      status (``interrupted``) is written from ``on_exception``, with ``last.ckpt``:
      the end-of-epoch one (a resume from it repeats the run exactly), or the state
      at the signal if no epoch has ended yet.
    """

    MONITORED = ("val/loss", "val/edc_mae")

    def __init__(self, run_dir, factor: float = 2.0, patience: int = 3, enabled: bool = True):
        super().__init__()
        self.run_dir, self.factor, self.patience, self.enabled = Path(run_dir), factor, patience, enabled
        self.best: dict = {}
        self.bad_epochs = 0
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.signal_received: int | None = None

    def setup(self, trainer, pl_module, stage):
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)

            def handler(sig, frame, previous=previous):
                self.signal_received = sig
                if callable(previous):
                    previous(sig, frame)
                elif sig == signal.SIGINT:
                    raise KeyboardInterrupt
            if trainer.is_global_zero:
                signal.signal(signum, handler)

    def _diverge(self, trainer, reason: str) -> None:
        self.reason, self.exit_code = reason, EXIT_DIVERGED
        trainer.should_stop = True
        update_metadata(self.run_dir, status="diverged", diverged={"epoch": trainer.current_epoch, "reason": reason,
                                                                  "cures": DIVERGENCE_CURES})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if self.enabled and loss is not None and not bool(loss.isfinite()) and self.exit_code is None:
            self._diverge(trainer, f"non-finite training loss ({float(loss)}) at step {trainer.global_step}")

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            update_metadata(self.run_dir, heartbeat=now())  # a running run that stops beating is stale

    def on_validation_epoch_end(self, trainer, pl_module):
        if not self.enabled or self.exit_code is not None:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k in self.MONITORED}
        if trainer.sanity_checking:  # the untrained model: a run that explodes at once still diverges
            self.best.update({k: v for k, v in values.items() if math.isfinite(v)})
            return
        if any(not math.isfinite(v) for v in values.values()):
            return self._diverge(trainer, f"non-finite validation metric at epoch {trainer.current_epoch}")
        worse = [k for k, v in values.items() if v > self.factor * self.best.get(k, math.inf)]
        self.bad_epochs = self.bad_epochs + 1 if worse else 0
        if self.bad_epochs >= self.patience:
            k = worse[0]
            return self._diverge(trainer, f"{k} {values[k]:.4g} above {self.factor:g} x its best "
                                          f"{self.best[k]:.4g} for {self.patience} epochs in a row")
        for k, v in values.items():
            self.best[k] = min(self.best.get(k, math.inf), v)

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, KeyboardInterrupt) or self.signal_received is not None \
                or type(exception).__name__ == "SIGTermException":
            self.exit_code = EXIT_SIGTERM if self.signal_received == signal.SIGTERM or \
                type(exception).__name__ == "SIGTermException" else EXIT_SIGINT
            last = self.run_dir / "checkpoints" / "last.ckpt"
            if not last.is_file():  # else keep the end-of-epoch one: it resumes exactly
                trainer.save_checkpoint(last)
            update_metadata(self.run_dir, status="interrupted", interrupted={
                "epoch": trainer.current_epoch, "signal": "SIGTERM" if self.exit_code == EXIT_SIGTERM else "SIGINT"})
        else:
            self.exit_code = EXIT_FAILED
            update_metadata(self.run_dir, status="failed", error=f"{type(exception).__name__}: {exception}")


class TrialPruning(pl.Callback):
    """Report ``metric`` to an Optuna trial after every validation (step: the epoch), and stop the run
    when the study's pruner prunes the trial (``pruned_epoch`` says when). ``trial``: an
    ``optuna.trial.Trial`` (report, should_prune) bound to the study's storage."""

    def __init__(self, trial, metric: str):
        super().__init__()
        self.trial, self.metric = trial, metric
        self.pruned_epoch: int | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        if trainer.is_global_zero and self.metric in trainer.callback_metrics:
            value = float(trainer.callback_metrics[self.metric])
            if math.isfinite(value):  # a non-finite value is the divergence guard's to judge
                self.trial.report(value, trainer.current_epoch)
                prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):  # DDP: every process stops with the first
            self.pruned_epoch = trainer.current_epoch
            trainer.should_stop = True


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file and renamed: a full disk or a kill while writing leaves
    the previous ``best.ckpt`` / ``last.ckpt`` whole (Lightning's writer truncates the file first)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        with atomic_path(path, suffix=".ckpt") as tmp:
            torch.save(checkpoint, tmp)
