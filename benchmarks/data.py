"""Folder layout: first load (validate + write the memory-mapped cache) and cached load of
6000 files of 96000 float32 samples, with peak memory.

    python benchmarks/data.py [--n 6000] [--workdir /tmp/edc-bench-data]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from common import report

SNIPPET = """
import sys, time, resource
from edc.data import load_folder
t0 = time.perf_counter()
data = load_folder(sys.argv[1], sys.argv[2], source_fs=48000, duration=2.0)
grid = data.on_grid(1000, 2.0)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, data.edcs.shape[0])
"""


def write_files(root: Path, n: int) -> tuple[Path, Path]:
    import pandas as pd

    from edc.data import FEATURES

    root.mkdir(parents=True, exist_ok=True)
    edc_dir = root / "edcs"
    edc_dir.mkdir(exist_ok=True)
    t = np.arange(96000) / 48000
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        np.save(edc_dir / f"room{i}.npy", np.exp(-13.8 * t / rng.uniform(0.2, 2.0)).astype(np.float32))
        rows.append([f"room{i}", 3.5, 4, 3, 1.4, 2, 1.5, 1, 1, 1.5, .2, .3, .5, .6, .6, .6, .6])
    csv = root / "features.csv"
    pd.DataFrame(rows, columns=["ID"] + list(FEATURES)).to_csv(csv, index=False)
    return csv, edc_dir


def load_in_fresh_process(csv: Path, edc_dir: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", SNIPPET, str(csv), str(edc_dir)], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), float(out[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--workdir", default="/tmp/edc-bench-data")
    args = parser.parse_args()
    root = Path(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    csv, edc_dir = write_files(root, args.n)
    first, first_mem = load_in_fresh_process(csv, edc_dir)
    cached, cached_mem = load_in_fresh_process(csv, edc_dir)
    rows = [["first load (validate every file, write cache)", f"{first:.1f}", f"{first_mem:.0f}"],
            ["cached load (memory map)", f"{cached:.2f}", f"{cached_mem:.0f}"]]
    report("data", f"Folder layout: {args.n} files x 96000 float32 samples, then the 1 kHz grid",
           ["load", "seconds", "peak process memory (MB)"], rows, "python benchmarks/data.py",
           f"Data on disk: {args.n * 96000 * 4 / 1e9:.1f} GB; the cache is one .npy of the same size. Peak memory "
           "is resident set size, which counts the file-backed pages of the memory map that the 1 kHz "
           "sampling touches (the page cache, not copies).")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
