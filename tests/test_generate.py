"""The generator: the paper's EDCs bit for bit, resume after kill -9, corrupt chunks, sampler."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from edc.acoustics import parameters
from edc.acoustics.simulate import SimulationSettings, build_shoebox, simulate_room
from edc.data import FEATURES, load_compact, validate_features
from edc.data.sampler import SamplerRanges, sample_rooms
from edc.data.schema import room_of

from .conftest import PAPER6000, ROOT, needs_paper6000

pytestmark = pytest.mark.integration

FAST_ROWS = [30, 60, 90, 120]  # absorptive paper rooms: ~0.1 s each


def generate(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "edc.generate", *args], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@needs_paper6000
def test_regenerated_paper_rows_are_bit_identical(tmp_path):
    """Rows of the paper's set simulate to ../shared's curves bit for bit; row 420 came out 1 ulp off on a CPU
    with AVX-512 until numpy's OpenBLAS was pinned to its AVX2 kernels (edc.cli.pin_blas_kernels)."""
    rows = FAST_ROWS + [0, 420]
    features = pd.read_csv(PAPER6000 / "features.csv").iloc[rows]
    features.assign(seed=features.index).to_csv(tmp_path / "rooms.csv", index=False)
    generate(f"features_csv={tmp_path / 'rooms.csv'}", f"out_dir={tmp_path / 'out'}", "workers=2",
             f"hydra.run.dir={tmp_path / 'hydra'}")
    ours = load_compact(tmp_path / "out")
    reference = np.load(PAPER6000 / "edcs.npy", mmap_mode="r")[rows]
    assert ours.edcs.dtype == np.float32
    np.testing.assert_array_equal(ours.edcs, reference)


def chunk_files(out):
    return sorted((out / ".work" / "chunks").glob("chunk-*.npz"))


def test_killed_run_resumes_without_recomputing_and_redoes_corrupt_chunks(tmp_path):
    out = tmp_path / "out"
    args = ["n_rooms=6", "chunk_size=2", "workers=1", f"out_dir={out}", f"hydra.run.dir={tmp_path / 'h'}",
            "sampler.absorption=[0.5,0.85]"]  # absorptive rooms simulate fast
    process = subprocess.Popen([sys.executable, "-m", "edc.generate", *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not chunk_files(out) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first = chunk_files(out)
    assert first, "no chunk was written before the kill"
    assert not (out / "edcs.npy").exists(), "no half-written dataset"
    stamps = {p.name: p.stat().st_mtime_ns for p in first}

    result = generate(*args)
    assert f"{len(first)} already done" in result.stdout + result.stderr
    for p in first:
        assert p.stat().st_mtime_ns == stamps[p.name], f"{p.name} was recomputed"
    data = load_compact(out)
    assert len(data) == 6 and len(chunk_files(out)) == 3
    kept = np.load(first[0])
    np.testing.assert_array_equal(data.edcs[kept["rows"]], kept["edcs"])

    chunk_files(out)[1].write_bytes(b"corrupted")
    (out / "edcs.npy").unlink()
    result = generate(*args)
    assert "corrupt" in result.stdout + result.stderr
    np.testing.assert_array_equal(load_compact(out).edcs, data.edcs)  # same seeds: same curves


def test_generate_writes_the_reference_parameters_of_its_curves(tmp_path):
    """params.csv beside the curves: the predict columns, equal to pyrato's values of the stored curves."""
    from .test_acoustics import pyrato_reference

    out = tmp_path / "out"
    generate("n_rooms=3", "workers=1", f"out_dir={out}", f"hydra.run.dir={tmp_path / 'h'}", "sampler.absorption=[0.5,0.85]")
    data, params = load_compact(out), pd.read_csv(out / "params.csv", dtype={"ID": str})
    assert list(params.ID) == list(data.ids) and {"EDT", "T20", "C50", "T20_1000", "D50_8000", "T20_mid"} <= set(params)
    for column, curves in (("", data.edcs), ("_1000", data.band_edcs[:, 3]), ("_125", data.band_edcs[:, 0])):
        reference = pyrato_reference(curves.astype(np.float64), data.edc_fs)
        for name in ("edt", "t20", "c50"):
            np.testing.assert_allclose(params[name.upper() + column], np.ravel(reference[name]), rtol=1e-6,
                                       err_msg=name + column)


def test_keep_rir_writes_each_rooms_rir_under_its_id(tmp_path):
    """simulation.keep_rir=true: rirs.npz holds the simulated RIRs by room ID; each one's curves, computed
    again from it, are the stored curves (the oracle: the curve definition of docs/data.md)."""
    from edc.acoustics import energy_decay_curve

    out = tmp_path / "out"
    generate("n_rooms=2", "workers=1", f"out_dir={out}", f"hydra.run.dir={tmp_path / 'h'}",
             "sampler.absorption=[0.5,0.85]", "simulation.keep_rir=true")
    data = load_compact(out)
    assert "rirs.npz" in json.loads((out / "meta.json").read_text())["rirs"]
    with np.load(out / "rirs.npz") as rirs:
        assert sorted(rirs.files) == sorted(data.ids)
        for i, room_id in enumerate(data.ids):
            rir = rirs[room_id]
            assert rir.dtype == np.float32 and rir.ndim == 1
            np.testing.assert_allclose(energy_decay_curve(rir.astype(np.float64), 48000, 2.0)[::48], data.edcs[i],
                                       rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(energy_decay_curve(rir.astype(np.float64), 48000, 2.0, octave_bands=True)[:, ::48],
                                       data.band_edcs[i], rtol=1e-4, atol=1e-7)


def test_shards_through_a_launcher_then_merge(tmp_path):
    out = tmp_path / "out"
    common = ["n_rooms=4", "chunk_size=1", "workers=1", f"out_dir={out}", "sampler.absorption=[0.5,0.85]"]
    generate("-m", *common, "shard=0,1", "n_shards=2", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert list(pd.read_csv(tmp_path / "sweep" / "summary.csv").status) == ["completed"] * 2
    assert not (out / "edcs.npy").exists()
    generate(*common, "merge=true", f"hydra.run.dir={tmp_path / 'm'}")
    assert len(load_compact(out)) == 4


def test_merge_with_missing_shards_says_what_to_do(tmp_path):
    out = tmp_path / "out"
    common = ["n_rooms=4", "chunk_size=1", "workers=1", f"out_dir={out}", "sampler.absorption=[0.5,0.85]"]
    generate(*common, "shard=0", "n_shards=2", f"hydra.run.dir={tmp_path / '0'}")
    result = generate(*common, "merge=true", f"hydra.run.dir={tmp_path / 'm'}", check=False)
    assert result.returncode == 2
    assert "2 of 4 chunks are missing" in result.stderr and "Traceback" not in result.stderr


def test_ray_factor_traces_more_rays_of_the_same_room():
    room = room_of(sample_rooms(1, seed=3, ranges=SamplerRanges(absorption=(0.5, 0.85))).iloc[0])
    more = SimulationSettings(ray_factor=4.0)
    assert build_shoebox(room, more).rt_args["n_rays"] == 4 * build_shoebox(room).rt_args["n_rays"]
    curves = np.stack([simulate_room(room, 0)["edc"], simulate_room(room, 0, more)["edc"]]).astype(np.float64)
    assert np.abs(curves[0] - curves[1]).max() > 1e-4, "the ray count did not reach the tracer"
    t20 = parameters(curves, 1000, names=("t20",))["t20"]
    assert abs(t20[1] - t20[0]) < 0.05 * t20[0], "the same room, only a different ray set"


def test_sampler_draws_valid_rooms_in_the_papers_ranges():
    rooms = sample_rooms(300, seed=1)
    validate_features(rooms, "sampler")  # raises on any invalid room
    ranges = SamplerRanges()
    assert rooms.Length.between(*ranges.length).all() and rooms.Width.between(*ranges.width).all()
    assert (rooms.Source_Z == 1.5).all() and (rooms.Receiver_Z == 1.5).all()
    distance = np.linalg.norm(rooms[FEATURES[3:6]].to_numpy() - rooms[FEATURES[6:9]].to_numpy(), axis=1)
    assert distance.min() >= 1.0
    alpha = rooms[FEATURES[9:]].to_numpy()
    assert alpha.min() >= 0.01 and alpha.max() <= 0.85
    assert rooms.Length.nunique() > 250, "continuous, not on a grid"
    pd.testing.assert_frame_equal(rooms, sample_rooms(300, seed=1))
