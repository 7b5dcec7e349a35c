"""What a run dir records (provenance) and reading run dirs back (compare, monitor, sweep summaries)."""
from __future__ import annotations

import datetime
import importlib.metadata
import subprocess
from pathlib import Path

from edc.io import read_json

PACKAGES = ("edc", "torch", "pytorch-lightning", "hydra-core", "numpy", "pandas", "pyroomacoustics", "pyfar")
TERMINAL = ("completed", "diverged", "interrupted", "failed")  # statuses of a run that has ended
# the test metrics every table of runs shows (compare, sweep summary)
METRICS = ["edt_mae", "t20_mae", "c50_mae", "edt_r2", "t20_r2", "c50_r2", "edc_db_mae"]


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent)
        return result.stdout.strip() if result.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def find_runs(roots) -> list[Path]:
    """Run dirs below ``roots`` (a dir with ``metadata.json`` or ``checkpoints/``), sorted."""
    found = set()
    for root in map(Path, roots):
        if root.is_dir():
            found.update(p.parent for p in root.rglob("metadata.json"))
            found.update(p.parent for p in root.rglob("checkpoints") if p.is_dir())
    return sorted(found)


def read_run(run_dir) -> dict:
    """One run as a flat record: status, configuration columns and test metrics.

    Tolerant: a corrupted ``metadata.json`` gives status ``corrupted``, a dir with
    checkpoints only ``incomplete``; missing ``metrics.json`` is recomputed from
    ``predictions.npy`` and ``targets.npy`` when they are there.
    """
    run_dir = Path(run_dir)
    meta_path = run_dir / "metadata.json"
    meta = read_json(meta_path)
    if meta is None:
        status = "corrupted" if meta_path.exists() else "incomplete"
        return {"run": str(run_dir), "status": status}
    training, loss = meta.get("training_config", {}), meta.get("loss_config", {})
    record = {
        "run": str(run_dir), "status": meta.get("status", "unknown"), "model": meta.get("model"),
        "loss": (meta.get("config_choices") or {}).get("loss") or loss.get("type"),
        "weights": "/".join(str(loss[k]) for k in ("edt_weight", "t20_weight", "c50_weight") if k in loss) or None,
        "precision": (meta.get("precision_config") or {}).get("actual"), "clip": loss.get("gradient_clip_val"),
        "batch": training.get("batch_size"), "epochs": training.get("actual_epochs"),
        "max_epochs": training.get("max_epochs"), "seed": training.get("seed"),
        "minutes": training.get("duration_minutes"), "dataset": meta.get("dataset_fingerprint"),
        "split_by": (meta.get("data") or {}).get("split_by"), "test_set": test_set(meta),
        "reason": (meta.get("diverged") or {}).get("reason"),
    }
    metrics = read_json(run_dir / "metrics.json")
    if metrics is None and (run_dir / "predictions.npy").is_file() and (run_dir / "targets.npy").is_file():
        metrics = _recompute_metrics(run_dir, meta)
    record.update(metrics or {})
    return record


def test_set(meta: dict) -> str | None:
    """What a run was tested on: its ``test_fingerprint`` (dataset and test rooms), or for a record
    without one the dataset with the split's settings and size."""
    if meta.get("test_fingerprint") or not meta.get("dataset_fingerprint"):
        return meta.get("test_fingerprint")
    data = meta.get("data") or {}
    return "/".join(str(x) for x in (meta["dataset_fingerprint"], data.get("split_by"), data.get("split_seed"),
                                    data.get("n_rooms")))


def _recompute_metrics(run_dir: Path, meta: dict) -> dict | None:
    import numpy as np

    from edc.training.metrics import edc_metrics

    try:
        pred, target = np.load(run_dir / "predictions.npy"), np.load(run_dir / "targets.npy")
        return {**edc_metrics(pred, target, (meta.get("data") or {}).get("target_fs", 1000)), "recomputed": True}
    except (OSError, ValueError):
        return None
