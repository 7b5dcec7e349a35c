"""Room datasets on disk: the *compact* and *folder* layouts, the memory-mapped cache, the fingerprint.

* *compact* (written by ``python -m edc.generate``; ``../shared/data/paper6000``):
  ``features.csv`` (``ID`` + 16 features), ``edcs.npy`` ``(n_rooms, n_samples)``
  linear energy at ``edc_fs`` Hz, ``meta.json`` (``edc_fs`` and how it was made).
* *folder* (what users already have): a features CSV and a folder of ``<ID>.npy``
  EDCs at ``source_fs`` Hz, any length (cut or zero-padded to ``duration``). The
  first load validates every file and writes one memory-mapped cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.acoustics.decay_curves import n_samples as samples_of
from edc.data.schema import GENERATE_HINT, feature_columns
from edc.data.validation import read_features, validate_edcs
from edc.errors import EdcInputError, describe_rows
from edc.io import atomic_path, write_json


@dataclasses.dataclass
class RoomDataset:
    """Rooms and their EDCs.

    Attributes:
        ids: ``(n_rooms,)`` room IDs.
        features: DataFrame with ``ID`` and the 16 feature columns (m, absorption 0-1).
        edcs: ``(n_rooms, n_samples)`` float32 linear-energy EDCs at ``edc_fs`` Hz
            (possibly a read-only memory map).
        edc_fs: sampling rate of ``edcs`` in Hz.
        source: where the data came from (for messages and metadata).
        band_edcs: ``(n_rooms, 7, n_samples)`` octave-band EDCs (125 Hz to 8 kHz), or None.
    """

    ids: np.ndarray
    features: pd.DataFrame
    edcs: np.ndarray
    edc_fs: int
    source: str
    meta: dict = dataclasses.field(default_factory=dict)
    band_edcs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_bands(self) -> bool:
        return self.band_edcs is not None

    def grid(self, target_fs: int, duration: float) -> tuple[int, int]:
        """``(step, n_samples)``: the stored samples that make a grid of ``target_fs`` Hz and ``duration`` s."""
        step = sampling_step(self.edc_fs, target_fs, self.source)
        n_samples = samples_of(duration, target_fs)
        available = -(-self.edcs.shape[-1] // step)
        if n_samples > available:
            raise EdcInputError(
                f"{self.source}: duration={duration} s needs {n_samples} samples at {target_fs} Hz, "
                f"but the data holds {self.edcs.shape[-1] / self.edc_fs:g} s. "
                f"Fix: set data.duration to at most {self.edcs.shape[-1] / self.edc_fs:g}.")
        return step, n_samples

    def curves(self, rows, target_fs: int, duration: float, bands: bool) -> np.ndarray:
        """The curves of ``rows`` on the grid, ``(len(rows), C, n_samples)`` float32 (a copy of those rows
        only): C = 1, the broadband curve, or C = 8, the broadband curve then the 7 bands. Sampling (not
        averaging) keeps the curve exact at the grid times."""
        step, n = self.grid(target_fs, duration)
        rows = np.asarray(rows)
        order = np.argsort(rows)  # memory maps read fastest in file order
        picked = np.empty((len(rows), 1 + 7 * bands, n), np.float32)
        picked[order, 0] = self.edcs[rows[order], : n * step : step]
        if bands:
            picked[order, 1:] = self.band_edcs[rows[order], :, : n * step : step]
        return picked

    def fingerprint(self) -> str:
        """Hash of features and curves: runs on different data are never compared as alike."""
        if "fingerprint" not in self.meta:
            digest = hashlib.sha256()
            digest.update(self.features[feature_columns(self.features)].to_numpy(np.float64).tobytes())
            digest.update(str(self.edc_fs).encode())
            for curves in (self.edcs, self.band_edcs) if self.has_bands else (self.edcs,):
                for start in range(0, len(curves), 512):
                    digest.update(np.ascontiguousarray(curves[start : start + 512], np.float32).tobytes())
            self.meta["fingerprint"] = digest.hexdigest()[:16]
        return self.meta["fingerprint"]


def sampling_step(edc_fs: int, target_fs: int, source: str = "data") -> int:
    """Integer step from the stored rate to the training grid (``target_fs`` must divide it)."""
    if target_fs <= 0 or edc_fs % target_fs:
        divisors = [d for d in (1000, 2000, 4000, 8000, 16000, 24000, 48000) if edc_fs % d == 0 and d <= edc_fs]
        raise EdcInputError(
            f"{source}: data.target_fs={target_fs} Hz does not divide the stored rate {edc_fs} Hz. "
            f"Fix: choose a divisor of {edc_fs}, e.g. {divisors[:4] or [edc_fs]}.")
    return edc_fs // target_fs


def load_compact(path) -> RoomDataset:
    """Load a compact dataset folder (``features.csv``, ``edcs.npy``, ``meta.json``)."""
    path = Path(path)
    if not path.is_dir():
        raise EdcInputError(f"{path}: dataset folder not found. Fix: pass data.path=DIR of a compact dataset, "
                            f"or {GENERATE_HINT}.")
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise EdcInputError(f"{meta_path}: missing. Fix: write meta.json with at least "
                            '{"edc_fs": <Hz of edcs.npy>}.') from None
    except ValueError as err:
        raise EdcInputError(f"{meta_path}: not valid JSON ({err}). Fix: rewrite it.") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("edc_fs"), int) or meta["edc_fs"] <= 0:
        raise EdcInputError(f"{meta_path}: needs a positive integer 'edc_fs' (the sampling rate of edcs.npy "
                            'in Hz). Fix: add e.g. "edc_fs": 1000.')
    features = read_features(path / "features.csv")
    ids = features["ID"].to_numpy()
    edcs = _curves_file(path / "edcs.npy", ids, band_curves=False)
    band_edcs = _curves_file(path / "band_edcs.npy", ids, band_curves=True) if (path / "band_edcs.npy").exists() \
        else None
    if band_edcs is not None:
        if meta.get("bands_hz", list(OCTAVE_BANDS_HZ)) != list(OCTAVE_BANDS_HZ):
            raise EdcInputError(f"{meta_path}: bands_hz={meta['bands_hz']}, but band_edcs.npy must hold the octave "
                                f"bands {list(OCTAVE_BANDS_HZ)} Hz in this order. Fix: reorder the bands (and "
                                "bands_hz), or remove band_edcs.npy to train broadband only.")
        if band_edcs.shape[-1] != edcs.shape[-1]:
            raise EdcInputError(f"{path / 'band_edcs.npy'}: {band_edcs.shape[-1]} samples per curve but edcs.npy has "
                                f"{edcs.shape[-1]}. Fix: store both at edc_fs, equally long.")
    return RoomDataset(ids, features, edcs, meta["edc_fs"], str(path), dict(meta), band_edcs)


def _curves_file(path: Path, ids, band_curves: bool) -> np.ndarray:
    """The validated curves of a compact dataset, memory-mapped: ``(n_rooms, n_samples)``, or
    ``(n_rooms, 7, n_samples)`` for ``band_curves``."""
    shape = "(n_rooms, 7, n_samples) array, the bands 125 Hz to 8 kHz in order" if band_curves \
        else "(n_rooms, n_samples) array"
    try:
        curves = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise EdcInputError(f"{path}: missing. Fix: save the curves as a {shape}.") from None
    except (ValueError, OSError) as err:
        raise EdcInputError(f"{path}: unreadable as .npy ({err}). Fix: save it with numpy.save.") from None
    if curves.ndim != 2 + band_curves:
        raise EdcInputError(f"{path}: shape {curves.shape}; expected a {shape}. Fix: save it in that shape.")
    if len(curves) != len(ids):
        raise EdcInputError(f"{path}: {len(curves)} curves but {len(ids)} rooms in features.csv. "
                            "Fix: one curve per features row, in the same order.")
    validate_edcs(curves, ids, str(path))
    return curves


def load_folder(features_csv, edc_dir, source_fs: int = 48000, duration: float = 2.0,
                cache_dir=None, band_edc_dir=None) -> RoomDataset:
    """Load the folder layout; the first load validates every file and writes a memory-mapped cache.

    Args:
        features_csv: features CSV (``ID`` + 16 columns).
        edc_dir: folder of ``<ID>.npy`` 1-D linear-energy EDCs at ``source_fs`` Hz.
        source_fs: sampling rate of the files in Hz.
        duration: seconds kept per curve (cut or zero-padded).
        cache_dir: where the cache goes (default ``<edc_dir>/.edc_cache``).
        band_edc_dir: optional folder of ``<ID>.npy`` octave-band EDCs, ``(7, n)`` each: the bands
            125 Hz to 8 kHz in order, at ``source_fs`` Hz like the broadband files.
    """
    features = read_features(features_csv)
    ids = features["ID"].to_numpy()
    n_samples = samples_of(duration, source_fs)
    cache = Path(cache_dir) if cache_dir else Path(edc_dir) / ".edc_cache"
    edcs = _folder_curves(features, features_csv, edc_dir, "data.edc_dir", cache, source_fs, n_samples, 1)
    band_edcs = None if band_edc_dir is None else _folder_curves(
        features, features_csv, band_edc_dir, "data.band_edc_dir", cache, source_fs, n_samples, len(OCTAVE_BANDS_HZ))
    meta = {"edc_fs": source_fs, "layout": "folder", "cache": str(cache)}
    return RoomDataset(ids, features, edcs, source_fs, str(edc_dir), meta, band_edcs)


def _folder_curves(features: pd.DataFrame, features_csv, folder, key: str, cache: Path, source_fs: int,
                   n_samples: int, n_curves: int) -> np.ndarray:
    """The ``<ID>.npy`` files of ``folder`` as one memory-mapped ``(n_rooms, n_samples)`` array
    (``n_curves`` 1) or ``(n_rooms, n_curves, n_samples)``, from the cache or written to it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdcInputError(f"{folder}: EDC folder not found. Fix: pass {key}=DIR holding <ID>.npy files.")
    ids = features["ID"].to_numpy()
    files = [folder / f"{i}.npy" for i in ids]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise EdcInputError(f"{folder}: {len(missing)} EDC file(s) missing for rooms of {features_csv}: "
                            f"{describe_rows(missing)}. Fix: add them or drop those rows from the CSV.")
    shape = (len(files), n_samples) if n_curves == 1 else (len(files), n_curves, n_samples)
    cached = cache / f"{'edcs' if n_curves == 1 else 'band-edcs'}-{_folder_cache_key(features, files, source_fs, n_samples)}.npy"
    if not cached.is_file():
        _write_folder_cache(files, ids, shape, cached)
    return np.load(cached, mmap_mode="r")


def _folder_cache_key(features: pd.DataFrame, files, source_fs: int, n_samples: int) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(features, index=False).to_numpy().tobytes())
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(f"{source_fs}:{n_samples}".encode())
    return digest.hexdigest()[:16]


def _write_folder_cache(files, ids, shape: tuple, cached: Path) -> None:
    """Validate every file and write them as one float32 array of ``shape``."""
    with atomic_path(cached, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        for row, f in enumerate(files):
            curve = _read_edc_file(f, shape[1:-1])
            n = min(curve.shape[-1], shape[-1])
            out[row, ..., :n] = curve[..., :n]
            out[row, ..., n:] = 0.0
            if row % 256 == 255 or row == len(files) - 1:
                lo = row - row % 256
                validate_edcs(out[lo : row + 1], ids[lo : row + 1], str(f.parent))
        out.flush()
        del out


def _read_edc_file(f: Path, bands: tuple) -> np.ndarray:
    """One room's curve ``(n,)`` (``bands`` empty) or its band curves ``(7, n)``."""
    try:
        curve = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise EdcInputError(f"{f}: unreadable as .npy ({err}). Fix: save the curve with numpy.save.") from None
    curve = np.squeeze(curve) if not bands else curve
    if curve.shape[:-1] != bands or curve.ndim != 1 + len(bands) or curve.shape[-1] < 2:
        expected = f"({bands[0]}, n): one row per octave band, 125 Hz to 8 kHz" if bands else "a 1-D EDC"
        raise EdcInputError(f"{f}: expected {expected}, got shape {np.shape(curve)}. Fix: save one room per file.")
    if curve.dtype.kind != "f":
        raise EdcInputError(f"{f}: dtype {curve.dtype}; expected float32 or float64 linear energy. "
                            "Fix: save it as float.")
    return curve


def write_compact(out_dir, features: pd.DataFrame, meta: dict, edcs=None, band_edcs=None) -> None:
    """Write a compact dataset, each file atomically and ``meta.json`` last; ``edcs`` ``(n, n_samples)``
    and ``band_edcs`` ``(n, 7, n_samples)`` (float32) where given, else already in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "features.csv") as tmp:
        features.to_csv(tmp, index=False)
    for name, curves in (("edcs", edcs), ("band_edcs", band_edcs)):
        if curves is not None:
            with atomic_path(out_dir / f"{name}.npy", suffix=".npy") as tmp:
                np.save(tmp, np.asarray(curves, dtype=np.float32))
    write_json(out_dir / "meta.json", meta)


DEMO_DIR = Path(__file__).parent / "demo_data"


def load_demo() -> RoomDataset:
    """The built-in demo rooms with their band curves (made by ``scripts/make_demo.py``: ``edc.generate``,
    then stored as levels in 0.01 dB steps down to -80 dB; shipped inside the package)."""
    meta = json.loads((DEMO_DIR / "meta.json").read_text())
    shape = tuple(meta["shape"])  # (n_rooms, 8, n_samples)
    planes = np.frombuffer(zlib.decompress((DEMO_DIR / "curves.zlib").read_bytes()), np.uint8)
    decrements = np.ascontiguousarray(planes.reshape(2, -1).T).view("<u2").reshape(shape)
    level = -np.cumsum(decrements, axis=-1, dtype=np.float64) * meta["level_step_db"]
    curves = (10.0 ** (level / 10.0)).astype(np.float32)
    features = read_features(DEMO_DIR / "features.csv")
    return RoomDataset(features["ID"].to_numpy(), features, curves[:, 0], meta["edc_fs"], "built-in demo data", meta,
                       curves[:, 1:])


def load_dataset(layout: str, path=None, features_csv=None, edc_dir=None, source_fs: int = 48000,
                 duration: float = 2.0, cache_dir=None, band_edc_dir=None) -> RoomDataset:
    """The rooms of ``layout``: ``demo`` (built in), ``compact`` (``path``) or ``folder`` (``features_csv``,
    ``edc_dir`` and optionally ``band_edc_dir`` at ``source_fs`` Hz, cut or padded to ``duration`` s;
    cache in ``cache_dir``)."""
    if layout == "demo":
        return load_demo()
    if layout == "compact":
        if not path:
            raise EdcInputError(f"data.path is not set. Fix: data=compact data.path=DIR, or {GENERATE_HINT}.")
        return load_compact(path)
    if layout == "folder":
        for key, value in (("features_csv", features_csv), ("edc_dir", edc_dir)):
            if not value:
                raise EdcInputError(f"data.{key} is not set. Fix: data=folder data.features_csv=FILE "
                                    "data.edc_dir=DIR data.source_fs=48000.")
        return load_folder(features_csv, edc_dir, source_fs, duration, cache_dir, band_edc_dir)
    raise EdcInputError(f"data.layout={layout!r}: use demo, compact or folder.")
