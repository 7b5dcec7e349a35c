"""How much the simulator's own ray set moves a room's decay: an error no model learns for new rooms.

    python benchmarks/ray_set.py                 # 40 paper geometries, default rays against 8x as many
    python benchmarks/ray_set.py --rooms 10 --factor 4
    python benchmarks/ray_set.py --run outputs/benchmark-accuracy/physics-configuration

pyroomacoustics traces ~20 V rays (V in m3; 20 receiver hits per 4 ms bin on average), in fixed
Fibonacci directions: the ray-traced part of every room carries a deterministic pattern of hits,
the same in every run and, with specular paths, for every absorption profile of that geometry
(only the energy each hit carries changes). The sequence seed (PROTOCOL's noise floor) does not
change it. This script takes the expected ray-traced decay
(the energy histogram, per band with air absorption, weighted by the bands' energy shares, from its
first hit on) with the default ray count and with ``--factor`` times more rays, and reports the
relative change of its EDT and T20: how far the simulator's answer for a room sits from the
ray-count limit, which no model that does not trace those rays can know for a new geometry.

With ``--run`` (a training run on ``data.split_by=configuration``, such as the one
``accuracy.py`` writes) it instead sets that shift beside the run's errors on its test geometries:
how far the geometries' mean errors spread, their correlation with the shift, and the test MAE
once each prediction is moved by its geometry's shift (what a model that traced the rays could gain).
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


def ray_set_shift(room: pd.Series, factor: float) -> dict:
    """Relative change of the expected ray-traced EDT and T20 of ``room`` from ``factor`` times the
    default rays to the default rays, ``(default - many) / many``, with the default ray count and
    the time (s) to trace them."""
    (few, n_rays, seconds), (many, _, _) = ray_traced_decay(room, 1.0), ray_traced_decay(room, factor)
    p = parameters(torch.tensor(np.stack([few, many])), 1000, names=("edt", "t20"))
    return {"n_rays": n_rays, "seconds": seconds, **{k: float((v[0] - v[1]) / v[1]) for k, v in p.items()}}


def sample_table(features: pd.DataFrame, n_rooms: int, factor: float) -> None:
    """The shift on one random row of each of ``n_rooms`` geometries: ``results/ray-set.md``."""
    rooms = features.groupby(GEOMETRY).sample(1, random_state=5).iloc[:n_rooms]
    table = pd.DataFrame([ray_set_shift(room, factor) for _, room in rooms.iterrows()])
    defined = table.dropna()
    body = [[len(table), len(defined), f"{table.n_rays.min()} to {table.n_rays.max()}",
             f"{defined.edt.abs().mean():.2%}", f"{defined.t20.abs().mean():.2%}",
             f"{1e3 * table.seconds.mean():.1f}"]]
    report("ray-set", "The simulator's ray set: expected ray-traced decay, default rays against "
           f"{factor:g}x as many", ["rooms", "both defined", "default rays", "EDT change", "T20 change",
            "tracing the default rays (ms per room)"],
           body, f"python benchmarks/ray_set.py --rooms {n_rooms} --factor {factor:g}",
           "Mean absolute relative change over the rooms where both curves reach -25 dB, of the ray-traced "
           "part alone (the exact image sources add to it and dilute it in the first dB). On geometries it has "
           "not seen, a model that does not trace the simulator's rays carries an error of this order on top "
           "of PROTOCOL's sequence noise (EDT 0.011 s, T20 0.009 s). Tracing those rays, even with the "
           "simulator's own C++ tracer, takes the time in the last column per room: compare `edc`'s whole "
           "prediction in `benchmarks/results/speed-inference.md`.")


def run_table(features: pd.DataFrame, run: Path, factor: float) -> None:
    """The run's test errors beside the shift of their geometries: ``results/ray-set-errors.md``.

    ``run`` holds ``test_ids.txt``, ``predictions.npy`` and ``targets.npy`` (1 kHz EDCs, what
    ``edc.train`` writes); the parameters are computed from both curves on that grid."""
    ids = (run / "test_ids.txt").read_text().split()
    curves = {k: parameters(torch.tensor(np.load(run / f"{k}.npy"), dtype=torch.float64), 1000,
                            names=("edt", "t20")) for k in ("predictions", "targets")}
    test = features.set_index("ID").loc[ids].reset_index()
    for name in ("edt", "t20"):
        test[f"{name}_pred"], test[name] = curves["predictions"][name].numpy(), curves["targets"][name].numpy()
    shifts = {key: ray_set_shift(rows.iloc[len(rows) // 2], factor)  # one middle row per geometry
              for key, rows in test.groupby(GEOMETRY)}
    keys = list(map(tuple, test[GEOMETRY].to_numpy()))
    geometry = [test[c] for c in GEOMETRY]
    body = []
    for name in ("edt", "t20"):
        shift = pd.Series([shifts[key][name] for key in keys], index=test.index)
        error = test[f"{name}_pred"] - test[name]
        per_geometry = pd.DataFrame({"error": error, "shift": shift * test[name]}).groupby(geometry).mean()
        moved = test[f"{name}_pred"] * (1 + shift) - test[name]
        centred = error - error.groupby(geometry).transform("mean")
        rows_per_geometry = len(test) / len(per_geometry)
        body.append([name.upper(), len(per_geometry), f"{error.abs().mean():.4f}",
                     f"{per_geometry.error.std():.4f}", f"{centred.std() / np.sqrt(rows_per_geometry - 1):.4f}",
                     f"{centred.abs().mean():.4f}", f"{per_geometry.corr().iloc[0, 1]:.2f}",
                     f"{moved.abs().mean():.4f}"])
    report("ray-set-errors", f"Test errors of {run.name} beside the ray-set shift of their geometries",
           ["parameter", "test geometries", "MAE (s)", "spread of the geometries' mean errors (s)",
            "that spread if the errors were independent per row (s)", "MAE less each geometry's mean error (s)",
            "correlation of mean error with shift", "MAE, each prediction moved by its geometry's shift (s)"],
           body, f"python benchmarks/ray_set.py --run {run} --factor {factor:g}",
           "Error: prediction minus simulated value, averaged over each geometry's test rows (30 absorption "
           "profiles, 30 sequence seeds, so the seeds' noise averages out). Spread: their standard deviation, "
           "beside what the rows' own scatter about their geometry's mean would give. Removing each geometry's "
           "mean error is fitted on the test values, so that column is a bound. Shift: the relative change of the "
           "expected ray-traced decay from the ray-count limit to the simulator's default rays, times the "
           "geometry's mean value. A model that has not seen a geometry predicts near the limit, so its error "
           "runs opposite to the shift (negative correlation); moving each prediction by the shift of its "
           "geometry (traced on one of its rows, no fit to the test values) removes that part.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/paper6000"))
    parser.add_argument("--rooms", type=int, default=40, help="geometries (one random row of each)")
    parser.add_argument("--factor", type=float, default=8.0)
    parser.add_argument("--run", type=Path, default=None,
                        help="a configuration-split training run: its test errors beside the shift")
    args = parser.parse_args()
    features = pd.read_csv(Path(args.data) / "features.csv")
    if args.run is not None:
        missing = [f for f in ("test_ids.txt", "predictions.npy", "targets.npy") if not (args.run / f).is_file()]
        if missing:
            parser.error(f"--run {args.run}: no {', '.join(missing)}; give the folder of a finished training "
                         "run (e.g. outputs/benchmark-accuracy/physics-configuration after benchmarks/accuracy.py)")
        run_table(features, args.run, args.factor)
    else:
        sample_table(features, args.rooms, args.factor)


if __name__ == "__main__":
    main()
