"""An Optuna search over the EDT/T20/C50 region weights against the three hand presets, on the paper's
6000 rooms with the same epoch budget (``experiment=paper6000_best`` with ``loss=weighted_edc``):

    python benchmarks/search.py                         # 3 presets + 20 trials of 30 epochs, about an hour on 2 cores
    python benchmarks/search.py --trials 40 --epochs 120

Both run as a user runs them (``python -m edc.train -m ...``, the basic launcher) into
``multirun/benchmark-search/``; run again, the script reuses the presets' sweep and the study goes on
where it stopped. The search picks its best trial by the validation T20 error (the study's objective);
the table gives test errors of the same test rooms for all, and their ratio to the simulator's noise
floor on the random split's test rooms (``results/noise-floors.json``, 200 rooms, second seed). Writes
``results/search.md``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from common import RESULTS, report
from omegaconf import OmegaConf

from edc.runs.search import objective_value

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "multirun" / "benchmark-search"
PRESETS = ("conservative", "moderate", "aggressive")


def train(args: list[str], sweep_dir: Path) -> float:
    """Run ``python -m edc.train -m ARGS`` into ``sweep_dir``; its wall-clock seconds."""
    command = [sys.executable, "-m", "edc.train", "-m", "experiment=paper6000_best", "~callbacks.progress_bar",
               f"hydra.sweep.dir={sweep_dir}", *args]
    print(" ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def timed(part: str, args: list[str], done) -> float:
    """Seconds spent on ``part`` over every invocation of this script (kept in ``timing.json``)."""
    timing_file = OUT / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    if not done():
        timing[part] = timing.get(part, 0.0) + train(args, OUT / part)
        OUT.mkdir(parents=True, exist_ok=True)
        timing_file.write_text(json.dumps(timing, indent=1))
    return timing[part]


def sweep_done(part: str, n_runs: int) -> bool:
    """Whether the sweep ``part`` completed its ``n_runs`` runs; an earlier attempt cut short is removed (its
    runs start again)."""
    summary = OUT / part / "summary.csv"
    if summary.is_file() and (pd.read_csv(summary).status == "completed").sum() == n_runs:
        return True
    if (OUT / part).exists():
        subprocess.run(["rm", "-rf", str(OUT / part)], check=True)
    return False


def search_done(n_trials: int) -> bool:
    results = OUT / "search" / "optimization_results.yaml"
    return results.is_file() and sum(OmegaConf.load(results).trials.values()) >= n_trials


def seed_row(label: str, run_dirs: list[Path], floor: dict) -> list:
    """Mean and standard deviation over the runs of seeds 0, 1, 2 of one configuration."""
    metrics = pd.DataFrame([json.loads((d / "metrics.json").read_text()) for d in run_dirs])
    val = [objective_value(d / "logs" / "metrics.csv", "val/t20_mae") for d in run_dirs]
    t20, c50 = metrics.t20_mae, metrics.c50_mae
    return [label, "", f"{pd.Series(val).mean():.4f}", f"{metrics.edt_mae.mean():.4f}",
            f"{t20.mean():.4f} +- {t20.std():.4f} ({t20.mean() / floor['t20_broadband']:.2f}x)",
            f"{c50.mean():.3f} +- {c50.std():.3f} ({c50.mean() / floor['c50_broadband']:.2f}x)", "", ""]


def run_row(run_dir: Path, label: str, floor: dict) -> list:
    meta = json.loads((run_dir / "metadata.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    loss = meta["loss_config"]
    val_t20 = objective_value(run_dir / "logs" / "metrics.csv", "val/t20_mae")  # at best.ckpt's epoch
    weights = "/".join(f"{loss[k]:.2f}" for k in ("edt_weight", "t20_weight", "c50_weight"))
    return [label, weights, f"{val_t20:.4f}", f"{metrics['edt_mae']:.4f}",
            f"{metrics['t20_mae']:.4f} ({metrics['t20_mae'] / floor['t20_broadband']:.2f}x)",
            f"{metrics['c50_mae']:.3f} ({metrics['c50_mae'] / floor['c50_broadband']:.2f}x)",
            meta["training_config"]["actual_epochs"], meta["status"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    budget = [f"trainer.max_epochs={args.epochs}"]
    preset_seconds = timed("presets", [f"loss={','.join(PRESETS)}", *budget], lambda: sweep_done("presets", 3))
    search_args = ["hparams_search=loss_weights", f"hydra.sweeper.n_trials={args.trials}", *budget]
    search_seconds = timed("search", search_args, lambda: search_done(args.trials))  # else it goes on

    floor = json.loads((RESULTS / "noise-floors.json").read_text())["rows"]
    presets = pd.read_csv(OUT / "presets" / "summary.csv")
    rows = [run_row(OUT / "presets" / str(job), f"preset {name}", floor)
            for job, name in zip(presets.job, [o.split("loss=")[1].split()[0] for o in presets.overrides])]
    results = OmegaConf.load(OUT / "search" / "optimization_results.yaml")
    rows.append(run_row(OUT / "search" / str(results.best_trial), f"search best (trial {results.best_trial})", floor))
    # seed spread: the best preset (by validation T20, as the search chooses) and the search's best, seeds 1 and 2
    best_preset = PRESETS[min(range(3), key=lambda i: float(rows[i][2]))]
    best_weights = [f"{k}={v!r}" for k, v in results.best_params.items()]
    timed("seeds-preset", [f"loss={best_preset}", "seed=1,2", *budget], lambda: sweep_done("seeds-preset", 2))
    timed("seeds-search", ["loss=weighted_edc", *best_weights, "seed=1,2", *budget],
          lambda: sweep_done("seeds-search", 2))
    preset_job = list(PRESETS).index(best_preset)
    preset_runs = [OUT / "presets" / str(preset_job), OUT / "seeds-preset" / "0", OUT / "seeds-preset" / "1"]
    rows.append(seed_row(f"preset {best_preset}, seeds 0-2", preset_runs, floor))
    rows.append(seed_row("search best, seeds 0-2", [OUT / "search" / str(results.best_trial),
                                                    OUT / "seeds-search" / "0", OUT / "seeds-search" / "1"], floor))
    counts = results.trials
    report("search", f"Optuna search ({args.trials} trials) against the three hand presets, paper6000, "
           f"{args.epochs} epochs each",
           ["run", "weights EDT/T20/C50", "val T20 MAE (s)", "test EDT MAE (s)", "test T20 MAE (s, / floor)",
            "test C50 MAE (dB, / floor)", "epochs", "status"], rows,
           "python benchmarks/search.py" + (f" --trials {args.trials}" if args.trials != 20 else "")
           + (f" --epochs {args.epochs}" if args.epochs != 30 else ""),
           notes=(f"Wall-clock on this machine: the three presets {preset_seconds / 60:.1f} min, the search "
                  f"{search_seconds / 60:.1f} min ({counts.complete} trials completed, {counts.pruned} pruned by the "
                  f"median pruner, {counts.fail} failed). The search chose its best trial by the validation T20 "
                  "error; test errors are on the same test rooms for every run. Noise floor: the same simulation "
                  f"with a second seed on 200 of the test rooms (T20 {floor['t20_broadband']:.4f} s, C50 "
                  f"{floor['c50_broadband']:.3f} dB).\n\nBest overrides: `{results.best_overrides}`"))


if __name__ == "__main__":
    main()
