"""How much the simulator's own ray set moves a room's decay: an error no model learns for new rooms.

    python benchmarks/ray_set.py                 # 40 paper geometries, default rays against 8x as many
    python benchmarks/ray_set.py --rooms 10 --factor 4

pyroomacoustics traces ~20 V rays (V in m3; 20 receiver hits per 4 ms bin on average), in fixed
Fibonacci directions: the ray-traced part of every room carries a deterministic pattern of hits,
the same in every run and, with specular paths, for every absorption profile of that geometry
(only the energy each hit carries changes). The sequence seed (PROTOCOL's noise floor) does not
change it. This script takes the expected ray-traced decay
(the energy histogram, per band with air absorption, weighted by the bands' energy shares, from its
first hit on) with the default ray count and with ``--factor`` times more rays, and reports the
relative change of its EDT and T20: how far the simulator's answer for a room sits from the
ray-count limit, which no model that does not trace those rays can know for a new geometry.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from edc import physics  # noqa: E402
from edc.acoustics import parameters  # noqa: E402
from edc.data import GEOMETRY  # noqa: E402
from edc.simulate import build_shoebox  # noqa: E402


def ray_traced_decay(room: pd.Series, factor: float) -> tuple[np.ndarray, int, float]:
    """Expected ray-traced EDC of ``room`` (1 kHz, from its first hit, 0 dB there), the ray count
    and the simulator's time to trace them (s, its C++ tracer, all bands at once)."""
    shoebox = build_shoebox(room)
    n_rays = int(factor * shoebox.rt_args["n_rays"])
    shoebox.set_ray_tracing(n_rays=n_rays)
    start = time.perf_counter()
    shoebox.ray_tracing()
    seconds = time.perf_counter() - start
    hist = np.asarray(shoebox.rt_histograms[0][0][0], dtype=np.float64)  # (8 bands, bins)
    bin_s = shoebox.rt_args["hist_bin_size"]
    t = (np.arange(hist.shape[1]) + 0.5) * bin_s
    air = np.exp(-np.asarray(physics.AIR_ABSORPTION)[:, None] * physics.SPEED_OF_SOUND * t)
    energy = (np.asarray(physics.BAND_ENERGY)[:, None] * hist * air).sum(0)
    energy = energy[np.flatnonzero(energy)[0]:]
    left = np.repeat(energy[::-1].cumsum()[::-1], round(bin_s * 1000))[:2000]  # energy left, every ms
    return left / left[0], n_rays, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/paper6000"))
    parser.add_argument("--rooms", type=int, default=40, help="geometries (one random row of each)")
    parser.add_argument("--factor", type=float, default=8.0)
    args = parser.parse_args()
    features = pd.read_csv(Path(args.data) / "features.csv")
    rooms = features.groupby(GEOMETRY).sample(1, random_state=5).iloc[:args.rooms]
    rows = []
    for _, room in rooms.iterrows():
        (few, n_rays, seconds), (many, _, _) = ray_traced_decay(room, 1.0), ray_traced_decay(room, args.factor)
        p = parameters(torch.tensor(np.stack([few, many])), 1000, names=("edt", "t20"))
        rows.append({"n_rays": n_rays, "seconds": seconds,
                     **{k: float(abs(v[0] - v[1]) / v[1]) for k, v in p.items()}})
    table = pd.DataFrame(rows)
    defined = table.dropna()
    body = [[len(table), len(defined), f"{table.n_rays.min()} to {table.n_rays.max()}",
             f"{defined.edt.mean():.2%}", f"{defined.t20.mean():.2%}", f"{1e3 * table.seconds.mean():.1f}"]]
    report("ray-set", "The simulator's ray set: expected ray-traced decay, default rays against "
           f"{args.factor:g}x as many", ["rooms", "both defined", "default rays", "EDT change", "T20 change",
            "tracing the default rays (ms per room)"],
           body, f"python benchmarks/ray_set.py --rooms {args.rooms} --factor {args.factor:g}",
           "Mean absolute relative change over the rooms where both curves reach -25 dB, of the ray-traced "
           "part alone (the exact image sources add to it and dilute it in the first dB). On geometries it has "
           "not seen, a model that does not trace the simulator's rays carries an error of this order on top "
           "of PROTOCOL's sequence noise (EDT 0.011 s, T20 0.009 s). Tracing those rays, even with the "
           "simulator's own C++ tracer, takes the time in the last column per room: compare `edc`'s whole "
           "prediction in `benchmarks/results/speed-inference.md`.")


if __name__ == "__main__":
    main()
