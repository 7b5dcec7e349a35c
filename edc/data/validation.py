"""Checks of features tables and EDC arrays: every problem names the file, the rows (IDs and CSV
lines) and the fix, as an :class:`edc.errors.EdcInputError`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.acoustics.simulate import SURFACES
from edc.data.materials import LIST_HINT, catalogue, lookup
from edc.data.schema import (
    ABSORPTION,
    DIMENSIONS,
    FEATURES,
    GENERATE_HINT,
    GEOMETRY,
    MATERIAL_COLUMNS,
    OPTIONAL_COLUMNS,
    RECEIVER,
    SOURCE,
    SURFACE_FEATURES,
    WALLS,
    absorption_columns,
    layout_of,
    scattering_columns,
)
from edc.errors import EdcInputError, describe_rows


def read_features(path, materials_file=None) -> pd.DataFrame:
    """Read and validate a features CSV in either layout (docs/data.md): ``ID`` + the 16 columns, or
    ``ID`` + the surfaces layout, whose numbers may come from material names (``materials_file``: the
    user's own materials CSV beside pyroomacoustics' database); optional ``seed``.

    Returns:
        DataFrame with ``ID`` (str), the layout's features (float64) and ``seed`` if given; the
        surfaces layout fully numeric (names resolved).
    """
    path = Path(path)
    if not path.is_file():
        raise EdcInputError(f"{path}: features CSV not found. Fix: check the path, or {GENERATE_HINT}.")
    try:
        frame = pd.read_csv(path, dtype={"ID": str, **{c: str for c in MATERIAL_COLUMNS}})
    except pd.errors.EmptyDataError:
        raise EdcInputError(f"{path}: the file is empty. Fix: write a header `ID,{','.join(FEATURES)}` "
                            "and one row per room.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise EdcInputError(f"{path}: cannot be parsed as CSV ({err}). Fix: save it as comma-separated text.") from None
    return validate_features(frame, str(path), _row_lines(path, len(frame)), materials_file)


def _row_lines(path: Path, n_rows: int) -> np.ndarray | None:
    """The file's line number (header = 1) of each data row: the CSV reader skips blank lines, so
    row i is not always line i + 2. None where the text does not split into that many rows."""
    try:
        filled = [i for i, text in enumerate(path.read_text().splitlines(), 1) if text.strip()]
    except (OSError, UnicodeDecodeError):
        return None
    return np.asarray(filled[1:]) if len(filled) == n_rows + 1 else None


class _Table:
    """A features table under validation: ``fail`` names the rows (ID and line) and the fix."""

    def __init__(self, frame: pd.DataFrame, source: str, lines):
        self.frame, self.source = frame, source
        self.line = pd.Series(np.arange(len(frame)) + 2 if lines is None else lines, index=frame.index)  # header = 1

    def fail(self, mask, what, fix):
        bad = self.frame.index[np.asarray(mask)]
        rows = [f"{self.frame.at[i, 'ID']} (line {self.line[i]})" for i in bad]
        raise EdcInputError(f"{self.source}: {what} in {len(bad)} row(s): {describe_rows(rows)}. Fix: {fix}.")

    def numbers(self, columns) -> None:
        """Turn ``columns`` into float64; text in a number column is an error (empty cells stay NaN)."""
        for column in columns:
            values = pd.to_numeric(self.frame[column], errors="coerce")
            text = values.isna() & self.frame[column].notna()
            if text.any():
                self.fail(text, f"text in number column {column!r}", f"write plain numbers in {column!r}")
            self.frame[column] = values.astype(np.float64)


def validate_features(frame: pd.DataFrame, source: str, lines=None, materials_file=None) -> pd.DataFrame:
    """Check columns, numbers, geometry, absorption (and scattering); return a clean copy. ``lines``: the
    file's line number of each row, for messages (default: row i on line i + 2, below the header)."""
    surfaces = layout_of(frame.columns) == "surfaces"
    expected = ["ID"] + (SURFACE_FEATURES if surfaces else FEATURES)
    allowed = expected + OPTIONAL_COLUMNS + (MATERIAL_COLUMNS if surfaces else [])
    required = ["ID"] + (GEOMETRY if surfaces else FEATURES)
    missing = [c for c in required if c not in frame.columns]
    extra = [c for c in frame.columns if c not in allowed]
    if missing or extra:
        parts = ([f"missing columns {missing}"] if missing else []) + ([f"unexpected columns {extra}"] if extra else [])
        header = (f"`ID,{','.join(GEOMETRY)}`, then per surface west_a125..west_a8000, west_s125..west_s8000, "
                  "... ceiling_s8000 or a material name per surface (west_material ... ceiling_material, "
                  "walls_material; docs/data.md)") if surfaces else f"`ID,{','.join(FEATURES)}`"
        raise EdcInputError(f"{source}: {' and '.join(parts)}. Fix: the header must be {header} "
                            "(an integer `seed` column is optional).")
    if frame.empty:
        raise EdcInputError(f"{source}: the header is there but no rooms follow. Fix: add one row per room.")
    table = _Table(frame.copy(), source, lines)
    table.frame["ID"] = table.frame["ID"].astype(str)
    table.numbers([c for c in expected[1:] + OPTIONAL_COLUMNS if c in table.frame.columns])
    if surfaces:
        _fill_from_materials(table, materials_file)
    values = table.frame[expected[1:]].to_numpy()
    if not np.isfinite(values).all():
        table.fail(~np.isfinite(values).all(1), "NaN, empty or infinite values",
                   "fill every feature with a finite number")
    _check_geometry(table)
    if surfaces:
        _check_surfaces(table)
    else:
        alpha = table.frame[ABSORPTION].to_numpy()
        bad_alpha = ((alpha <= 0) | (alpha > 1)).any(1)
        if bad_alpha.any():
            table.fail(bad_alpha, "absorption coefficients f1..f7 outside (0, 1]", "use energy absorption in (0, 1]")
    frame = table.frame
    if "seed" in frame.columns:
        seed = frame["seed"].to_numpy()
        bad_seed = ~np.isfinite(seed) | (seed < 0) | (seed >= 2**32) | (np.round(seed) != seed)
        if bad_seed.any():
            table.fail(bad_seed, "a seed that is empty or not an integer from 0 to 2**32 - 1",
                       "give every row an integer seed, or drop the seed column (the row index is the seed)")
        frame["seed"] = seed.astype(np.int64)
    return frame[expected + [c for c in OPTIONAL_COLUMNS if c in frame.columns]].reset_index(drop=True)


def _check_geometry(table: _Table) -> None:
    frame = table.frame
    if frame["ID"].duplicated().any():
        table.fail(frame["ID"].duplicated(keep=False), "duplicate IDs", "give every room a unique ID")
    dims = frame[DIMENSIONS].to_numpy()
    if (dims <= 0).any():
        table.fail((dims <= 0).any(1), "non-positive room dimensions (Length, Width, Height)", "use dimensions > 0 m")
    for name, cols in (("source", SOURCE), ("receiver", RECEIVER)):
        pos = frame[cols].to_numpy()
        outside = ((pos <= 0) | (pos >= dims)).any(1)
        if outside.any():
            table.fail(outside, f"{name} outside the room", f"put {cols} strictly inside (0, Length/Width/Height) m")
    same = np.isclose(frame[SOURCE].to_numpy(), frame[RECEIVER].to_numpy()).all(1)
    if same.any():
        table.fail(same, "source and receiver at the same point", "move the receiver away from the source")


def _check_surfaces(table: _Table) -> None:
    """Absorption in (0, 1] and scattering in [0, 1], the surface and band named."""
    for surface in SURFACES:
        for what, columns, low_open in (("absorption", absorption_columns(surface), True),
                                        ("scattering", scattering_columns(surface), False)):
            values = table.frame[columns].to_numpy()
            bad = (values > 1) | ((values <= 0) if low_open else (values < 0))
            if bad.any():
                band = OCTAVE_BANDS_HZ[int(np.flatnonzero(bad.any(0))[0])]
                interval = "(0, 1]" if low_open else "[0, 1]"
                table.fail(bad.any(1), f"{surface} {what} outside {interval} (e.g. {surface}_{what[0]}{band}, "
                           f"the {surface} surface at {band} Hz)", f"use {what} coefficients in {interval}")


def _fill_from_materials(table: _Table, materials_file) -> None:
    """Fill the empty or absent number columns of each surface from its material name (``s_material``, or
    ``walls_material`` for the four walls); numbers given beside a name win. Name columns are dropped."""
    frame = table.frame
    none = pd.Series(np.nan, index=frame.index, dtype=object)
    given = {c: frame[c].astype(str).str.strip().where(frame[c].notna()).replace("", np.nan) if c in frame else none
             for c in MATERIAL_COLUMNS}
    names = {s: given[f"{s}_material"].where(given[f"{s}_material"].notna(), given["walls_material"] if s in WALLS
                                             else none) for s in SURFACES}
    used = any(column.notna().any() for column in names.values())
    materials = catalogue(materials_file) if used or materials_file is not None else {}
    for surface in SURFACES:
        columns = absorption_columns(surface) + scattering_columns(surface)
        for column in columns:
            if column not in frame.columns:
                frame[column] = np.nan
        for i, name in names[surface].dropna().items():
            where = f"{table.source}: row {frame.at[i, 'ID']} (line {table.line[i]}), {surface}"
            material = lookup(name, materials, where)
            given = frame.loc[i, columns].to_numpy(np.float64)
            frame.loc[i, columns] = np.where(np.isnan(given), material.absorption + material.scattering, given)
        empty = frame[columns].isna().any(axis=1)
        if empty.any():
            table.fail(empty, f"{surface}: numbers missing and no material named",
                       f"give {surface}_a125..{surface}_a8000 and {surface}_s125..{surface}_s8000, or a name in "
                       f"{surface}_material" + (" or walls_material" if surface in WALLS else "")
                       + f" ({LIST_HINT})")


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
