"""A real single-node SLURM (scripts/slurm/start.sh): the preset sweep, an Optuna search and a requeued job.

Run with `make test-slurm` (needs root and Debian's packages; never part of `make test`).
"""
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.slurm, pytest.mark.integration]
SCRIPTS = ROOT / "scripts" / "slurm"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    subprocess.run(["bash", str(SCRIPTS / "start.sh")], check=True, timeout=600)
    yield
    subprocess.run(["bash", str(SCRIPTS / "stop.sh")], timeout=120)


def slurm_job_ids(sweep: Path) -> list[str]:
    return sorted(p.name for p in (sweep / ".submitit").iterdir() if p.is_dir() and p.name[0].isdigit())


def sacct_states(job_id: str, timeout: float = 30.0) -> list[str]:
    """Final states of a job's tasks (accounting may lag a moment behind the job's end)."""
    deadline = time.time() + timeout
    while True:
        out = subprocess.run(["sacct", "-j", job_id.split("_")[0], "-n", "-X", "-P", "-o", "JobID,State"],
                             capture_output=True, text=True, check=True).stdout
        states = [line.split("|")[1] for line in out.strip().splitlines()]
        pending = {"PENDING", "RUNNING", "COMPLETING", "REQUEUED", "CONFIGURING"}
        if (states and not pending.intersection(states)) or time.time() > deadline:
            return states
        time.sleep(0.5)


def test_preset_sweep_on_slurm(tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run([sys.executable, "-m", "edc.train", "-m", "loss=conservative,moderate,aggressive",
                             "hydra/launcher=slurm", "trainer.max_epochs=2", "data.max_samples=60",
                             "~callbacks.progress_bar", f"hydra.sweep.dir={sweep}"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    array_ids = {job.split("_")[0] for job in slurm_job_ids(sweep)}
    assert len(array_ids) == 1, "one array job"
    states = sacct_states(array_ids.pop())  # one row per task
    assert states == ["COMPLETED"] * 3, states
    for job in range(3):
        run = sweep / str(job)
        assert json.loads((run / "metadata.json").read_text())["status"] == "completed"
        for name in ("metrics.json", "predictions.npy", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
            assert (run / name).is_file(), f"{run}/{name}"
    assert list(pd.read_csv(sweep / "summary.csv").status) == ["completed"] * 3


def test_optuna_search_on_slurm(tmp_path):
    """Two trials at a time as SLURM jobs, each reporting every epoch to the study's SQLite file."""
    import optuna

    sweep = tmp_path / "sweep"
    result = subprocess.run([sys.executable, "-m", "edc.train", "-m", "hparams_search=loss_weights",
                             "hydra/launcher=slurm", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                             "trainer.max_epochs=2", "data.max_samples=60", "~callbacks.progress_bar",
                             f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len({job.split("_")[0] for job in slurm_job_ids(sweep)}) == 1, "the two trials: one array job"
    trials = optuna.load_study(study_name="loss_weights", storage=f"sqlite:///{sweep / 'optuna.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        assert sorted(trial.intermediate_values) == [0, 1], "every epoch reported from the SLURM job"
        assert json.loads((sweep / str(trial.number) / "metadata.json").read_text())["objective"]["value"] \
            == pytest.approx(trial.value)


def val_epochs(run: Path) -> int:
    try:
        with open(run / "logs" / "metrics.csv") as f:
            return sum(1 for row in csv.DictReader(f) if row.get("val/loss"))
    except (OSError, csv.Error):
        return 0


def test_requeued_job_resumes_and_finishes(tmp_path):
    sweep, epochs = tmp_path / "sweep", 40
    process = subprocess.Popen([sys.executable, "-m", "edc.train", "-m", "seed=0", "hydra/launcher=slurm",
                                f"trainer.max_epochs={epochs}", "~callbacks.progress_bar",
                                "~callbacks.early_stopping",  # every epoch runs: the count is the check
                                f"hydra.sweep.dir={sweep}"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while val_epochs(sweep / "0") < 3 and time.time() < deadline:
        time.sleep(0.5)
    before = val_epochs(sweep / "0")
    assert 3 <= before < epochs, "the job should be mid-training"
    job = slurm_job_ids(sweep)[0].split("_")[0]
    subprocess.run(["scontrol", "requeue", job], check=True)
    for _ in range(60):  # a requeued job waits on BeginTime; release it
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout
        if "PENDING" in state:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
            break
        time.sleep(0.5)
    output, _ = process.communicate(timeout=400)
    assert process.returncode == 0, output[-3000:]
    meta = json.loads((sweep / "0" / "metadata.json").read_text())
    assert meta["status"] == "completed" and meta["training_config"]["actual_epochs"] == epochs
    assert "resuming from" in (sweep / "0" / "train.log").read_text()
    assert sacct_states(job) == ["COMPLETED"]
