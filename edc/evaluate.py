"""Evaluate a checkpoint on any dataset: ``python -m edc.evaluate ckpt_path=P [data=...] [subset=all]``.

The model, scalers, training grid and split procedure come from the checkpoint;
``data=...`` only says where the rooms are. ``subset=test`` (default) applies the
checkpoint's split to the given data; ``subset=all`` evaluates every row. Results go
to this command's own run dir, never over the training run's files.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from edc import report
from edc.api import load
from edc.config import CONF_DIR
from edc.errors import EdcInputError, entrypoint, task
from edc.run import now, update_metadata
from edc.train import evaluate_split

WHERE_KEYS = ("layout", "path", "features_csv", "edc_dir", "source_fs", "cache_dir")


def evaluate(ckpt_path, data_cfg: DictConfig | None, subset: str, out_dir, targets: dict | None = None) -> dict:
    """Metrics of the checkpoint on ``subset`` (test or all) of the data; files written to ``out_dir``."""
    if subset not in ("test", "all"):
        raise EdcInputError(f"subset={subset!r}: use 'test' (the checkpoint's split) or 'all' (every row).")
    predictor = load(ckpt_path)
    trained = predictor.config
    merged = OmegaConf.to_container(trained.data, resolve=True)
    if data_cfg is not None:
        merged.update({k: v for k, v in OmegaConf.to_container(data_cfg, resolve=True).items() if k in WHERE_KEYS})
    datamodule = instantiate(merged)
    datamodule.setup("test")
    if subset == "all":
        rows = torch.as_tensor(datamodule.rows)
        raw, edcs = datamodule.features[rows], datamodule.edcs[rows]
    else:
        raw, edcs, rows = datamodule.tensors("test")
    out_dir = Path(out_dir)
    metrics = evaluate_split(predictor.module, raw, edcs, datamodule.dataset.ids[rows.numpy()], out_dir)
    update_metadata(out_dir, status="completed", command="evaluate", ckpt_path=str(ckpt_path), subset=subset,
                    model=trained.model.name, timestamp=now(), dataset_fingerprint=datamodule.dataset.fingerprint(),
                    data=datamodule.summary())
    report.console.print(report.metrics_table(metrics, targets or OmegaConf.to_container(trained.targets),
                                              title=f"{subset} metrics"))
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
@task
def main(cfg: DictConfig):
    if not cfg.ckpt_path:
        raise EdcInputError("ckpt_path is not set. Fix: python -m edc.evaluate ckpt_path=RUN_DIR/checkpoints/best.ckpt")
    return evaluate(cfg.ckpt_path, cfg.get("data"), cfg.subset, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    entrypoint(main)()
