"""Shared fixtures: the optional ../shared benchmark data and small generated datasets."""
import contextlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPER6000 = ROOT.parent / "shared" / "data" / "paper6000"
needs_paper6000 = pytest.mark.skipif(not (PAPER6000 / "edcs.npy").is_file(),
                                     reason="../shared/data/paper6000 is absent (only CI and developers have it)")


@pytest.fixture(scope="session")
def demo():
    from edc.data import load_demo

    return load_demo()


@pytest.fixture(scope="session")
def small_compact(tmp_path_factory, demo):
    """A compact dataset of 60 demo rooms (written with the product's own writer)."""
    from edc.data import write_compact

    out = tmp_path_factory.mktemp("compact60")
    write_compact(out, demo.features.iloc[:60], {"edc_fs": demo.edc_fs}, np.asarray(demo.edcs[:60]))
    return out


@pytest.fixture(scope="session")
def small_bands(tmp_path_factory, demo):
    """The same 60 demo rooms with their octave-band curves."""
    from edc.data import write_compact

    out = tmp_path_factory.mktemp("bands60")
    write_compact(out, demo.features.iloc[:60], {"edc_fs": demo.edc_fs}, np.asarray(demo.edcs[:60]),
                  np.asarray(demo.band_edcs[:60]))
    return out


@pytest.fixture(scope="session")
def surfaces_run(demo, tmp_path_factory):
    """A 2-epoch physics run on the surfaces copy of 60 demo rooms with their band curves."""
    from edc.data import write_compact
    from edc.data.schema import to_surfaces

    work = tmp_path_factory.mktemp("surfaces60")
    write_compact(work / "data", to_surfaces(demo.features.iloc[:60]), {"edc_fs": demo.edc_fs},
                  np.asarray(demo.edcs[:60]), np.asarray(demo.band_edcs[:60]))
    run = subprocess.run([sys.executable, "-m", "edc.train", "data=compact", f"data.path={work / 'data'}",
                          "trainer.max_epochs=2", f"hydra.run.dir={work / 'run'}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return work


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` (e.g. ``"1m"``) mounted at the new directory ``path``, unmounted afterwards; the
    test is skipped where mounting needs root."""
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def pytest_collection_modifyitems(config, items):
    """Every test is a unit or an integration test, so that each kind runs alone (make test-unit / -integration)."""
    unmarked = [item.nodeid for item in items if not ({"unit", "integration"} & {m.name for m in item.iter_markers()})]
    if unmarked:
        raise pytest.UsageError(f"mark these tests unit or integration: {unmarked[:5]}")
