"""The slow suite (``make test-slow``, also run by CI): a real 2-process DDP fit on the CPU and the
package installed from a wheel into a fresh venv, its commands run from outside the source tree."""
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SHORT = ["model=mlp", "loss=mse", "trainer.max_epochs=2", "data.max_samples=60", "~callbacks.progress_bar"]


def test_ddp_trains_with_two_processes_on_the_cpu(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "edc.train", "trainer=ddp", "trainer.accelerator=cpu",
                             "trainer.devices=2", *SHORT, f"hydra.run.dir={run_dir}"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "train_ddp_process_1.log").is_file(), "the second process ran"
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["status"] == "completed" and meta["training_config"]["actual_epochs"] == 2
    assert result.stdout.count("test metrics") == 1, "only the first process tests and reports"
    assert json.loads((run_dir / "metrics.json").read_text())["n_rooms"] == 12


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding edc from its wheel (no editable link to the source tree); its dependencies
    come from this environment's site-packages (a .pth file), so nothing is downloaded."""
    tmp = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp / "dist").glob("edc-*.whl"))
    venv.create(tmp / "venv", with_pip=True)
    python = tmp / "venv" / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(ours + "\n")  # path only: the editable edc's own .pth is not run
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    return python, tmp


def test_the_installed_package_has_its_configs_and_trains(installed):
    python, tmp = installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import edc, edc.cli.config as c; print(edc.__file__); print(c.CONF_DIR)"],
                           capture_output=True, text=True, cwd=tmp, env=env, check=True).stdout.split()
    assert all(str(tmp / "venv") in path for path in where), where  # not the source tree
    result = subprocess.run([str(python), "-m", "edc.train", "trainer.max_epochs=1", "~callbacks.progress_bar",
                             "hydra.run.dir=run"], capture_output=True, text=True, cwd=tmp, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp / "run" / "metadata.json").read_text())["status"] == "completed"
    ckpt = tmp / "run" / "checkpoints" / "best.ckpt"
    room = "room=[4,5,3,1.5,2,1.5,2.5,3.5,1.5,.2,.3,.5,.6,.6,.6,.3]"
    predicted = subprocess.run([str(python), "-m", "edc.predict", f"ckpt_path={ckpt}", room, "out=one.csv"],
                               capture_output=True, text=True, cwd=tmp, env=env, timeout=300)
    assert predicted.returncode == 0 and (tmp / "one.csv").is_file(), predicted.stderr[-2000:]
    searched = subprocess.run([str(python), "-m", "edc.train", "-m", "hparams_search=loss_weights", "trainer.max_epochs=1",
                               "hydra.sweeper.n_trials=1", "~callbacks.progress_bar", "hydra.sweep.dir=search"],
                              capture_output=True, text=True, cwd=tmp, env=env, timeout=600)  # the sweeper plugin too
    assert searched.returncode == 0 and (tmp / "search" / "optimization_results.yaml").is_file(), searched.stderr[-2000:]
