"""Divergence guard, interruption by signals, determinism."""
import json
import shutil
import signal
import subprocess
import sys
import time

from pathlib import Path

import pytest
import torch

from edc.cli.train import train
from edc.training.module import EdcModule

from .conftest import ROOT, tmpfs
from .test_train import tiny

pytestmark = pytest.mark.integration


def test_divergence_stops_the_run_with_exit_3_and_keeps_best(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "edc.train", "model=mlp", "model.optimizer.lr=1e4",
                             "trainer.max_epochs=20", "~callbacks.progress_bar", f"hydra.run.dir={run_dir}"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 3, result.stderr[-2000:]
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "diverged"
    assert meta["diverged"]["epoch"] < 19 and "x its best" in meta["diverged"]["reason"]
    assert "lower learning rate" in result.stdout and "diverged" in result.stdout
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def test_an_error_inside_training_is_raised_and_recorded(small_compact, tmp_path, monkeypatch):
    def broken_step(self, batch, batch_idx):
        raise RuntimeError("a bug in the training step")

    monkeypatch.setattr(EdcModule, "training_step", broken_step)
    with pytest.raises(RuntimeError, match="a bug in the training step"):  # shown, never a silent exit 1
        train(tiny(small_compact), tmp_path)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: a bug in the training step"


def test_same_seed_same_metrics(small_compact, tmp_path):
    first = train(tiny(small_compact, "trainer.max_epochs=2"), tmp_path / "a")
    second = train(tiny(small_compact, "trainer.max_epochs=2"), tmp_path / "b")
    assert first["status"] == second["status"] == "completed"
    assert (tmp_path / "a" / "metrics.json").read_text() == (tmp_path / "b" / "metrics.json").read_text()


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_last_checkpoint_and_records_interrupted(tmp_path, signum, code):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "edc.train", "trainer.max_epochs=1000", "~callbacks.progress_bar",
                                f"hydra.run.dir={run_dir}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "last.ckpt").is_file() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signum)
    assert process.wait(timeout=120) == code
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "interrupted" and meta["interrupted"]["signal"] == signum.name
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def val_epochs(run_dir) -> int:
    try:
        return sum(1 for line in (run_dir / "logs" / "metrics.csv").read_text().splitlines()[1:]
                   if line.split(",")[-1])
    except OSError:
        return 0


def validated_epochs(run_dir) -> list[int]:
    """The epochs of ``logs/metrics.csv``'s validation rows, in file order."""
    import pandas as pd

    log = pd.read_csv(run_dir / "logs" / "metrics.csv")
    return log.epoch[log["val/loss"].notna()].astype(int).tolist()


def test_run_stopped_after_2_of_6_epochs_resumes_to_6_like_an_uninterrupted_run(small_compact, tmp_path):
    args = ["data=compact", f"data.path={small_compact}", "model=mlp", "loss=mse", "trainer=cpu",
            "trainer.max_epochs=6", "data.batch_size=4"]
    whole = train(tiny(small_compact, "model=mlp", "loss=mse", "trainer.max_epochs=6", "data.batch_size=4"),
                  tmp_path / "whole")
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "edc.train", *args, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while val_epochs(run_dir) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143, "stopped before the end"
    stopped = json.loads((run_dir / "metadata.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["interrupted"]["epoch"] < 6
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    result = subprocess.run([sys.executable, "-m", "edc.train", f"resume={run_dir}"], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "completed" and meta["training_config"]["actual_epochs"] == 6
    # the record is the run's, not the resuming command's: its choices, its .hydra/, its start
    assert meta["config_choices"]["loss"] == "mse" and meta["config_choices"]["model"] == "mlp"
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == overrides
    assert meta["timestamp"] == stopped["timestamp"] and len(meta["segments"]) == 2  # stopped, then resumed
    minutes = meta["training_config"]["duration_minutes"]
    assert minutes == pytest.approx(sum(part["minutes"] for part in meta["segments"]), abs=1e-3)
    assert validated_epochs(run_dir) == list(range(6)), "every epoch once in logs/metrics.csv, across the resume"
    resumed = json.loads((run_dir / "metrics.json").read_text())
    for key in ("edc_mae", "t20_mae", "c50_mae"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5), key  # exact on CPU


def test_resume_with_more_epochs_follows_the_new_cosine_schedule(small_compact, tmp_path):
    """A 2-epoch run resumed to 3 epochs used to train the added epoch at learning rate 0 (the restored
    cosine had reached its end, T_max = 2): now T_max is 3 and the third epoch moves the weights."""
    run_dir = tmp_path / "run"
    args = ["data=compact", f"data.path={small_compact}", "model=mlp", "loss=mse", "trainer=cpu",
            "trainer.max_epochs=2", "~callbacks.progress_bar", f"hydra.run.dir={run_dir}"]
    subprocess.run([sys.executable, "-m", "edc.train", *args], cwd=ROOT, capture_output=True, timeout=300, check=True)
    before = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    result = subprocess.run([sys.executable, "-m", "edc.train", f"resume={run_dir}", "trainer.max_epochs=3"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    after = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["epoch"] == before["epoch"] + 1 and after["lr_schedulers"][0]["T_max"] == 3
    moved = max((after["state_dict"][k] - before["state_dict"][k]).abs().max().item()
                for k, v in before["state_dict"].items() if v.is_floating_point() and "net" in k)
    assert moved > 1e-6, "the added epoch trained at learning rate 0"
    assert "T_max: 3" in (run_dir / "config.yaml").read_text()
    assert validated_epochs(run_dir) == [0, 1, 2], "logs/metrics.csv keeps the epochs before the resume"


def test_resume_builds_no_class_the_recorded_config_was_edited_to_name(small_compact, tmp_path):
    """A config.yaml whose loss names edc.io.write_text used to write any file on resume; now exit 2."""
    run_dir = tmp_path / "run"
    train(tiny(small_compact, "model=mlp", "loss=mse"), run_dir)
    target = tmp_path / "written-by-the-file"
    config = (run_dir / "config.yaml").read_text()
    tampered = config.replace("_target_: edc.training.losses.MSELoss",
                              f"_target_: edc.io.write_text\n  path: {target}\n  text: pwned")
    assert tampered != config
    (run_dir / "config.yaml").write_text(tampered)
    result = subprocess.run([sys.executable, "-m", "edc.train", f"resume={run_dir}"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "loss._target_=edc.io.write_text is not a class edc builds" in result.stderr
    assert not target.exists()


@pytest.fixture()
def small_disk(tmp_path):
    """A 64 MB tmpfs (root), unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "64m") as disk:
        yield disk


def test_a_full_disk_while_writing_a_checkpoint_leaves_the_previous_one_whole(small_compact, small_disk, monkeypatch):
    """The disk fills after the first epoch's checkpoints, leaving room for half of one: the second epoch's
    write fails, and best.ckpt and last.ckpt are still the first epoch's, whole (they were truncated)."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    saved = ModelCheckpoint.on_train_epoch_end  # where it saves when validating once per epoch

    def fill_the_disk_after_epoch_0(self, trainer, module):
        saved(self, trainer, module)
        if trainer.current_epoch == 0 and self.last_model_path:
            left = shutil.disk_usage(small_disk).free - Path(self.last_model_path).stat().st_size // 2
            (small_disk / "filler").write_bytes(b"\0" * max(left, 0))

    monkeypatch.setattr(ModelCheckpoint, "on_train_epoch_end", fill_the_disk_after_epoch_0)
    run_dir = small_disk / "run"
    with pytest.raises(OSError):
        train(tiny(small_compact, "trainer.max_epochs=3"), run_dir)
    files = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert files == ["best.ckpt", "last.ckpt"], files  # no temporary file left either
    for name in files:
        assert torch.load(run_dir / "checkpoints" / name, weights_only=True)["epoch"] == 0, name


def test_a_run_killed_with_sigkill_reads_dead_not_running(small_compact, tmp_path):
    """SIGKILL leaves no chance to write a status: compare and monitor tell it from the recorded process."""
    from edc.runs.monitor import job_state
    from edc.runs.records import read_run

    run_dir = tmp_path / "0"
    process = subprocess.Popen([sys.executable, "-m", "edc.train", "data=compact", f"data.path={small_compact}",
                                "model=mlp", "loss=mse", "trainer=cpu", "trainer.max_epochs=500", "data.batch_size=4",
                                f"hydra.run.dir={run_dir}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while val_epochs(run_dir) < 1 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert read_run(run_dir)["status"] == "running" and job_state(run_dir)["state"] == "running"
    process.kill()
    process.wait(timeout=60)
    assert json.loads((run_dir / "metadata.json").read_text())["status"] == "running", "nothing could record it"
    assert read_run(run_dir)["status"] == "dead" and job_state(run_dir)["state"] == "dead"


@pytest.mark.slow  # three processes, 35 s
def test_a_second_run_into_a_dir_being_trained_into_is_refused(small_compact, tmp_path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "edc.train", "data=compact", f"data.path={small_compact}", "model=mlp", "loss=mse",
            "trainer=cpu", "data.batch_size=4", f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen([*args, "trainer.max_epochs=500", "~callbacks.early_stopping"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # trains on until killed
    try:
        deadline = time.time() + 120
        while val_epochs(run_dir) < 1 and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        for second in ([*args, "trainer.max_epochs=1", "overwrite=true"], [sys.executable, "-m", "edc.train",
                                                                             f"resume={run_dir}"]):
            result = subprocess.run(second, capture_output=True, text=True, cwd=ROOT, timeout=120)
            assert result.returncode == 2 and "is training into this dir now" in result.stderr, result.stderr[-1500:]
        assert first.poll() is None, "the first run trains on"
    finally:
        first.kill()
        first.wait(timeout=60)


def test_status_of_a_run_on_another_host_goes_stale_without_heartbeat():
    import datetime

    from edc.runs.records import STALE_AFTER_S, run_status

    elsewhere = {"host": "not-this-host", "pid": 1, "pid_started": 1}
    beat = lambda seconds_ago: (datetime.datetime.now() - datetime.timedelta(seconds=seconds_ago)).isoformat()  # noqa: E731
    assert run_status({"status": "running", "process": elsewhere, "heartbeat": beat(60)}) == "running"
    assert run_status({"status": "running", "process": elsewhere, "heartbeat": beat(STALE_AFTER_S + 60)}) == "stale"
    assert run_status({"status": "completed", "process": elsewhere, "heartbeat": beat(10**6)}) == "completed"


def test_a_run_that_fails_after_training_is_recorded_failed(small_compact, tmp_path, monkeypatch):
    import edc.cli.train as train_command

    def broken(*args, **kwargs):
        raise RuntimeError("scoring broke")

    monkeypatch.setattr(train_command, "evaluate_split", broken)
    with pytest.raises(RuntimeError, match="scoring broke"):
        train(tiny(small_compact), tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["status"] == "failed" and "scoring broke" in meta["error"]


def test_resume_refuses_other_overrides(small_compact, tmp_path):
    train(tiny(small_compact, "model=mlp", "loss=mse"), tmp_path / "run")
    result = subprocess.run([sys.executable, "-m", "edc.train", f"resume={tmp_path / 'run'}", "model=lstm"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "'model=lstm' is refused" in result.stderr
    from edc.cli.train import resume_config
    from edc.errors import EdcInputError

    with pytest.raises(EdcInputError, match="trainer.max_epochs=0"):
        resume_config(tmp_path / "run", ["trainer.max_epochs=0"])
