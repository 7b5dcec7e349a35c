"""The Lightning module: a :class:`edc.models.Surrogate` with a loss and an optimizer, one shared step
for every stage."""
from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MeanMetric

from edc.acoustics import iso3382
from edc.data.schema import LAYOUTS
from edc.models import Surrogate, build_surrogate
from edc.training.logged import VALIDATION_PARAMETERS
from edc.training.losses import LossContext


class EdcModule(Surrogate, pl.LightningModule):
    """Predict EDCs from room features, trained with ``loss``.

    Args:
        surrogate: the network and its (unfitted) scalers; the module takes them over, so that a
            checkpoint's state dict is a Surrogate's.
        loss: a loss of :mod:`edc.training.losses`.
        optimizer: ``_partial_`` factory taking the parameters.
        scheduler: optional ``_partial_`` factory taking the optimizer.
        config: the resolved run config, stored in the checkpoint so that ``edc.load`` rebuilds
            everything from the file alone.
    """

    def __init__(self, surrogate: Surrogate, loss: nn.Module, optimizer, scheduler=None, config: dict | None = None,
                 broadband_weight: float = 1.0, band_weights: dict | None = None):
        super().__init__(surrogate.model, surrogate.feature_scaler, surrogate.target_transform, surrogate.fs)
        self.loss = loss
        self.curve_weights = curve_weights(broadband_weight, band_weights)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.config = config or {}
        self.parameter_errors = nn.ModuleDict({name: MeanMetric(nan_strategy="ignore")
                                               for name in VALIDATION_PARAMETERS})
        self.band_errors = nn.ModuleDict({name: MeanMetric(nan_strategy="ignore") for name in VALIDATION_PARAMETERS})

    def _shared_step(self, batch, stage: str):
        raw, edc, _ = batch
        pred = self(raw)
        target = self.target_transform.encode(edc)
        loss, terms = self._loss(pred.float(), target, edc)
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(raw),
                 sync_dist=True)
        for name, value in terms.items():  # a count of fallback batches adds up; the others average
            self.log(f"{stage}/{name}", value, on_step=False, on_epoch=True, batch_size=len(raw), sync_dist=True,
                     reduce_fx="sum" if name.endswith("fallback") else "mean")
        if stage != "train":
            mae = torch.mean(torch.abs(self.target_transform.decode(pred.float())[:, 0] - edc[:, 0]))  # broadband
            self.log(f"{stage}/edc_mae", mae, prog_bar=stage == "val", on_epoch=True, batch_size=len(raw),
                     sync_dist=True)
        if stage == "val":
            predicted = self.target_transform.decode(pred.float())
            self._log_parameter_errors(predicted[:, 0], edc[:, 0], self.parameter_errors, "")
            if pred.shape[1] > 1:
                self._log_parameter_errors(predicted[:, 1:], edc[:, 1:], self.band_errors, "_bands")
        return loss

    def _log_parameter_errors(self, predicted_edc: torch.Tensor, target_edc: torch.Tensor, errors: nn.ModuleDict,
                              suffix: str) -> None:
        """``val/edt<suffix>_mae``, ``val/t20<suffix>_mae`` (s) and ``val/c50<suffix>_mae`` (dB) of curves
        ``(n, n_samples)`` or ``(n, 7, n_samples)``, over the rooms (and bands) where both values are defined
        (the objective and the pruning of a search read them)."""
        with torch.no_grad():
            predicted = iso3382.parameters(predicted_edc.double(), self.fs, names=VALIDATION_PARAMETERS)
            expected = iso3382.parameters(target_edc.double(), self.fs, names=VALIDATION_PARAMETERS)
        for name, metric in errors.items():
            metric.update((predicted[name] - expected[name]).abs())  # NaN where either is undefined: ignored
            self.log(f"val/{name}{suffix}_mae", metric, on_step=False, on_epoch=True)

    def _loss(self, pred, target, edc):
        """The loss of every curve alike, or the mean of each curve's loss weighted by ``curve_weights``
        (the broadband curve's, then one per octave band: ``loss.broadband_weight``, ``loss.band_weights``)."""
        def part(c):
            curves = slice(c, c + 1) if c is not None else slice(None)
            ctx = LossContext(target_edc=edc[:, curves], fs=self.fs,
                              decode=lambda y: self.target_transform.decode(y, curves),
                              decode_db=lambda y: self.target_transform.decode_db(y, curves))
            return self.loss(pred[:, curves], target[:, curves], ctx)

        weights = self.curve_weights[: pred.shape[1]]
        if len(set(weights)) == 1:  # one curve, or every curve alike: one mean over all
            return part(None)
        parts = [part(c) for c in range(pred.shape[1])]
        total = sum(weights)
        value = sum(w * v for w, (v, _) in zip(weights, parts)) / total
        terms = {k: torch.stack([t[k] for _, t in parts]).amax() if k.endswith("fallback")  # a batch counts once
                 else sum(w * t[k] for w, (_, t) in zip(weights, parts)) / total for k in parts[0][1]}
        return value, terms

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._shared_step(batch, "val")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer),
                                                         "monitor": "val/loss"}}

    def on_train_start(self) -> None:
        """A run resumed with more epochs (``resume=RUN trainer.max_epochs=N``) follows the cosine schedule
        of its new plan: the restored scheduler's ``T_max`` (the old epoch count) becomes the configured
        one, and the learning rate is that of the current epoch on the new cosine (it would otherwise
        reach 0 at the old end and train the added epochs at learning rate 0, then rise again)."""
        planned = getattr(self.scheduler_factory, "keywords", {}).get("T_max")
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and planned \
                    and scheduler.T_max != planned:
                scheduler.T_max = planned
                progress = (1.0 + math.cos(math.pi * scheduler.last_epoch / planned)) / 2.0
                for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
                    group["lr"] = scheduler.eta_min + (base - scheduler.eta_min) * progress
                scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["edc_config"] = self.config


CURVE_WEIGHTS = ("broadband_weight", "band_weights")  # keys of every loss config that the module applies


def curve_weights(broadband_weight: float = 1.0, band_weights: dict | None = None) -> tuple[float, ...]:
    """The weight of each predicted curve's loss: the broadband curve's, then the 7 octave bands' in
    ``OCTAVE_BANDS_HZ`` order (``band_weights``: ``{"125": w, ..., "8000": w}``; None: 1 each)."""
    bands = band_weights or {}
    return (float(broadband_weight), *(float(bands.get(str(b), 1.0)) for b in iso3382.OCTAVE_BANDS_HZ))


def build_module(config: dict, n_samples: int, fs: float, n_curves: int = 1, layout: str = "paper") -> EdcModule:
    """The module of a resolved run config (a plain dict): surrogate, loss, optimizer, scheduler; the
    network predicts ``n_curves`` curves (1: broadband; 8: broadband and the 7 octave bands) from rooms in
    ``layout`` (``paper``: 16 columns; ``surfaces``: a material per surface, 93)."""
    model = config["model"]
    loss = instantiate({k: v for k, v in config["loss"].items() if k not in ("name", *CURVE_WEIGHTS)})
    config = {**config, "data": {**config["data"], "bands": n_curves > 1}, "feature_layout": layout}  # what it reads
    return EdcModule(build_surrogate(model, len(LAYOUTS[layout]), n_samples, fs, n_curves), loss,
                     optimizer=instantiate(model["optimizer"]),
                     scheduler=instantiate(model["scheduler"]) if model.get("scheduler") else None, config=config,
                     **{k: config["loss"][k] for k in CURVE_WEIGHTS if k in config["loss"]})
