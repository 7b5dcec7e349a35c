"""Bad input through the real command line: exit 2, one clear message, nothing left behind."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from .conftest import ROOT


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=env)


@pytest.fixture()
def bad_compact(tmp_path, small_compact):
    """A copy of the small dataset with a room whose source sits outside it."""
    out = tmp_path / "bad"
    out.mkdir()
    features = pd.read_csv(small_compact / "features.csv")
    features.loc[7, "Source_X"] = 99.0
    features.to_csv(out / "features.csv", index=False)
    np.save(out / "edcs.npy", np.load(small_compact / "edcs.npy"))
    (out / "meta.json").write_text((small_compact / "meta.json").read_text())
    return out


@pytest.mark.parametrize("case", ["bad rows", "missing path", "unknown model", "negative lr", "aux weight",
                                  "target_fs", "duration"])
def test_train_refuses_bad_input_with_exit_2(tmp_path, bad_compact, small_compact, case):
    run_dir = tmp_path / "run"
    args = {"bad rows": ["data=compact", f"data.path={bad_compact}"],
            "missing path": ["data=compact", f"data.path={tmp_path / 'nowhere'}"],
            "unknown model": ["model=transformer"],
            "negative lr": ["model.optimizer.lr=-1"],
            "aux weight": ["loss=auxiliary", "loss.aux_weight=5"],
            "target_fs": ["data.target_fs=3000"],
            "duration": ["data.duration=3.0"]}[case]
    expected = {"bad rows": "source outside the room", "missing path": "edc.generate",
                "unknown model": "Could not find 'model/transformer'", "negative lr": "model.optimizer.lr=-1",
                "aux weight": "loss.aux_weight=5", "target_fs": "does not divide", "duration": "data.duration"}[case]
    result = run("edc.train", *args, f"hydra.run.dir={run_dir}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not run_dir.exists(), "nothing half-written"
    if case == "bad rows":
        assert "features.csv" in result.stderr and "line 9" in result.stderr


def test_full_traceback_on_request(tmp_path):
    result = run("edc.train", "model.optimizer.lr=-1", f"hydra.run.dir={tmp_path}/run",
                 env={**__import__("os").environ, "HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 2 and "Traceback" in result.stderr
