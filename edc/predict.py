"""Predict EDCs and ISO 3382-1 parameters for new rooms.

    python -m edc.predict ckpt_path=P features_csv=rooms.csv out=pred.csv
    python -m edc.predict ckpt_path=P 'room=[3.5,4,3,1.4,2,1.5,1,1,1.5,.2,.3,.5,.6,.6,.6,.6]' out=one.csv

Writes ``out`` (CSV: ID, EDT, T20, T30, C50, C80, D50 in s, s, s, dB, dB, fraction;
``nan`` where undefined) and the EDCs beside it (same stem, ``.npy``, rows in CSV
order); ``plot=true`` adds a PNG of the curves.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig

from edc.api import load
from edc.config import CONF_DIR
from edc.data import FEATURES, read_features
from edc.errors import EdcInputError, entrypoint, task
from edc.io import atomic_path, save_npy


def room_frame(room) -> pd.DataFrame:
    """One room from ``room=[16 numbers]`` (ID ``room``)."""
    values = list(room) if isinstance(room, (list, tuple, ListConfig)) else None
    if values is None or len(values) != len(FEATURES):
        raise EdcInputError(f"room={room}: give a list of {len(FEATURES)} numbers in the order "
                            f"{', '.join(FEATURES)}.")
    bad = [f"{name}={v!r}" for name, v in zip(FEATURES, values)
           if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise EdcInputError(f"room: not numbers: {', '.join(bad)}. Fix: write plain numbers (m, absorption 0-1).")
    return pd.DataFrame([["room", *map(float, values)]], columns=["ID"] + FEATURES)


def predict(ckpt_path, out, features_csv=None, room=None, plot: bool = False) -> pd.DataFrame:
    if (features_csv is None) == (room is None):
        raise EdcInputError("give exactly one of features_csv=FILE or room=[16 numbers].")
    if not out:
        raise EdcInputError("out is not set. Fix: out=predictions.csv (the EDCs go to predictions.npy).")
    frame = read_features(features_csv) if features_csv else room_frame(room)
    predictor = load(ckpt_path)
    edcs, params = predictor.predict(frame, source=str(features_csv or "room"))
    out = Path(out)
    with atomic_path(out) as tmp:
        params.to_csv(tmp, index=False, na_rep="nan")
    save_npy(out.with_suffix(".npy"), edcs)
    if plot:
        _plot(out.with_suffix(".png"), edcs, params["ID"], predictor.fs)
    print(params.to_string(index=False))
    return params


def _plot(path, edcs, ids, fs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    t = np.arange(edcs.shape[1]) / fs
    for curve, name in list(zip(edcs, ids))[:20]:
        ax.plot(t, 10 * np.log10(np.clip(curve, 1e-30, None)), label=str(name))
    ax.set(xlabel="time (s)", ylabel="EDC (dB)", ylim=(-80, 2))
    ax.legend(fontsize=7)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
@task
def main(cfg: DictConfig):
    if not cfg.ckpt_path:
        raise EdcInputError("ckpt_path is not set. Fix: ckpt_path=RUN_DIR/checkpoints/best.ckpt")
    predict(cfg.ckpt_path, cfg.out, cfg.features_csv, cfg.room, cfg.plot)


if __name__ == "__main__":
    entrypoint(main)()
