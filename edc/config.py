"""Checks of a composed run config that Hydra cannot make: values, not structure."""
from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from edc.errors import EdcInputError
from edc.targets import SCALERS

# ${edc.either:VALUE,DEFAULT}: VALUE unless it is null. (oc.select returns a null value as
# is since omegaconf 2.3.1, so it cannot give a default for an optional key.)
OmegaConf.register_new_resolver("edc.either", lambda value, default: default if value is None else value,
                                replace=True)

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")  # absolute: works however edc is imported
REGION_WEIGHTS = ("edt_weight", "t20_weight", "c50_weight", "base_weight")


def real(value) -> bool:
    """A finite number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def count(minimum: int):
    """A test: an integer (not a bool) of at least ``minimum``."""
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def at_least(low: float):
    """A test: a finite number of at least ``low``."""
    return lambda value: real(value) and value >= low


def more_than(low: float):
    """A test: a finite number above ``low``."""
    return lambda value: real(value) and value > low


def below(high: float):
    """A test: a finite number below ``high``."""
    return lambda value: real(value) and value < high


def optional(test):
    """``test``, or null."""
    return lambda value: value is None or test(value)


# key: (test of a value that is set, what the value must be). A key the run does not have is skipped.
RANGES = {
    "seed": (lambda v: count(0)(v) and v < 2**32, "an integer from 0 to 2**32 - 1"),
    "model.optimizer.lr": (more_than(0), "a positive number (the learning rate), e.g. 1e-3"),
    "model.net.dropout": (lambda v: real(v) and 0 <= v < 1, "a probability in [0, 1)"),
    "model.net.n_knots": (count(1), "a positive integer"),
    "model.net.direction_nodes": (count(1), "a positive integer (1: Eyring's single rate)"),
    "model.net.memory_size": (count(0), "an integer >= 0 (0: no memory)"),
    "data.batch_size": (count(1), "a positive integer"),
    "data.eval_batch_size": (count(1), "a positive integer"),
    "data.target_fs": (count(1), "a positive integer"),
    "data.max_samples": (optional(count(1)), "a positive integer, or null for all rooms"),
    "data.feature_scaler": (lambda v: v in SCALERS, f"one of {', '.join(SCALERS)}"),
    "data.target_scaler": (lambda v: v in SCALERS, f"one of {', '.join(SCALERS)}"),
    "loss.aux_weight": (lambda v: real(v) and 0.01 <= v <= 1.0,
                        "in [0.01, 1] (larger values let the T20/C50 term swamp the curve and destabilise "
                        "training; 0.1 is the default)"),
    "loss.floor_db": (below(0), "a level below 0 dB, e.g. -40"),
    "loss.early_db": (below(0), "a level below 0 dB, e.g. -12"),
    **{f"loss.{k}": (at_least(0), "a finite number >= 0")
       for k in (*REGION_WEIGHTS, "beta", "slope_weight", "early_weight")},
    "trainer.max_epochs": (count(1), "a positive integer"),
    "trainer.gradient_clip_val": (optional(at_least(0)), "a number >= 0 (0 or null: no clipping)"),
    "divergence.factor": (more_than(1), "a number > 1"),
    "divergence.patience": (count(1), "a positive integer"),
}


def _value(cfg: DictConfig, key: str):
    """``(True, value)`` of a dotted key, or ``(False, None)`` where the config has no such key."""
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False, None
        node = node[part]
    return True, node


def validate(cfg: DictConfig) -> None:
    """Raise :class:`EdcInputError` naming the config key, the value and the fix."""
    loss_target = str(cfg.loss.get("_target_", ""))
    given = [k for k in REGION_WEIGHTS if k in cfg.loss]
    if given and not loss_target.endswith("WeightedEDCLoss"):
        raise EdcInputError(f"loss={cfg.loss.get('name', loss_target)} has no region weights, but {given} were "
                            "given (weights=... or loss.*_weight). Fix: use loss=weighted_edc (or a preset: "
                            "conservative, moderate, aggressive), or drop the weights.")
    check(cfg, RANGES)


def check(cfg: DictConfig, ranges: dict) -> None:
    """Raise :class:`EdcInputError` for the first key of ``ranges`` (``key: (test, what the value must
    be)``) whose value in ``cfg`` fails its test; keys ``cfg`` does not have are skipped."""
    for key, (accepts, requirement) in ranges.items():
        present, value = _value(cfg, key)
        if present and not accepts(value):
            raise EdcInputError(f"{key}={value}: must be {requirement}.")
