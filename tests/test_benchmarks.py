"""The benchmarks' own sampling: the rooms a noise floor is measured on."""
import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from edc.data.schema import GEOMETRY

from .conftest import ROOT

pytestmark = pytest.mark.unit


def benchmark_module(name: str):
    if str(ROOT / "benchmarks") not in sys.path:  # the scripts import their shared module, common.py
        sys.path.insert(0, str(ROOT / "benchmarks"))
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


def test_the_measured_rooms_materials_give_its_measured_t20_by_eyring():
    """BRAS fitted CR2's absorption to its measured reverberation time by Eyring's formula with the 3D model's
    S = 202.53 m2 and V = 146.1 m3: the transcribed coefficients and measurements must agree the same way."""
    from edc.acoustics.room import AIR_ABSORPTION, SPEED_OF_SOUND

    cr2 = benchmark_module("measured_room")
    surface, volume = 202.53, 146.1
    assert sum(m[0] for m in cr2.MATERIALS.values()) == pytest.approx(surface, abs=0.01)
    absorption_area = sum(m[0] * cr2.octaves(m[1], cr2.MATERIALS_FROM) for m in cr2.MATERIALS.values())
    air = 4 * np.array(AIR_ABSORPTION[:7]) * volume
    eyring = 24 * np.log(10) * volume / (SPEED_OF_SOUND * (-surface * np.log(1 - absorption_area / surface) + air))
    np.testing.assert_allclose(eyring[:5], cr2.measured()["T20"][:5], rtol=0.04)  # 125 Hz - 2 kHz


def test_the_measured_room_is_a_valid_shoebox_of_its_volume():
    from edc.data import validate_features

    cr2 = benchmark_module("measured_room")
    rooms = validate_features(cr2.cr2_rooms(), "cr2")  # every rule of the surfaces layout holds
    assert len(rooms) == 10 and rooms[["Length", "Width", "Height"]].prod(axis=1).iloc[0] == pytest.approx(146.1, rel=0.01)
    absorption, _ = cr2.surface_materials()
    length, width, height = cr2.DIMENSIONS
    areas = np.array([width * height] * 2 + [length * height] * 2 + [length * width] * 2)
    wall_area = sum(cr2.MATERIALS[m][0] * cr2.octaves(cr2.MATERIALS[m][1], cr2.MATERIALS_FROM)
                    for m in ("plaster", "concrete", "windows"))  # m2 of the data sheet's wall materials
    mean_wall = wall_area / sum(cr2.MATERIALS[m][0] for m in ("plaster", "concrete", "windows"))
    shoebox_mean_wall = (areas[:4, None] * absorption[:4]).sum(0) / areas[:4].sum()
    np.testing.assert_allclose(shoebox_mean_wall, mean_wall, rtol=0.05)  # coefficients as the data sheet's


def test_an_extended_set_reuses_the_chunks_of_the_set_it_starts_with(tmp_path, monkeypatch):
    datasets = benchmark_module("datasets")
    monkeypatch.setattr(datasets, "DATA", tmp_path)
    rooms = pd.DataFrame({"ID": [f"room_{i:05d}" for i in range(4)], "Length": [3.0, 4.0, 5.0, 6.0]})
    rooms.iloc[:2].to_csv(tmp_path / "small.csv", index=False)
    (tmp_path / "small" / ".work" / "chunks").mkdir(parents=True)
    (tmp_path / "small" / ".work" / "settings.json").write_text('{"ray_factor": 1.0, "duration": 5.0}')
    (tmp_path / "small" / ".work" / "chunks" / "chunk-00000.npz").write_bytes(b"rows 0-1")

    def reused(extended, ray_factor=1.0, name="large"):
        datasets.reuse_chunks(extended, tmp_path / name, ray_factor, 5.0)
        chunk = tmp_path / name / ".work" / "chunks" / "chunk-00000.npz"
        return chunk.is_file() and chunk.read_bytes() == b"rows 0-1"

    assert not reused(rooms, ray_factor=1.07)  # simulated with another ray set: other curves
    assert not reused(rooms.assign(Length=[3.0, 4.5, 5.0, 6.0]))  # other rooms in its rows
    assert not reused(rooms.iloc[:2], name="same")  # not an extension
    assert reused(rooms)


def test_the_expected_specular_rays_carry_the_image_sources_late_energy():
    """benchmarks/late_decay.py follows the simulator's rays with the receiver's hits in expectation. Without
    scattering its late energy must be what the image sources' density gives, 4 pi c / V a second, times what a
    ray along ``u`` keeps after the walls it has met by then: ``(1 - a)^N`` with ``N`` counted along the
    unfolded straight line from the source (a wall of axis ``a`` every ``D_a / |u_a|`` metres)."""
    late_decay = benchmark_module("late_decay")
    from edc.acoustics import room

    features = np.zeros(93)
    features[:9] = (9.0, 6.0, 3.5, 2.0, 1.5, 1.2, 6.5, 4.0, 1.6)
    features[9:].reshape(6, 14)[:, :7] = 0.15  # one material everywhere, no scattering
    u = np.random.default_rng(0).normal(size=(2000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    energy = late_decay.ray_energy(features, n_rays=len(u), directions=u)  # (8, n) per 1 ms
    dims, source = features[:3], features[3:6]
    first = np.where(u > 0, dims - source, source)  # m along each axis to the first wall
    for start in (0.1, 0.5, 1.0):  # s: windows of 50 ms, past the image sources' order
        metres = room.SPEED_OF_SOUND * (start + np.arange(50) / late_decay.FS)  # (50,)
        along = metres[:, None, None] * np.abs(u)  # (50, rays, 3)
        walls = np.where(along >= first, np.floor((along - first) / dims) + 1, 0).sum(-1)  # (50, rays)
        air = np.exp(-np.asarray(room.AIR_ABSORPTION)[:, None, None] * metres[:, None])
        kept = 0.85 ** walls * air  # (8, 50, rays)
        expected = 4.0 * np.pi * room.SPEED_OF_SOUND / np.prod(dims) / late_decay.FS * kept.mean(-1).sum(-1)
        ours = energy[:, round(start * late_decay.FS):round(start * late_decay.FS) + 50].sum(-1)
        np.testing.assert_allclose(ours, expected, rtol=0.02)
