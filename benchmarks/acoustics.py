"""EDT, T20 and C50 of 6000 EDCs at 48 kHz x 2 s: edc.acoustics (vectorised, in chunks) beside a
loop over pyrato, as a per-curve ratio in one run.

    python benchmarks/acoustics.py [--n 6000] [--chunk 16] [--pyrato-sample 100]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pyfar as pf
import pyrato
from common import peak_rss_mb, report

from edc import acoustics

FS, N_SAMPLES = 48000, 96000


def synthetic_edcs(n: int, seed: int) -> np.ndarray:
    """Schroeder curves of noise RIRs with T60 0.2-2 s and direct sound, ``(n, 96000)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_SAMPLES) / FS
    h2 = np.exp(-13.8 * t / rng.uniform(0.2, 2.0, (n, 1))) * rng.standard_normal((n, N_SAMPLES)) ** 2
    h2[:, 0] += rng.uniform(0, 100, n)
    edc = np.cumsum(h2[:, ::-1], axis=1)[:, ::-1]
    return edc / edc[:, :1]


def ours(edc):
    values = acoustics.parameters(edc, FS, names=("edt", "t20", "c50"))
    return values["edt"], values["t20"], values["c50"]


def reference(edc):
    signal = pf.TimeData(edc, np.arange(edc.shape[-1]) / FS)
    rt = pyrato.parameters.reverberation_time_linear_regression
    with np.errstate(divide="ignore"):
        return rt(signal, "EDT"), rt(signal, "T20"), pyrato.parameters.clarity(signal, 50)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--pyrato-sample", type=int, default=100)
    args = parser.parse_args()

    sample = synthetic_edcs(args.pyrato_sample, seed=10**6)
    t0 = time.perf_counter()
    loop = [reference(row[None]) for row in sample]
    pyrato_s = time.perf_counter() - t0
    expected = [np.concatenate([r[k] for r in loop]) for k in range(3)]
    max_diff = max(np.nanmax(np.abs(v - e) / np.abs(e)) for v, e in zip(ours(sample), expected))
    del sample

    ours_s = 0.0
    for start in range(0, args.n, args.chunk):
        edc = synthetic_edcs(min(args.chunk, args.n - start), seed=start)
        t0 = time.perf_counter()
        ours(edc)
        ours_s += time.perf_counter() - t0
    per_ours = ours_s / args.n
    per_pyrato = pyrato_s / args.pyrato_sample
    rows = [["edc.acoustics (vectorised, chunks of %d)" % args.chunk, args.n, f"{ours_s:.2f}",
             f"{per_ours * 1e3:.3f}", f"{peak_rss_mb():.0f}"],
            ["pyrato, loop over curves", args.pyrato_sample, f"{pyrato_s:.2f}", f"{per_pyrato * 1e3:.3f}", "-"]]
    report("acoustics", "EDT + T20 + C50 of 48 kHz x 2 s EDCs",
           ["implementation", "curves", "total s", "ms / curve", "peak process memory (MB)"], rows,
           "python benchmarks/acoustics.py",
           f"Ratio per curve (pyrato / edc): **{per_pyrato / per_ours:.2f}x**. Largest relative difference "
           f"to pyrato on its sample: {max_diff:.1e}. Chunked: peak memory stays bounded for any n.")


if __name__ == "__main__":
    main()
