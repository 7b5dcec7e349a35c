"""Checks of features tables and EDC arrays: every problem names the file, the rows (IDs and CSV
lines) and the fix, as an :class:`edc.errors.EdcInputError`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.data.schema import (
    ABSORPTION,
    DIMENSIONS,
    FEATURES,
    GENERATE_HINT,
    OPTIONAL_COLUMNS,
    RECEIVER,
    SOURCE,
)
from edc.errors import EdcInputError, describe_rows


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
    return validate_features(frame, str(path), _row_lines(path, len(frame)))


def _row_lines(path: Path, n_rows: int) -> np.ndarray | None:
    """The file's line number (header = 1) of each data row: the CSV reader skips blank lines, so
    row i is not always line i + 2. None where the text does not split into that many rows."""
    try:
        filled = [i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip()]
    except (OSError, UnicodeDecodeError):
        return None
    return np.asarray(filled[1:]) if len(filled) == n_rows + 1 else None


def validate_features(frame: pd.DataFrame, source: str, lines=None) -> pd.DataFrame:
    """Check columns, numbers, geometry and absorption; return a clean copy. ``lines``: the file's line
    number of each row, for messages (default: row i on line i + 2, below the header)."""
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
    line = pd.Series(np.arange(len(frame)) + 2 if lines is None else lines, index=frame.index)  # header = 1

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


def validate_edcs(edcs: np.ndarray, ids, source: str, tolerance: float = 1e-6) -> None:
    """Check linear-energy EDCs: broadband ``(n_rooms, n_samples)`` or per band
    ``(n_rooms, 7, n_samples)`` (125 Hz to 8 kHz): finite, >= 0, start at 1, non-increasing. A problem
    names the rooms and, for band curves, the band. Works in chunks, so memory maps of any size are fine."""
    bands = edcs.ndim == 3
    if edcs.ndim not in (2, 3) or (bands and edcs.shape[1] != len(OCTAVE_BANDS_HZ)):
        raise EdcInputError(f"{source}: EDCs must be (n_rooms, n_samples), or (n_rooms, 7, n_samples) for the "
                            f"octave bands {', '.join(map(str, OCTAVE_BANDS_HZ))} Hz; got shape {edcs.shape}. "
                            "Fix: stack one curve per row (per band: the 7 bands in that order).")
    if edcs.dtype.kind != "f":
        raise EdcInputError(f"{source}: EDCs have dtype {edcs.dtype}; expected float32 or float64 linear energy. "
                            "Fix: save them with `np.save(path, edcs.astype(np.float32))`.")
    problems = {"NaN or infinite values": [], "negative values (dB instead of linear energy?)": [],
                "curve not starting at 1 (normalise so E(0) = 1)": [], "increasing curve (an EDC never rises)": []}
    for start in range(0, len(edcs), 256):
        chunk = np.asarray(edcs[start : start + 256], dtype=np.float64)
        chunk = chunk if bands else chunk[:, None, :]  # (rooms, curves, samples)
        finite = np.isfinite(chunk).all(-1)
        clean = np.where(np.isfinite(chunk), chunk, 0.0)
        found = {"NaN or infinite values": ~finite,
                 "negative values (dB instead of linear energy?)": finite & (clean < 0).any(-1),
                 "curve not starting at 1 (normalise so E(0) = 1)": finite & (np.abs(clean[..., 0] - 1) > 1e-4),
                 "increasing curve (an EDC never rises)": finite & (np.diff(clean, axis=-1) > tolerance).any(-1)}
        for what, mask in found.items():
            problems[what] += [(start + room, band) for room, band in zip(*np.nonzero(mask))]
    for what, where in problems.items():
        if where:
            labels = [f"{ids[room]} ({OCTAVE_BANDS_HZ[band]} Hz band)" if bands else str(ids[room])
                      for room, band in where]
            raise EdcInputError(f"{source}: {what} in {len(where)} curve(s): {describe_rows(labels)}. "
                                "Fix: store the onset-aligned Schroeder EDC in linear energy, E(0) = 1, "
                                "non-increasing (docs/data.md).")
