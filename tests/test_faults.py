"""Fault injection (slow suite): SIGKILL at random moments and resume, full disks under every command."""
import random
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from edc.cli.train import train

from .conftest import ROOT, tmpfs
from .test_reliability import validated_epochs
from .test_train import HAND_MADE, tiny

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KILLS = 20
EPOCHS = ["model=mlp", "loss=mse", "trainer.max_epochs=100", "data.batch_size=8", "~callbacks.early_stopping"]


def _writing_checkpoint(run_dir) -> bool:
    return any(".tmp" in p.name for p in (run_dir / "checkpoints").glob(".*")) if (run_dir / "checkpoints").is_dir() \
        else False


def _trained_an_epoch_since(run_dir, launched: float) -> bool:
    log = run_dir / "logs" / "metrics.csv"
    try:
        return log.stat().st_mtime > launched and any(line.split(",")[-1] for line in log.read_text().splitlines()[1:])
    except OSError:
        return False


def _kill_at_a_random_moment(process, run_dir, rng: random.Random, kind: str) -> bool:
    """Wait for the moment of ``kind`` (``startup``: any time in the first 5 s; ``training``: up to 1.5 s after
    an epoch of this process; ``checkpoint``: while a checkpoint's temporary file exists), then SIGKILL.
    Returns whether a checkpoint was being written at the kill; False if the process ended first."""
    launched, deadline = time.time(), time.time() + 120
    if kind == "startup":
        time.sleep(rng.uniform(0.5, 5.0))
    else:
        while process.poll() is None and time.time() < deadline and not (
                _writing_checkpoint(run_dir) if kind == "checkpoint" else _trained_an_epoch_since(run_dir, launched)):
            time.sleep(0.0005)
        if kind == "training":
            time.sleep(rng.uniform(0.0, 1.5))
    writing = _writing_checkpoint(run_dir)
    process.kill()
    process.wait(timeout=60)
    return writing


def test_twenty_sigkills_at_random_moments_lose_and_repeat_no_epoch(small_compact, tmp_path):
    """SIGKILL 20 times (during start-up, training and while a checkpoint is written), resume each time
    (or start again where no checkpoint exists yet): every epoch is in logs/metrics.csv once, in order,
    and the final metrics are an uninterrupted run's."""
    whole = train(tiny(small_compact, *EPOCHS), tmp_path / "whole")
    run_dir = tmp_path / "run"
    fresh = [sys.executable, "-m", "edc.train", "data=compact", f"data.path={small_compact}", "trainer=cpu",
             "~callbacks.progress_bar", *EPOCHS, f"hydra.run.dir={run_dir}"]
    rng, command, kinds = random.Random(22), fresh, []
    for kill in range(KILLS):
        kind = ("startup", "training", "checkpoint", "training")[kill % 4]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        writing = _kill_at_a_random_moment(process, run_dir, rng, kind)
        assert process.returncode == -9, f"kill {kill}: the run ended by itself ({process.returncode}) before it"
        kinds.append("checkpoint" if writing else kind)
        resumable = (run_dir / "checkpoints" / "last.ckpt").is_file()
        command = [sys.executable, "-m", "edc.train", f"resume={run_dir}"] if resumable else [*fresh, "overwrite=true"]
    assert kinds.count("checkpoint") >= 3, kinds
    finished = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert validated_epochs(run_dir) == list(range(100)), "every epoch once, in order, across 20 kills"
    for name in ("best.ckpt", "last.ckpt"):
        torch.load(run_dir / "checkpoints" / name, weights_only=True)  # whole
    resumed = pd.read_json(run_dir / "metrics.json", typ="series")
    for key in ("edc_mae", "t20_mae", "c50_mae"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5), key


@pytest.fixture()
def full_disk(tmp_path):
    """A 1 MB tmpfs (root), unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        yield disk


def _fill(disk, leave: int = 8192) -> None:
    (disk / "filler").unlink(missing_ok=True)
    (disk / "filler").write_bytes(b"\0" * max(shutil.disk_usage(disk).free - leave, 0))


def _fails_with_one_message(command) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "no space left on the device" in errors[0]


def test_train_predict_and_generate_on_a_full_disk_fail_with_one_message_and_leave_nothing_half_written(
        small_compact, full_disk, tmp_path):
    train(tiny(small_compact, "model=mlp", "loss=mse"), tmp_path / "model")
    ckpt = tmp_path / "model" / "checkpoints" / "best.ckpt"

    _fails_with_one_message([sys.executable, "-m", "edc.train", "data=compact", f"data.path={small_compact}",
                             "trainer=cpu", "model=mlp", "loss=mse", "trainer.max_epochs=2",
                             f"hydra.run.dir={full_disk / 'run'}"])
    for path in (full_disk / "run" / "checkpoints").iterdir():
        torch.load(path, weights_only=True)  # a checkpoint there is whole

    _fill(full_disk)
    _fails_with_one_message([sys.executable, "-m", "edc.predict", f"ckpt_path={ckpt}", f"room={HAND_MADE}",
                             f"out={full_disk / 'pred.csv'}"])
    assert not list(full_disk.glob("pred*")), "predict writes its files together or not at all"

    _fill(full_disk, 2048)
    _fails_with_one_message([sys.executable, "-m", "edc.generate", "n_rooms=2", "workers=1",
                             f"out_dir={full_disk / 'gen'}", f"hydra.run.dir={tmp_path / 'gen-run'}",
                             "sampler.absorption=[0.5,0.85]"])
    assert not (full_disk / "gen" / "meta.json").exists(), "a dataset without its meta.json is not finished"
    assert not [p for p in full_disk.rglob("*") if ".tmp" in p.name], "no temporary file is left"
