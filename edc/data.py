"""Room datasets: the *folder* and *compact* layouts, validation, cache, fingerprint.

* *compact* (written by ``python -m edc.generate``; ``../shared/data/paper6000``):
  ``features.csv`` (``ID`` + 16 features), ``edcs.npy`` ``(n_rooms, n_samples)``
  linear energy at ``edc_fs`` Hz, ``meta.json`` (``edc_fs`` and how it was made).
* *folder* (what users already have): a features CSV and a folder of ``<ID>.npy``
  EDCs at ``source_fs`` Hz, any length (cut or zero-padded to ``duration``). The
  first load validates every file and writes one memory-mapped cache.

Every problem raises :class:`edc.errors.EdcInputError` naming the file, the rows
and the fix.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from edc.errors import EdcInputError, describe_rows
from edc.io import atomic_path, write_json

DIMENSIONS = ["Length", "Width", "Height"]
SOURCE = ["Source_X", "Source_Y", "Source_Z"]
RECEIVER = ["Receiver_X", "Receiver_Y", "Receiver_Z"]
ABSORPTION = [f"f{k}" for k in range(1, 8)]
FEATURES = DIMENSIONS + SOURCE + RECEIVER + ABSORPTION  # 16 model inputs
GEOMETRY = DIMENSIONS + SOURCE + RECEIVER  # rows sharing these share a configuration
OPTIONAL_COLUMNS = ["seed"]
GENERATE_HINT = ("generate data with `python -m edc.generate n_rooms=N out_dir=DIR` (for the paper's 6000 rooms: "
                 "`python -m edc.generate features_csv=roomFeaturesDataset.csv out_dir=DIR`, the features table "
                 "published with arXiv 2509.24769)")


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
    """

    ids: np.ndarray
    features: pd.DataFrame
    edcs: np.ndarray
    edc_fs: int
    source: str
    meta: dict = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def on_grid(self, target_fs: int, duration: float) -> np.ndarray:
        """EDCs sampled at ``target_fs`` Hz for ``duration`` s: ``(n_rooms, duration * target_fs)``.

        Sampling (not averaging) keeps the curve exact at the grid times.
        """
        step = sampling_step(self.edc_fs, target_fs, self.source)
        n_samples = int(round(duration * target_fs))
        available = -(-self.edcs.shape[1] // step)
        if n_samples > available:
            raise EdcInputError(
                f"{self.source}: duration={duration} s needs {n_samples} samples at {target_fs} Hz, "
                f"but the data holds {self.edcs.shape[1] / self.edc_fs:g} s. "
                f"Fix: set data.duration to at most {self.edcs.shape[1] / self.edc_fs:g}.")
        return np.array(self.edcs[:, : n_samples * step : step], dtype=np.float32)  # a writable copy

    def fingerprint(self) -> str:
        """Hash of features and curves: runs on different data are never compared as alike."""
        if "fingerprint" not in self.meta:
            digest = hashlib.sha256()
            digest.update(self.features[FEATURES].to_numpy(np.float64).tobytes())
            digest.update(str(self.edc_fs).encode())
            for start in range(0, len(self.edcs), 512):
                digest.update(np.ascontiguousarray(self.edcs[start : start + 512], np.float32).tobytes())
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


# ---------------------------------------------------------------- features CSV


def read_features(path) -> pd.DataFrame:
    """Read and validate a features CSV (``ID`` + the 16 columns; optional ``seed``).

    Returns:
        DataFrame with ``ID`` (str), the 16 features (float64) and ``seed`` if given.
    """
    path = Path(path)
    if not path.is_file():
        raise EdcInputError(f"{path}: features CSV not found. Fix: check the path, or {GENERATE_HINT}.")
    try:
        frame = pd.read_csv(path, dtype={"ID": str})
    except pd.errors.EmptyDataError:
        raise EdcInputError(f"{path}: the file is empty. Fix: write a header `ID,{','.join(FEATURES)}` "
                            "and one row per room.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise EdcInputError(f"{path}: cannot be parsed as CSV ({err}). Fix: save it as comma-separated text.") from None
    return validate_features(frame, str(path))


def validate_features(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check columns, numbers, geometry and absorption; return a clean copy."""
    expected = ["ID"] + FEATURES
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected + OPTIONAL_COLUMNS]
    if missing or extra:
        parts = ([f"missing columns {missing}"] if missing else []) + ([f"unexpected columns {extra}"] if extra else [])
        raise EdcInputError(f"{source}: {' and '.join(parts)}. Fix: the header must be "
                            f"`ID,{','.join(FEATURES)}` (an integer `seed` column is optional).")
    if frame.empty:
        raise EdcInputError(f"{source}: the header is there but no rooms follow. Fix: add one row per room.")
    frame = frame.copy()
    frame["ID"] = frame["ID"].astype(str)
    line = pd.Series(np.arange(len(frame)) + 2, index=frame.index)  # CSV line numbers (header = 1)

    def fail(mask, what, fix):
        bad = frame.index[np.asarray(mask)]
        rows = [f"{frame.at[i, 'ID']} (line {line[i]})" for i in bad]
        raise EdcInputError(f"{source}: {what} in {len(bad)} row(s): {describe_rows(rows)}. Fix: {fix}.")

    numbers = {}
    for column in FEATURES + [c for c in OPTIONAL_COLUMNS if c in frame.columns]:
        values = pd.to_numeric(frame[column], errors="coerce")
        text = values.isna() & frame[column].notna()
        if text.any():
            fail(text, f"text in number column {column!r}", f"write plain numbers in {column!r}")
        numbers[column] = values.astype(np.float64)
    for column, values in numbers.items():
        frame[column] = values
    values = frame[FEATURES].to_numpy()
    if not np.isfinite(values).all():
        fail(~np.isfinite(values).all(1), "NaN, empty or infinite values", "fill every feature with a finite number")
    if frame["ID"].duplicated().any():
        fail(frame["ID"].duplicated(keep=False), "duplicate IDs", "give every room a unique ID")
    dims = frame[DIMENSIONS].to_numpy()
    if (dims <= 0).any():
        fail((dims <= 0).any(1), "non-positive room dimensions (Length, Width, Height)", "use dimensions > 0 m")
    for name, cols in (("source", SOURCE), ("receiver", RECEIVER)):
        pos = frame[cols].to_numpy()
        outside = ((pos <= 0) | (pos >= dims)).any(1)
        if outside.any():
            fail(outside, f"{name} outside the room", f"put {cols} strictly inside (0, Length/Width/Height) m")
    same = np.isclose(frame[SOURCE].to_numpy(), frame[RECEIVER].to_numpy()).all(1)
    if same.any():
        fail(same, "source and receiver at the same point", "move the receiver away from the source")
    alpha = frame[ABSORPTION].to_numpy()
    bad_alpha = ((alpha <= 0) | (alpha > 1)).any(1)
    if bad_alpha.any():
        fail(bad_alpha, "absorption coefficients f1..f7 outside (0, 1]", "use energy absorption in (0, 1]")
    if "seed" in frame.columns:
        frame["seed"] = frame["seed"].astype(np.int64)
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------- EDC checks


def validate_edcs(edcs: np.ndarray, ids, source: str, tolerance: float = 1e-6) -> None:
    """Check ``(n_rooms, n_samples)`` linear-energy EDCs: finite, >= 0, start at 1, non-increasing.

    Works in chunks, so memory maps of any size are fine.
    """
    if edcs.ndim != 2:
        raise EdcInputError(f"{source}: EDCs must be a 2-D array (n_rooms, n_samples), got shape {edcs.shape}. "
                            "Fix: stack one curve per row.")
    if edcs.dtype.kind != "f":
        raise EdcInputError(f"{source}: EDCs have dtype {edcs.dtype}; expected float32 or float64 linear energy. "
                            "Fix: save them with `np.save(path, edcs.astype(np.float32))`.")
    problems = {"NaN or infinite values": [], "negative values (dB instead of linear energy?)": [],
                "curve not starting at 1 (normalise so E(0) = 1)": [], "increasing curve (an EDC never rises)": []}
    for start in range(0, len(edcs), 256):
        chunk = np.asarray(edcs[start : start + 256], dtype=np.float64)
        idx = np.arange(start, start + len(chunk))
        finite = np.isfinite(chunk).all(1)
        problems["NaN or infinite values"] += list(idx[~finite])
        chunk = np.where(np.isfinite(chunk), chunk, 0.0)
        problems["negative values (dB instead of linear energy?)"] += list(idx[finite & (chunk < 0).any(1)])
        problems["curve not starting at 1 (normalise so E(0) = 1)"] += list(idx[finite & (np.abs(chunk[:, 0] - 1) > 1e-4)])
        rising = (np.diff(chunk, axis=1) > tolerance).any(1)
        problems["increasing curve (an EDC never rises)"] += list(idx[finite & rising])
    for what, rows in problems.items():
        if rows:
            labels = [str(ids[i]) for i in rows]
            raise EdcInputError(f"{source}: {what} in {len(rows)} curve(s): {describe_rows(labels)}. "
                                "Fix: store the onset-aligned Schroeder EDC in linear energy, E(0) = 1, "
                                "non-increasing (see README, data layouts).")


# ---------------------------------------------------------------- layouts


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
    edcs_path = path / "edcs.npy"
    try:
        edcs = np.load(edcs_path, mmap_mode="r")
    except FileNotFoundError:
        raise EdcInputError(f"{edcs_path}: missing. Fix: save the curves as a (n_rooms, n_samples) array.") from None
    except (ValueError, OSError) as err:
        raise EdcInputError(f"{edcs_path}: unreadable as .npy ({err}). Fix: save it with numpy.save.") from None
    if edcs.ndim == 2 and len(edcs) != len(features):
        raise EdcInputError(f"{edcs_path}: {len(edcs)} curves but {len(features)} rooms in features.csv. "
                            "Fix: one curve per features row, in the same order.")
    validate_edcs(edcs, features["ID"].to_numpy(), str(edcs_path))
    return RoomDataset(features["ID"].to_numpy(), features, edcs, meta["edc_fs"], str(path), dict(meta))


def load_folder(features_csv, edc_dir, source_fs: int = 48000, duration: float = 2.0,
                cache_dir=None) -> RoomDataset:
    """Load the folder layout; the first load writes a memory-mapped cache.

    Args:
        features_csv: features CSV (``ID`` + 16 columns).
        edc_dir: folder of ``<ID>.npy`` 1-D linear-energy EDCs at ``source_fs`` Hz.
        source_fs: sampling rate of the files in Hz.
        duration: seconds kept per curve (cut or zero-padded).
        cache_dir: where the cache goes (default ``<edc_dir>/.edc_cache``).
    """
    features = read_features(features_csv)
    edc_dir = Path(edc_dir)
    if not edc_dir.is_dir():
        raise EdcInputError(f"{edc_dir}: EDC folder not found. Fix: pass data.edc_dir=DIR holding <ID>.npy files.")
    ids = features["ID"].to_numpy()
    files = [edc_dir / f"{i}.npy" for i in ids]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise EdcInputError(f"{edc_dir}: {len(missing)} EDC file(s) missing for rooms of {features_csv}: "
                            f"{describe_rows(missing)}. Fix: add them or drop those rows from the CSV.")
    n_samples = int(round(duration * source_fs))
    key = _folder_cache_key(features, files, source_fs, n_samples)
    cache = Path(cache_dir) if cache_dir else edc_dir / ".edc_cache"
    cached = cache / f"edcs-{key}.npy"
    if not cached.is_file():
        _write_folder_cache(files, ids, n_samples, cached)
    edcs = np.load(cached, mmap_mode="r")
    meta = {"edc_fs": source_fs, "layout": "folder", "cache": str(cached)}
    return RoomDataset(ids, features, edcs, source_fs, str(edc_dir), meta)


def _folder_cache_key(features: pd.DataFrame, files, source_fs: int, n_samples: int) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(features, index=False).to_numpy().tobytes())
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(f"{source_fs}:{n_samples}".encode())
    return digest.hexdigest()[:16]


def _write_folder_cache(files, ids, n_samples: int, cached: Path) -> None:
    """Validate every file and write them as one ``(n_rooms, n_samples)`` float32 array."""
    with atomic_path(cached, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(files), n_samples))
        for row, f in enumerate(files):
            curve = _read_edc_file(f)
            n = min(len(curve), n_samples)
            out[row, :n] = curve[:n]
            out[row, n:] = 0.0
            if row % 256 == 255 or row == len(files) - 1:
                lo = row - row % 256
                validate_edcs(out[lo : row + 1], ids[lo : row + 1], str(f.parent))
        out.flush()
        del out


def _read_edc_file(f: Path) -> np.ndarray:
    try:
        curve = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise EdcInputError(f"{f}: unreadable as .npy ({err}). Fix: save the curve with numpy.save.") from None
    curve = np.squeeze(curve)
    if curve.ndim != 1 or len(curve) < 2:
        raise EdcInputError(f"{f}: expected a 1-D EDC, got shape {np.shape(curve)}. Fix: save one curve per file.")
    if curve.dtype.kind != "f":
        raise EdcInputError(f"{f}: dtype {curve.dtype}; expected float32 or float64 linear energy. "
                            "Fix: save it as float.")
    return curve


def write_compact(out_dir, features: pd.DataFrame, edcs: np.ndarray, meta: dict) -> None:
    """Write a compact dataset; each file appears atomically (meta.json last)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "features.csv") as tmp:
        features.to_csv(tmp, index=False)
    with atomic_path(out_dir / "edcs.npy", suffix=".npy") as tmp:
        np.save(tmp, np.asarray(edcs, dtype=np.float32))
    write_json(out_dir / "meta.json", meta)


# ---------------------------------------------------------------- built-in demo data

DEMO_DIR = Path(__file__).parent / "demo_data"


def _shuffle_bytes(edcs: np.ndarray) -> bytes:
    """float32 bytes grouped by significance: smooth curves then compress ~1.8x with zlib."""
    return np.ascontiguousarray(np.asarray(edcs, np.float32).view(np.uint8).reshape(-1, 4).T).tobytes()


def write_demo(source_dir, out_dir=DEMO_DIR) -> None:
    """Pack a compact dataset as the built-in demo (``features.csv``, ``edcs.zlib``, ``meta.json``)."""
    import zlib

    data = load_compact(source_dir)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "edcs.zlib") as tmp:
        tmp.write_bytes(zlib.compress(_shuffle_bytes(np.asarray(data.edcs)), 9))
    with atomic_path(out_dir / "features.csv") as tmp:
        data.features.to_csv(tmp, index=False)
    write_json(out_dir / "meta.json", {**data.meta, "shape": list(data.edcs.shape)})


def load_demo() -> RoomDataset:
    """The built-in demo rooms (made by ``edc.generate``; shipped inside the package)."""
    import zlib

    meta = json.loads((DEMO_DIR / "meta.json").read_text())
    n_rooms, n_samples = meta["shape"]
    planes = np.frombuffer(zlib.decompress((DEMO_DIR / "edcs.zlib").read_bytes()), np.uint8)
    edcs = np.ascontiguousarray(planes.reshape(4, -1).T).view(np.float32).reshape(n_rooms, n_samples)
    features = read_features(DEMO_DIR / "features.csv")
    return RoomDataset(features["ID"].to_numpy(), features, edcs, meta["edc_fs"], "built-in demo data", meta)
