"""Evaluate a checkpoint on any dataset: ``python -m edc.evaluate ckpt_path=P [data=...] [subset=all]``.

The model, scalers, training grid and split procedure come from the checkpoint;
``data=...`` only says where the rooms are. ``subset=test`` (default) applies the
checkpoint's split to the given data; ``subset=all`` evaluates every row. Results go
to this command's own run dir, never over a training run's files.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from edc.api import load
from edc.cli.config import CONF_DIR, check, check_buildable
from edc.cli.entry import entrypoint, task
from edc.data.schema import LAYOUTS
from edc.errors import EdcInputError
from edc.io import now, read_json, update_metadata
from edc.training import report
from edc.training.evaluation import evaluate_split, print_metrics

WHERE_KEYS = ("layout", "path", "features_csv", "edc_dir", "source_fs", "cache_dir")


def data_config(trained: dict, given: DictConfig | None, subset: str) -> dict:
    """The checkpoint's data config with the place of the rooms from ``given``; every row for
    ``subset=all``; a cache only where the user asks for one (never the checkpoint's path)."""
    merged = {**trained, "cache_dir": None}
    if given is not None:
        merged.update({k: v for k, v in OmegaConf.to_container(given, resolve=True).items() if k in WHERE_KEYS})
    if subset == "all":
        merged["max_samples"] = None
    merged["bands"] = None if trained.get("bands") else False  # a band model scores the bands the data has
    return merged


def evaluate(ckpt_path, data_cfg: DictConfig | None, subset: str, out_dir, targets: dict | None = None) -> dict:
    """Metrics of the checkpoint on ``subset`` (test or all) of the data; files written to ``out_dir``."""
    out_dir = Path(out_dir)
    recorded = read_json(out_dir / "metadata.json") or {}
    if recorded and recorded.get("command") != "evaluate":
        raise EdcInputError(f"{out_dir}: holds a training run; evaluate would overwrite its predictions and "
                            "metrics. Fix: leave hydra.run.dir unset (each evaluation gets its own dir).")
    predictor = load(ckpt_path)
    trained = predictor.config
    check_buildable({"data": trained["data"]}, str(ckpt_path))
    datamodule = instantiate(data_config(trained["data"], data_cfg, subset))
    try:
        datamodule.setup("test")
    except EdcInputError as err:
        if "data.duration" not in str(err) and "data.target_fs" not in str(err):
            raise
        grid = f"{trained['data']['duration']:g} s at {trained['data']['target_fs']} Hz"
        raise EdcInputError(f"{str(err).split(' Fix:')[0]} This checkpoint predicts curves of {grid} (its "
                            f"training grid, which evaluate cannot change). Fix: evaluate it on rooms whose curves "
                            f"hold at least {trained['data']['duration']:g} s at a rate that "
                            f"{trained['data']['target_fs']} Hz divides (python -m edc.generate "
                            f"simulation.duration={trained['data']['duration']:g} ...).") from None
    _, edcs, rows = datamodule.tensors(subset)
    rooms = predictor.in_layout(datamodule.dataset.features.iloc[rows.numpy()], datamodule.dataset.source)
    raw = torch.as_tensor(rooms[LAYOUTS[predictor.layout]].to_numpy(np.float32))  # as the model reads them
    if outside := predictor.outside_training(rooms):
        print(f"warning: {outside}", file=sys.stderr)
    if seen := training_rooms_scored(trained, datamodule, rows.numpy()):
        print(f"warning: {seen}", file=sys.stderr)
    targets = targets or trained["targets"]
    metrics = evaluate_split(predictor.surrogate, raw, edcs, datamodule.dataset.ids[rows.numpy()], out_dir,
                             targets.get("band_floor"))
    update_metadata(out_dir, status="completed", command="evaluate", ckpt_path=str(ckpt_path), subset=subset,
                    model=trained["model"]["name"], timestamp=now(),
                    dataset_fingerprint=datamodule.dataset.fingerprint(), data=datamodule.summary())
    print_metrics(metrics, targets, title=f"{subset} metrics")
    return metrics


def training_rooms_scored(trained: dict, datamodule, rows) -> str | None:
    """A warning where the rooms scored include ones the model was trained or validated on (the same dataset,
    by its fingerprint, and the checkpoint's split), else None."""
    if (trained.get("training_data") or {}).get("fingerprint") != datamodule.dataset.fingerprint():
        return None
    seen = np.intersect1d(rows, datamodule.training_rows(trained["data"].get("max_samples")))
    if not len(seen):
        return None
    return (f"{len(seen)} of the {len(rows)} rooms scored are ones this model was trained or validated on "
            f"({datamodule.dataset.source}): these metrics are not a test. Fix: subset=test (the rooms its "
            "training run held out) or rooms it never saw.")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
@task
def main(cfg: DictConfig):
    if not cfg.ckpt_path:
        raise EdcInputError("ckpt_path is not set. Fix: python -m edc.evaluate ckpt_path=RUN_DIR/checkpoints/best.ckpt")
    check(cfg)
    out_dir = HydraConfig.get().runtime.output_dir
    metrics = evaluate(cfg.ckpt_path, cfg.get("data"), cfg.subset, out_dir)
    report.console.print(f"results: {out_dir}")
    return metrics


if __name__ == "__main__":
    entrypoint(main)()
