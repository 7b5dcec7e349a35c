"""A small accuracy guard: the default model, briefly trained, beats the physics baseline."""
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from edc import acoustics
from edc.acoustics import OCTAVE_BANDS_HZ
from edc.acoustics.room import barron_edc
from edc.cli.config import CONF_DIR
from edc.cli.train import train
from edc.training.datamodule import EdcDataModule

pytestmark = pytest.mark.integration


def test_default_model_beats_eyring_and_stays_near_the_noise_floor_in_every_band(tmp_path):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["trainer=cpu", "trainer.max_epochs=15", "~callbacks.progress_bar"])
    metrics = train(cfg, tmp_path)  # demo rooms, default model and loss
    dm = EdcDataModule()  # the same demo split
    dm.setup()
    raw, edcs, _ = dm.tensors("test")
    eyring = barron_edc(raw.double(), 1000, 2000, "eyring").numpy()
    target = edcs.numpy()[:, 0]  # the broadband curve; the demo rooms have their 7 bands beside it
    for name in ("edt", "t20", "c50"):  # Barron's EDC from Eyring's decay in the 8 simulated bands
        baseline = np.nanmean(np.abs(getattr(acoustics, name)(eyring, 1000) - getattr(acoustics, name)(target, 1000)))
        assert metrics[f"{name}_n_undefined"] == 0
        assert metrics[f"{name}_mae"] < baseline, (name, metrics[f"{name}_mae"], baseline)
    assert torch.all(torch.tensor(np.load(tmp_path / "predictions.npy")).diff(dim=-1) <= 0)
    floor = OmegaConf.to_container(cfg.targets)["band_floor"]  # the seed floor per band (docs/data.md)
    for name, values in floor.items():
        for band, value in zip(OCTAVE_BANDS_HZ, values):
            assert metrics[f"{name}_{band}_mae"] < 3 * value, (name, band, metrics[f"{name}_{band}_mae"], value)
