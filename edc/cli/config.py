"""Where the configs are, and the one table of checks for every config value of every command
(values, not structure: Hydra checks that).

A key a command's config does not have is skipped, so one table serves train, evaluate, predict
and generate.
"""
from __future__ import annotations

import importlib.resources
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from edc.acoustics import OCTAVE_BANDS_HZ
from edc.errors import EdcInputError
from edc.models.scaling import REPRESENTATIONS, SCALERS
from edc.training.logged import MONITORED, OBJECTIVES

# ${edc.either:VALUE,DEFAULT}: VALUE unless it is null. (oc.select returns a null value as
# is since omegaconf 2.3.1, so it cannot give a default for an optional key.)
OmegaConf.register_new_resolver("edc.either", lambda value, default: default if value is None else value,
                                replace=True)


def _record_subdir(run_dir, resume, overwrite):
    """Where Hydra saves its record of a training job (``.hydra``): nowhere when the job continues a run
    (``resume=``, which keeps that run's record) or is about to be refused for landing on one."""
    if resume is not None or (not overwrite and (Path(str(run_dir)) / "metadata.json").is_file()):
        return None
    return ".hydra"


# ${edc.record_subdir:RUN_DIR,RESUME,OVERWRITE}: hydra.output_subdir of a training job, see _record_subdir.
OmegaConf.register_new_resolver("edc.record_subdir", _record_subdir, replace=True)
# ${edc.cwd:}: the directory the command runs in, absolute (a run's config.yaml records it: a resumed run
# finds its MLflow store from anywhere)
OmegaConf.register_new_resolver("edc.cwd", lambda: os.getcwd(), replace=True)

CONF_DIR = str(importlib.resources.files("edc.conf"))  # conf/ of the source tree, or the installed package
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
REGION_WEIGHTS = ("edt_weight", "t20_weight", "c50_weight", "base_weight")
# The classes a config read from a file (a resumed run's config.yaml, a checkpoint's) may name: those the
# shipped configs name (tests/test_train.py keeps the two in step). Instantiating any other `_target_`
# would run whatever it names.
BUILDABLE = frozenset({
    "edc.models.PhysicsEDC", "edc.models.MLP", "edc.models.LSTMModel", "edc.models.HybridV1", "edc.models.HybridV2",
    "edc.models.HybridV3", "edc.models.BandConvNet", "edc.training.datamodule.EdcDataModule",
    "edc.training.losses.MSELoss", "edc.training.losses.LogEDCLoss", "edc.training.losses.WeightedEDCLoss",
    "edc.training.losses.AuxiliaryLoss", "edc.training.losses.EDCRIRLoss", "edc.runs.sweep.SweepSummary",
    "hydra_plugins.edc_optuna_sweeper.OptunaSweeper", "optuna.samplers.TPESampler", "optuna.pruners.MedianPruner",
    "torch.optim.Adam", "torch.optim.AdamW", "torch.optim.lr_scheduler.CosineAnnealingLR",
    "pytorch_lightning.Trainer", "pytorch_lightning.callbacks.ModelCheckpoint",
    "pytorch_lightning.callbacks.EarlyStopping", "pytorch_lightning.callbacks.RichProgressBar",
    "pytorch_lightning.callbacks.EMAWeightAveraging", "pytorch_lightning.loggers.CSVLogger",
    "pytorch_lightning.loggers.TensorBoardLogger", "pytorch_lightning.loggers.MLFlowLogger"})


def check_buildable(config, source: str, key: str = "") -> None:
    """Refuse a config read from ``source`` (a file) that names a class outside :data:`BUILDABLE`."""
    children = config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else ()
    for name, value in children:
        path = f"{key}.{name}" if key else str(name)
        if name == "_target_" and value not in BUILDABLE:
            raise EdcInputError(f"{source}: {path}={value} is not a class edc builds; refused, since building it "
                                "would run code the file chose. Fix: use a run dir or checkpoint as "
                                "python -m edc.train wrote it.")
        check_buildable(value, source, path)


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


def one_of(choices):
    """A test: a value among ``choices``."""
    return lambda value: value in choices


def per_band(test):
    """A test: a mapping of each octave band's centre in Hz (``"125"`` ... ``"8000"``) to a value passing ``test``."""
    return lambda v: (isinstance(v, Mapping) and sorted(map(str, v)) == sorted(map(str, OCTAVE_BANDS_HZ))
                      and all(map(test, v.values())))


def interval(high: float):
    """A test: ``[min, max]`` with ``0 < min <= max <= high``."""
    return lambda v: isinstance(v, Sequence) and len(v) == 2 and all(map(real, v)) and 0 < v[0] <= v[1] <= high


# key: (test of a value that is set, what the value must be). A key the run does not have is skipped.
RANGES = {
    "seed": (lambda v: count(0)(v) and v < 2**32, "an integer from 0 to 2**32 - 1"),
    "model.optimizer.lr": (more_than(0), "a positive number (the learning rate), e.g. 1e-3"),
    "model.net.dropout": (lambda v: real(v) and 0 <= v < 1, "a probability in [0, 1)"),
    **{f"callbacks.{c}.monitor": (one_of(MONITORED), f"one of {', '.join(MONITORED)} (the metrics every run logs)")
       for c in ("model_checkpoint", "early_stopping")},
    "model.net.n_knots": (count(1), "a positive integer"),
    "model.net.direction_nodes": (count(1), "a positive integer (1: Eyring's single rate)"),
    "model.net.memory_size": (count(0), "an integer >= 0 (0: no memory)"),
    "data.batch_size": (count(1), "a positive integer"),
    "data.eval_batch_size": (count(1), "a positive integer"),
    "data.target_fs": (count(100), ("an integer of at least 100 Hz (C50 reads the curve at 50 ms, the losses from "
                                   "50 ms on)")),
    "data.duration": (lambda v: real(v) and v >= 0.1, "at least 0.1 s (C80 reads the curve at 80 ms)"),
    "data.split_seed": (lambda v: count(0)(v) and v < 2**32, "an integer from 0 to 2**32 - 1"),
    "data.num_workers": (count(0), "an integer >= 0 (0: batches are loaded in the main process)"),
    "trainer.accelerator": (one_of(ACCELERATORS), (f"one of {', '.join(ACCELERATORS)} (others need packages edc "
                                                  "does not install)")),
    "data.bands": (optional(lambda v: isinstance(v, bool)), "true, false or null (the bands where the data has them)"),
    "data.max_samples": (optional(count(5)), ("at least 5 rooms (3 to train, one each to validate and test), "
                                             "or null for all rooms")),
    "model.feature_scaler": (one_of(SCALERS), f"one of {', '.join(SCALERS)}"),
    "model.target_scaler": (one_of(SCALERS), f"one of {', '.join(SCALERS)}"),
    "model.target": (one_of(REPRESENTATIONS), f"one of {', '.join(REPRESENTATIONS)} (the space the network predicts in)"),
    "loss.aux_weight": (lambda v: real(v) and 0.01 <= v <= 1.0,
                        ("in [0.01, 1] (larger values let the T20/C50 term swamp the curve and destabilise "
                        "training; 0.1 is the default)")),
    "loss.floor_db": (below(0), "a level below 0 dB, e.g. -40"),
    "loss.broadband_weight": (more_than(0), "a positive weight (1: the broadband curve counts as one band)"),
    "loss.band_weights": (per_band(more_than(0)), ('a positive weight for each octave band, {"125": 1.0, ..., '
                                                   '"8000": 1.0}; set one as loss.band_weights.125=2.0')),
    "loss.early_db": (below(0), "a level below 0 dB, e.g. -12"),
    **{f"loss.{k}": (at_least(0), "a finite number >= 0")
       for k in (*REGION_WEIGHTS, "beta", "slope_weight", "early_weight", "decay_weight")},
    "trainer.max_epochs": (count(1), "a positive integer"),
    "trainer.gradient_clip_val": (optional(at_least(0)), "a number >= 0 (0 or null: no clipping)"),
    "divergence.factor": (more_than(1), "a number > 1"),
    "divergence.patience": (count(1), "a positive integer"),
    "optimized_metric": (optional(one_of(OBJECTIVES)), f"one of {', '.join(OBJECTIVES)} (logged every epoch)"),
    "trial.number": (optional(count(0)), "a trial number (set by hparams_search; leave it to the search)"),
    # edc.evaluate
    "subset": (one_of(("test", "all")), "'test' (the checkpoint's split) or 'all' (every row)"),
    # edc.design
    "search.max_rows": (count(1), "a positive number of rows (designs x receivers) to predict"),
    "search.beam_width": (count(1), "a positive number of designs"),
    "search.safety_jnd": (at_least(0), "a number >= 0 of just noticeable differences"),
    "runners_up": (count(0), "an integer >= 0"),
    "attempts": (count(1), "a positive number of searches (each followed by a simulation)"),
    "verify": (lambda v: isinstance(v, bool), "true or false"),
    "search.continuous": (lambda v: isinstance(v, bool), "true or false"),
    # edc.generate
    "n_rooms": (optional(count(1)), "a positive number of rooms"),
    "workers": (optional(count(1)), "a positive number of processes, or null for all cores"),
    "chunk_size": (count(1), "a positive number of rooms"),
    "n_shards": (count(1), "a positive integer"),
    "shard": (count(0), "an integer >= 0"),
    "simulation.sim_fs": (count(1), "a positive integer (Hz)"),
    "simulation.edc_fs": (count(1), "a positive integer (Hz)"),
    "simulation.duration": (more_than(0), "a positive number of seconds"),
    "simulation.max_order": (count(0), "an integer >= 0"),
    "simulation.ray_factor": (more_than(0), ("> 0 (rays relative to the simulator's default count; the data "
                                            "specification uses 1)")),
    **{f"sampler.{k}": (interval(math.inf), "[min, max] in m with 0 < min <= max") for k in ("length", "width", "height")},
    "sampler.absorption": (interval(1.0), "[min, max] with 0 < min <= max <= 1"),
    "sampler.position_height": (more_than(0), "a positive height in m"),
    "sampler.wall_margin": (at_least(0), "a distance >= 0 in m"),
    "sampler.min_distance": (at_least(0), "a distance >= 0 in m"),
    "sampler.profile_concentration": (more_than(0), "a positive Dirichlet concentration"),
    "sampler.name": (one_of(("paper", "rooms")), "paper (16 columns) or rooms (a material per surface)"),
    "sampler.volume": (interval(math.inf), "[min, max] in m3 with 0 < min <= max"),
    "sampler.heights": (interval(math.inf), "[min, max] in m with 0 < min <= max"),
    "sampler.scattering": (lambda v: isinstance(v, Sequence) and len(v) == 2 and all(map(real, v))
                           and 0 <= v[0] <= v[1] <= 1, "[min, max] with 0 <= min <= max <= 1"),
    "sampler.scattering_level": (lambda v: isinstance(v, Sequence) and len(v) == 2 and all(map(real, v))
                                 and 0 < v[0] <= v[1] <= 1, "[min, max] with 0 < min <= max <= 1 (log-uniform)"),
    "sampler.database_share": (lambda v: real(v) and 0 <= v <= 1, "a probability in [0, 1]"),
    "sampler.perturbation": (at_least(0), "a number >= 0 (the spread of log absorption)"),
    "sampler.max_t": (more_than(0), "a positive reverberation time in s"),
    "sampler.material_sets": (count(1), "a positive number of material sets per geometry"),
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
    """Check a training config: raise :class:`EdcInputError` naming the config key, the value and the fix."""
    loss_target = str(cfg.loss.get("_target_", ""))
    given = [k for k in REGION_WEIGHTS if k in cfg.loss]
    if given and not loss_target.endswith("WeightedEDCLoss"):
        raise EdcInputError(f"loss={cfg.loss.get('name', loss_target)} has no region weights, but {given} were "
                            "given (weights=... or loss.*_weight). Fix: use loss=weighted_edc (or a preset: "
                            "conservative, moderate, aggressive), or drop the weights.")
    check(cfg, RANGES)


def check(cfg: DictConfig, ranges: dict = RANGES) -> None:
    """Raise :class:`EdcInputError` for the first key of ``ranges`` (``key: (test, what the value must
    be)``) whose value in ``cfg`` fails its test; keys ``cfg`` does not have are skipped."""
    for key, (accepts, requirement) in ranges.items():
        present, value = _value(cfg, key)
        if present and not accepts(value):
            raise EdcInputError(f"{key}={value}: must be {requirement}.")
