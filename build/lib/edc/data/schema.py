"""The columns of a features table and how a row becomes a simulated room (docs/data.md)."""
from __future__ import annotations

import pandas as pd

from edc.acoustics.simulate import Room

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


def room_of(row: pd.Series) -> Room:
    """The :class:`edc.acoustics.simulate.Room` of one features row (the 16 columns)."""
    return Room(tuple(row[DIMENSIONS]), tuple(row[SOURCE]), tuple(row[RECEIVER]), tuple(row[ABSORPTION]))
