"""Build the benchmark datasets under ``data/`` (kept out of git): one command, resumable.

    python benchmarks/datasets.py                    # all of them: 3.5 to 4.5 hours on 2 cores (by machine)
    python benchmarks/datasets.py --only offgrid300  # one of them
    python benchmarks/datasets.py --only rooms6000 rooms12000 rooms-offgrid300 rooms12000-floor-rows \
        rooms12000-floor-configuration rooms-floor-offgrid   # the realistic rooms' benchmark (about 2 hours)
    python benchmarks/datasets.py --list             # what each is, and whether it is built

Every set is simulated by ``python -m edc.generate`` (docs/data.md: broadband and octave-band EDCs),
which keeps finished chunks: an interrupted build goes on where it stopped, and a set that starts with
the rooms of one already built (rooms12000 with rooms6000's) copies their curves instead of simulating
them again. The noise floors are second simulations of test rooms, as docs/data.md defines them: another
sequence seed (row seed + 100000) where the model has seen the geometry in training (the random split),
another seed and another ray set (1.07x the default rays) where it has not (the configuration split,
off-grid rooms).
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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
PAPER6000 = ROOT.parent / "shared" / "data" / "paper6000"
OTHER_SEED = 100_000  # added to a row's seed for its second simulation (docs/data.md)
OTHER_RAYS = 1.07  # ray factor of the second ray set (docs/data.md)
N_FLOOR = 200


def paper_features() -> pd.DataFrame:
    from edc.data import read_features

    if not (PAPER6000 / "features.csv").is_file():
        sys.exit(f"{PAPER6000}: not found. The paper's rooms come with ../shared (its features table is "
                 "roomFeaturesDataset.csv of arXiv 2509.24769).")
    return read_features(PAPER6000 / "features.csv")


def offgrid_features(n_rooms: int = 300, seed: int = 300) -> pd.DataFrame:
    """Rooms off the paper's grid: the sampler's continuous geometry; every second room takes one of
    the paper's 30 absorption profiles, the others a new mixture of the sampler's base profiles."""
    from edc.data import ABSORPTION
    from edc.data.sampler import sample_rooms

    rooms = sample_rooms(n_rooms, seed=seed)
    rooms["ID"] = [f"offgrid_{i:03d}" for i in range(n_rooms)]
    profiles = paper_features()[ABSORPTION].drop_duplicates().to_numpy()
    picks = np.random.default_rng(seed).integers(0, len(profiles), n_rooms)
    rooms.loc[::2, ABSORPTION] = profiles[picks[::2]]
    return rooms


ROOMS_DURATION = 5.0  # s of curve for the realistic rooms (conf/sampler/rooms.yaml)


def rooms_features(n_geometries: int = 300, material_sets: int = 10, seed: int = 3000, **ranges) -> pd.DataFrame:
    """Realistic rooms (``sampler=rooms``): ``n_geometries`` geometries, each with ``material_sets``
    sets of materials, so that a split by rows (geometries seen) differs from one by geometry."""
    from edc.data.sampler import RoomsRanges, sample_surface_rooms

    return sample_surface_rooms(n_geometries * material_sets, seed=seed,
                                ranges=RoomsRanges(material_sets=material_sets, **ranges))


def rooms6000_features() -> pd.DataFrame:
    """rooms3000's rows, then 300 more geometries x 10 material sets (another sampler seed): twice the
    geometries to learn from. Its first 3000 rows, IDs and seeds are rooms3000's, so are their curves."""
    rooms = pd.concat([rooms_features(), rooms_features(seed=6000)], ignore_index=True)
    rooms["ID"] = [f"room_{i:05d}" for i in range(len(rooms))]
    return rooms


def rooms12000_features() -> pd.DataFrame:
    """rooms6000's rows, then 600 more geometries x 10 material sets (two more sampler seeds): 1200
    geometries. Its first 6000 rows, IDs and seeds are rooms6000's, so are their curves (reused)."""
    rooms = pd.concat([rooms6000_features(), rooms_features(seed=9000), rooms_features(seed=12000)],
                      ignore_index=True)
    rooms["ID"] = [f"room_{i:05d}" for i in range(len(rooms))]
    return rooms


def rooms_offgrid_features() -> pd.DataFrame:
    """300 new geometries with new materials: random smooth spectra only (no database material)."""
    rooms = rooms_features(300, 1, seed=3300, database_share=0.0)
    rooms["ID"] = [f"rooms_offgrid_{i:03d}" for i in range(len(rooms))]
    return rooms


def test_rows(features: pd.DataFrame, split_by: str) -> np.ndarray:
    """The benchmark's test rows (the product's split, ``split_seed`` 42)."""
    from edc.data import RoomDataset
    from edc.data.splits import split_rows

    dataset = RoomDataset(features["ID"].to_numpy(), features, None, 1000, "paper6000")
    return np.sort(split_rows(dataset, 42, split_by)["test"])


def balanced(rows: np.ndarray, features: pd.DataFrame, n: int, seed: int = 0) -> np.ndarray:
    """``n`` of ``rows``, as many per geometry as it takes, each geometry's drawn at random from its rows.

    The floor in seconds grows with the decay time, so the floor rooms must be a fair sample of the test
    rooms' absorption cases: every geometry of the paper's rooms lists its 30 profiles in the same order,
    so taking the same positions in each (as this did before 2026-12-05) kept 5 of the 30 profiles on
    the configuration split and, on the random split, rooms of half the test rooms' mean EDT."""
    from edc.data.schema import GEOMETRY

    rng = np.random.default_rng(seed)
    groups = features.iloc[rows].groupby(GEOMETRY, sort=True).indices.values()
    per_group = -(-n // len(groups))
    picked = np.concatenate([rng.choice(rows[index], min(per_group, len(index)), replace=False) for index in groups])
    return np.sort(rng.choice(picked, min(n, len(picked)), replace=False))


def second_run(features: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``rows`` of ``features`` with their seed (the row index) + OTHER_SEED."""
    return features.iloc[rows].assign(seed=rows + OTHER_SEED)


def sets() -> dict:
    """name: (what it is, features table maker, ray factor)."""
    def floor_rows():
        paper = paper_features()
        return second_run(paper, balanced(test_rows(paper, "rows"), paper, N_FLOOR))

    def floor_configuration():
        paper = paper_features()
        return second_run(paper, balanced(test_rows(paper, "configuration"), paper, N_FLOOR))

    def floor_offgrid():
        return second_run(offgrid_features(), np.arange(N_FLOOR))

    def rooms_floor(split_by, make=rooms6000_features):
        rooms = make()
        return second_run(rooms, balanced(test_rows(rooms, split_by), rooms, N_FLOOR))

    long = ROOMS_DURATION
    return {
        "paper6000_bands": ("the paper's 6000 rooms with band EDCs (broadband bit-identical to ../shared)",
                            paper_features, 1.0, 2.0),
        "offgrid300": ("300 off-grid rooms, half with the paper's absorption profiles", offgrid_features, 1.0, 2.0),
        "floor-rows": (f"{N_FLOOR} random-split test rooms, second seed", floor_rows, 1.0, 2.0),
        "floor-configuration": (f"{N_FLOOR} configuration-split test rooms, second seed and ray set",
                                floor_configuration, OTHER_RAYS, 2.0),
        "floor-offgrid": (f"{N_FLOOR} off-grid rooms, second seed and ray set", floor_offgrid, OTHER_RAYS, 2.0),
        "rooms3000": ("3000 realistic rooms (sampler=rooms): 300 geometries x 10 material sets",
                      rooms_features, 1.0, long),
        "rooms-offgrid300": ("300 new realistic geometries with new materials (random spectra only)",
                             rooms_offgrid_features, 1.0, long),
        "rooms6000": ("6000 realistic rooms: rooms3000, then 300 more geometries x 10 material sets",
                      rooms6000_features, 1.0, long),
        "rooms6000-floor-rows": (f"{N_FLOOR} random-split test rooms of rooms6000, second seed",
                                 lambda: rooms_floor("rows"), 1.0, long),
        "rooms6000-floor-configuration": (f"{N_FLOOR} geometry-split test rooms of rooms6000, second seed and ray set",
                                          lambda: rooms_floor("configuration"), OTHER_RAYS, long),
        "rooms12000": ("12000 realistic rooms: rooms6000, then 600 more geometries x 10 material sets",
                       rooms12000_features, 1.0, long),
        "rooms12000-floor-rows": (f"{N_FLOOR} random-split test rooms of rooms12000, second seed",
                                  lambda: rooms_floor("rows", rooms12000_features), 1.0, long),
        "rooms12000-floor-configuration": (f"{N_FLOOR} geometry-split test rooms of rooms12000, second seed and ray set",
                                           lambda: rooms_floor("configuration", rooms12000_features), OTHER_RAYS, long),
        "rooms-floor-offgrid": (f"{N_FLOOR} of rooms-offgrid300, second seed and ray set",
                                lambda: second_run(rooms_offgrid_features(), np.arange(N_FLOOR)), OTHER_RAYS, long),
    }


def build(name: str, make, ray_factor: float, duration: float, workers: int) -> None:
    out, table = DATA / name, DATA / f"{name}.csv"
    rooms = make()
    if table.is_file() and not _same_rooms(pd.read_csv(table), rooms):
        sys.exit(f"{table}: these are not the rooms that `{name}` is now (the sampler changed since it was built). "
                 f"Fix: move {table} and {out} away, then run this again to rebuild it.")
    if (out / "band_edcs.npy").is_file():
        print(f"{name}: built ({out})")
        return
    if not table.is_file():
        DATA.mkdir(exist_ok=True)
        rooms.to_csv(table, index=False)
    reuse_chunks(rooms, out, ray_factor, duration)
    command = [sys.executable, "-m", "edc.generate", f"features_csv={table}", f"out_dir={out}",
               f"workers={workers}", f"simulation.ray_factor={ray_factor}", f"simulation.duration={duration}",
               f"hydra.run.dir={DATA}/.runs/{name}"]
    print(f"{name}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def reuse_chunks(rooms: pd.DataFrame, out: Path, ray_factor: float, duration: float) -> None:
    """Copy into ``out``'s run the finished chunks of a built set whose rooms are the first rows of ``rooms``
    and were simulated alike (rooms12000 starts with rooms6000): the same rooms and seeds give the same curves."""
    for table in sorted(DATA.glob("*.csv")):
        source = DATA / table.stem / ".work"
        settings = json.loads((source / "settings.json").read_text()) if (source / "settings.json").is_file() else {}
        if source.parent == out or (settings.get("ray_factor"), settings.get("duration")) != (ray_factor, duration):
            continue
        stored = pd.read_csv(table)
        if len(stored) >= len(rooms) or not _same_rooms(stored, rooms.iloc[:len(stored)]):
            continue
        chunks = out / ".work" / "chunks"
        chunks.mkdir(parents=True, exist_ok=True)
        for chunk in (source / "chunks").glob("chunk-*.npz"):
            if not (chunks / chunk.name).exists():
                shutil.copyfile(chunk, chunks / chunk.name)
        print(f"{out.name}: reusing the curves of {table.stem}'s {len(stored)} rooms", flush=True)


def _same_rooms(stored: pd.DataFrame, rooms: pd.DataFrame) -> bool:
    """Whether a features table read back from its CSV, ``stored``, holds ``rooms`` (as written to CSV)."""
    return (list(stored.columns) == list(rooms.columns) and stored.shape == rooms.shape
            and np.allclose(stored.select_dtypes("number"), rooms.select_dtypes("number")))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    available = sets()
    parser.add_argument("--only", nargs="+", choices=list(available), default=list(available))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    for name in args.only:
        what, make, ray_factor, duration = available[name]
        if args.list:
            print(f"{name:20s} {'built' if (DATA / name / 'band_edcs.npy').is_file() else 'missing':8s} {what}")
        else:
            build(name, make, ray_factor, duration, args.workers)


if __name__ == "__main__":
    main()
