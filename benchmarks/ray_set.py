"""How much the simulator's own ray set moves a room's parameters: an error no model learns for new rooms.

    python benchmarks/ray_set.py                 # all 200 paper geometries, default rays against 8x as many
    python benchmarks/ray_set.py --rooms 10 --factor 4
    python benchmarks/ray_set.py --run outputs/benchmark-accuracy/physics-configuration

pyroomacoustics traces ~20 V rays (V in m3; 20 receiver hits per 4 ms bin on average), in fixed
Fibonacci directions: the ray-traced part of every room carries a deterministic pattern of hits,
the same in every run and, with specular paths, for every absorption profile of that geometry
(only the energy each hit carries changes). The sequence seed (docs/data.md's noise floor) does not
change it. This script simulates a room as docs/data.md does (its row's seed) with the default ray
count and again with ``--factor`` times more rays, and reports how far EDT, T20 and C50 move: how
far the simulator's answer for a room sits from the ray-count limit, which no model that does not
trace those rays can know for a new geometry. The whole simulation takes about 4 s per geometry
at ``--factor 8``: all 200 geometries in about 11 minutes on 2 cores.

With ``--run`` (a training run on ``data.split_by=configuration``, such as the one
``accuracy.py`` writes) it instead sets that shift beside the run's errors on its test geometries:
how far the geometries' mean errors spread, their correlation with the shift, and the test MAE
once each prediction is moved by its geometry's shift (what a model that traced the rays could gain),
and how small the rest of the error would have to be for the split to meet its targets, beside the
noise floor of those rooms (two of each geometry simulated with another seed): about 4 minutes.

With ``--bands`` it measures, per octave band, how much the ray set adds to the sequence seed's
noise on the same rooms: some paper rooms simulated with several seeds, with the default rays and
with another ray set, and docs/data.md's floor between two seeds of one ray set beside the floor
between seeds of the two (about 20 minutes on 2 cores for 100 rooms and 4 seeds; the simulated
parameters are kept under data/, so the table is made again at once).
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import floor_between, report  # noqa: E402
from datasets import DATA, OTHER_RAYS, OTHER_SEED  # noqa: E402

from edc.acoustics import OCTAVE_BANDS_HZ, parameters  # noqa: E402
from edc.acoustics.iso3382 import band_parameters  # noqa: E402
from edc.acoustics import room as closed_form  # noqa: E402
from edc.acoustics.simulate import SimulationSettings, build_shoebox, simulate_room  # noqa: E402
from edc.data.schema import DIMENSIONS, GEOMETRY, room_of  # noqa: E402

NAMES = ("edt", "t20", "c50")
CONFIGURATION_TARGET = {"edt": 0.018, "t20": 0.014, "c50": 0.25}  # s, s, dB: the split_by=configuration targets


def ray_set_shift(room: pd.Series, factor: float) -> dict:
    """The simulator's EDT, T20 and C50 of ``room`` (simulated with its ``seed``) with the default
    rays less those with ``factor`` times as many: relative for EDT and T20, in dB for C50."""
    edcs = np.stack([simulate_room(room_of(room), room.seed, SimulationSettings(ray_factor=f))["edc"] for f in (1.0, factor)])
    p = parameters(edcs.astype(np.float64), 1000, names=NAMES)  # (2,) each: default rays, more rays
    return {"edt": float(p["edt"][0] / p["edt"][1] - 1), "t20": float(p["t20"][0] / p["t20"][1] - 1),
            "c50": float(p["c50"][0] - p["c50"][1])}


def tracing_cost(room: pd.Series) -> dict:
    """The simulator's default ray count for ``room`` and its time (s) to trace them (its C++ tracer,
    all bands at once)."""
    shoebox = build_shoebox(room_of(room))
    start = time.perf_counter()
    shoebox.ray_tracing()
    return {"n_rays": shoebox.rt_args["n_rays"], "seconds": time.perf_counter() - start}


def shape_correlation(shifts: pd.Series, table: pd.DataFrame) -> float:
    """Correlation of ``shifts`` between every ordered pair of geometries with the same room
    dimensions (different source or receiver positions)."""
    pairs = [pair for _, rows in shifts.dropna().groupby([table[c] for c in DIMENSIONS])
             for pair in itertools.permutations(rows, 2)]
    return float(np.corrcoef(np.array(pairs).T)[0, 1])


def feature_correlation(shifts: pd.Series, table: pd.DataFrame) -> float:
    """The largest absolute correlation of ``shifts`` with a geometry feature, the volume or the
    source-receiver distance (constant features left out)."""
    volume, _, distance = closed_form.geometry(torch.as_tensor(table[GEOMETRY].to_numpy(np.float64)))
    derived = table[GEOMETRY].assign(volume=volume.numpy(), distance=distance.numpy())
    return float(derived.loc[:, derived.std() > 0].corrwith(shifts).abs().max())


def sample_table(features: pd.DataFrame, n_rooms: int | None, factor: float) -> None:
    """The shift on one random row of each of ``n_rooms`` geometries (all by default), and whether
    the room's shape or features could predict it: ``results/ray-set.md``."""
    rooms = features.groupby(GEOMETRY).sample(1, random_state=5).iloc[:n_rooms]
    table = pd.concat([rooms.reset_index(drop=True), pd.DataFrame(
        [ray_set_shift(room, factor) | tracing_cost(room) for _, room in rooms.iterrows()])], axis=1)
    defined = table.dropna(subset=list(NAMES))
    body = [[len(table), len(defined), f"{table.n_rays.min()} to {table.n_rays.max()}",
             f"{defined.edt.abs().mean():.2%}", f"{defined.t20.abs().mean():.2%}", f"{defined.c50.abs().mean():.3f}",
             " / ".join(f"{shape_correlation(defined[k], defined):.2f}" for k in NAMES),
             " / ".join(f"{feature_correlation(defined[k], defined):.2f}" for k in NAMES)
             + f" (chance: {1.96 / np.sqrt(len(defined)):.2f})",
             f"{1e3 * table.seconds.mean():.1f}"]]
    command = "python benchmarks/ray_set.py" + (f" --rooms {n_rooms}" if n_rooms else "") + f" --factor {factor:g}"
    report("ray-set", f"The simulator's ray set: parameters with the default rays against {factor:g}x as many",
           ["geometries", "all defined", "default rays", "EDT change", "T20 change", "C50 change (dB)",
            "correlation between geometries of one room shape (EDT / T20 / C50)",
            "largest correlation with a feature (EDT / T20 / C50)", "tracing the default rays (ms per room)"],
           body, command,
           "Mean absolute change of the simulated parameters (relative for EDT and T20) over the geometries where "
           "all are defined, one row of each, simulated as docs/data.md does with the row's seed. On geometries it has "
           "not seen, a model that does not trace the simulator's rays carries an error of this order on top "
           "of docs/data.md's sequence noise (EDT 0.011 s, T20 0.009 s, C50 0.14 dB). Nor can it infer the change "
           "from what it does see: the change correlates only weakly between geometries that share the room's "
           "dimensions (every ordered pair of them) and with any of the geometry features, the volume or the "
           "source-receiver distance (largest absolute correlation; chance: the 95 % bound of one correlation "
           "between independent variables, 1.96 / sqrt(geometries)). Tracing those rays, even with the "
           "simulator's own C++ tracer, takes the time in the last column per room: compare `edc`'s whole "
           "prediction in `benchmarks/results/speed-inference.md`.")


def seed_floor(rooms: pd.DataFrame, simulated: dict) -> dict:
    """docs/data.md's noise floor on ``rooms``: the mean absolute change of EDT, T20 and C50 (``simulated``:
    each an array over ``rooms``) when each room is simulated with another seed, divided by sqrt(2)
    (the error of a perfect predictor of the seeds' mean), with its standard error."""
    edcs = np.stack([simulate_room(room_of(room), room.seed + OTHER_SEED)["edc"] for _, room in rooms.iterrows()])
    other = parameters(edcs.astype(np.float64), 1000, names=NAMES)
    change = {k: pd.Series(np.abs(other[k] - simulated[k]) / np.sqrt(2)).dropna() for k in NAMES}
    return {k: (float(c.mean()), float(c.std() / np.sqrt(len(c)))) for k, c in change.items()}


def rest_allowed(ray: pd.Series, rest: pd.Series, target: float) -> float:
    """The largest MAE that ``rest`` (the error less the ray set's part ``ray``) may have for the whole
    error to meet ``target``, shrinking ``rest`` in proportion; NaN where ``ray`` alone misses it."""
    scales = np.linspace(0.0, 1.0, 1001)
    mae = np.abs(ray.to_numpy() + scales[:, None] * rest.to_numpy()).mean(1)
    met = scales[mae <= target]
    return float(met.max() * rest.abs().mean()) if len(met) else float("nan")


def run_table(features: pd.DataFrame, run: Path, factor: float) -> None:
    """The run's test errors beside the shift of their geometries: ``results/ray-set-errors.md``.

    ``run`` holds ``test_ids.txt``, ``predictions.npy`` and ``targets.npy`` (1 kHz EDCs, what
    ``edc.train`` writes); the parameters are computed from both curves on that grid."""
    ids = (run / "test_ids.txt").read_text().split()
    curves = {k: parameters(np.load(run / f"{k}.npy")[:, 0].astype(np.float64), 1000, names=NAMES)
              for k in ("predictions", "targets")}
    test = features.set_index("ID").loc[ids].reset_index()
    geometry = test.groupby(GEOMETRY).ngroup()  # each row's geometry, numbered 0, 1, ...
    shift = pd.DataFrame([ray_set_shift(rows.iloc[len(rows) // 2], factor)  # one middle row per geometry
                          for _, rows in test.groupby(geometry)]).loc[geometry].reset_index(drop=True)
    # two rows of each geometry, their absorption cases taken in turn so that all of them are sampled
    sampled = [i for g, (_, rows) in enumerate(test.groupby(geometry))
               for i in rows.index[[g % len(rows), (g + len(rows) // 2) % len(rows)]]]
    floor = seed_floor(test.loc[sampled], {k: curves["targets"][k][sampled] for k in NAMES})
    body = []
    for name in NAMES:
        predicted, simulated = pd.Series(curves["predictions"][name]), pd.Series(curves["targets"][name])
        relative = name != "c50"  # EDT and T20 shift in proportion, C50 in dB
        change = shift[name] * (simulated if relative else 1.0)
        moved = predicted + shift[name] * (predicted if relative else 1.0) - simulated
        error = predicted - simulated
        per_geometry = pd.DataFrame({"error": error, "shift": change}).groupby(geometry).mean()
        centred = error - error.groupby(geometry).transform("mean")
        rows_per_geometry = len(test) / len(per_geometry)
        body.append([name.upper(), len(per_geometry), f"{error.abs().mean():.4f}",
                     f"{per_geometry.error.std():.4f}", f"{centred.std() / np.sqrt(rows_per_geometry - 1):.4f}",
                     f"{centred.abs().mean():.4f}", f"{per_geometry.corr().iloc[0, 1]:.2f}",
                     f"{moved.abs().mean():.4f}",
                     f"{rest_allowed(error - moved, moved, CONFIGURATION_TARGET[name]):.4f} "
                     f"({CONFIGURATION_TARGET[name]:g}; {floor[name][0]:.4f} ± {floor[name][1]:.4f})"])
    report("ray-set-errors", f"Test errors of {run.name} beside the ray-set shift of their geometries",
           ["parameter", "test geometries", "MAE (s, dB)", "spread of the geometries' mean errors",
            "that spread if the errors were independent per row", "MAE less each geometry's mean error",
            "correlation of mean error with shift", "MAE, each prediction moved by its geometry's shift",
            "MAE the rest of the error may have to meet the target (target; noise floor of these rooms)"],
           body, f"python benchmarks/ray_set.py --run {run} --factor {factor:g}",
           "Error: prediction minus simulated value, averaged over each geometry's test rows (30 absorption "
           "profiles, 30 sequence seeds, so the seeds' noise averages out). Spread: their standard deviation, "
           "beside what the rows' own scatter about their geometry's mean would give. Removing each geometry's "
           "mean error is fitted on the test values, so that column is a bound. Shift: one row of the geometry "
           f"simulated again with its seed and {factor:g}x the rays; its change from there to the default rays, "
           "relative for EDT and T20 (times the geometry's mean value in this column) and in dB for C50. A model "
           "that has not seen a geometry predicts near the ray-count limit, so its error runs opposite to the "
           "shift (negative correlation); moving each prediction by its geometry's shift (no fit to the test "
           "values) removes that part. What is left (the moved error) is everything else: the sequence seed's noise, "
           "the model's own error and the part of the ray set that 8x the rays do not remove. Last column: how "
           "small that rest would have to be (shrunk in proportion) for the split's MAE to meet its target "
           "(EDT 0.018 s, T20 0.014 s, C50 0.25 dB), beside the target and the noise floor of these rooms as docs/data.md defines it (the mean "
           "absolute change when a room is simulated with another seed, over sqrt(2): the error of a perfect "
           "predictor of the seeds' mean), measured on two rows of each test geometry, their absorption cases taken in turn (± its standard error). Where the rest allowed "
           "is at or below the floor, no model that does not trace the rays can meet the target.")


def band_values(job: tuple) -> dict:
    """Per-band EDT, T20 (s) and C50 (dB) of one simulation: ``job`` = (features row, seed, ray factor)."""
    row, seed, factor = job
    curves = simulate_room(room_of(row), seed, SimulationSettings(ray_factor=factor))["band_edcs"][None]
    values = band_parameters(curves.astype(np.float64), 1000)
    return {f"{n}_{b}": float(values[f"{n}_{b}"][0]) for n in NAMES for b in OCTAVE_BANDS_HZ}


def band_runs(features: pd.DataFrame, n_rooms: int, n_seeds: int) -> pd.DataFrame:
    """Per-band parameters of ``n_rooms`` random paper rooms, each simulated with ``n_seeds`` sequence seeds
    (1000 room + 0, 1, ...) with the default rays and with OTHER_RAYS as many; kept under data/."""
    path = DATA / f"ray-set-bands-{n_rooms}x{n_seeds}.csv"
    if path.is_file():
        return pd.read_csv(path)
    rooms = features.sample(n_rooms, random_state=7).reset_index(drop=True)
    keys = [(k, f, 1000 * k + s) for k in rooms.index for f in (1.0, OTHER_RAYS) for s in range(n_seeds)]
    with multiprocessing.Pool(2) as pool:
        runs = pd.DataFrame(pool.map(band_values, [(rooms.loc[k], seed, f) for k, f, seed in keys], chunksize=1))
    runs = runs.assign(room=[k for k, _, _ in keys], rays=[f for _, f, _ in keys])
    DATA.mkdir(exist_ok=True)
    runs.to_csv(path.with_suffix(".tmp"), index=False)
    path.with_suffix(".tmp").rename(path)
    return runs


def bands_table(features: pd.DataFrame, n_rooms: int, n_seeds: int) -> None:
    """Per band, how much the ray set adds to the seed's noise on the same rooms: ``results/ray-set-bands.md``."""
    runs = band_runs(features, n_rooms, n_seeds)
    body = []
    for name in NAMES:
        seed_row, both_row = [f"{name.upper()}: seed floor"], [f"{name.upper()}: seed and ray set"]
        for band in OCTAVE_BANDS_HZ:
            values = runs.pivot_table(index="room", columns=["rays", runs.groupby(["room", "rays"]).cumcount()],
                                      values=f"{name}_{band}", dropna=False)  # (rooms, 2 ray sets x seeds)
            a, b = values[1.0].to_numpy(), values[OTHER_RAYS].to_numpy()
            seed = np.mean([floor_between(v[:, i], v[:, j]) for v in (a, b) for i, j in itertools.combinations(range(n_seeds), 2)])
            both = np.mean([floor_between(a[:, i], b[:, j]) for i in range(n_seeds) for j in range(n_seeds) if i != j])
            seed_row.append(f"{seed:.3g}")
            both_row.append(f"{both:.3g} ({both / seed:.2f}x)")
        body += [seed_row, both_row]
    command = f"python benchmarks/ray_set.py --bands --rooms {n_rooms} --seeds {n_seeds}"
    report("ray-set-bands", "Per octave band: how much the simulator's ray set adds to the seed's noise",
           ["floor (EDT, T20 s; C50 dB)", *map(str, OCTAVE_BANDS_HZ)], body, command,
           f"{n_rooms} random rooms of the paper's 6000, each simulated with {n_seeds} sequence seeds with the default "
           f"rays and again with {OTHER_RAYS}x as many (another ray set). Seed floor: docs/data.md's floor between two "
           "seeds of one ray set (what the random split's floor measures); seed and ray set: between a seed of one "
           "ray set and another seed of the other (the configuration split's), with its ratio to the seed floor. "
           "Each is averaged over every such pair of simulations. A model that learned nothing of a room's ray "
           "set sits at the second floor, so the ratio bounds what the ray set can add to an error measured "
           "against the seed floor.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/paper6000"))
    parser.add_argument("--rooms", type=int, default=None, help="geometries (one random row of each; all by default)")
    parser.add_argument("--factor", type=float, default=8.0)
    parser.add_argument("--bands", action="store_true",
                        help="per octave band: the seed floor beside the seed-and-ray-set floor of the same rooms")
    parser.add_argument("--seeds", type=int, default=4, help="--bands: sequence seeds per room and ray set")
    parser.add_argument("--run", type=Path, default=None,
                        help="a configuration-split training run: its test errors beside the shift")
    args = parser.parse_args()
    features = pd.read_csv(Path(args.data) / "features.csv")
    if "seed" not in features:  # docs/data.md: the row index unless the CSV names a seed
        features["seed"] = np.arange(len(features))
    if args.bands:
        bands_table(features, args.rooms or 100, args.seeds)
    elif args.run is not None:
        missing = [f for f in ("test_ids.txt", "predictions.npy", "targets.npy") if not (args.run / f).is_file()]
        if missing:
            parser.error(f"--run {args.run}: no {', '.join(missing)}; give the folder of a finished training "
                         "run (e.g. outputs/benchmark-accuracy/physics-configuration after benchmarks/accuracy.py)")
        run_table(features, args.run, args.factor)
    else:
        sample_table(features, args.rooms, args.factor)


if __name__ == "__main__":
    main()
