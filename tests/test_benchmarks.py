"""The benchmarks' own sampling: the rooms a noise floor is measured on."""
import importlib.util

import numpy as np
import pandas as pd
import pytest

from edc.data.schema import GEOMETRY

from .conftest import ROOT

pytestmark = pytest.mark.unit


def benchmark_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def paper_like(n_geometries: int, n_profiles: int) -> pd.DataFrame:
    """Every geometry with every profile, listed in the same profile order (as the paper's rooms are)."""
    geometry = np.repeat(np.arange(n_geometries), n_profiles)
    table = pd.DataFrame({column: geometry + k for k, column in enumerate(GEOMETRY)})
    return table.assign(profile=np.tile(np.arange(n_profiles), n_geometries))


@pytest.mark.parametrize("n_test_geometries", [200, 40])  # the random split's test rows, the configuration split's
def test_floor_rooms_are_a_fair_sample_of_the_profiles(n_test_geometries):
    balanced = benchmark_module("datasets").balanced
    features = paper_like(200, 30)
    rng = np.random.default_rng(1)
    if n_test_geometries == 200:  # the random split: about 6 of each geometry's 30 rows
        rows = np.concatenate([30 * g + np.sort(rng.choice(30, 6, replace=False)) for g in range(200)])
    else:  # the configuration split: every row of its test geometries
        rows = np.flatnonzero(np.isin(features[GEOMETRY[0]], rng.choice(200, n_test_geometries, replace=False)))
    picked = balanced(rows, features, 200)
    profiles = features.profile.to_numpy()[picked]
    assert len(picked) == 200 and len(np.unique(picked)) == 200 and np.isin(picked, rows).all()
    assert len(np.unique(profiles)) >= 25  # taking the same positions in each geometry kept 5 on the second
    test_mean = features.profile.to_numpy()[rows].mean()
    assert abs(profiles.mean() - test_mean) < 2.5  # 4 standard errors of 200 draws; the first of each: 3.4 of 14.5
    geometry = features[GEOMETRY[0]].to_numpy()
    assert (np.unique(geometry[picked], return_counts=True)[1] == 200 // n_test_geometries).all()


def test_a_set_built_by_another_sampler_is_refused_not_reused(tmp_path, monkeypatch):
    datasets = benchmark_module("datasets")
    monkeypatch.setattr(datasets, "DATA", tmp_path)
    rooms = pd.DataFrame({"ID": ["room_00000", "room_00001"], "Length": [3.0, 4.0]})
    (tmp_path / "rooms").mkdir()
    (tmp_path / "rooms" / "band_edcs.npy").touch()  # built
    rooms.to_csv(tmp_path / "rooms.csv", index=False)
    datasets.build("rooms", lambda: rooms, 1.0, 2.0, 1)  # the same rooms: reused, nothing simulated
    with pytest.raises(SystemExit, match="sampler changed .* move .*rooms.csv"):
        datasets.build("rooms", lambda: rooms.assign(Length=[3.0, 4.5]), 1.0, 2.0, 1)
