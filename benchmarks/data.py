"""Data at scale: peak memory and time of a per-band training epoch against the number of rooms, and
the folder layout's first and cached load.

    python benchmarks/data.py                      # 6K, 24K and 96K rooms (tiled paper rooms with bands)
    python benchmarks/data.py --rooms 6000 24000   # some sizes
    python benchmarks/data.py --folder             # also: 6000 folder files of 96000 samples
    python benchmarks/data.py --source demo        # tile the built-in demo rooms (no dataset to build)

Scaling: ``data/paper6000_bands`` (``python benchmarks/datasets.py``; or, with ``--source demo``, the
400 built-in demo rooms, whose curves have the same size) tiled to N rooms in a compact dataset under
``--workdir``; one process per size trains the default per-band model for one epoch
(``experiment=paper6000_bands_best trainer.max_epochs=1``, the test split predicted and scored as
always) and reports its peak resident memory. Resident memory counts the pages of the memory-mapped
curves the process has read (loading validates every curve, so all of them), besides its own arrays.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from common import report

ROOT = Path(__file__).resolve().parents[1]
TRAIN = """
import json, resource, sys, time
from hydra import compose, initialize_config_dir
from edc.cli.config import CONF_DIR
from edc.cli.train import train
with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
    cfg = compose("train", overrides=["experiment=paper6000_bands_best", f"data.path={sys.argv[1]}", "trainer=cpu",
                                      "trainer.max_epochs=1", "~callbacks.progress_bar", "~callbacks.ema"])
t0 = time.perf_counter()
train(cfg, sys.argv[2])
meta = json.load(open(sys.argv[2] + "/metadata.json"))
print(json.dumps({"total_s": time.perf_counter() - t0, "train_s": meta["segments"][0]["minutes"] * 60,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
FOLDER = """
import resource, sys, time
import numpy as np
from edc.data import load_folder
t0 = time.perf_counter()
data = load_folder(sys.argv[1], sys.argv[2], source_fs=48000, duration=2.0)
data.curves(np.arange(len(data)), 1000, 2.0, bands=False)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def tiled(source: Path, n_rooms: int, out: Path) -> Path:
    """``source`` repeated to ``n_rooms`` rooms (IDs made unique), written chunk by chunk."""
    if (out / "meta.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    features = pd.read_csv(source / "features.csv", dtype={"ID": str})
    rows = np.arange(n_rooms) % len(features)
    table = features.iloc[rows].reset_index(drop=True)
    table["ID"] = [f"{i}_{k}" for k, i in enumerate(table.ID)]
    table.to_csv(out / "features.csv", index=False)
    for name in ("edcs", "band_edcs"):
        stored = np.load(source / f"{name}.npy", mmap_mode="r")
        target = np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=np.float32,
                                           shape=(n_rooms, *stored.shape[1:]))
        for start in range(0, n_rooms, len(stored)):
            stop = min(start + len(stored), n_rooms)
            target[start:stop] = stored[: stop - start]
        target.flush()
        del target
    (out / "meta.json").write_text((source / "meta.json").read_text())
    return out


def demo_compact(workdir: Path) -> Path:
    """The built-in demo rooms as a compact dataset (broadband and band curves at 1 kHz)."""
    from edc.data import load_demo
    from edc.data.layouts import write_compact

    out = workdir / "demo"
    if not (out / "meta.json").is_file():
        demo = load_demo()
        meta = {k: v for k, v in demo.meta.items() if k not in ("shape", "level_step_db", "fingerprint")}
        write_compact(out, demo.features, meta, demo.edcs, demo.band_edcs)
    return out


def scaling_rows(sizes, workdir: Path, source: Path) -> list[list]:
    stored = (np.load(source / "edcs.npy", mmap_mode="r").shape[-1] * 8 * 4) / 1024  # KB per room (8 curves)
    rows, previous = [], None
    for n in sorted(sizes):
        data = tiled(source, n, workdir / f"{source.name}-{n}")
        out = subprocess.run([sys.executable, "-c", TRAIN, str(data), str(workdir / f"run{n}")], capture_output=True,
                             text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        added = "-" if previous is None else \
            f"{(result['peak_mb'] - previous[1]) * 1024 / (n - previous[0]) / stored:.2f}x"  # KB per added room / stored
        rows.append([f"{n:,}", f"{n * stored / 1024:,.0f}", f"{result['peak_mb']:,.0f}",
                     f"{result['peak_mb'] * 1024 / n:.0f} ({result['peak_mb'] * 1024 / n / stored:.2f}x)", added,
                     f"{result['train_s']:.0f}", f"{result['total_s']:.0f}"])
        previous = (n, result["peak_mb"])
        shutil.rmtree(workdir / f"run{n}", ignore_errors=True)
    return rows


def folder_rows(n: int, workdir: Path) -> list[list]:
    from edc.data import FEATURES

    root = workdir / "folder"
    edc_dir = root / "edcs"
    edc_dir.mkdir(parents=True, exist_ok=True)
    t = np.arange(96000) / 48000
    rng = np.random.default_rng(0)
    for i in range(n):
        np.save(edc_dir / f"room{i}.npy", np.exp(-13.8 * t / rng.uniform(0.2, 2.0)).astype(np.float32))
    pd.DataFrame([[f"room{i}", 3.5, 4, 3, 1.4, 2, 1.5, 1, 1, 1.5, .2, .3, .5, .6, .6, .6, .6] for i in range(n)],
                 columns=["ID"] + list(FEATURES)).to_csv(root / "features.csv", index=False)
    rows = []
    for what in ("first load (validate every file, write cache)", "cached load (memory map)"):
        out = subprocess.run([sys.executable, "-c", FOLDER, str(root / "features.csv"), str(edc_dir)],
                             capture_output=True, text=True, check=True).stdout.split()
        rows.append([what, f"{float(out[0]):.2f}", f"{float(out[1]):.0f}"])
    shutil.rmtree(root, ignore_errors=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, nargs="+", default=[6000, 24000, 96000])
    parser.add_argument("--folder", action="store_true", help="also time the folder layout (6000 files)")
    parser.add_argument("--workdir", default="/tmp/edc-bench-data")
    parser.add_argument("--source", default=str(ROOT / "data" / "paper6000_bands"),
                        help="compact dataset with bands to tile, or 'demo' (the built-in rooms)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    source = demo_compact(workdir) if args.source == "demo" else Path(args.source)
    rows = scaling_rows(args.rooms, workdir, source)
    report("data-scaling", "Per-band training at scale: one epoch of the default model",
           ["rooms", "curves on disk (MB)", "peak resident memory (MB)", "per room (KB; x the stored bytes)",
            "per added room (x the stored bytes)", "epoch (s)", "whole run (s)"], rows, " ".join(["python benchmarks/data.py", *sys.argv[1:]]),
           f"Rooms: {source.name} tiled. Curves: 8 per room (broadband and 7 bands) of 2000 float32 samples, memory-mapped. Whole run: "
           "loading and validating every curve, fitting the scalers, the epoch, predicting and scoring the "
           "test split (20 %). Resident memory counts the memory map's pages that were read; per added room: the growth "
           "of peak memory from the next smaller size, over the rooms added (the process's fixed memory left out).")
    if args.folder:
        report("data", "Folder layout: 6000 files x 96000 float32 samples, then the 1 kHz grid",
               ["load", "seconds", "peak process memory (MB)"], folder_rows(6000, workdir), "python benchmarks/data.py --folder",
               "Data on disk: 2.3 GB; the cache is one .npy of the same size.")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
