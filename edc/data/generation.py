"""Simulating a features table into a compact dataset, in resumable chunks (``python -m edc.generate``).

Rooms are simulated in chunks of ``chunk_size`` rows saved under ``out_dir/.work/chunks``; a
restarted run skips the chunks already there (a corrupt one is simulated again). Shard ``j`` of
``K`` simulates every K-th chunk. The compact layout is written once every chunk exists, each
file atomically.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import logging
import multiprocessing
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from edc.acoustics.decay_curves import FILTER_ORDER, OCTAVE_BANDS_HZ, n_samples
from edc.acoustics.iso3382 import parameter_columns
from edc.acoustics.simulate import SimulationSettings, simulate_room
from edc.data.layouts import write_compact
from edc.data.schema import feature_columns, layout_of, room_of
from edc.errors import EdcInputError
from edc.io import atomic_path, now, read_json, write_json

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Generation:
    """The simulation of ``rooms`` (a validated features table) into ``out_dir``."""

    rooms: pd.DataFrame
    out_dir: Path
    settings: SimulationSettings
    chunk_size: int = 25

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        self.work = self.out_dir / ".work"
        self.n_samples = n_samples(self.settings.duration, self.settings.edc_fs)
        self.n_chunks = -(-len(self.rooms) // self.chunk_size)

    def prepare(self) -> None:
        """Record the rooms and simulation settings; refuse to resume or extend a run made on other
        rooms or with other settings (its chunks would be relabelled)."""
        recorded, recorded_settings = self.work / "features.csv", self.work / "settings.json"
        settings_now = dataclasses.asdict(self.settings)
        if recorded.is_file():
            previous = pd.read_csv(recorded, dtype={"ID": str})
            columns = feature_columns(self.rooms)
            same = list(previous.columns) == list(self.rooms.columns) \
                and np.allclose(previous[columns], self.rooms[columns]) \
                and (previous["ID"].to_numpy() == self.rooms["ID"].to_numpy()).all()
            if not same:
                raise EdcInputError(f"{self.out_dir}: holds an unfinished run on other rooms. "
                                    "Fix: choose a new out_dir, or delete its .work folder to start over.")
            before = read_json(recorded_settings) or {}
            changed = {k: (before.get(k), v) for k, v in settings_now.items() if before.get(k, v) != v}
            if changed:
                listed = ", ".join(f"simulation.{k}={new} (was {old})" for k, (old, new) in changed.items())
                raise EdcInputError(f"{self.out_dir}: was simulated with other settings: {listed}. Fix: use "
                                    "the same settings to resume, or a new out_dir for the new ones.")
        else:
            with atomic_path(recorded) as tmp:
                self.rooms.to_csv(tmp, index=False)
        write_json(recorded_settings, settings_now)

    def rows(self, chunk: int) -> np.ndarray:
        return np.arange(chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, len(self.rooms)))

    def chunk_path(self, chunk: int) -> Path:
        return self.work / "chunks" / f"chunk-{chunk:05d}.npz"

    def read_chunk(self, chunk: int) -> dict | None:
        """The chunk's arrays, or None if it is missing or corrupt."""
        rows = self.rows(chunk)
        try:
            with np.load(self.chunk_path(chunk)) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception:  # noqa: BLE001 - any unreadable file is a corrupt chunk
            return None
        shapes = {"edcs": (len(rows), self.n_samples)}
        if self.settings.octave_bands:
            shapes["band_edcs"] = (len(rows), len(OCTAVE_BANDS_HZ), self.n_samples)
        if not np.array_equal(arrays.get("rows"), rows) or \
                any(getattr(arrays.get(k), "shape", None) != shape for k, shape in shapes.items()):
            return None
        return arrays

    def run_shard(self, shard: int = 0, n_shards: int = 1, workers: int | None = None) -> None:
        """Simulate the chunks of this shard that are not on disk yet (``workers`` processes)."""
        from tqdm import tqdm

        mine = [c for c in range(self.n_chunks) if c % n_shards == shard]
        todo = [c for c in mine if self.read_chunk(c) is None]
        for c in todo:
            if self.chunk_path(c).exists():
                log.warning("%s is corrupt: simulating it again", self.chunk_path(c))
        log.info("shard %d/%d: %d chunks, %d already done", shard, n_shards, len(mine), len(mine) - len(todo))
        workers = int(workers or os.cpu_count() or 1)
        total = sum(len(self.rows(c)) for c in todo)
        ctx = multiprocessing.get_context("fork")
        with tqdm(total=total, unit="room", desc="simulating", smoothing=0.1) as progress, \
                (ctx.Pool(workers) if workers > 1 else contextlib.nullcontext()) as pool:
            for c in todo:
                arrays = self._simulate(self.rows(c), pool, progress)
                with atomic_path(self.chunk_path(c), suffix=".npz") as tmp:
                    np.savez(tmp, **arrays)

    def _simulate(self, rows: np.ndarray, pool, progress) -> dict:
        """Simulate ``rows``; seeds are the row indices or the ``seed`` column."""
        seeds = self.rooms["seed"].to_numpy()[rows] if "seed" in self.rooms.columns else rows
        jobs = [(room_of(self.rooms.iloc[r]), int(s), self.settings) for r, s in zip(rows, seeds)]
        results = []
        for result in (pool.imap(_simulate_one, jobs) if pool else map(_simulate_one, jobs)):
            results.append(result)
            progress.update(1)
        arrays = {"rows": rows, "edcs": np.stack([r["edc"] for r in results])}
        if self.settings.octave_bands:
            arrays["band_edcs"] = np.stack([r["band_edcs"] for r in results])
        if self.settings.keep_rir:
            for r, result in zip(rows, results):
                arrays[f"rir_{r}"] = result["rir"]
        return arrays

    def merge(self, description: str) -> Path:
        """Join every chunk into the compact layout (``features.csv``, ``edcs.npy``, ``band_edcs.npy``,
        ``meta.json``); ``description`` says where the rooms came from."""
        missing = [c for c in range(self.n_chunks) if self.read_chunk(c) is None]
        if missing:
            raise EdcInputError(f"{self.work}: {len(missing)} of {self.n_chunks} chunks are missing or corrupt "
                                f"(e.g. {missing[:5]}). Fix: run the shards again (with the same n_rooms or "
                                "features_csv and chunk_size); finished chunks are kept.")
        curves = {"edcs": (self.n_samples,)}
        if self.settings.octave_bands:
            curves["band_edcs"] = (len(OCTAVE_BANDS_HZ), self.n_samples)
        with contextlib.ExitStack() as stack:
            out = {}
            for name, shape in curves.items():  # filled chunk by chunk: memory stays one chunk
                tmp = stack.enter_context(atomic_path(self.out_dir / f"{name}.npy", suffix=".npy"))
                out[name] = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                      shape=(len(self.rooms), *shape))
            for c in range(self.n_chunks):
                arrays = self.read_chunk(c)
                for name in curves:
                    out[name][arrays["rows"]] = arrays[name]
            for array in out.values():
                array.flush()
            params = self._parameters(out)
            short = self._short_curves(out)
            del out, array
        with atomic_path(self.out_dir / "params.csv") as tmp:
            params.to_csv(tmp, index=False, na_rep="nan")
        if self.settings.keep_rir:
            self._write_rirs()
        write_compact(self.out_dir, self.rooms, {**self._meta(description), "short_curves": short})  # meta.json last
        log.info("wrote %d rooms to %s", len(self.rooms), self.out_dir)
        return self.out_dir

    def _write_rirs(self) -> None:
        """``rirs.npz``: each room's whole simulated RIR (float32 at ``sim_fs``, from sample 0, as simulated),
        under its room ID; written one room at a time (memory stays one chunk)."""
        ids = self.rooms["ID"].astype(str).to_numpy()
        with atomic_path(self.out_dir / "rirs.npz", suffix=".npz") as tmp, \
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for c in range(self.n_chunks):
                arrays = self.read_chunk(c)
                for r in arrays["rows"]:
                    with archive.open(f"{ids[r]}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(arrays[f"rir_{r}"], np.float32))

    def _short_curves(self, curves: dict, floor_db: float = -35.0) -> dict:
        """Rooms per curve (broadband, each band) whose stored curve ends above ``floor_db``: their T30 is
        undefined and their decay is cut. A warning names the fix (a longer ``simulation.duration``)."""
        floor = 10.0 ** (floor_db / 10.0)
        short = {"broadband": int((curves["edcs"][:, -1] > floor).sum())}
        if "band_edcs" in curves:
            ends = curves["band_edcs"][:, :, -1] > floor
            short.update({str(band): int(n) for band, n in zip(OCTAVE_BANDS_HZ, ends.sum(0))})
        if any(short.values()):
            log.warning("curves that end above %g dB after %g s (rooms per curve): %s. Fix: a longer "
                        "simulation.duration", floor_db, self.settings.duration, short)
        return short

    def _parameters(self, curves: dict, chunk: int = 1024) -> pd.DataFrame:
        """The reference parameters of the stored curves (``params.csv``): the columns ``edc.predict``
        writes (:func:`edc.acoustics.iso3382.parameter_columns`), from the curves at ``edc_fs``."""
        parts = []
        for start in range(0, len(self.rooms), chunk):
            rows = slice(start, start + chunk)
            stacked = [curves["edcs"][rows, None]] + ([curves["band_edcs"][rows]] if "band_edcs" in curves else [])
            parts.append(pd.DataFrame(parameter_columns(np.concatenate(stacked, 1).astype(np.float64),
                                                        self.settings.edc_fs)))
        return pd.concat([pd.DataFrame({"ID": self.rooms["ID"].to_numpy()}), pd.concat(parts, ignore_index=True)],
                         axis=1)

    def _meta(self, description: str) -> dict:
        import pyroomacoustics

        s = self.settings
        meta = {
            "edc_fs": s.edc_fs, "sim_fs": s.sim_fs, "n_samples": self.n_samples, "duration_s": s.duration,
            "n_rooms": len(self.rooms),
            "layout": layout_of(self.rooms.columns),
            "simulator": f"pyroomacoustics ShoeBox, hybrid ISM (max_order={s.max_order}) + ray tracing "
                         f"({s.ray_factor:g}x the library's default rays, its other defaults), "
                         f"air_absorption={s.air_absorption}",
            "edc": "broadband Schroeder backward integral of the full RIR from the direct-sound onset "
                   "(first sample within 20 dB of the squared peak), normalised to 1 at t=0, linear energy",
            "seed": "pyroomacoustics.random.seed(row index, or the seed column) before each room",
            "pyroomacoustics": pyroomacoustics.__version__,
            "rooms": description,
            "created": now(),
        }
        if s.keep_rir:
            meta["rirs"] = (f"rirs.npz: each room's whole simulated RIR under its ID (np.load(path)[ID]), float32 "
                            f"at {s.sim_fs} Hz from sample 0 (the direct sound r/c plus the simulator's filter delay in)")
        if s.octave_bands:
            meta["band_edcs"] = ("band_edcs.npy: (n_rooms, 7, n_samples), the whole RIR through pyfar's "
                                 f"IEC 61260-1 octave filter bank (order {FILTER_ORDER}), cut at the broadband "
                                 "onset, Schroeder integral normalised to 1 at t=0 per band")
            meta["bands_hz"] = list(OCTAVE_BANDS_HZ)
            meta["pyfar"] = importlib.metadata.version("pyfar")
        return meta


def _simulate_one(job):
    room, seed, settings = job
    return simulate_room(room, seed, settings)
