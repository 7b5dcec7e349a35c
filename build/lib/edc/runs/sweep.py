"""End of a multirun: ``summary.csv`` and ``summary.md`` in the sweep dir, and its exit code."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from edc.io import atomic_path
from edc.runs.records import METRICS, read_run


def job_rows(sweep_dir: Path) -> pd.DataFrame:
    """One row per job dir: its number, overrides, status and test metrics."""
    rows = []
    for job in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml") if (job / ".hydra" / "overrides.yaml").is_file() else []
        run = read_run(job)
        rows.append({"job": int(job.name), "overrides": " ".join(overrides), "status": run["status"],
                     **{k: run.get(k) for k in METRICS}})
    return pd.DataFrame(rows, columns=["job", "overrides", "status"] + METRICS)


def write_summary(sweep_dir) -> pd.DataFrame:
    sweep_dir = Path(sweep_dir)
    table = job_rows(sweep_dir)
    with atomic_path(sweep_dir / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(sweep_dir / "summary.md") as tmp:
        tmp.write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    return table


class SweepSummary(Callback):
    """Writes and prints the summary of every job; exits 1 afterwards if a job did not complete."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        table = write_summary(config.hydra.sweep.dir)
        print(table.to_markdown(index=False, floatfmt=".4f"))
        failed = table[~table.status.isin(["completed"])]
        if len(failed):
            print(f"{len(failed)} of {len(table)} jobs did not complete: see {config.hydra.sweep.dir}/summary.md",
                  file=sys.stderr)
            sys.exit(1)
