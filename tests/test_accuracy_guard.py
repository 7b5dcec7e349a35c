"""A small accuracy guard: the default model, briefly trained, beats the physics baseline."""
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from edc import acoustics
from edc.acoustics.room import barron_edc
from edc.cli.config import CONF_DIR
from edc.cli.train import train
from edc.training.datamodule import EdcDataModule

pytestmark = pytest.mark.integration


def test_default_model_beats_eyring_on_edt_t20_and_c50(tmp_path):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["trainer=cpu", "trainer.max_epochs=15", "~callbacks.progress_bar"])
    metrics = train(cfg, tmp_path)  # demo rooms, default model and loss
    dm = EdcDataModule()  # the same demo split
    dm.setup()
    raw, edcs, _ = dm.tensors("test")
    eyring = barron_edc(raw.double(), 1000, 2000, "eyring").numpy()
    target = edcs.numpy()
    for name in ("edt", "t20", "c50"):  # Barron's EDC from Eyring's decay in the 8 simulated bands
        baseline = np.nanmean(np.abs(getattr(acoustics, name)(eyring, 1000) - getattr(acoustics, name)(target, 1000)))
        assert metrics[f"{name}_n_undefined"] == 0
        assert metrics[f"{name}_mae"] < baseline, (name, metrics[f"{name}_mae"], baseline)
    assert torch.all(torch.tensor(np.load(tmp_path / "predictions.npy")).diff(dim=-1) <= 0)
