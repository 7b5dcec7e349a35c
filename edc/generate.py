"""Simulate rooms into a compact dataset: ``python -m edc.generate``.

    python -m edc.generate n_rooms=300 out_dir=data/rooms300
    python -m edc.generate features_csv=rooms.csv out_dir=data/mine workers=8
    python -m edc.generate -m shard=0,1,2,3 n_shards=4 n_rooms=6000 out_dir=D   # then:
    python -m edc.generate merge=true n_rooms=6000 out_dir=D

Rooms are simulated in chunks of ``chunk_size`` rows saved under
``out_dir/.work/chunks``; a restarted run skips the chunks already there (a corrupt
one is simulated again). Shard ``j`` of ``K`` simulates every K-th chunk. The
compact layout is written atomically once every chunk exists.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import importlib.metadata
import logging
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from edc.acoustics import FILTER_ORDER, OCTAVE_BANDS_HZ
from edc.config import CONF_DIR, RANGES, at_least, check, count, more_than, optional, real
from edc.data import FEATURES, read_features, write_compact
from edc.errors import EdcInputError, entrypoint, task
from edc.io import atomic_path, read_json, write_json
from edc.run import update_metadata
from edc.simulate import SamplerRanges, SimulationSettings, sample_rooms, simulate_room

log = logging.getLogger(__name__)


def _interval(high: float):
    """A test: ``[min, max]`` with ``0 < min <= max <= high``."""
    return lambda v: isinstance(v, Sequence) and len(v) == 2 and all(map(real, v)) and 0 < v[0] <= v[1] <= high


# key: (test, what the value must be), as edc.config.check takes them
GENERATE_RANGES = {
    "seed": RANGES["seed"],
    "n_rooms": (optional(count(1)), "a positive number of rooms"),
    "workers": (optional(count(1)), "a positive number of processes, or null for all cores"),
    "chunk_size": (count(1), "a positive number of rooms"),
    "n_shards": (count(1), "a positive integer"),
    "shard": (count(0), "an integer >= 0"),
    "simulation.sim_fs": (count(1), "a positive integer (Hz)"),
    "simulation.edc_fs": (count(1), "a positive integer (Hz)"),
    "simulation.duration": (more_than(0), "a positive number of seconds"),
    "simulation.max_order": (count(0), "an integer >= 0"),
    "simulation.ray_factor": (more_than(0), "> 0 (rays relative to the simulator's default count; PROTOCOL uses 1)"),
    **{f"sampler.{k}": (_interval(float("inf")), "[min, max] in m with 0 < min <= max")
       for k in ("length", "width", "height")},
    "sampler.absorption": (_interval(1.0), "[min, max] with 0 < min <= max <= 1"),
    "sampler.position_height": (more_than(0), "a positive height in m"),
    "sampler.wall_margin": (at_least(0), "a distance >= 0 in m"),
    "sampler.min_distance": (at_least(0), "a distance >= 0 in m"),
    "sampler.profile_concentration": (more_than(0), "a positive Dirichlet concentration"),
}


def rooms_to_simulate(cfg: DictConfig) -> pd.DataFrame:
    """The features table: from ``features_csv`` or drawn by the sampler (``n_rooms``)."""
    if (cfg.features_csv is None) == (cfg.n_rooms is None):
        raise EdcInputError("give exactly one of features_csv=PATH (simulate those rooms) or n_rooms=N "
                            "(draw N rooms from the built-in sampler).")
    if cfg.features_csv is not None:
        return read_features(cfg.features_csv)
    ranges = SamplerRanges(**OmegaConf.to_container(cfg.sampler))
    if ranges.position_height >= ranges.height[0]:
        raise EdcInputError(f"sampler.position_height={ranges.position_height} m: must be below the lowest "
                            f"ceiling, sampler.height[0]={ranges.height[0]} m.")
    try:
        return sample_rooms(int(cfg.n_rooms), seed=int(cfg.seed), ranges=ranges)
    except ValueError as err:  # the sampler cannot place a source and a receiver
        raise EdcInputError(f"sampler: {err}. Fix: lower sampler.wall_margin or sampler.min_distance, or "
                            "raise sampler.length and sampler.width.") from None


def prepare_work_dir(work: Path, rooms: pd.DataFrame, settings: SimulationSettings) -> None:
    """Record the rooms and simulation settings of this dataset; refuse to resume or extend a run
    made on other rooms or with other settings (its chunks would be relabelled)."""
    recorded, recorded_settings = work / "features.csv", work / "settings.json"
    settings_now = dataclasses.asdict(settings)
    if recorded.is_file():
        previous = pd.read_csv(recorded, dtype={"ID": str})
        same = previous.shape == rooms.shape and np.allclose(previous[FEATURES], rooms[FEATURES]) \
            and (previous["ID"].to_numpy() == rooms["ID"].to_numpy()).all()
        if not same:
            raise EdcInputError(f"{work.parent}: holds an unfinished run on other rooms. "
                                "Fix: choose a new out_dir, or delete its .work folder to start over.")
        before = read_json(recorded_settings) or {}
        changed = {k: (before.get(k), v) for k, v in settings_now.items() if before.get(k, v) != v}
        if changed:
            listed = ", ".join(f"simulation.{k}={new} (was {old})" for k, (old, new) in changed.items())
            raise EdcInputError(f"{work.parent}: was simulated with other settings: {listed}. Fix: use the "
                                "same settings to resume, or a new out_dir for the new ones.")
    else:
        with atomic_path(recorded) as tmp:
            rooms.to_csv(tmp, index=False)
    write_json(recorded_settings, settings_now)


def chunk_path(work: Path, chunk: int) -> Path:
    return work / "chunks" / f"chunk-{chunk:05d}.npz"


def read_chunk(path: Path, rows: np.ndarray, n_samples: int, bands: bool):
    """The chunk's arrays, or None if it is missing or corrupt (``bands``: it must hold band EDCs)."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception:  # noqa: BLE001 - any unreadable file is a corrupt chunk
        return None
    edcs = arrays.get("edcs")
    if edcs is None or not np.array_equal(arrays.get("rows"), rows) or edcs.shape != (len(rows), n_samples):
        return None
    if bands and getattr(arrays.get("band_edcs"), "shape", None) != (len(rows), len(OCTAVE_BANDS_HZ), n_samples):
        return None
    return arrays


def _simulate_row(args):
    room, seed, settings = args
    return simulate_room(room, seed, settings)


def simulate_chunk(rooms: pd.DataFrame, rows: np.ndarray, settings: SimulationSettings, pool, progress) -> dict:
    """Simulate ``rows`` of ``rooms``; seeds are the row indices or the ``seed`` column."""
    seeds = rooms["seed"].to_numpy()[rows] if "seed" in rooms.columns else rows
    jobs = [(rooms.iloc[r][FEATURES].to_dict(), int(s), settings) for r, s in zip(rows, seeds)]
    results = []
    for result in (pool.imap(_simulate_row, jobs) if pool else map(_simulate_row, jobs)):
        results.append(result)
        progress.update(1)
    arrays = {"rows": rows, "edcs": np.stack([r["edc"] for r in results])}
    if settings.octave_bands:
        arrays["band_edcs"] = np.stack([r["band_edcs"] for r in results])
    if settings.keep_rir:
        for r, result in zip(rows, results):
            arrays[f"rir_{r}"] = result["rir"]
    return arrays


def run_shard(cfg: DictConfig, rooms: pd.DataFrame, work: Path, settings: SimulationSettings) -> None:
    """Simulate the chunks of this shard that are not on disk yet."""
    from tqdm import tqdm

    n_samples = int(round(settings.duration * settings.edc_fs))
    n_chunks = -(-len(rooms) // cfg.chunk_size)
    mine = [c for c in range(n_chunks) if c % cfg.n_shards == cfg.shard]
    todo = []
    for c in mine:
        rows = np.arange(c * cfg.chunk_size, min((c + 1) * cfg.chunk_size, len(rooms)))
        path = chunk_path(work, c)
        if read_chunk(path, rows, n_samples, settings.octave_bands) is None:
            if path.exists():
                log.warning("%s is corrupt: simulating it again", path)
            todo.append((c, rows))
    done = len(mine) - len(todo)
    log.info("shard %d/%d: %d chunks, %d already done", cfg.shard, cfg.n_shards, len(mine), done)
    workers = int(cfg.workers or os.cpu_count() or 1)
    total = sum(len(rows) for _, rows in todo)
    ctx = multiprocessing.get_context("fork")
    with tqdm(total=total, unit="room", desc="simulating", smoothing=0.1) as progress, \
            (ctx.Pool(workers) if workers > 1 else contextlib.nullcontext()) as pool:
        for c, rows in todo:
            arrays = simulate_chunk(rooms, rows, settings, pool, progress)
            with atomic_path(chunk_path(work, c), suffix=".npz") as tmp:
                np.savez(tmp, **arrays)


def merge_chunks(cfg: DictConfig, rooms: pd.DataFrame, work: Path, settings: SimulationSettings) -> Path:
    """Join every chunk into the compact layout (``features.csv``, ``edcs.npy``, ``meta.json``)."""
    import pyroomacoustics

    n_samples = int(round(settings.duration * settings.edc_fs))
    n_chunks = -(-len(rooms) // cfg.chunk_size)
    parts, missing = [], []
    for c in range(n_chunks):
        rows = np.arange(c * cfg.chunk_size, min((c + 1) * cfg.chunk_size, len(rooms)))
        arrays = read_chunk(chunk_path(work, c), rows, n_samples, settings.octave_bands)
        if arrays is None:
            missing.append(c)
        else:
            parts.append(arrays)
    if missing:
        raise EdcInputError(f"{work}: {len(missing)} of {n_chunks} chunks are missing or corrupt "
                            f"(e.g. {missing[:5]}). Fix: run the shards again (with the same n_rooms or "
                            "features_csv and chunk_size); finished chunks are kept.")
    out_dir = Path(cfg.out_dir)
    meta = {
        "edc_fs": settings.edc_fs, "sim_fs": settings.sim_fs, "n_samples": n_samples,
        "duration_s": settings.duration, "n_rooms": len(rooms),
        "simulator": f"pyroomacoustics ShoeBox, hybrid ISM (max_order={settings.max_order}) + ray tracing "
                     f"({settings.ray_factor:g}x the library's default rays, its other defaults), "
                     f"air_absorption={settings.air_absorption}",
        "edc": "broadband Schroeder backward integral of the full RIR from the direct-sound onset "
               "(first sample within 20 dB of the squared peak), normalised to 1 at t=0, linear energy",
        "seed": "pyroomacoustics.random.seed(row index, or the seed column) before each room",
        "pyroomacoustics": pyroomacoustics.__version__,
        "rooms": cfg.features_csv or f"built-in sampler, seed {cfg.seed}",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    if settings.octave_bands:
        with atomic_path(out_dir / "band_edcs.npy", suffix=".npy") as tmp:
            np.save(tmp, np.concatenate([p["band_edcs"] for p in parts]))
        meta["band_edcs"] = ("band_edcs.npy: (n_rooms, 7, n_samples), the whole RIR through pyfar's IEC 61260-1 "
                             f"octave filter bank (order {FILTER_ORDER}), cut at the broadband onset, Schroeder "
                             "integral normalised to 1 at t=0 per band")
        meta["bands_hz"] = list(OCTAVE_BANDS_HZ)
        meta["pyfar"] = importlib.metadata.version("pyfar")
    write_compact(out_dir, rooms, np.concatenate([p["edcs"] for p in parts]), meta)
    log.info("wrote %d rooms to %s", len(rooms), out_dir)
    return out_dir


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="generate")
@task
def main(cfg: DictConfig) -> None:
    if cfg.out_dir is None:
        raise EdcInputError("out_dir is not set. Fix: add out_dir=DIR (where the dataset is written).")
    check(cfg, GENERATE_RANGES)
    if not cfg.shard < cfg.n_shards:
        raise EdcInputError(f"shard={cfg.shard} must be in [0, n_shards={cfg.n_shards}).")
    settings = SimulationSettings(**OmegaConf.to_container(cfg.simulation))
    if settings.sim_fs % settings.edc_fs:
        raise EdcInputError(f"simulation.edc_fs={settings.edc_fs} must divide simulation.sim_fs={settings.sim_fs}.")
    rooms = rooms_to_simulate(cfg)
    work = Path(cfg.out_dir) / ".work"
    prepare_work_dir(work, rooms, settings)
    if not cfg.merge:
        run_shard(cfg, rooms, work, settings)
    if cfg.merge or cfg.n_shards == 1:
        merge_chunks(cfg, rooms, work, settings)
    update_metadata(HydraConfig.get().runtime.output_dir, status="completed", command="generate",
                    out_dir=str(cfg.out_dir), shard=cfg.shard, n_shards=cfg.n_shards, merge=cfg.merge)
    return {"status": "completed"}


if __name__ == "__main__":
    entrypoint(main)()
