"""The surfaces layout (a material and scattering per surface): PROTOCOL's simulation recipe, the 16-column
layout as its special case, material names, validation that names the surface and band."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyroomacoustics as pra
import pytest
import torch

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ, energy_decay_curve
from edc.acoustics.simulate import SURFACES, SimulationSettings, simulate_room
from edc.data import load_compact, read_features, validate_features
from edc.acoustics.room import reverberation_time
from edc.data.materials import DEFAULT_SCATTERING
from edc.data.sampler import RoomsRanges, eyring_times, sample_surface_rooms
from edc.data.schema import (
    FEATURES,
    SURFACE_FEATURES,
    absorption_columns,
    paper_features,
    room_of,
    scattering_columns,
    to_surfaces,
)
from edc.errors import EdcInputError

from .conftest import ROOT

BANDS = list(OCTAVE_BANDS_HZ)
GEOMETRY = dict(Length=4.0, Width=3.5, Height=2.8, Source_X=1.0, Source_Y=1.2, Source_Z=1.5,
                Receiver_X=2.9, Receiver_Y=2.4, Receiver_Z=1.2)
PAPER_ROW = {"ID": "r0", **GEOMETRY, **{f"f{k}": a for k, a in enumerate([0.3, 0.35, 0.4, 0.45, 0.5, 0.5, 0.55], 1)}}
# absorptive rooms, so that a simulation takes a fraction of a second
SETTINGS = SimulationSettings(duration=1.0)


def protocol_rir(dims, source, receiver, materials, seed):
    """PROTOCOL's recipe, written out here independently of edc: the RIR at 48 kHz."""
    pra.random.seed(seed)
    room = pra.ShoeBox(dims, fs=48000, materials=materials, max_order=3, air_absorption=True, ray_tracing=True)
    room.add_source(source)
    room.add_microphone(receiver)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def surfaces_row(seed=0):
    """A room with its own absorption and scattering on every surface."""
    rng = np.random.default_rng(seed)
    row = {"ID": f"s{seed}", **GEOMETRY}
    for surface in SURFACES:
        row.update(zip(absorption_columns(surface), np.round(rng.uniform(0.2, 0.9, 7), 3)))
        row.update(zip(scattering_columns(surface), np.round(rng.uniform(0.0, 1.0, 7), 3)))
    return row


def geometry_args(row):
    return ([row["Length"], row["Width"], row["Height"]], [row["Source_X"], row["Source_Y"], row["Source_Z"]],
            [row["Receiver_X"], row["Receiver_Y"], row["Receiver_Z"]])


@pytest.mark.integration
def test_a_16_column_row_and_its_surfaces_copy_give_protocols_curves_bit_for_bit():
    paper = validate_features(pd.DataFrame([PAPER_ROW]), "paper")
    copy = to_surfaces(paper)
    assert list(copy.columns) == ["ID"] + SURFACE_FEATURES
    one_material = pra.Material(energy_absorption={"coeffs": [PAPER_ROW[f"f{k}"] for k in range(1, 8)],
                                                   "center_freqs": BANDS})
    rir = protocol_rir(*geometry_args(PAPER_ROW), one_material, seed=7)
    expected = energy_decay_curve(rir, 48000, SETTINGS.duration)[::48].astype(np.float32)
    for table in (paper, copy):
        np.testing.assert_array_equal(simulate_room(room_of(table.iloc[0]), 7, SETTINGS)["edc"], expected)


@pytest.mark.integration
def test_a_surfaces_row_follows_protocols_recipe_and_its_scattering_counts():
    row = surfaces_row()
    materials = {s: pra.Material(energy_absorption={"coeffs": [row[c] for c in absorption_columns(s)],
                                                    "center_freqs": BANDS},
                                 scattering={"coeffs": [row[c] for c in scattering_columns(s)], "center_freqs": BANDS})
                 for s in SURFACES}
    rir = protocol_rir(*geometry_args(row), materials, seed=3)
    ours = simulate_room(room_of(validate_features(pd.DataFrame([row]), "s").iloc[0]), 3, SETTINGS)
    np.testing.assert_array_equal(ours["edc"], energy_decay_curve(rir, 48000, SETTINGS.duration)[::48].astype(np.float32))
    np.testing.assert_array_equal(ours["band_edcs"],
                                  energy_decay_curve(rir, 48000, SETTINGS.duration, octave_bands=True)[:, ::48].astype(np.float32))
    specular = {**row, **{c: 0.0 for c in validate_features(pd.DataFrame([row]), "s").filter(regex="_s")}}
    plain = simulate_room(room_of(validate_features(pd.DataFrame([specular]), "s").iloc[0]), 3, SETTINGS)
    assert np.abs(plain["edc"] - ours["edc"]).max() > 1e-3


def database_entry(name):
    """pyroomacoustics' own entry (the oracle for the filled values)."""
    for materials in pra.materials_data["absorption"].values():
        if name in materials:
            return materials[name]["coeffs"]
    raise KeyError(name)


@pytest.mark.unit
def test_names_fill_every_column_as_documented():
    row = {"ID": "named", **GEOMETRY, "walls_material": "brickwork", "north_material": "glass_3mm",
           "floor_material": "linoleum_on_concrete", "ceiling_material": "ceiling_fissured_tile",
           "floor_a500": 0.5, "floor_s1000": 0.7}
    room = validate_features(pd.DataFrame([row]), "named.csv").iloc[0]
    assert list(room.index) == ["ID"] + SURFACE_FEATURES
    for surface, name in [("west", "brickwork"), ("south", "brickwork"), ("north", "glass_3mm")]:
        assert room[absorption_columns(surface)].tolist() == database_entry(name)  # 7 values as they are
    lino = database_entry("linoleum_on_concrete")
    assert len(lino) == 6  # no 8 kHz value: the 4 kHz one repeats, and a number given beside the name wins
    assert room[absorption_columns("floor")].tolist() == [*lino[:2], 0.5, *lino[3:], lino[-1]]
    assert room[scattering_columns("floor")].tolist() == [DEFAULT_SCATTERING] * 3 + [0.7] + [DEFAULT_SCATTERING] * 3
    assert (room[scattering_columns("west")] == DEFAULT_SCATTERING).all()


@pytest.mark.unit
def test_a_materials_file_adds_and_replaces_names(tmp_path):
    file = tmp_path / "mine.csv"
    pd.DataFrame([{"material": "brickwork", **{f"a{b}": 0.2 for b in BANDS}, **{f"s{b}": 0.6 for b in BANDS}},
                  {"material": "studio_panel", **{f"a{b}": 0.9 for b in BANDS}, **{f"s{b}": 0.3 for b in BANDS}}]
                 ).to_csv(file, index=False)
    row = {"ID": "r", **GEOMETRY, "walls_material": "studio_panel", "floor_material": "brickwork",
           "ceiling_material": "glass_3mm"}
    room = validate_features(pd.DataFrame([row]), "r.csv", materials_file=file).iloc[0]
    assert (room[absorption_columns("east")] == 0.9).all() and (room[scattering_columns("east")] == 0.3).all()
    assert (room[absorption_columns("floor")] == 0.2).all() and (room[scattering_columns("floor")] == 0.6).all()
    with pytest.raises(EdcInputError, match="unknown material 'studio_panel'"):
        validate_features(pd.DataFrame([row]), "r.csv")


BAD_ROWS = {
    "scattering above 1": ({"north_s250": 1.5}, r"north scattering outside \[0, 1\].*north_s250.*250 Hz.*line 2"),
    "absorption 0": ({"ceiling_a8000": 0.0}, r"ceiling absorption outside \(0, 1\].*ceiling_a8000.*8000 Hz"),
    "misspelt name": ({"floor_material": "carpet_coton"}, r"s0 \(line 2\), floor: unknown material 'carpet_coton'.*"
                                                           r"did you mean carpet_cotton"),
    "text": ({"west_a125": "high"}, r"text in number column 'west_a125'"),
    "unknown column": ({"west_a16000": 0.3}, r"unexpected columns \['west_a16000'\]"),
}


@pytest.mark.unit
@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_surface_values_name_the_surface_and_band(case):
    change, message = BAD_ROWS[case]
    with pytest.raises(EdcInputError, match=message):
        validate_features(pd.DataFrame([{**surfaces_row(), **change}]), "rooms.csv")


@pytest.mark.unit
def test_a_surface_without_numbers_or_a_name_is_named():
    row = {k: v for k, v in surfaces_row().items() if not k.startswith("ceiling")}
    with pytest.raises(EdcInputError, match=r"ceiling: numbers missing and no material named.*ceiling_material"):
        validate_features(pd.DataFrame([row]), "rooms.csv")


@pytest.mark.unit
def test_models_read_a_uniform_surfaces_room_as_16_columns_and_refuse_others():
    paper = validate_features(pd.DataFrame([PAPER_ROW]), "paper")
    back = paper_features(to_surfaces(paper), "copy")
    pd.testing.assert_frame_equal(back[["ID"] + FEATURES], paper)
    with pytest.raises(EdcInputError, match="material per surface or scattering"):
        paper_features(validate_features(pd.DataFrame([surfaces_row()]), "s"), "s.csv")


@pytest.mark.unit
def test_materials_command_lists_the_database_and_a_users_file(tmp_path):
    file = tmp_path / "mine.csv"
    pd.DataFrame([{"material": "my_carpet", **{f"a{b}": 0.25 for b in BANDS}}]).to_csv(file, index=False)
    run = subprocess.run([sys.executable, "-m", "edc.materials", "--file", str(file), "--search", "carpet"],
                         capture_output=True, text=True, cwd=ROOT, env={"COLUMNS": "250", "PATH": ""}, timeout=60)
    assert run.returncode == 0, run.stderr
    cotton = next(line for line in run.stdout.splitlines() if "carpet_cotton" in line)
    assert [f"{a:.2f}" for a in database_entry("carpet_cotton")] == cotton.replace("│", " ").split()[3:10]
    assert "my_carpet" in run.stdout and "hard_surface" not in run.stdout
    bad = subprocess.run([sys.executable, "-m", "edc.materials", "--file", str(tmp_path / "none.csv")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "materials file not found" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_generate_simulates_named_materials_into_a_numeric_surfaces_dataset(tmp_path):
    rooms = pd.DataFrame([{**surfaces_row(1), "seed": 11},
                          {"ID": "named", **GEOMETRY, "walls_material": "panel_fabric_covered_6pcf",
                           "floor_material": "carpet_cotton", "ceiling_material": "ceiling_fibre_absorber", "seed": 12}])
    rooms.to_csv(tmp_path / "rooms.csv", index=False)
    run = subprocess.run([sys.executable, "-m", "edc.generate", f"features_csv={tmp_path / 'rooms.csv'}",
                          f"out_dir={tmp_path / 'out'}", "workers=1", "simulation.duration=1.0",
                          f"hydra.run.dir={tmp_path / 'h'}"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    data = load_compact(tmp_path / "out")
    assert list(data.features.columns) == ["ID"] + SURFACE_FEATURES + ["seed"]
    assert data.band_edcs.shape == (2, 7, 1000)
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["layout"] == "surfaces"
    named = data.features.iloc[1]
    assert named[absorption_columns("floor")].tolist() == database_entry("carpet_cotton")
    expected = simulate_room(room_of(data.features.iloc[0]), 11, SETTINGS)
    np.testing.assert_array_equal(data.band_edcs[0], expected["band_edcs"])


@pytest.mark.unit
def test_the_example_row_of_the_docs_reads(tmp_path):
    page = (ROOT / "docs" / "data.md").read_text()
    example = page.split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "seminar.csv").write_text(example)
    room = read_features(tmp_path / "seminar.csv").iloc[0]
    assert room["floor_a125"] == 0.04 and room["floor_a250"] == database_entry("linoleum_on_concrete")[1]
    assert room[absorption_columns("north")].tolist() == database_entry("rough_lime_wash")


@pytest.mark.unit
def test_the_rooms_sampler_keeps_its_ranges():
    ranges = RoomsRanges()
    rooms = validate_features(sample_surface_rooms(300, seed=5), "sampled")  # every rule of the layout holds
    dims = rooms[["Length", "Width", "Height"]].to_numpy()
    volume = dims.prod(1)
    assert (volume >= ranges.volume[0] - 0.1).all() and (volume <= ranges.volume[1] + 0.1).all()
    for k, (low, high) in enumerate((ranges.length, ranges.width, ranges.height)):
        assert dims[:, k].min() >= low - 1e-3 and dims[:, k].max() <= high + 1e-3
    for who in ("Source", "Receiver"):
        pos = rooms[[f"{who}_X", f"{who}_Y", f"{who}_Z"]].to_numpy()
        assert (pos >= ranges.wall_margin - 1e-3).all() and (dims - pos >= ranges.wall_margin - 1e-3).all()
        assert pos[:, 2].min() >= ranges.heights[0] - 1e-3 and pos[:, 2].max() <= ranges.heights[1] + 1e-3
    distance = np.linalg.norm(rooms[["Source_X", "Source_Y", "Source_Z"]].to_numpy()
                              - rooms[["Receiver_X", "Receiver_Y", "Receiver_Z"]].to_numpy(), axis=1)
    assert distance.min() >= ranges.min_distance - 2e-3
    scattering = rooms.filter(regex="_s\\d").to_numpy().reshape(len(rooms), 6, 7)
    assert (np.diff(scattering, axis=-1) >= -1e-3).all()  # rising with frequency
    assert volume.min() < 60 and volume.max() > 450  # offices to small halls
    room_scattering = (scattering * surface_areas(dims)[:, :, None]).sum(1) / surface_areas(dims).sum(1)[:, None]
    at_2k = room_scattering[:, 4]  # bare rooms (data sheets: about 0.1) as well as furnished ones
    assert (at_2k < 0.1).mean() > 0.15 and (at_2k > 0.4).mean() > 0.1
    assert (scattering.max(axis=(1, 2)) <= ranges.scattering_level[1] + 1e-3).all()
    pd.testing.assert_frame_equal(sample_surface_rooms(3, seed=5), sample_surface_rooms(3, seed=5))
    sets = sample_surface_rooms(20, seed=5, ranges=RoomsRanges(material_sets=10))
    geometry = sets[list(GEOMETRY)].round(6)
    assert len(geometry.drop_duplicates()) == 2 and len(sets[absorption_columns("west")].drop_duplicates()) == 20


def surface_areas(dims: np.ndarray) -> np.ndarray:
    """``(n, 6)`` m^2: west, east, south, north, floor, ceiling of ``(n, 3)`` rooms L x W x H."""
    length, width, height = dims.T
    return np.stack([width * height, width * height, length * height, length * height, length * width,
                     length * width], axis=1)


@pytest.mark.unit
def test_eyring_of_a_uniform_surfaces_room_is_the_physics_models():
    rooms = validate_features(pd.DataFrame([PAPER_ROW]), "p")
    absorption = np.tile(rooms[[f"f{k}" for k in range(1, 8)]].to_numpy(), (6, 1))
    ours = eyring_times(rooms[["Length", "Width", "Height"]].to_numpy()[0], absorption)
    theirs = reverberation_time(torch.as_tensor(rooms[FEATURES].to_numpy()), "eyring")[0, :7].numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.unit
def test_the_sampler_caps_eyring_time_by_redrawing_materials():
    rooms = sample_surface_rooms(100, seed=2, ranges=RoomsRanges(max_t=1.0, volume=(300.0, 600.0)))
    for _, room in rooms.iterrows():
        absorption = room[[c for s in SURFACES for c in absorption_columns(s)]].to_numpy(float).reshape(6, 7)
        assert eyring_times(room[["Length", "Width", "Height"]].to_numpy(float), absorption).max() <= 1.0 + 1e-2


@pytest.mark.integration
@pytest.mark.slow
def test_generate_draws_realistic_rooms_and_keeps_their_whole_decay(tmp_path):
    run = subprocess.run([sys.executable, "-m", "edc.generate", "sampler=rooms", "n_rooms=2", "sampler.volume=[20,80]",
                          f"out_dir={tmp_path / 'out'}", "workers=1", f"hydra.run.dir={tmp_path / 'h'}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["layout"] == "surfaces" and meta["duration_s"] == 5.0  # the sampler's config sets the duration
    assert set(meta["short_curves"].values()) == {0}  # every band reaches -35 dB
    data = load_compact(tmp_path / "out")
    assert list(data.features.columns) == ["ID"] + SURFACE_FEATURES and data.band_edcs.shape == (2, 7, 5000)
    assert (data.band_edcs[:, :, -1] <= 10 ** -3.5).all()


@pytest.mark.unit
def test_the_physics_model_reads_one_material_everywhere_as_the_papers_model_does(demo, monkeypatch):
    from edc.models.physics import PhysicsEDC

    from .test_physics import with_the_surfaces_late_decay

    with_the_surfaces_late_decay(monkeypatch)  # the late decays' quadratures: test_physics.py

    paper = demo.features.iloc[:24]
    raw16 = torch.as_tensor(paper[FEATURES].to_numpy(np.float32))
    raw93 = torch.as_tensor(to_surfaces(paper)[SURFACE_FEATURES].to_numpy(np.float32))
    outputs = []
    for raw in (raw16, raw93):  # untrained: the corrections start at 0, so both give their physics alone
        torch.manual_seed(0)
        model = PhysicsEDC(raw.shape[1], 2000, 1000.0, n_curves=8, memory_size=0)
        model.fit_features(raw)
        with torch.no_grad():
            outputs.append(model(None, raw))
    assert outputs[1].shape == outputs[0].shape == (24, 8, 2000)
    level = outputs[0] > -60.0  # dB, where the curves carry the parameters
    assert (outputs[1] - outputs[0])[level].abs().max() < 0.05


@pytest.mark.integration
def test_a_surfaces_model_predicts_rooms_given_by_material_names_or_16_columns(surfaces_run, tmp_path):
    ckpt = surfaces_run / "run" / "checkpoints" / "best.ckpt"
    assert torch.load(ckpt, weights_only=True)["edc_config"]["feature_layout"] == "surfaces"
    rooms = pd.DataFrame([{"ID": "named", **GEOMETRY, "walls_material": "plasterboard",
                           "floor_material": "carpet_cotton", "ceiling_material": "ceiling_fissured_tile"}])
    rooms.to_csv(tmp_path / "named.csv", index=False)
    for args, out in ((f"features_csv={tmp_path / 'named.csv'}", "named.csv"),
                      ("room=[4,3.5,2.8,1,1.2,1.5,2.9,2.4,1.2,.3,.35,.4,.45,.5,.5,.55]", "paper.csv")):
        run = subprocess.run([sys.executable, "-m", "edc.predict", f"ckpt_path={ckpt}", args, f"out={tmp_path / out}"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        params = pd.read_csv(tmp_path / out)
        assert np.isfinite(params[["T20_1000", "C50_1000"]].to_numpy()).all()
        assert np.load(tmp_path / out.replace(".csv", ".npy")).shape == (1, 8, 2000)


@pytest.mark.integration
def test_a_surfaces_checkpoint_of_other_inputs_is_refused_by_name(surfaces_run, tmp_path):
    """A checkpoint from before the inputs' order (no version) would predict other curves without complaint: it
    is refused, by one message naming the version, with a non-zero exit and no output."""
    checkpoint = torch.load(surfaces_run / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    version = [key for key in checkpoint["state_dict"] if key.endswith("surfaces_version")]
    assert len(version) == 1
    del checkpoint["state_dict"][version[0]]
    torch.save(checkpoint, tmp_path / "older.ckpt")
    run = subprocess.run([sys.executable, "-m", "edc.predict", f"ckpt_path={tmp_path / 'older.ckpt'}",
                          "room=[4,3.5,2.8,1,1.2,1.5,2.9,2.4,1.2,.3,.35,.4,.45,.5,.5,.55]", f"out={tmp_path / 'p.csv'}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "inputs and prior version 1" in run.stderr and "needs training again" in run.stderr
    assert "Missing key" not in run.stderr and not (tmp_path / "p.csv").exists()


@pytest.mark.integration
def test_evaluate_scores_a_surfaces_model_and_refuses_nothing(surfaces_run, tmp_path):
    ckpt = surfaces_run / "run" / "checkpoints" / "best.ckpt"
    run = subprocess.run([sys.executable, "-m", "edc.evaluate", f"ckpt_path={ckpt}", "data=compact",
                          f"data.path={surfaces_run / 'data'}", f"hydra.run.dir={tmp_path / 'eval'}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    trained = json.loads((surfaces_run / "run" / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["t20_1000_mae"] == pytest.approx(trained["t20_1000_mae"], rel=1e-5)


@pytest.mark.unit
def test_a_fully_absorbing_surface_leaves_every_gradient_finite():
    from edc.models.physics import PhysicsEDC

    rooms = validate_features(pd.DataFrame([surfaces_row(0), {**surfaces_row(1), **{c: 1.0 for c in
                                                               absorption_columns("ceiling")}}]), "s")
    raw = torch.as_tensor(rooms[SURFACE_FEATURES].to_numpy(np.float32))
    model = PhysicsEDC(93, 500, 1000.0, n_curves=8)
    model.fit_features(raw)
    for parameter in model.parameters():  # the corrections start at 0; give them some weight
        torch.nn.init.normal_(parameter, std=0.01)
    model(None, raw).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.unit
def test_the_physics_model_sees_each_surfaces_own_coefficients_and_area():
    """Each surface's absorption, scattering and share of the area, the pairs of opposite surfaces from the
    largest (floor and ceiling, 4 x 3.5 m) to the smallest (west and east), the more absorbing one first."""
    from edc.models.physics import surface_band_inputs

    row = surfaces_row(3)
    rooms = validate_features(pd.DataFrame([row]), "s")
    inputs = surface_band_inputs(torch.as_tensor(rooms[SURFACE_FEATURES].to_numpy()))[0]  # (8 bands, 20)
    length, width, height = GEOMETRY["Length"], GEOMETRY["Width"], GEOMETRY["Height"]
    area = dict(zip(SURFACES, [width * height] * 2 + [length * height] * 2 + [length * width] * 2))
    a = {s: np.array([row[f"{s}_a{hz}"] for hz in BANDS]) for s in SURFACES}
    a = {s: np.append(x, np.clip(2 * x[-1] - x[-2], 0, 1)) for s, x in a.items()}  # pyroomacoustics' 16 kHz band
    order = []
    for lower, upper in (("floor", "ceiling"), ("south", "north"), ("west", "east")):
        order += [lower, upper] if a[lower].mean() >= a[upper].mean() else [upper, lower]
    assert order != list(SURFACES)
    for band, hz in enumerate(BANDS):  # 125 Hz to 8 kHz, then the 16 kHz band pyroomacoustics extrapolates
        np.testing.assert_allclose(inputs[band, 2:8], [row[f"{s}_a{hz}"] for s in order])
        np.testing.assert_allclose(inputs[band, 8:14], [row[f"{s}_s{hz}"] for s in order])
    np.testing.assert_allclose(inputs[7, 2:8], [a[s][-1] for s in order])
    total = sum(area.values())
    np.testing.assert_allclose(inputs[:, 14:], np.broadcast_to([area[s] / total for s in order], (8, 6)))
