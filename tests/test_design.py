"""python -m edc.design: the problem's rooms, the search against brute force on a closed-form room, the
command end to end with its verification by simulation, and the errors that name their key."""
import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from edc.acoustics.simulate import SURFACES
from edc.data.materials import database
from edc.data.schema import absorption_columns, scattering_columns
from edc.errors import EdcInputError
from edc.inverse.problem import problem_of
from edc.inverse.search import Predictions, judge, refined, search

from .conftest import ROOT

BANDS = (125, 250, 500, 1000, 2000, 4000, 8000)
ROOM = {"dimensions": [8.0, 6.0, 3.0], "source": [1.0, 3.0, 1.5], "receivers": [[5.0, 2.0, 1.2], [6.5, 4.0, 1.2]],
        "surfaces": {"walls": {"material": "rough_lime_wash", "options": ["fibre_absorber_1"], "fraction": [0.5, 1.0]},
                     "floor": {"material": "linoleum_on_concrete"},
                     "ceiling": {"material": "ceiling_plasterboard",
                                 "options": ["ceiling_fibre_absorber", "ceiling_fissured_tile"],
                                 "fraction": [0.5, 1.0]}}}
TARGET = {"T20": {"bands": [500, 1000], "range": [0.45, 0.7]}, "C50": {"bands": [1000], "min": 1.0}}


class Sabine:
    """A stand-in model: Sabine's T20 per band and the C50 of a pure exponential decay, from the rows'
    absorption (what the search is given by a trained model, here in closed form)."""

    n_predicted = 0

    def predict(self, rows, validated=True, warn=False):
        self.n_predicted += len(rows)
        t20 = sabine_t20(rows)
        c50 = 10 * np.log10(np.exp(13.82 * 0.05 / t20) - 1)
        params = {f"T20_{b}": t20[:, i] for i, b in enumerate(BANDS)} | {f"C50_{b}": c50[:, i] for i, b in enumerate(BANDS)}
        return None, pd.DataFrame({"ID": rows["ID"], **params})


def sabine_t20(rows: pd.DataFrame) -> np.ndarray:
    length, width, height = (rows[k].to_numpy() for k in ("Length", "Width", "Height"))
    areas = dict(zip(SURFACES, [width * height] * 2 + [length * height] * 2 + [length * width] * 2))
    absorbed = sum(areas[s][:, None] * rows[absorption_columns(s)].to_numpy() for s in SURFACES)
    return 0.161 * (length * width * height)[:, None] / absorbed


def brute_force(room: dict, target: dict) -> tuple[float, bool]:
    """The least treated area of a design meeting ``target`` (Sabine, at either receiver: one room here),
    enumerated from the database's coefficients by hand; and whether any design meets it."""
    db = database()
    length, width, height = room["dimensions"]
    areas = dict(zip(SURFACES, [width * height] * 2 + [length * height] * 2 + [length * width] * 2))
    specs = {s: room["surfaces"].get(s, room["surfaces"].get("walls")) for s in SURFACES}
    options = {s: [(spec["material"], None, 0.0)] + [(spec["material"], t, f) for t in spec.get("options", [])
                                                      for f in spec.get("fraction", [1.0])] for s, spec in specs.items()}
    best = np.inf
    for design in itertools.product(*options.values()):
        absorbed = sum(areas[s] * ((1 - f) * np.array(db[m].absorption) + (f * np.array(db[t].absorption) if t else 0))
                       for s, (m, t, f) in zip(SURFACES, design))
        t20 = 0.161 * length * width * height / absorbed
        c50 = 10 * np.log10(np.exp(13.82 * 0.05 / t20) - 1)
        ok = all(0.45 <= t20[BANDS.index(b)] <= 0.7 for b in (500, 1000)) and c50[BANDS.index(1000)] >= 1.0
        if ok:
            best = min(best, sum(areas[s] * f for s, (_, t, f) in zip(SURFACES, design)))
    return best, np.isfinite(best)


@pytest.mark.unit
def test_a_design_row_is_the_area_weighted_mix_and_its_treated_area_the_covered_share():
    problem = problem_of(ROOM, TARGET, database())
    design = np.array([[2, 0, 0, 1, 0, 4]])  # west: fibre x1.0, north: fibre x0.5, ceiling: fissured tile x1.0
    rows = problem.rows(design)
    db = database()
    expected_west = db["fibre_absorber_1"].absorption
    expected_north = 0.5 * np.array(db["fibre_absorber_1"].absorption) + 0.5 * np.array(db["rough_lime_wash"].absorption)
    np.testing.assert_allclose(rows.loc[0, absorption_columns("west")].to_numpy(float), expected_west)
    np.testing.assert_allclose(rows.loc[1, absorption_columns("north")].to_numpy(float), expected_north)
    np.testing.assert_allclose(rows.loc[0, absorption_columns("east")].to_numpy(float), db["rough_lime_wash"].absorption)
    np.testing.assert_allclose(rows.loc[0, scattering_columns("north")].to_numpy(float), 0.1)  # both scatter 0.1
    assert len(rows) == 2 and rows[["Receiver_X", "Receiver_Y"]].values.tolist() == [[5.0, 2.0], [6.5, 4.0]]
    assert problem.treated_area(design)[0] == pytest.approx(6 * 3 * 1.0 + 8 * 3 * 0.5 + 8 * 6 * 1.0)
    assert problem.n_designs == 3 ** 4 * 5  # each wall: untreated or fibre x0.5 or x1.0; the ceiling 5; the floor fixed


@pytest.mark.unit
def test_violation_and_margin_are_in_just_noticeable_differences():
    problem = problem_of(ROOM, {"T20": {"bands": [500], "range": [0.5, 0.6]}, "C50": {"bands": [500], "min": 0.0}},
                         database())
    values = np.array([[[0.55, 2.0]], [[0.66, -0.5]], [[np.nan, 1.0]]])  # (designs, 1 receiver, bounds)
    violation, margin = judge(values, problem)
    # T20 JND: 5 % of the upper bound (0.03 s); C50: 1 dB
    np.testing.assert_allclose(violation, [0.0, 0.06 / 0.03 + 0.5, 10.0])
    np.testing.assert_allclose(margin, [0.05 / 0.03, -0.06 / 0.03, -10.0])
    # a safety of 2 JND: the first design clears T20 by only 1.67 JND and violates by what it lacks
    np.testing.assert_allclose(judge(values, problem, safety=2.0)[0], [2.0 - 0.05 / 0.03, 4.0 + 2.5, 12.0 + 1.0])


@pytest.mark.unit
def test_the_search_finds_the_least_treated_area_that_brute_force_finds():
    """On a closed-form room (Sabine), exhaustive search and the beam search (forced by a small budget)
    return a design that meets the target with the least treated area of all 405 designs."""
    least, exists = brute_force(ROOM, TARGET)
    assert exists
    problem = problem_of(ROOM, TARGET, database())
    exhaustive = search(Predictions(Sabine(), problem), problem)
    assert exhaustive.method == "exhaustive" and exhaustive.feasible
    assert exhaustive.scores.area[0] == pytest.approx(least)
    model = Sabine()
    beam = search(Predictions(model, problem), problem, beam_width=8, max_rows=500)
    assert beam.method == "beam" and model.n_predicted <= 500
    assert beam.feasible and beam.scores.area[0] == pytest.approx(least)


@pytest.mark.unit
def test_a_model_that_errs_is_corrected_by_the_simulation_of_its_choice():
    """The model is Sabine, the 'simulator' Sabine's T20 x 1.15 (a model error of 15 %, 3 JND): the first
    design misses in simulation; the search corrected by that miss finds one that meets."""
    problem = problem_of(ROOM, {"T20": {"bands": [500, 1000], "range": [0.5, 0.6]}}, database())

    def simulate(design):
        _, params = Sabine().predict(problem.rows(design[None]))
        t20 = params.filter(like="T20").to_numpy() * 1.15
        params[params.filter(like="T20").columns] = t20
        params[params.filter(like="C50").columns] = 10 * np.log10(np.exp(13.82 * 0.05 / t20) - 1)
        return params

    history = refined(Predictions(Sabine(), problem), problem, simulate, attempts=3)
    assert not history[0]["met"] and history[-1]["met"] and len(history) <= 3
    values = history[-1]["simulated"][[b.column for b in problem.target.bounds]].to_numpy()
    assert judge(values[None], problem)[0][0] == 0


@pytest.mark.unit
def test_centre_prefers_the_middle_of_the_range():
    problem = problem_of(ROOM, {"T20": {"bands": [500, 1000], "range": [0.45, 0.7]}, "objective": "centre"}, database())
    best = search(Predictions(Sabine(), problem), problem)
    t20 = best.scores.values[0]
    others = best.scores.values[1:]
    distance = lambda v: np.abs(v - 0.575).max()
    assert distance(t20) <= min(distance(v) for v in others) + 0.03  # within the JND unit of the best


@pytest.mark.unit
@pytest.mark.parametrize("change, key", [
    (lambda r, t: r["surfaces"]["ceiling"].update(options=["ceiling_fiber_absorber"]), "room.surfaces.ceiling.options[0]"),
    (lambda r, t: r["surfaces"]["ceiling"].update(options=[]), "room.surfaces.ceiling.options"),
    (lambda r, t: t["T20"].update(range=[0.8, 0.5]), "target.T20"),
    (lambda r, t: t["T20"].update(bands=[500, 16000]), "target.T20.bands"),
    (lambda r, t: r["receivers"].append([9.0, 2.0, 1.2]), "room.receivers[2]"),
    (lambda r, t: r["surfaces"].pop("floor"), "room.surfaces.floor"),
])
def test_bad_input_names_its_key(change, key):
    room, target = json.loads(json.dumps(ROOM)), json.loads(json.dumps(TARGET))
    change(room, target)
    with pytest.raises(EdcInputError, match=rf"^{key.replace('[', '.').replace(']', '.')}"):
        problem_of(room, target, database())


@pytest.mark.unit
def test_a_broadband_model_cannot_take_a_band_target():
    with pytest.raises(EdcInputError, match="broadband curve only"):
        problem_of(ROOM, TARGET, database(), bands_known=False)


class SabineCurves(torch.nn.Module):
    """A differentiable stand-in model: every band decays exponentially at Sabine's T20 of its absorption."""

    fs = 1000.0

    def __init__(self):
        super().__init__()
        self.target_transform = type("Identity", (), {"decode": staticmethod(lambda x: x)})()
        self.t = torch.arange(2000) / self.fs

    def forward(self, raw):
        from edc.data.schema import LAYOUTS

        columns = LAYOUTS["surfaces"]
        length, width, height = raw[:, 0], raw[:, 1], raw[:, 2]
        areas = dict(zip(SURFACES, [width * height] * 2 + [length * height] * 2 + [length * width] * 2))
        absorbed = sum(areas[s][:, None] * raw[:, [columns.index(c) for c in absorption_columns(s)]] for s in SURFACES)
        t20 = 0.161 * (length * width * height)[:, None] / absorbed  # (b, 7)
        bands = torch.exp(-13.8155 * self.t / t20[..., None])
        return torch.cat([bands[:, :1], bands], 1)


@pytest.mark.unit
def test_the_needed_absorption_brings_a_closed_form_room_into_the_target():
    """Gradients through a closed-form model (Sabine): the coefficients found give, by Sabine's formula
    computed here, T20 inside the range with the safety, in every bounded band."""
    from edc.inverse.continuous import needed_absorption

    target = {"T20": {"bands": [250, 500, 1000, 2000], "range": [0.5, 0.6]}}
    problem = problem_of(ROOM, target, database())
    found = needed_absorption(SabineCurves(), problem, safety=1.0, steps=150)
    t20 = sabine_t20(found["rows"])[0]
    for band in (250, 500, 1000, 2000):
        assert 0.5 + 0.03 - 1e-3 <= t20[BANDS.index(band)] <= 0.6 - 0.03 + 1e-3, (band, t20)
    assert set(found["absorption"]) == {"west", "east", "south", "north", "ceiling"}  # the floor is fixed
    assert all(0.01 <= a <= 1.0 for values in found["absorption"].values() for a in values)


def _design(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "edc.design", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.integration
def test_design_writes_its_report_and_verifies_the_design_by_simulation(surfaces_run, tmp_path):
    """The command on a surfaces band model: design.json's room row simulates (pyroomacoustics directly, seed
    0) to its reported parameters, and ``met`` is the simulation against the target, never the prediction."""
    import pyroomacoustics as pra

    from edc.acoustics import energy_decay_curve
    from edc.acoustics.iso3382 import parameter_columns

    (tmp_path / "room.yaml").write_text(json.dumps({**ROOM, "receivers": ROOM["receivers"][:1]}))
    (tmp_path / "target.yaml").write_text(json.dumps(TARGET))
    ckpt = surfaces_run / "run" / "checkpoints" / "best.ckpt"
    run = _design(f"ckpt_path={ckpt}", f"room_file={tmp_path / 'room.yaml'}", f"target_file={tmp_path / 'target.yaml'}",
                  f"hydra.run.dir={tmp_path / 'run'}", "workers=1", "attempts=1")
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "design.json").read_text())
    assert (tmp_path / "run" / "design.png").stat().st_size > 10_000
    assert report["target"] == {"T20_500": [0.45, 0.7], "T20_1000": [0.45, 0.7], "C50_1000": [1.0, None]}

    row = report["room_row"]
    materials = {s: pra.Material(energy_absorption={"coeffs": [row[c] for c in absorption_columns(s)], "center_freqs": list(BANDS)},
                                 scattering={"coeffs": [row[c] for c in scattering_columns(s)], "center_freqs": list(BANDS)})
                 for s in SURFACES}
    pra.random.seed(0)
    room = pra.ShoeBox([row["Length"], row["Width"], row["Height"]], fs=48000, materials=materials, max_order=3,
                       air_absorption=True, ray_tracing=True)
    room.add_source([row["Source_X"], row["Source_Y"], row["Source_Z"]])
    room.add_microphone([row["Receiver_X"], row["Receiver_Y"], row["Receiver_Z"]])
    room.compute_rir()
    h = np.asarray(room.rir[0][0], float)
    curves = np.concatenate([energy_decay_curve(h, 48000, 2.0)[None], energy_decay_curve(h, 48000, 2.0, octave_bands=True)])
    simulated = parameter_columns(curves[None, :, ::48], 1000)
    for column, value in report["simulated"][0].items():
        assert value == pytest.approx(float(simulated[column][0]), abs=1e-3), column
    meets = all((low is None or report["simulated"][0][c] >= low) and (high is None or report["simulated"][0][c] <= high)
                for c, (low, high) in report["target"].items())
    assert report["met"] == meets
    assert ("met: the simulation meets" if meets else "NOT met") in (tmp_path / "run" / "design.md").read_text()


@pytest.mark.integration
def test_design_refuses_a_16_column_checkpoint_and_a_missing_file(tmp_path):
    paper = ROOT / "tests" / "fixtures" / "physics-before-layers.ckpt"
    run = _design(f"ckpt_path={paper}", f"hydra.run.dir={tmp_path / 'a'}")
    assert run.returncode == 2 and "16 columns" in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]
    run = _design(f"ckpt_path={paper}", f"room_file={tmp_path / 'none.yaml'}", f"hydra.run.dir={tmp_path / 'b'}")
    assert run.returncode == 2 and "room_file=" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists(), "a refused design leaves no run dir"
