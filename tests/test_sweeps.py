"""Multiruns: a failing job never stops the others; the summary is always written."""
import subprocess
import sys

import pandas as pd
import pytest

from .conftest import ROOT

pytestmark = pytest.mark.integration

SHORT = ["trainer.max_epochs=1", "data.max_samples=60", "~callbacks.progress_bar"]


def sweep(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "edc.train", "-m", *args, *SHORT, f"hydra.sweep.dir={tmp_path}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    result = sweep(tmp_path, "model.optimizer.lr=-1,1e-3")
    assert result.returncode == 1, result.stderr[-2000:]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.status) == ["failed", "completed"]
    assert "model.optimizer.lr=-1" in summary.overrides[0]
    assert "1 of 2 jobs did not complete" in result.stderr
    assert (tmp_path / "summary.md").read_text().count("completed") == 1


@pytest.mark.slow  # three parallel trainings on 2 cores, 35 s
def test_presets_run_in_parallel_processes(tmp_path):
    result = sweep(tmp_path, "loss=conservative,moderate,aggressive", "hydra/launcher=local_parallel")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.status) == ["completed"] * 3
    assert [o.split()[0] for o in summary.overrides] == ["loss=conservative", "loss=moderate", "loss=aggressive"]
    assert summary.t20_mae.notna().all()
    for job in range(3):
        assert (tmp_path / str(job) / "checkpoints" / "best.ckpt").is_file()


def test_ddp_in_a_local_multirun_is_refused(tmp_path):
    result = sweep(tmp_path, "trainer=ddp", "seed=0")
    assert result.returncode == 1
    assert "would relaunch the whole sweep" in result.stderr
    assert list(pd.read_csv(tmp_path / "summary.csv").status) == ["failed"]
