"""Watch a sweep: ``python -m edc.monitor [SWEEP_DIR] [--interval 10] [--once]``.

One row per job (default sweep: the newest training sweep under ``multirun/``): state (queued, running,
completed, diverged, interrupted, failed), epoch of max, latest train and val loss, val EDC
MAE, elapsed and ETA. Refreshes every ``--interval`` s and ends when every job has ended.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from edc.errors import EXIT_BAD_INPUT
from edc.io import read_json
from edc.runs.records import TERMINAL, run_status


def newest_sweep(root: Path = Path("multirun")) -> Path | None:
    """The newest training sweep under ``root`` (its ``multirun.yaml`` names the job ``train``; a generate
    or evaluate sweep is not one), or None."""
    sweeps = [p.parent for p in root.rglob("multirun.yaml") if _job_name(p) == "train"] if root.is_dir() else []
    return max(sweeps, key=lambda p: p.stat().st_mtime) if sweeps else None


def _job_name(multirun_yaml: Path) -> str | None:
    try:
        return OmegaConf.select(OmegaConf.load(multirun_yaml), "hydra.job.name")
    except Exception:  # noqa: BLE001 - an unreadable file is no sweep of ours
        return None


def last_logged(run_dir: Path) -> dict:
    """Latest values of the Lightning CSV log (tolerates a half-written last line)."""
    latest = {}
    try:
        with open(run_dir / "logs" / "metrics.csv", newline="") as f:
            for row in csv.DictReader(f):
                latest.update({k: v for k, v in row.items() if v not in ("", None)})
    except (OSError, csv.Error):
        pass
    return latest


def job_state(job: Path) -> dict:
    meta = read_json(job / "metadata.json")
    if meta is None:
        state = "corrupted" if (job / "metadata.json").exists() else "queued"
        return {"job": job.name, "state": state}
    log = last_logged(job)
    epoch = int(float(log["epoch"])) + 1 if "epoch" in log else 0
    max_epochs = (meta.get("training_config") or {}).get("max_epochs")
    started = datetime.datetime.fromisoformat(meta["timestamp"]) if "timestamp" in meta else None
    ended = meta.get("finished")
    now = datetime.datetime.fromisoformat(ended) if ended else datetime.datetime.now()
    elapsed = (now - started).total_seconds() if started else None
    state = run_status(meta)
    eta = None
    if state == "running" and elapsed and epoch and max_epochs:
        eta = elapsed / epoch * (max_epochs - epoch)
    return {"job": job.name, "state": state, "epoch": f"{epoch}/{max_epochs}", "train_loss": log.get("train/loss"),
            "val_loss": log.get("val/loss"), "val_mae": log.get("val/edc_mae"), "elapsed": elapsed, "eta": eta}


def jobs_of(sweep: Path) -> list[dict]:
    rows = [job_state(p) for p in sorted(sweep.iterdir(), key=lambda p: (len(p.name), p.name))
            if p.is_dir() and p.name.isdigit()]
    submitted = len(list((sweep / ".submitit").glob("*/*_submitted.pkl"))) if (sweep / ".submitit").is_dir() else 0
    rows += [{"job": "-", "state": "queued"} for _ in range(max(0, submitted - len(rows)))]
    return rows


def render(sweep: Path, rows: list[dict]) -> Table:
    table = Table(title=str(sweep))
    for column in ("job", "state", "epoch", "train loss", "val loss", "val MAE", "elapsed", "ETA"):
        table.add_column(column, justify="right")
    fmt = lambda v: "-" if v in (None, "") else f"{float(v):.4g}"  # noqa: E731
    secs = lambda v: "-" if v is None else str(datetime.timedelta(seconds=int(v)))  # noqa: E731
    for r in rows:
        table.add_row(r["job"], r["state"], r.get("epoch", "-"), fmt(r.get("train_loss")), fmt(r.get("val_loss")),
                      fmt(r.get("val_mae")), secs(r.get("elapsed")), secs(r.get("eta")))
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edc.monitor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", nargs="?", type=Path, default=None)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)
    sweep = args.sweep or newest_sweep()
    if sweep is None or not sweep.is_dir():
        print(f"error: no sweep dir {'at ' + str(args.sweep) if args.sweep else 'under multirun/'}. "
              "Fix: pass the sweep dir of a `python -m edc.train -m ...` run.", file=sys.stderr)
        return EXIT_BAD_INPUT
    console = Console(width=160)
    while True:
        rows = jobs_of(sweep)
        console.print(render(sweep, rows))
        if args.once or (rows and all(r["state"] in TERMINAL + ("corrupted",) for r in rows)):
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
