"""Bad input through the real command line, table-driven: exit 2, one message naming the place
and the fix, no traceback (unless HYDRA_FULL_ERROR=1), nothing half-written left behind."""
import contextlib
import io
import os
import shutil
import subprocess
import sys
import types
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch

from edc.cli.entry import entrypoint
from edc.cli.generate import main as generate_main
from edc.cli.predict import main as predict_main
from edc.cli.train import main as train_main
from edc.io import read_json

from .conftest import ROOT

pytestmark = pytest.mark.integration


def features_change(column, value, row=3):
    def change(d):
        f = pd.read_csv(d / "features.csv")
        f[column] = f[column].astype(object)
        f.loc[row, column] = value
        f.to_csv(d / "features.csv", index=False)
    return change


def csv_text(text):
    return lambda d: (d / "features.csv").write_text(text)


def edcs_change(fn):
    def change(d):
        np.save(d / "edcs.npy", fn(np.load(d / "edcs.npy")))
    return change


def meta_text(text):
    def change(d):
        if text is None:
            (d / "meta.json").unlink()
        else:
            (d / "meta.json").write_text(text)
    return change


def nan_at(e):
    e = e.copy()
    e[2, 9] = np.nan
    return e


def rising(e):
    e = e.copy()
    e[4, 300] = e[4, 299] * 2
    return e


HEADER = "ID,Length,Width,Height,Source_X,Source_Y,Source_Z,Receiver_X,Receiver_Y,Receiver_Z,f1,f2,f3,f4,f5,f6,f7\n"

# name: (change to a copy of the dataset, extra CLI args, expected text)
DATA_CASES = {
    "missing column": (lambda d: pd.read_csv(d / "features.csv").drop(columns="f4").to_csv(d / "features.csv", index=False), "missing columns ['f4']"),
    "extra column": (lambda d: pd.read_csv(d / "features.csv").assign(x=1).to_csv(d / "features.csv", index=False), "unexpected columns ['x']"),
    "NaN feature": (features_change("Width", np.nan), "NaN"),
    "text in a number": (features_change("f2", "high"), "text in number column 'f2'"),
    "negative dimension": (features_change("Height", -2.5), "non-positive room dimensions"),
    "zero dimension": (features_change("Length", 0.0), "non-positive room dimensions"),
    "source outside": (features_change("Source_Y", 40.0), "source outside the room"),
    "receiver outside": (features_change("Receiver_X", -1.0), "receiver outside the room"),
    "source on receiver": (lambda d: features_change("Receiver_X", pd.read_csv(d / "features.csv").Source_X[3])(d) or
                           features_change("Receiver_Y", pd.read_csv(d / "features.csv").Source_Y[3])(d), "same point"),
    "absorption 0": (features_change("f1", 0.0), "absorption coefficients"),
    "absorption above 1": (features_change("f7", 1.5), "absorption coefficients"),
    "duplicate IDs": (features_change("ID", "room_00000"), "duplicate IDs"),
    "empty file": (csv_text(""), "the file is empty"),
    "header only": (csv_text(HEADER), "no rooms follow"),
    "NaN curve": (edcs_change(nan_at), "NaN or infinite"),
    "increasing curve": (edcs_change(rising), "increasing curve"),
    "dB instead of linear": (edcs_change(lambda e: 10 * np.log10(np.clip(e, 1e-12, None))), "dB instead of linear"),
    "wrong dtype": (edcs_change(lambda e: (e * 1000).astype(np.int32)), "dtype int32"),
    "wrong shape": (edcs_change(lambda e: e[:, None, :]), "expected a (n_rooms, n_samples) array"),
    "fewer curves than rooms": (edcs_change(lambda e: e[:50]), "50 curves but 60 rooms"),
    "meta.json missing": (meta_text(None), "meta.json: missing"),
    "meta.json without edc_fs": (meta_text('{"made_by": "hand"}'), "'edc_fs'"),
    "unreadable edcs": (lambda d: (d / "edcs.npy").write_bytes(b"garbage"), "unreadable"),
}

CONFIG_CASES = {
    "unknown model": (["model=transformer"], "Could not find 'model/transformer'"),
    "unknown loss": (["loss=huber"], "Could not find 'loss/huber'"),
    "unknown weights": (["loss=weighted_edc", "weights=extreme"], "Could not find 'weights/extreme'"),
    "negative learning rate": (["model.optimizer.lr=-0.001"], "model.optimizer.lr=-0.001"),
    "batch size 0": (["data.batch_size=0"], "data.batch_size=0"),
    "negative loss weight": (["loss=weighted_edc", "loss.t20_weight=-1"], "loss.t20_weight=-1"),
    "NaN loss weight": (["loss=weighted_edc", "loss.c50_weight=nan"], "loss.c50_weight=nan"),
    "negative band weight": (["loss.band_weights.250=-1"],
                             "'250': -1, '500': 1.0, '1000': 1.0, '2000': 1.0, '4000': 1.0, '8000': 1.0}: must be a positive"),
    "negative decay weight": (["loss=log_edc", "loss.decay_weight=-1"], "loss.decay_weight=-1"),
    "aux_weight too large": (["loss=auxiliary", "loss.aux_weight=5"], "loss.aux_weight=5"),
    "aux_weight too small": (["loss=auxiliary", "loss.aux_weight=0.001"], "loss.aux_weight=0.001"),
    "dropout above 1": (["model.net.dropout=1.5"], "model.net.dropout=1.5: must be a probability"),
    "negative seed": (["seed=-1"], "seed=-1"),
    "negative gradient clipping": (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1"),
    "loss floor at 0 dB": (["loss.floor_db=0"], "loss.floor_db=0: must be a level below 0 dB"),
    "unknown scaler": (["model.feature_scaler=zscore"], "one of standard, minmax, robust, none"),
    "no quadrature nodes": (["model.net.direction_nodes=0"], "model.net.direction_nodes=0"),
    "target_fs not dividing": (["data.target_fs=3000"], "does not divide"),
    "duration longer than data": (["data.duration=3.0"], "data.duration"),
    "negative split seed": (["data.split_seed=-1"], "data.split_seed=-1"),
    "negative workers": (["data.num_workers=-1"], "data.num_workers=-1"),
    "accelerator edc does not install": (["trainer.accelerator=tpu"], "trainer.accelerator=tpu: must be one of auto"),
    "duration shorter than C80 reads": (["data.duration=0.0004"], "at least 0.1 s"),
    "grid too coarse for C50": (["data.target_fs=1"], "at least 100 Hz"),
    "checkpoint on a metric nobody logs": (["callbacks.model_checkpoint.monitor=val/nope"], "one of val/loss"),
    "missing data path": (["data=compact"], "data.path is not set"),
    "data path not there": (["data=compact", "data.path=/nonexistent/rooms"], "edc.generate"),
}


GENERATE_CASES = {
    "no rays": (["simulation.ray_factor=0"], "simulation.ray_factor=0: must be > 0"),
    "empty chunks": (["chunk_size=0"], "chunk_size=0"),
    "absorption above 1": (["sampler.absorption=[0.5,1.5]"], "sampler.absorption=[0.5, 1.5]"),
    "lengths reversed": (["sampler.length=[4,3]"], "0 < min <= max"),
    "source above the ceiling": (["sampler.position_height=3"], "sampler.position_height=3 m"),
    "margin wider than the room": (["sampler.wall_margin=3"], "lower sampler.wall_margin"),
    "scattering level of 0": (["sampler=rooms", "sampler.scattering_level=[0,1]"], "sampler.scattering_level=[0, 1]"),
}


@pytest.fixture()
def dataset_copy(tmp_path, small_compact):
    out = tmp_path / "data"
    shutil.copytree(small_compact, out)
    return out


def check(result, expected, *dirs):
    assert result.returncode == 2, result.stdout[-1000:] + result.stderr[-2000:]
    assert expected in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.count("error:") <= 1
    for d in dirs:
        assert not d.exists(), f"{d} left behind"


def train(*args, env=None):
    """``python -m edc.train ARGS``: in a subprocess when ``env`` is given, else the same entrypoint
    in-process with ``sys.argv`` set (Hydra parses and composes exactly as on the command line)."""
    if env is not None:
        return subprocess.run([sys.executable, "-m", "edc.train", *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=120, env=env)
    return in_process(train_main, "edc.train", *args)


def in_process(main, prog, *args):
    err, out = io.StringIO(), io.StringIO()
    code = 0
    with mock.patch.object(sys, "argv", [prog, *args]), contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(out), contextlib.chdir(ROOT):
        try:
            entrypoint(main)()
        except SystemExit as exit_:
            code = exit_.code
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data(case, dataset_copy, tmp_path):
    change, expected = DATA_CASES[case]
    change(dataset_copy)
    run_dir = tmp_path / "run"
    result = train("data=compact", f"data.path={dataset_copy}", f"hydra.run.dir={run_dir}")
    check(result, expected, run_dir)
    assert str(dataset_copy) in result.stderr and "Fix:" in result.stderr


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config(case, tmp_path):
    args, expected = CONFIG_CASES[case]
    run_dir = tmp_path / "run"
    check(train(*args, f"hydra.run.dir={run_dir}"), expected, run_dir)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_gpu_trainer_without_a_gpu(tmp_path):
    run_dir = tmp_path / "run"
    check(train("trainer=gpu", f"hydra.run.dir={run_dir}"), "trainer=cpu on this machine", run_dir)


@pytest.mark.parametrize("case", sorted(GENERATE_CASES))
def test_bad_generate_config(case, tmp_path):
    args, expected = GENERATE_CASES[case]
    out, hydra_dir = tmp_path / "out", tmp_path / "h"
    result = in_process(generate_main, "edc.generate", "n_rooms=2", *args, f"out_dir={out}",
                        f"hydra.run.dir={hydra_dir}")
    check(result, expected, out, hydra_dir)


def test_generate_out_dir_that_is_a_file(tmp_path):
    target = tmp_path / "rooms"
    target.write_text("not a dataset")
    result = in_process(generate_main, "edc.generate", "n_rooms=2", f"out_dir={target}", f"hydra.run.dir={tmp_path / 'h'}")
    check(result, "is a file", tmp_path / "h")
    assert target.read_text() == "not a dataset"


@pytest.fixture(scope="module")
def checkpoint(small_compact, tmp_path_factory):
    from edc.cli.train import train as train_in_process

    from .test_train import tiny

    run_dir = tmp_path_factory.mktemp("ckpt")
    train_in_process(tiny(small_compact, "model=mlp", "loss=mse"), run_dir)
    return run_dir / "checkpoints" / "best.ckpt"


@pytest.mark.parametrize("room,expected", [("[3.5,4,3]", "16 numbers"),
                                           ("[3.5,4,3,1.4,2,1.5,1,1,1.5,.2,.3,.5,.6,.6,.6,lots]", "not numbers")])
def test_bad_predict_room(checkpoint, tmp_path, room, expected):
    out = tmp_path / "pred.csv"
    result = in_process(predict_main, "edc.predict", f"ckpt_path={checkpoint}", f"room={room}", f"out={out}",
                        f"hydra.run.dir={tmp_path / 'h'}")
    check(result, expected, out, out.with_suffix(".npy"))


HAND_ROOM = "room=[3.5,4,3,1.4,2,1.5,1,1,1.5,.2,.3,.5,.6,.6,.6,.6]"


@pytest.mark.parametrize("out,extra,expected", [("x.npy", [], "must end in .csv"),
                                                ("y.png", ["plot=true"], "must end in .csv"),
                                                ("folder", [], "is a directory")])
def test_predict_outputs_never_collide(checkpoint, tmp_path, out, extra, expected):
    """out= naming the curves' or the plot's file, or a directory, would have overwritten one output
    with another (or ended in a traceback): refused before anything is written."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "x.npy").write_bytes(b"kept")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = in_process(predict_main, "edc.predict", f"ckpt_path={checkpoint}", HAND_ROOM,
                        f"out={tmp_path / out}", *extra)
    check(result, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and (tmp_path / "x.npy").read_bytes() == b"kept"


def test_predict_writes_all_of_its_outputs_or_none(checkpoint, tmp_path):
    """A write that fails part-way (here: the plot, as on a full disk) leaves no output and keeps the old ones."""
    out = tmp_path / "pred.csv"
    out.write_text("old table")
    with mock.patch("edc.cli.predict._plot", side_effect=OSError(28, "No space left on device")):
        result = in_process(predict_main, "edc.predict", f"ckpt_path={checkpoint}", HAND_ROOM, f"out={out}", "plot=true")
    assert result.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"] and out.read_text() == "old table"


def test_training_into_another_runs_dir_is_refused_unless_told_to_overwrite(small_compact, tmp_path):
    """hydra.run.dir= a finished run used to replace its checkpoints, metrics and records with another
    model's, exit 0. Now: exit 2 and every file as it was; overwrite=true empties the dir first."""
    run = tmp_path / "run"
    quick = ["data=compact", f"data.path={small_compact}", "trainer=cpu", "trainer.max_epochs=1",
             "~callbacks.progress_bar", f"hydra.run.dir={run}"]
    assert train(*quick, "model=mlp", "loss=mse").returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.suffix != ".log"}
    refused = train(*quick, "model=lstm")
    check(refused, "holds a training run (status completed)")
    assert "overwrite=true" in refused.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.suffix != ".log"} == before
    assert train(*quick, "model=mlp", "loss=log_edc", "overwrite=true").returncode == 0
    assert read_json(run / "metadata.json")["config_choices"]["loss"] == "log_edc"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"], "no stale -v1 files"


def test_starting_from_another_models_or_a_truncated_checkpoint(checkpoint, small_compact, tmp_path):
    """Lightning's own errors came after the data was loaded, as tracebacks: now one message each."""
    quick = ["data=compact", f"data.path={small_compact}", "trainer=cpu", "trainer.max_epochs=1"]
    other = train(*quick, f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path / 'a'}")  # an mlp's, into physics
    check(other, "its weights are not this run's network", tmp_path / "a")
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(checkpoint.read_bytes()[:5000])
    check(train(*quick, "model=mlp", "loss=mse", f"ckpt_path={cut}", f"hydra.run.dir={tmp_path / 'b'}"),
          "unreadable", tmp_path / "b")
    run_dir = tmp_path / "run"
    assert train(*quick, "model=mlp", "loss=mse", "~callbacks.progress_bar", f"hydra.run.dir={run_dir}").returncode == 0
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:5000])
    result = subprocess.run([sys.executable, "-m", "edc.train", f"resume={run_dir}"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    check(result, "best.ckpt")


def test_full_traceback_on_request(tmp_path):
    result = train("model.optimizer.lr=-1", f"hydra.run.dir={tmp_path}/run",
                   env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_line_numbers_name_the_row(dataset_copy, tmp_path):
    features_change("Source_X", 99.0, row=7)(dataset_copy)
    result = train("data=compact", f"data.path={dataset_copy}", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 2 and "line 9" in result.stderr


def test_line_numbers_count_blank_lines(tmp_path):
    """The CSV reader skips blank lines; the message still names the line the row is on in the file."""
    from edc.data import read_features
    from edc.errors import EdcInputError

    header, *rows = (ROOT / "edc/data/demo_data/features.csv").read_text().splitlines()[:7]
    fields = rows[4].split(",")
    fields[4] = "99"  # Source_X of room 5, far outside
    rows[4] = ",".join(fields)
    (tmp_path / "rooms.csv").write_text("\n".join([header, "", rows[0], rows[1], "  ", *rows[2:]]) + "\n")
    with pytest.raises(EdcInputError, match=rf"{fields[0]} \(line 8\)"):  # header, blank, rows 1-2, blank, rows 3-5
        read_features(tmp_path / "rooms.csv")


def test_missing_edc_file_in_folder_layout(tmp_path, small_compact):
    features = pd.read_csv(small_compact / "features.csv")
    features.to_csv(tmp_path / "rooms.csv", index=False)
    folder = tmp_path / "edcs"
    folder.mkdir()
    for room_id, curve in zip(features.ID[1:], np.load(small_compact / "edcs.npy")[1:]):
        np.save(folder / f"{room_id}.npy", curve)  # the first room's file is missing
    run_dir = tmp_path / "run"
    result = train("data=folder", f"data.features_csv={tmp_path / 'rooms.csv'}", f"data.edc_dir={folder}",
                   "data.source_fs=1000", f"hydra.run.dir={run_dir}")
    check(result, "EDC file(s) missing", run_dir)
    assert f"{features.ID[0]}.npy" in result.stderr and not (folder / ".edc_cache").exists()


PAGE_FAULTS_OF_PREDICTING = """
import resource, sys
from edc.api import physics_prior
from edc.cli.entry import keep_freed_memory
from edc.data import load_demo
if sys.argv[1] == "keep" and not keep_freed_memory():
    sys.exit(5)  # not glibc
rooms = load_demo().features
prior = physics_prior(rooms, duration=2.0)  # a band model: batches of (256, 8, 2000) curves
prior.predict(rooms[:256])
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
prior.predict(rooms)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_a_command_that_keeps_freed_memory_faults_its_batches_in_once():
    """keep_freed_memory (python -m edc.predict): memory freed by one batch serves the next, so predicting
    page-faults far less than with glibc's defaults, which hand much of it back to the system each time."""
    faults = {}
    for mode in ("keep", "default"):
        result = subprocess.run([sys.executable, "-c", PAGE_FAULTS_OF_PREDICTING, mode], capture_output=True, text=True)
        if result.returncode == 5:
            pytest.skip("the C library is not glibc: keep_freed_memory changes nothing")
        assert result.returncode == 0, result.stderr[-2000:]
        faults[mode] = int(result.stdout)
    assert faults["keep"] < faults["default"] / 2, faults
