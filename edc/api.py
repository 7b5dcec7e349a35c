"""Python API: ``edc.load(ckpt).predict(features)`` -> EDCs and ISO 3382-1 parameters."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from edc import acoustics
from edc.data import FEATURES, validate_features
from edc.errors import EdcInputError
from edc.module import EdcModule, predict_in_batches
from edc.targets import Scaler, TargetTransform

PARAMETER_COLUMNS = {"EDT": "edt", "T20": "t20", "T30": "t30", "C50": "c50", "C80": "c80", "D50": "d50"}


def build_module(cfg: DictConfig, n_samples: int, fs: float) -> EdcModule:
    """Model, loss, optimizer and (unfitted) scalers from a run config."""
    model = instantiate(cfg.model.net, n_features=len(FEATURES), n_out=n_samples)
    loss = instantiate({k: v for k, v in cfg.loss.items() if k != "name"})
    scaler = cfg.model.get("target_scaler") or cfg.data.target_scaler
    transform = TargetTransform(cfg.model.get("target", "linear"), scaler, n_samples)
    return EdcModule(model=model, loss=loss, optimizer=instantiate(cfg.model.optimizer),
                     scheduler=instantiate(cfg.model.scheduler) if cfg.model.get("scheduler") else None,
                     feature_scaler=Scaler(cfg.data.feature_scaler, len(FEATURES)), target_transform=transform,
                     fs=fs, config=OmegaConf.to_container(cfg, resolve=True))


class Predictor:
    """A trained model with its scalers, ready to predict on new rooms."""

    def __init__(self, module: EdcModule, config: DictConfig):
        self.module, self.config = module.eval(), config
        self.fs = module.fs

    def _rooms(self, features: pd.DataFrame, source: str) -> pd.DataFrame:
        """Validated rooms; IDs ``room0, room1, ...`` where the table has none."""
        if "ID" not in features.columns:
            features = features.assign(ID=[f"room{i}" for i in range(len(features))])
        return validate_features(features[["ID"] + FEATURES], source)

    def predict_edcs(self, features: pd.DataFrame, source: str = "features") -> np.ndarray:
        """``(n_rooms, n_samples)`` linear-energy EDCs on the training grid."""
        rooms = self._rooms(features, source)
        return predict_in_batches(self.module, torch.as_tensor(rooms[FEATURES].to_numpy(np.float32)))

    def predict(self, features: pd.DataFrame, source: str = "features"):
        """EDCs ``(n, n_samples)`` and a DataFrame ``ID, EDT, T20, T30, C50, C80, D50``
        (s, s, s, dB, dB, fraction; NaN where undefined)."""
        rooms = self._rooms(features, source)
        edcs = predict_in_batches(self.module, torch.as_tensor(rooms[FEATURES].to_numpy(np.float32)))
        with np.errstate(divide="ignore", invalid="ignore"):
            values = acoustics.parameters(edcs, self.fs, names=tuple(PARAMETER_COLUMNS.values()))
        params = {col: values[name] for col, name in PARAMETER_COLUMNS.items()}
        return edcs, pd.DataFrame({"ID": rooms["ID"].tolist(), **params})


def load(ckpt_path) -> Predictor:
    """Rebuild a trained model from its checkpoint alone (config and scalers inside)."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise EdcInputError(f"{path}: checkpoint not found. Fix: pass ckpt_path=RUN_DIR/checkpoints/best.ckpt.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        cfg = OmegaConf.create(checkpoint["edc_config"])
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise EdcInputError(f"{path}: not an edc checkpoint ({type(err).__name__}: {err}). "
                            "Fix: pass a best.ckpt or last.ckpt written by python -m edc.train.") from None
    n_samples = int(round(cfg.data.duration * cfg.data.target_fs))
    module = build_module(cfg, n_samples, cfg.data.target_fs)
    module.load_state_dict(checkpoint["state_dict"])
    return Predictor(module, cfg)
