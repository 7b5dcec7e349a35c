"""Materials by name: pyroomacoustics' database and a user's own materials file, and how a name fills
a surface's 14 columns of the surfaces layout (docs/data.md, "Materials").

* A database entry gives absorption at 125 Hz to 4 or 8 kHz; an entry with 6 values (no 8 kHz) repeats
  its 4 kHz value at 8 kHz. Database absorption entries carry no scattering: they get
  :data:`DEFAULT_SCATTERING` in every band.
* A materials file is a CSV with ``material`` (the name), ``a125 ... a8000`` and optionally
  ``s125 ... s8000`` (no scattering columns: :data:`DEFAULT_SCATTERING`) and ``description``. Its
  names replace database entries of the same name.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.errors import EdcInputError, describe_rows

DEFAULT_SCATTERING = 0.1  # in every band, for a material without scattering data: a plain, flat surface
ABSORPTION_KEYS = [f"a{band}" for band in OCTAVE_BANDS_HZ]
SCATTERING_KEYS = [f"s{band}" for band in OCTAVE_BANDS_HZ]
LIST_HINT = "`python -m edc.materials` lists the names"


@dataclasses.dataclass(frozen=True)
class Material:
    """A named material: ``absorption`` and ``scattering`` (7,) at 125 Hz to 8 kHz; ``source`` says
    where it came from and how its 7 values were filled."""

    name: str
    absorption: tuple
    scattering: tuple
    description: str = ""
    category: str = ""
    source: str = ""


def database() -> dict[str, Material]:
    """pyroomacoustics' absorption database (read from its JSON file; the package is not imported)."""
    spec = importlib.util.find_spec("pyroomacoustics")
    path = Path(spec.submodule_search_locations[0]) / "data" / "materials.json"
    entries = json.loads(path.read_text())["absorption"]
    found = {}
    for category, materials in entries.items():
        for name, entry in materials.items():
            coeffs = [float(x) for x in entry["coeffs"]]
            filled = coeffs + coeffs[-1:] * (len(OCTAVE_BANDS_HZ) - len(coeffs))
            note = "pyroomacoustics" + (f" (8 kHz repeats {OCTAVE_BANDS_HZ[len(coeffs) - 1]} Hz)"
                                        if len(coeffs) < len(OCTAVE_BANDS_HZ) else "")
            found[name] = Material(name, tuple(filled), (DEFAULT_SCATTERING,) * len(OCTAVE_BANDS_HZ),
                                   entry.get("description", ""), category, note)
    return found


def read_materials_file(path) -> dict[str, Material]:
    """A user's materials CSV (``material``, ``a125 ... a8000``, optional ``s125 ... s8000``, ``description``)."""
    path = Path(path)
    if not path.is_file():
        raise EdcInputError(f"{path}: materials file not found. Fix: check the path (a CSV with columns material, "
                            f"{', '.join(ABSORPTION_KEYS)} and optionally {', '.join(SCATTERING_KEYS)}).")
    try:
        table = pd.read_csv(path, dtype={"material": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise EdcInputError(f"{path}: cannot be read as CSV ({err}). Fix: save it as comma-separated text.") from None
    allowed = ["material", "description"] + ABSORPTION_KEYS + SCATTERING_KEYS
    missing = [c for c in ["material"] + ABSORPTION_KEYS if c not in table.columns]
    extra = [c for c in table.columns if c not in allowed]
    partial = [c for c in SCATTERING_KEYS if c not in table.columns]
    if missing or extra or 0 < len(partial) < len(SCATTERING_KEYS):
        problems = [f"missing columns {missing}"] * bool(missing) + [f"unexpected columns {extra}"] * bool(extra) \
            + [f"scattering columns missing {partial} (give all 7 or none)"] * (0 < len(partial) < 7)
        raise EdcInputError(f"{path}: {' and '.join(problems)}. Fix: the header must be "
                            f"`material,{','.join(ABSORPTION_KEYS)}` (then optionally {','.join(SCATTERING_KEYS)} "
                            "and description).")
    names = table["material"].fillna("").str.strip()
    bad_names = table.index[(names == "") | names.duplicated(keep=False)]
    if len(bad_names):
        raise EdcInputError(f"{path}: empty or duplicate material names on line(s) "
                            f"{describe_rows(bad_names + 2)}. Fix: give every material a unique name.")
    has_scattering = not partial
    numbers = table[ABSORPTION_KEYS + SCATTERING_KEYS * has_scattering].apply(pd.to_numeric, errors="coerce")
    for key, low_open, what in [(k, True, "absorption") for k in ABSORPTION_KEYS] + \
            [(k, False, "scattering") for k in SCATTERING_KEYS * has_scattering]:
        values = numbers[key].to_numpy()
        bad = ~np.isfinite(values) | (values > 1) | ((values <= 0) if low_open else (values < 0))
        if bad.any():
            rows = [f"{names[i]} (line {i + 2})" for i in np.flatnonzero(bad)]
            interval = "(0, 1]" if low_open else "[0, 1]"
            raise EdcInputError(f"{path}: {what} {key} not a number in {interval} for {describe_rows(rows)}. "
                                f"Fix: write the {what} coefficient at {key[1:]} Hz as a number in {interval}.")
    found = {}
    for i, name in enumerate(names):
        scattering = tuple(numbers.loc[i, SCATTERING_KEYS]) if has_scattering \
            else (DEFAULT_SCATTERING,) * len(OCTAVE_BANDS_HZ)
        description = table.at[i, "description"] if "description" in table.columns else ""
        found[name] = Material(name, tuple(numbers.loc[i, ABSORPTION_KEYS]), tuple(map(float, scattering)),
                               "" if pd.isna(description) else str(description), "", str(path))
    return found


def catalogue(materials_file=None) -> dict[str, Material]:
    """Every material a name may refer to: the database, then the user's file (which wins)."""
    found = database()
    if materials_file is not None:
        found.update(read_materials_file(materials_file))
    return found


def lookup(name: str, materials: dict[str, Material], where: str) -> Material:
    """The material called ``name``; an unknown name is an error that suggests close ones."""
    if name in materials:
        return materials[name]
    close = difflib.get_close_matches(name, list(materials), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise EdcInputError(f"{where}: unknown material {name!r}. Fix: {hint}{LIST_HINT}; your own go in a "
                        "materials file (materials_file=PATH).")
