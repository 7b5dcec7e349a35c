"""logger=mlflow: a run, and its resumption, read back with MLflow's own client, from a local store and
from a real `mlflow server` that the test starts on 127.0.0.1."""
import json
import socket
import subprocess
import sys
import time

import pytest

from .conftest import ROOT


def _train(small_compact, run_dir, *overrides):
    run = subprocess.run([sys.executable, "-m", "edc.train", "data=compact", f"data.path={small_compact}", "trainer=cpu",
                          "model=mlp", "loss=mse", "~callbacks.progress_bar", "logger=mlflow", f"hydra.run.dir={run_dir}",
                          *overrides], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]


def _read_back(run_dir):
    from mlflow.tracking import MlflowClient

    meta = json.loads((run_dir / "metadata.json").read_text())
    client = MlflowClient(meta["mlflow_tracking_uri"])
    return client, client.get_run(meta["mlflow_run_id"])


def _check_run(client, run, run_dir, epochs: int) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.params["model/name"] == "mlp" and run.data.params["loss/_target_"].endswith("MSELoss")
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(history) == epochs, [m.step for m in history]
    assert run.data.metrics["test/t20_mae"] == pytest.approx(metrics["t20_mae"])
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "edc_overlay.png", "parameters.png", "checkpoints"} <= files, files
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["checkpoints/best.ckpt"]
    assert (run_dir / "logs" / "metrics.csv").is_file(), "the run's own log is kept beside MLflow"


@pytest.mark.slow
@pytest.mark.integration
def test_a_run_and_its_resumption_are_one_mlflow_run_in_a_local_store(small_compact, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    common = [f"logger.tracking_uri={store}", f"logger.artifact_location={tmp_path / 'mlruns' / 'artifacts'}"]
    # (the command's default: sqlite:///CWD/mlruns/mlflow.db, artifacts in ./mlruns)
    _train(small_compact, tmp_path / "run", "trainer.max_epochs=2", *common)
    run_id = _read_back(tmp_path / "run")[1].info.run_id
    resumed = subprocess.run([sys.executable, "-m", "edc.train", f"resume={tmp_path / 'run'}", "trainer.max_epochs=3"],
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    client, run = _read_back(tmp_path / "run")
    assert run.info.run_id == run_id, "a resumed run goes on in its MLflow run"
    assert len(client.search_runs([run.info.experiment_id])) == 1
    _check_run(client, run, tmp_path / "run", epochs=3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def mlflow_server(tmp_path):
    """A real tracking server (sqlite store, served artifacts) on 127.0.0.1, stopped afterwards."""
    import urllib.request

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                               "--artifacts-destination", str(tmp_path / "served"), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("mlflow server did not start in 60 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.integration
def test_a_run_logs_to_a_real_mlflow_server(small_compact, tmp_path, mlflow_server):
    _train(small_compact, tmp_path / "run", "trainer.max_epochs=2", f"logger.tracking_uri={mlflow_server}")
    client, run = _read_back(tmp_path / "run")
    assert client.tracking_uri == mlflow_server
    _check_run(client, run, tmp_path / "run", epochs=2)
    assert list((tmp_path / "served").rglob("best.ckpt")), "the server stored the checkpoint"


@pytest.mark.slow
@pytest.mark.integration
def test_each_trial_of_a_search_is_an_mlflow_run(small_compact, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = subprocess.run([sys.executable, "-m", "edc.train", "-m", "hparams_search=loss_weights", "data=compact",
                            f"data.path={small_compact}", "trainer.max_epochs=2", "hydra.sweeper.n_trials=2",
                            "~callbacks.progress_bar", "logger=mlflow", f"logger.tracking_uri={store}",
                            f"logger.artifact_location={tmp_path / 'artifacts'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    for trial in (0, 1):
        client, run = _read_back(tmp_path / "sweep" / str(trial))
        assert run.data.tags["optuna.study"] == "loss_weights" and run.data.tags["optuna.trial"] == str(trial)
        assert len(client.get_metric_history(run.info.run_id, "val/t20_mae")) == 2  # the objective, every epoch
