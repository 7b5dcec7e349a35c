"""compare, monitor and gpu on real run dirs made by short trainings."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edc.cli import gpu
from edc.runs import compare, monitor
from edc.runs.records import read_run

from .conftest import ROOT

pytestmark = pytest.mark.integration

SHORT = ["model=mlp", "trainer.max_epochs=2", "data.max_samples=60", "~callbacks.progress_bar"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Three seeds of one configuration, plus damaged copies of a run, plus a diverged run."""
    root = tmp_path_factory.mktemp("runs")
    sweep = root / "sweep"
    result = subprocess.run([sys.executable, "-m", "edc.train", "-m", "seed=0,1,2", *SHORT,
                             f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    shutil.copytree(sweep / "0", root / "no_metrics")
    (root / "no_metrics" / "metrics.json").unlink()
    shutil.copytree(sweep / "0", root / "corrupted")
    (root / "corrupted" / "metadata.json").write_text('{"status": "compl')
    (root / "incomplete" / "checkpoints").mkdir(parents=True)
    (root / "incomplete" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    result = subprocess.run([sys.executable, "-m", "edc.train", "model=mlp", "model.optimizer.lr=1e4",
                             "trainer.max_epochs=20", "~callbacks.progress_bar", f"hydra.run.dir={root / 'diverged'}"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 3
    return root


def test_compare_audits_recomputes_and_ranks(sweep_dir, tmp_path):
    table = compare.collect([sweep_dir])
    status = dict(zip(table.run.map(lambda r: r.split("/")[-1]), table.status))
    assert status == {"0": "completed", "1": "completed", "2": "completed", "no_metrics": "completed",
                      "corrupted": "corrupted", "incomplete": "incomplete", "diverged": "diverged"}
    original = json.loads((sweep_dir / "sweep" / "0" / "metrics.json").read_text())
    recomputed = read_run(sweep_dir / "no_metrics")
    assert recomputed["recomputed"] and recomputed["t20_mae"] == pytest.approx(original["t20_mae"], rel=1e-6)
    assert compare.main([str(sweep_dir), "--sort-by", "t20_mae", "--top", "3", "--out", str(tmp_path / "c.csv")]) == 0
    ranked = pd.read_csv(tmp_path / "c.csv")
    assert set(ranked.status[ranked.test_set.isna()]) == {"corrupted", "incomplete"}  # their own block
    assert ranked.test_set.nunique() == 2, "the diverged run was tested on all 400 demo rooms: its own block"
    ranked = ranked[ranked.test_set == read_run(sweep_dir / "sweep" / "0")["test_set"]]
    assert len(ranked) == 3 and (ranked.status == "completed").all()
    assert list(ranked.t20_mae) == sorted(ranked.t20_mae)
    assert compare.main([str(tmp_path / "no_such_sweep")]) == 2  # a typo is an error, not "no runs found"


def test_compare_groups_seeds_as_mean_and_std(sweep_dir, tmp_path):
    assert compare.main([str(sweep_dir / "sweep"), "--group-by", "model", "loss", "--out", str(tmp_path / "g.md")]) == 0
    text = (tmp_path / "g.md").read_text()
    table = compare.aggregate(compare.collect([sweep_dir / "sweep"]), ["model", "loss"])
    assert len(table) == 1 and table.n_runs[0] == 3
    values = [json.loads((sweep_dir / "sweep" / str(s) / "metrics.json").read_text())["t20_mae"] for s in range(3)]
    assert table.t20_mae_mean[0] == pytest.approx(np.mean(values))
    assert table.t20_mae_std[0] == pytest.approx(np.std(values, ddof=1))
    assert "t20_mae_std" in text


def test_compare_never_ranks_different_datasets_together(sweep_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(sweep_dir / "sweep" / "1", other)
    meta = json.loads((other / "metadata.json").read_text())
    meta["test_fingerprint"] = "ffffffffffffffff"
    (other / "metadata.json").write_text(json.dumps(meta))
    table = compare.rank(compare.collect([sweep_dir / "sweep", other]), "t20_mae", top=None)
    assert list(table.test_set).index("ffffffffffffffff") in (0, len(table) - 1), "one block per test set"
    result = subprocess.run([sys.executable, "-m", "edc.compare", str(sweep_dir / "sweep"), str(other)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "2 different test sets" in result.stdout


@pytest.mark.slow  # three more commands, 30 s
def test_compare_lists_training_runs_only_and_keeps_debug_runs_apart(sweep_dir, tmp_path):
    """An evaluation's dir holds metrics.json and a generation's a record: neither is a run to rank.
    A debug run (debug=fdr: one batch per epoch) is ranked in a block of its own."""
    run = sweep_dir / "sweep" / "0"
    commands = [["edc.evaluate", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"hydra.run.dir={tmp_path / 'evaluated'}"],
                ["edc.generate", "n_rooms=2", f"out_dir={tmp_path / 'rooms'}", f"hydra.run.dir={tmp_path / 'generated'}"],
                ["edc.train", *SHORT, "debug=fdr", f"hydra.run.dir={tmp_path / 'debug'}"]]
    for command in commands:
        result = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    shutil.copytree(run, tmp_path / "train")
    table = compare.collect([tmp_path])
    assert sorted(Path(r).name for r in table.run) == ["debug", "train"]
    ranked = compare.rank(table, "t20_mae", top=1)
    assert sorted(Path(r).name for r in ranked.run) == ["debug", "train"], "one block each, whatever their MAE"


@pytest.mark.slow  # four trainings, 50 s
def test_compare_keeps_runs_tested_on_other_rooms_of_one_dataset_apart(tmp_path):
    """Same dataset, other test rooms (another split seed or split_by, a subset): never ranked together."""
    runs = {"a": [], "b": ["data.split_seed=7"], "c": ["data.split_by=configuration"], "d": ["data.max_samples=50"]}
    for name, extra in runs.items():
        result = subprocess.run([sys.executable, "-m", "edc.train", *SHORT[:2], "trainer.max_epochs=1",
                                 "~callbacks.progress_bar", *extra, f"hydra.run.dir={tmp_path / name}"],
                                capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    table = compare.collect([tmp_path])
    assert table.dataset.nunique() == 1 and table.test_set.nunique() == 4
    assert set(table.split_by) == {"rows", "configuration"}
    old = json.loads((tmp_path / "b" / "metadata.json").read_text())
    del old["test_fingerprint"]  # a record written before test fingerprints: the split's settings tell
    (tmp_path / "b" / "metadata.json").write_text(json.dumps(old))
    assert compare.collect([tmp_path]).test_set.nunique() == 4


def test_monitor_once_shows_every_job(sweep_dir, capsys):
    assert monitor.main([str(sweep_dir / "sweep"), "--once"]) == 0
    rows = monitor.jobs_of(sweep_dir / "sweep")
    assert [r["state"] for r in rows] == ["completed"] * 3 and rows[0]["epoch"] == "2/2"
    assert float(rows[0]["val_loss"]) > 0
    assert monitor.job_state(sweep_dir / "diverged")["state"] == "diverged"
    assert monitor.job_state(sweep_dir / "corrupted")["state"] == "corrupted"
    assert "completed" in capsys.readouterr().out


@pytest.mark.unit
def test_monitor_picks_the_newest_training_sweep_not_a_newer_generate_one(tmp_path):
    """Sweep dirs as Hydra writes them (multirun.yaml names the job): the generate sweep is newer."""
    for job, age in (("train", 100), ("train", 50), ("generate", 0)):
        sweep = tmp_path / job / f"{age}"
        sweep.mkdir(parents=True)
        (sweep / "multirun.yaml").write_text(f"hydra:\n  job:\n    name: {job}\n")
        os.utime(sweep, (time.time() - age, time.time() - age))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "multirun.yaml").write_text("hydra: [unclosed")
    assert monitor.newest_sweep(tmp_path) == tmp_path / "train" / "50"


def test_monitor_exits_when_all_jobs_ended(sweep_dir):
    result = subprocess.run([sys.executable, "-m", "edc.monitor", str(sweep_dir / "sweep"), "--interval", "0.1"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stdout.count("completed") == 3


def test_gpu_parameter_count_matches_the_paper_and_advice():
    assert gpu.parameter_count("lstm", 96000) == 197_167_360  # "197M parameters, output 96000 samples"
    assert gpu.run_memory_mb(10**6, 64, 2000) > gpu.run_memory_mb(10**6, 8, 2000)
    assert gpu.advise([10_000.0], 1_000.0, 3)[0] == gpu.EXIT_PARALLEL
    assert gpu.advise([3_500.0], 1_000.0, 3)[0] == gpu.EXIT_TIGHT
    assert gpu.advise([2_500.0], 1_000.0, 3)[0] == gpu.EXIT_SEQUENTIAL


def test_gpu_command_without_a_gpu():
    result = subprocess.run([sys.executable, "-m", "edc.gpu"], capture_output=True, text=True, cwd=ROOT)
    if gpu.gpus():
        pytest.skip("a GPU is visible")
    assert result.returncode == 3 and "no CUDA GPU" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "edc.gpu", "--model", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 4 and "conf/model" in bad.stderr
    typo = subprocess.run([sys.executable, "-m", "edc.gpu", "--runs", "0"], capture_output=True, text=True, cwd=ROOT)
    assert typo.returncode == 4 and "--runs" in typo.stderr  # not 2, which means "run them one after another"
