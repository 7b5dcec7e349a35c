"""Optuna search (python -m edc.train -m hparams_search=...): a real study in an SQLite file, real training runs
as its trials, pruning by the study's median pruner, failed trials, a killed sweep that goes on, bad input."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from edc.runs import search

from .conftest import ROOT

SEARCH = ["hparams_search=loss_weights", "trainer.max_epochs=3", "~callbacks.progress_bar",
          "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0"]


def command(sweep_dir, *args):
    return [sys.executable, "-m", "edc.train", "-m", *SEARCH, f"hydra.sweep.dir={sweep_dir}", *args]


def run(sweep_dir, *args, cwd=ROOT):
    return subprocess.run(command(sweep_dir, *args), capture_output=True, text=True, cwd=cwd, timeout=900)


def study_of(sweep_dir, name="loss_weights") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def epochs_of(job_dir) -> pd.DataFrame:
    """The run's validation rows of logs/metrics.csv (one per epoch)."""
    return pd.read_csv(job_dir / "logs" / "metrics.csv").dropna(subset=["val/loss"])


@pytest.mark.integration
def test_a_study_prunes_fails_and_records_its_trials(tmp_path):
    result = run(tmp_path, "hydra.sweeper.n_trials=6", "model.optimizer.lr=choice(2e-3,1e-7)",
                 "loss.base_weight=choice(1.0,-1.0)")  # a negative weight is refused: that trial fails
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study_of(tmp_path).trials
    assert len(trials) == 6 and [t.number for t in trials] == list(range(6))
    states = {t.number: t.state for t in trials}
    assert {s for t, s in states.items() if trials[t].params["loss.base_weight"] == -1.0} == {TrialState.FAIL}
    assert {s for t, s in states.items() if trials[t].params["loss.base_weight"] == 1.0} <= {TrialState.COMPLETE,
                                                                                             TrialState.PRUNED}
    assert TrialState.PRUNED in states.values() and TrialState.FAIL in states.values()
    for trial in trials:
        job = tmp_path / str(trial.number)
        meta = json.loads((job / "metadata.json").read_text())
        overrides = (job / ".hydra" / "overrides.yaml").read_text()
        assert f"loss.t20_weight={trial.params['loss.t20_weight']!r}" in overrides  # the job trained the trial's values
        if trial.state == TrialState.FAIL:
            assert meta["status"] == "failed" and "loss.base_weight=-1.0" in meta["error"]
            continue
        history = epochs_of(job)
        # every epoch's val/t20_mae went to the trial; the objective is the one at best.ckpt's epoch (lowest val/loss)
        assert trial.intermediate_values == pytest.approx(dict(zip(history.epoch, history["val/t20_mae"])))
        if trial.state == TrialState.COMPLETE:
            assert trial.value == pytest.approx(history.loc[history["val/loss"].idxmin(), "val/t20_mae"])
            assert meta["status"] == "completed" and len(history) == 3
        else:  # pruned: worse than the median of the trials completed before it, at the epoch it stopped
            step = max(trial.intermediate_values)
            before = [t.intermediate_values[step] for t in trials[: trial.number] if t.state == TrialState.COMPLETE]
            assert trial.intermediate_values[step] > np.median(before)
            assert meta["status"] == "pruned" and len(history) == step + 1 < 3
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.status) == [{"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed"}[s.name]
                                    for s in states.values()]
    best = study_of(tmp_path).best_trial
    assert summary.objective[best.number] == pytest.approx(best.value)
    assert f"best trial: {best.number}" in result.stdout and "did not complete (failed trials" in result.stderr
    compared = subprocess.run([sys.executable, "-m", "edc.compare", str(tmp_path)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
    assert compared.returncode == 0 and compared.stdout.count("weighted_edc") >= 2, compared.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.integration
def test_a_killed_search_goes_on_where_it_stopped(tmp_path):
    process = subprocess.Popen(command(tmp_path, "hydra.sweeper.n_trials=3"), cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (tmp_path / "1" / "metadata.json").is_file() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # trial 1 is training: it stays 'running' in the study
    process.wait()
    first = {t.number: t for t in study_of(tmp_path).trials}
    assert first[0].state == TrialState.COMPLETE and first[1].state == TrialState.RUNNING

    result = run(tmp_path, "hydra.sweeper.n_trials=3")  # the same command again
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study_of(tmp_path).trials
    assert trials[0].datetime_complete == first[0].datetime_complete  # trial 0 is not trained again
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["interrupted"]
    assert trials[2].params == first[1].params  # the cut trial runs again (queued first), with its parameters ...
    assert trials[3].params not in (first[0].params, first[1].params)  # ... and the sampler drew new ones
    assert search.finished(study_of(tmp_path)) == 3 and len(trials) == 4
    assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [0, 1, 2, 3]


@pytest.mark.integration
@pytest.mark.parametrize("args, message", [
    (["loss.t2_weight=interval(1,2)"], "search space key loss.t2_weight: this run's config has no such key"),
    (["optimized_metric=val/t30_mae"], "optimized_metric=val/t30_mae: runs do not log it"),
    (["optimized_metric=val/t20_bands_mae", "data.bands=false"], "runs trained broadband only do not log it"),
    (["hydra.sweeper.storage=sqlite:///{other}"],
     "made by another search (it differs in search (stored: physics; this search: loss_weights), space (loss.c50"),
])
def test_bad_search_input_exits_2_before_any_trial(tmp_path, args, message):
    other = tmp_path / "other.db"
    optuna.create_study(storage=f"sqlite:///{other}", study_name="loss_weights").set_user_attr(
        search.SIGNATURE, {"search": "physics", "space": {}, "metric": "val/t20_mae", "direction": "minimize"})
    sweep_dir = tmp_path / "sweep"
    result = run(sweep_dir, *[a.format(other=other) for a in args], cwd=tmp_path)  # outside the repository: the
    # sweeper is found there too (an editable install hides hydra_plugins from Hydra's listing)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not sweep_dir.exists() or not any(p.name.isdigit() for p in sweep_dir.iterdir())


@pytest.mark.unit
def test_the_search_space_follows_hydras_sweep_syntax():
    space, fixed = search.search_space(
        {"loss.t20_weight": "tag(log, interval(0.5, 8))", "model": {"net": {"n_knots": "tag(int, interval(10, 200))"}}},
        ["model.net.hidden=choice([64,64],[128,128])", "model.optimizer.lr=choice(1e-3,2e-3)", "trainer.max_epochs=3"])
    assert space == {"loss.t20_weight": FloatDistribution(0.5, 8.0, log=True),
                     "model.net.n_knots": IntDistribution(10, 200),
                     "model.net.hidden": CategoricalDistribution(["[64,64]", "[128,128]"]),
                     "model.optimizer.lr": CategoricalDistribution([1e-3, 2e-3])}
    assert fixed == ["trainer.max_epochs=3"]
    with pytest.raises(search.EdcInputError, match="needs low < high"):
        search.search_space({"loss.t20_weight": "interval(8, 0.5)"}, [])


@pytest.mark.unit
@pytest.mark.parametrize("result, state", [
    ({"status": "completed", "objective": 0.02}, TrialState.COMPLETE),
    ({"status": "pruned", "objective": 0.3}, TrialState.PRUNED),
    ({"status": "diverged", "objective": 0.5}, TrialState.FAIL),
    ({"status": "failed", "exit_code": 2}, TrialState.FAIL),
    ({"status": "completed", "objective": math.nan}, TrialState.FAIL),
    (RuntimeError("the job raised"), TrialState.FAIL),
])
def test_a_trial_ends_as_its_run_did(result, state):
    study = optuna.create_study()
    trial = study.ask({"x": FloatDistribution(0, 1)})
    job = JobReturn(status=JobStatus.FAILED if isinstance(result, Exception) else JobStatus.COMPLETED)
    job._return_value = result
    search.tell(study, trial, job)
    assert study.trials[0].state == state
    if state == TrialState.COMPLETE:
        assert study.trials[0].value == result["objective"]


@pytest.mark.slow
@pytest.mark.integration
def test_trials_run_in_parallel_processes(tmp_path):
    """hydra/launcher=local_parallel: two trials at a time, each a process of its own reporting to the SQLite study."""
    result = run(tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "hydra/launcher=local_parallel")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study_of(tmp_path).trials
    assert len(trials) == 4 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    pids = {json.loads((tmp_path / str(t.number) / "metadata.json").read_text())["process"]["pid"] for t in trials}
    assert len(pids) == 4, "each trial in a process of its own"
    starts = [t.datetime_start for t in trials]
    assert starts[1] < trials[0].datetime_complete, "trials 0 and 1 ran at the same time"
    for trial in trials:
        assert sorted(trial.intermediate_values) == list(range(len(epochs_of(tmp_path / str(trial.number)))))


@pytest.mark.slow
@pytest.mark.integration
def test_a_band_weights_search_trains_each_trial_with_its_weights_and_minimises_the_band_error(tmp_path):
    """hparams_search=band_weights on the built-in band rooms: each trial's 7 weights reach its run's loss, and
    its objective is val/t20_bands_mae at the epoch of its best checkpoint."""
    result = subprocess.run([sys.executable, "-m", "edc.train", "-m", "hparams_search=band_weights", "trainer.max_epochs=2",
                             "~callbacks.progress_bar", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study_of(tmp_path, "band_weights").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        job = tmp_path / str(trial.number)
        used = json.loads((job / "metadata.json").read_text())["loss_config"]["band_weights"]
        assert used == pytest.approx({k.split(".")[-1]: v for k, v in trial.params.items()})
        history = epochs_of(job)
        assert trial.value == pytest.approx(history.loc[history["val/loss"].idxmin(), "val/t20_bands_mae"])

