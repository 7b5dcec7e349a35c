"""End of a multirun: ``summary.csv`` and ``summary.md`` in the sweep dir, and its exit code. A search
(``hparams_search=...``) adds each trial's objective and its best overrides."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from edc.io import atomic_path
from edc.runs.records import METRICS, read_run


OK_STATUSES = ("completed", "pruned")  # a pruned trial of a search ended as its study asked


def job_rows(sweep_dir: Path) -> pd.DataFrame:
    """One row per job dir: its number, overrides, status, the objective of a search's trial and test metrics."""
    rows = []
    for job in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml") if (job / ".hydra" / "overrides.yaml").is_file() else []
        run = read_run(job)
        rows.append({"job": int(job.name), "overrides": " ".join(o for o in overrides if not o.startswith("trial.")),
                     "status": run["status"], "objective": run.get("objective"), **{k: run.get(k) for k in METRICS}})
    table = pd.DataFrame(rows, columns=["job", "overrides", "status", "objective"] + METRICS)
    return table if table.objective.notna().any() else table.drop(columns="objective")


def write_summary(sweep_dir) -> pd.DataFrame:
    sweep_dir = Path(sweep_dir)
    table = job_rows(sweep_dir)
    with atomic_path(sweep_dir / "summary.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(sweep_dir / "summary.md") as tmp:
        tmp.write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    return table


class SweepSummary(Callback):
    """Writes and prints the summary of every job; exits 1 afterwards if a job did not complete (a search:
    if no trial completed)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        table = write_summary(config.hydra.sweep.dir)
        print(table.to_markdown(index=False, floatfmt=".4f"))
        results = Path(config.hydra.sweep.dir) / "optimization_results.yaml"
        searched = results.is_file() and "best_overrides" in (best := OmegaConf.load(results))
        if searched:
            print(f"best trial: {best.best_trial} ({config.get('optimized_metric')} = {best.best_value:.4g}); train it "
                  f"again with: python -m edc.train {best.best_overrides}")
        failed = table[~table.status.isin(OK_STATUSES)]
        if len(failed) and searched:  # the study went on past them: failed trials are part of a search
            print(f"{len(failed)} of {len(table)} trials did not complete (failed trials of the study): see "
                  f"{config.hydra.sweep.dir}/summary.md", file=sys.stderr)
        elif len(failed):
            print(f"{len(failed)} of {len(table)} jobs did not complete: see {config.hydra.sweep.dir}/summary.md",
                  file=sys.stderr)
            sys.exit(1)
