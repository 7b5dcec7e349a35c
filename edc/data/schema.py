"""The columns of a features table and how a row becomes a simulated room (docs/data.md).

Two layouts: the paper's 16 columns (one absorption spectrum ``f1..f7`` for every surface, no
scattering) and the *surfaces* layout (PROTOCOL, "Surfaces layout"): the 9 geometry columns, then per
surface its absorption ``west_a125 ... west_a8000`` and scattering ``west_s125 ... west_s8000``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.acoustics.simulate import SURFACES, Room
from edc.errors import EdcInputError, describe_rows

DIMENSIONS = ["Length", "Width", "Height"]
SOURCE = ["Source_X", "Source_Y", "Source_Z"]
RECEIVER = ["Receiver_X", "Receiver_Y", "Receiver_Z"]
ABSORPTION = [f"f{k}" for k in range(1, 8)]
FEATURES = DIMENSIONS + SOURCE + RECEIVER + ABSORPTION  # 16 model inputs
GEOMETRY = DIMENSIONS + SOURCE + RECEIVER  # rows sharing these share a configuration
OPTIONAL_COLUMNS = ["seed"]


def absorption_columns(surface: str) -> list[str]:
    """``west_a125 ... west_a8000``: the surface's energy absorption per octave band."""
    return [f"{surface}_a{band}" for band in OCTAVE_BANDS_HZ]


def scattering_columns(surface: str) -> list[str]:
    """``west_s125 ... west_s8000``: the surface's scattering coefficient per octave band."""
    return [f"{surface}_s{band}" for band in OCTAVE_BANDS_HZ]


SURFACE_ABSORPTION = [c for s in SURFACES for c in absorption_columns(s)]  # 42 columns
SURFACE_SCATTERING = [c for s in SURFACES for c in scattering_columns(s)]  # 42 columns
SURFACE_FEATURES = GEOMETRY + [c for s in SURFACES for c in absorption_columns(s) + scattering_columns(s)]  # 93
MATERIAL_COLUMNS = [f"{s}_material" for s in SURFACES] + ["walls_material"]  # names that fill the numbers
WALLS = SURFACES[:4]
LAYOUTS = {"paper": FEATURES, "surfaces": SURFACE_FEATURES}

GENERATE_HINT = ("generate data with `python -m edc.generate n_rooms=N out_dir=DIR` (for the paper's 6000 rooms: "
                 "`python -m edc.generate features_csv=roomFeaturesDataset.csv out_dir=DIR`, the features table "
                 "published with arXiv 2509.24769)")


def layout_of(columns) -> str:
    """``"surfaces"`` where any column belongs to the surfaces layout (numbers or material names),
    else ``"paper"`` (the 16 columns)."""
    surface_columns = set(SURFACE_ABSORPTION + SURFACE_SCATTERING + MATERIAL_COLUMNS)
    return "surfaces" if surface_columns & set(columns) else "paper"


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a validated table, in layout order."""
    return LAYOUTS[layout_of(frame.columns)]


def to_surfaces(frame: pd.DataFrame) -> pd.DataFrame:
    """A 16-column table as the surfaces layout: every surface ``f1..f7``, scattering 0 (pyroomacoustics'
    default), so that both simulate to the same curves, bit for bit. Other columns (``ID``, ``seed``) stay."""
    out = frame.drop(columns=ABSORPTION)
    absorption = frame[ABSORPTION].to_numpy(np.float64)
    for surface in SURFACES:
        out[absorption_columns(surface)] = absorption
        out[scattering_columns(surface)] = 0.0
    rest = [c for c in out.columns if c not in SURFACE_FEATURES]
    return out[rest[:1] + SURFACE_FEATURES + rest[1:]]


def room_of(row: pd.Series) -> Room:
    """The :class:`edc.acoustics.simulate.Room` of one features row, in either layout."""
    geometry = tuple(row[DIMENSIONS]), tuple(row[SOURCE]), tuple(row[RECEIVER])
    if "f1" in row.index:
        return Room(*geometry, tuple(row[ABSORPTION]))
    shape = (len(SURFACES), len(OCTAVE_BANDS_HZ))
    absorption = row[SURFACE_ABSORPTION].to_numpy(np.float64).reshape(shape)
    scattering = row[SURFACE_SCATTERING].to_numpy(np.float64).reshape(shape)
    return Room(*geometry, tuple(map(tuple, absorption)), tuple(map(tuple, scattering)))


def paper_features(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """The 16-column table today's models read: a paper-layout table as it is, a surfaces-layout table
    whose six surfaces share one absorption spectrum and scatter nothing converted to it (the inverse of
    :func:`to_surfaces`); other surfaces-layout rooms are refused, with the reason."""
    if layout_of(frame.columns) == "paper":
        return frame
    absorption = frame[SURFACE_ABSORPTION].to_numpy(np.float64).reshape(len(frame), len(SURFACES), -1)
    uneven = (absorption != absorption[:, :1]).any((1, 2)) | (frame[SURFACE_SCATTERING].to_numpy() != 0).any(1)
    if uneven.any():
        raise EdcInputError(
            f"{source}: {int(uneven.sum())} room(s) with a material per surface or scattering (e.g. "
            f"{describe_rows(frame['ID'][uneven].tolist(), 3)}); the models here read the paper's 16 columns "
            "(one absorption spectrum for every surface, no scattering), and none reads a material per surface "
            "yet. Fix: give these rooms one material on all six surfaces and scattering 0, or use 16-column "
            "data (docs/data.md, \"Surfaces layout\"); python -m edc.generate simulates either layout.")
    rest = [c for c in frame.columns if c not in SURFACE_FEATURES]
    out = frame[rest[:1] + GEOMETRY].copy()
    out[ABSORPTION] = absorption[:, 0]
    return pd.concat([out, frame[rest[1:]]], axis=1)
