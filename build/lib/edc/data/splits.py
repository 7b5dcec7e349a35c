"""Train / validation / test splits of a room dataset: by rows, or by configuration (unseen geometries)."""
from __future__ import annotations

import numpy as np

from edc.data.layouts import RoomDataset
from edc.data.schema import GEOMETRY
from edc.errors import EdcInputError

SPLITS = ("train", "val", "test")


def split_rows(dataset: RoomDataset, split_seed: int = 42, split_by: str = "rows",
               fractions=(0.6, 0.2, 0.2)) -> dict:
    """Row indices of each split from ``numpy.random.default_rng(split_seed).permutation``.

    ``split_by=rows`` permutes rows (the original framework); ``split_by=configuration``
    permutes the groups of rows sharing the 9 geometry and position columns, so a
    configuration never appears in two splits.
    """
    rng = np.random.default_rng(split_seed)
    n = len(dataset)
    if split_by == "rows":
        order = rng.permutation(n)
        cut = np.round(np.cumsum(fractions)[:2] * n).astype(int)
        parts = np.split(order, cut)
    elif split_by == "configuration":
        groups = dataset.features.groupby(GEOMETRY, sort=True).ngroup().to_numpy()
        n_groups = groups.max() + 1
        group_order = rng.permutation(n_groups)
        cut = np.round(np.cumsum(fractions)[:2] * n_groups).astype(int)
        parts = [np.flatnonzero(np.isin(groups, g)) for g in np.split(group_order, cut)]
    else:
        raise EdcInputError(f"data.split_by={split_by!r}: use 'rows' or 'configuration'.")
    return dict(zip(SPLITS, parts))
