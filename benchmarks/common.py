"""Shared by the benchmark scripts: peak memory and the result table (printed and saved)."""
from __future__ import annotations

import platform
import resource
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor_between(first, second) -> float:
    """docs/data.md's noise floor between two simulations of the same rooms (arrays of one parameter, NaN
    where undefined): mean |difference| / sqrt(2), the error of a perfect predictor of their mean."""
    return float(np.nanmean(np.abs(np.asarray(first) - np.asarray(second))) / np.sqrt(2))


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def report(name: str, title: str, columns: list[str], rows: list[list], command: str, notes: str = "") -> None:
    """Print the table and write it as ``results/<name>.md`` with the command that made it."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*map(str, row))
    Console().print(table)
    lines = [f"# {title}", "", f"Made by `{command}` on {machine()}.", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text("\n".join(lines + ["", notes]).rstrip() + "\n")
