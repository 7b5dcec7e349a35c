"""The built-in room sampler: shoebox rooms in the paper's ranges, continuous, with absorption
spectra mixed from typical room finishes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from edc.data.schema import FEATURES

# Octave-band (125 Hz - 8 kHz) absorption of typical room finishes, in the range of
# the paper's 30 cases; the sampler mixes them at random.
BASE_PROFILES = np.array([
    [0.19, 0.34, 0.55, 0.62, 0.62, 0.64, 0.60],  # porous absorber / curtains
    [0.29, 0.60, 0.85, 0.83, 0.69, 0.63, 0.30],  # suspended acoustic ceiling
    [0.27, 0.24, 0.22, 0.17, 0.09, 0.08, 0.02],  # wooden panelling (low-frequency)
    [0.09, 0.05, 0.04, 0.04, 0.03, 0.02, 0.02],  # painted concrete / plaster
    [0.12, 0.12, 0.12, 0.17, 0.16, 0.15, 0.02],  # linoleum on concrete
    [0.22, 0.34, 0.39, 0.41, 0.40, 0.40, 0.39],  # upholstered furniture
    [0.14, 0.27, 0.36, 0.30, 0.24, 0.24, 0.03],  # mixed office
    [0.18, 0.25, 0.26, 0.23, 0.22, 0.22, 0.21],  # carpet on pad
])


@dataclasses.dataclass
class SamplerRanges:
    """Ranges of the built-in sampler (defaults: the paper's rooms, continuous).

    Sources and receivers sit at ``position_height`` m, at least ``wall_margin`` m
    from the walls and ``min_distance`` m from each other.
    """

    length: tuple = (3.0, 4.0)
    width: tuple = (3.0, 6.0)
    height: tuple = (2.5, 4.0)
    position_height: float = 1.5
    wall_margin: float = 1.0
    min_distance: float = 1.0
    absorption: tuple = (0.01, 0.85)
    profile_concentration: float = 0.5


def sample_rooms(n_rooms: int, seed: int = 0, ranges: SamplerRanges = SamplerRanges(),
                 profiles: np.ndarray | None = None) -> pd.DataFrame:
    """Draw ``n_rooms`` shoebox rooms: a features table (``ID`` + 16 columns).

    Absorption is a Dirichlet mixture of ``profiles`` (default :data:`BASE_PROFILES`),
    clipped to ``ranges.absorption``.
    """
    rng = np.random.default_rng(seed)
    profiles = BASE_PROFILES if profiles is None else np.asarray(profiles, dtype=np.float64)
    rows = []
    for i in range(n_rooms):
        dims = np.array([rng.uniform(*ranges.length), rng.uniform(*ranges.width), rng.uniform(*ranges.height)])
        source, receiver = _positions(rng, dims, ranges)
        weights = rng.dirichlet(np.full(len(profiles), ranges.profile_concentration))
        alpha = np.clip(weights @ profiles, *ranges.absorption)
        rows.append([f"room_{i:05d}", *np.round(dims, 3), *np.round(source, 3), *np.round(receiver, 3),
                     *np.round(alpha, 3)])
    return pd.DataFrame(rows, columns=["ID"] + FEATURES)


def _positions(rng, dims, ranges: SamplerRanges):
    lo, hi = ranges.wall_margin, dims[:2] - ranges.wall_margin
    if (hi <= lo).any():
        raise ValueError(f"a {dims[0]:.2f} x {dims[1]:.2f} m room is too small for wall_margin {ranges.wall_margin} m")
    for _ in range(1000):
        source, receiver = rng.uniform(lo, hi), rng.uniform(lo, hi)
        if np.linalg.norm(source - receiver) >= ranges.min_distance:
            z = [ranges.position_height]
            return np.concatenate([source, z]), np.concatenate([receiver, z])
    raise ValueError(f"cannot place source and receiver {ranges.min_distance} m apart in a "
                     f"{dims[0]:.2f} x {dims[1]:.2f} m room with wall_margin {ranges.wall_margin} m")
