"""Checks of a composed run config that Hydra cannot make: values, not structure."""
from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from edc.errors import EdcInputError

# ${edc.either:VALUE,DEFAULT}: VALUE unless it is null. (oc.select returns a null value as
# is since omegaconf 2.3.1, so it cannot give a default for an optional key.)
OmegaConf.register_new_resolver("edc.either", lambda value, default: default if value is None else value,
                                replace=True)

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")  # absolute: works however edc is imported
REGION_WEIGHTS = ("edt_weight", "t20_weight", "c50_weight", "base_weight")


def _number(cfg: DictConfig, key: str):
    node = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, DictConfig) else None
    return node


def validate(cfg: DictConfig) -> None:
    """Raise :class:`EdcInputError` naming the config key, the value and the fix."""
    lr = _number(cfg, "model.optimizer.lr")
    if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise EdcInputError(f"model.optimizer.lr={lr}: the learning rate must be a positive number, e.g. 1e-3.")
    for key in ("data.batch_size", "data.eval_batch_size", "data.target_fs"):
        value = _number(cfg, key)
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise EdcInputError(f"{key}={value}: must be a positive integer.")
    loss_target = str(cfg.loss.get("_target_", ""))
    given = [k for k in REGION_WEIGHTS if k in cfg.loss]
    if given and not loss_target.endswith("WeightedEDCLoss"):
        raise EdcInputError(f"loss={cfg.loss.get('name', loss_target)} has no region weights, but {given} were "
                            "given (weights=... or loss.*_weight). Fix: use loss=weighted_edc (or a preset: "
                            "conservative, moderate, aggressive), or drop the weights.")
    for key in given + [k for k in ("beta", "slope_weight", "early_weight") if k in cfg.loss]:
        value = cfg.loss[key]
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise EdcInputError(f"loss.{key}={value}: must be a finite number >= 0.")
    if "aux_weight" in cfg.loss:
        value = cfg.loss.aux_weight
        if not isinstance(value, (int, float)) or not 0.01 <= value <= 1.0:
            raise EdcInputError(f"loss.aux_weight={value}: must be in [0.01, 1] (larger values let the T20/C50 "
                                "term swamp the curve and destabilise training; 0.1 is the default).")
    epochs = _number(cfg, "trainer.max_epochs")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise EdcInputError(f"trainer.max_epochs={epochs}: must be a positive integer.")
