"""What a run dir records (provenance) and reading run dirs back (compare, monitor, sweep summaries)."""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import socket
import subprocess
from pathlib import Path

from edc.io import read_json

PACKAGES = ("edc", "torch", "pytorch-lightning", "hydra-core", "numpy", "pandas", "pyroomacoustics", "pyfar")
TERMINAL = ("completed", "pruned", "diverged", "interrupted", "failed", "dead")  # statuses of a run that has ended
STALE_AFTER_S = 3600  # a running run on another host with no heartbeat for this long is reported stale
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


def process_identity(pid: int | None = None) -> dict:
    """``{"host", "pid", "pid_started"}`` of a process (default: this one); ``pid_started`` is its start
    time in clock ticks since boot (Linux), which tells a reused pid from the original."""
    pid = os.getpid() if pid is None else pid
    return {"host": socket.gethostname(), "pid": pid, "pid_started": _start_ticks(pid)}


def _start_ticks(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(identity: dict) -> bool | None:
    """Whether the recorded process still runs: None where this host cannot tell (another host, no record)."""
    if not identity or identity.get("host") != socket.gethostname() or not identity.get("pid"):
        return None
    started = _start_ticks(identity["pid"])
    if started is None:
        try:
            os.kill(identity["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc").is_dir()  # /proc without the pid: gone
    return identity.get("pid_started") in (None, started)


def run_status(meta: dict) -> str:
    """A run's status as recorded, except a ``running`` run whose process is gone (``dead``: killed,
    out of memory, the machine went down) or, on another host, that has sent no heartbeat for over
    :data:`STALE_AFTER_S` (``stale``)."""
    status = meta.get("status", "unknown")
    if status != "running":
        return status
    alive = process_alive(meta.get("process") or {})
    if alive is False:
        return "dead"
    beat = meta.get("heartbeat")
    if alive is None and beat:
        age = (datetime.datetime.now() - datetime.datetime.fromisoformat(beat)).total_seconds()
        return "stale" if age > STALE_AFTER_S else status
    return status


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
        "run": str(run_dir), "status": run_status(meta), "model": meta.get("model"),
        "loss": (meta.get("config_choices") or {}).get("loss") or loss.get("type"),
        "weights": "/".join(str(loss[k]) for k in ("edt_weight", "t20_weight", "c50_weight") if k in loss) or None,
        "precision": (meta.get("precision_config") or {}).get("actual"), "clip": loss.get("gradient_clip_val"),
        "batch": training.get("batch_size"), "epochs": training.get("actual_epochs"),
        "max_epochs": training.get("max_epochs"), "seed": training.get("seed"),
        "minutes": training.get("duration_minutes"), "dataset": meta.get("dataset_fingerprint"),
        "split_by": (meta.get("data") or {}).get("split_by"), "test_set": test_set(meta),
        "reason": (meta.get("diverged") or {}).get("reason"),
        "command": meta.get("command", "train"), "debug": (meta.get("config_choices") or {}).get("debug"),
        "objective": (meta.get("objective") or {}).get("value"),  # a search's run: its validation metric
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
