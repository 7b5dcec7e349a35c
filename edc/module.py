"""The Lightning module: scalers + model + loss, one shared step for every stage."""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from edc.losses import LossContext
from edc.targets import Scaler, TargetTransform


class EdcModule(pl.LightningModule):
    """Predict EDCs from room features.

    Args:
        model: network ``(x (b, 16) scaled, raw (b, 16)) -> (b, n_samples)`` in target space.
        loss: a loss of ``edc.losses``.
        optimizer: ``_partial_`` factory taking the parameters.
        scheduler: optional ``_partial_`` factory taking the optimizer.
        feature_scaler, target_transform: fitted on the training split (saved as buffers).
        fs: training grid rate in Hz.
        config: the resolved run config, stored in the checkpoint so that
            ``edc.load`` rebuilds everything from the file alone.
    """

    def __init__(self, model: nn.Module, loss: nn.Module, optimizer, feature_scaler: Scaler,
                 target_transform: TargetTransform, fs: float, scheduler=None, config: dict | None = None):
        super().__init__()
        self.model, self.loss = model, loss
        self.feature_scaler, self.target_transform = feature_scaler, target_transform
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.fs, self.config = float(fs), config or {}
        self.aux_fallbacks = 0

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw features ``(b, 16)`` -> model output in target space ``(b, n_samples)``."""
        return self.model(self.feature_scaler(raw), raw)

    @torch.no_grad()
    def predict_edc(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw features ``(b, 16)`` -> linear-energy EDCs ``(b, n_samples)``."""
        return self.target_transform.decode(self(raw)).float()

    def _shared_step(self, batch, stage: str):
        raw, edc, _ = batch
        pred = self(raw)
        target = self.target_transform.encode(edc)
        ctx = LossContext(target_edc=edc, decode=self.target_transform.decode, fs=self.fs)
        loss, logs = self.loss(pred.float(), target, ctx)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(raw))
        if "aux_fallback" in logs and stage == "train":
            self.aux_fallbacks += int(logs["aux_fallback"])
            self.log("train/aux_fallbacks", float(self.aux_fallbacks), on_step=on_step, on_epoch=True)
        if stage != "train":
            mae = torch.mean(torch.abs(self.target_transform.decode(pred.float()) - edc))
            self.log(f"{stage}/edc_mae", mae, prog_bar=stage == "val", on_epoch=True, batch_size=len(raw))
        return loss

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

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["edc_config"] = self.config

    def parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))


def predict_in_batches(module: EdcModule, raw: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Linear EDCs ``(n, n_samples)`` float32 for raw features ``(n, 16)`` (eval mode, CPU or GPU)."""
    module.eval()
    device = next(module.parameters()).device
    with torch.inference_mode():
        out = [module.predict_edc(raw[i : i + batch_size].to(device)).cpu() for i in range(0, len(raw), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
