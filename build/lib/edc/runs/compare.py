"""Compare runs: ``python -m edc.compare [DIRS...] --sort-by t20_mae --top 10 [--group-by model loss] [--out F]``.

Finds the training run dirs under ``outputs/`` and ``multirun/`` (or DIRS; not the dirs of evaluate
or generate), audits each (completed, diverged, interrupted, failed, running, dead, stale,
incomplete, corrupted), recomputes missing metrics from the saved predictions, and ranks only runs
tested on the same rooms together (one block per test set: the dataset's fingerprint and the test
split's rooms; debug runs in blocks of their own).
``--group-by`` aggregates runs that share those columns (e.g. seeds) as mean and std.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console

from edc.errors import EXIT_BAD_INPUT
from edc.io import atomic_path
from edc.runs.records import METRICS, find_runs, read_run

CONFIG_COLUMNS = ["status", "model", "loss", "weights", "precision", "clip", "batch", "epochs", "minutes", "split_by",
                  "test_set", "debug"]


def collect(dirs) -> pd.DataFrame:
    """The training runs below ``dirs`` (an evaluation's or a generation's dir is no run), one row each."""
    records = [r for r in map(read_run, find_runs(dirs)) if r.get("command", "train") == "train"]
    table = pd.DataFrame(records)
    for column in ["run"] + CONFIG_COLUMNS + METRICS:
        if column not in table:
            table[column] = None
    return table


def rank(table: pd.DataFrame, sort_by: str, top: int | None) -> pd.DataFrame:
    """Best first within each test set (debug runs apart), completed runs before the others; R2 high-first,
    errors low-first."""
    ascending = not sort_by.endswith("r2")
    table = table.assign(_unfinished=table.status != "completed")
    blocks = [table["test_set"].fillna("unknown"), table["debug"].fillna("")]
    parts = [g.sort_values(["_unfinished", sort_by], ascending=[True, ascending], na_position="last").head(top)
             for _, g in table.groupby(blocks, sort=False)]
    return pd.concat(parts) if parts else table


def aggregate(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean and std of the metrics over runs sharing ``columns`` (plus the test set)."""
    keys = list(dict.fromkeys(columns + ["test_set", "debug"]))
    done = table[table.status == "completed"].copy()
    for key in keys:
        done[key] = done[key].astype(str)
    grouped = done.groupby(keys)[METRICS]
    out = grouped.mean().add_suffix("_mean").join(grouped.std().add_suffix("_std"))
    out.insert(0, "n_runs", grouped.size())
    return out.reset_index()


def write(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        if path.suffix == ".md":
            tmp.write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
        else:
            table.to_csv(tmp, index=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edc.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", default=["outputs", "multirun"])
    parser.add_argument("--sort-by", default="t20_mae", choices=METRICS)
    parser.add_argument("--top", type=int, default=None, help="show the best N runs")
    parser.add_argument("--group-by", nargs="+", default=None, help=f"columns of {CONFIG_COLUMNS + ['seed']}")
    parser.add_argument("--out", type=Path, default=None, help="FILE.csv or FILE.md")
    args = parser.parse_args(argv)
    if args.out is not None and args.out.suffix not in (".csv", ".md"):
        print(f"error: --out {args.out}: use a .csv or .md file.", file=sys.stderr)
        return EXIT_BAD_INPUT
    missing = [d for d in args.dirs if not Path(d).is_dir()]
    if missing and args.dirs != parser.get_default("dirs"):
        print(f"error: {', '.join(missing)}: no such folder. Fix: pass run or sweep folders "
              "(outputs/..., multirun/...).", file=sys.stderr)
        return EXIT_BAD_INPUT
    table = collect(args.dirs)
    console = Console(width=200)
    if table.empty:
        console.print(f"no runs found under {' '.join(args.dirs)}")
        return 0
    if args.group_by:
        unknown = [c for c in args.group_by if c not in table.columns]
        if unknown:
            print(f"error: --group-by {unknown}: not a column; use {CONFIG_COLUMNS + ['seed']}.", file=sys.stderr)
            return EXIT_BAD_INPUT
        shown = aggregate(table, args.group_by)
    else:
        shown = rank(table, args.sort_by, args.top)[["run"] + CONFIG_COLUMNS + METRICS]
    test_sets = table["test_set"].dropna().unique()
    if len(test_sets) > 1:
        console.print(f"[yellow]{len(test_sets)} different test sets[/]: runs are ranked only against runs tested "
                      "on the same rooms (column `test_set`: dataset and test split).")
    console.print(shown.to_markdown(index=False, floatfmt=".4f"))
    if args.out:
        write(shown, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
