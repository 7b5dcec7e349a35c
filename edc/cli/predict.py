"""Predict EDCs and ISO 3382-1 parameters for new rooms.

    python -m edc.predict ckpt_path=P features_csv=rooms.csv out=pred.csv
    python -m edc.predict ckpt_path=P 'room=[3.5,4,3,1.4,2,1.5,1,1,1.5,.2,.3,.5,.6,.6,.6,.6]' out=one.csv

Writes ``out`` (CSV: ID, EDT, T20, T30, C50, C80, D50 in s, s, s, dB, dB, fraction, and for a
band model the same per octave band, EDT_125 ... D50_8000, with EDT_mid and T20_mid; ``nan`` where
undefined) and the curves beside it (same stem, ``.npy``, ``(n_rooms, C, n_samples)``: broadband,
then the bands; rows in CSV order); ``plot=true`` adds a PNG of the curves.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig

from edc.acoustics.iso3382 import OCTAVE_BANDS_HZ
from edc.api import load
from edc.cli.config import CONF_DIR
from edc.cli.entry import entrypoint, task
from edc.data.schema import FEATURES
from edc.data.validation import read_features, validate_features
from edc.errors import EdcInputError
from edc.io import atomic_paths


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
    return validate_features(pd.DataFrame([["room", *map(float, values)]], columns=["ID"] + FEATURES), "room")


def output_paths(out, plot: bool) -> list[Path]:
    """``[parameters .csv, curves .npy(, plot .png)]`` for ``out=``, which must name a .csv file."""
    out = Path(out)
    if out.is_dir():
        raise EdcInputError(f"out={out} is a directory. Fix: out={out / 'predictions.csv'}")
    if out.suffix.lower() != ".csv":
        raise EdcInputError(f"out={out}: the parameters are written as a CSV table, so out must end in .csv "
                            f"(the curves go beside it as .npy{' and the plot as .png' if plot else ''}). "
                            f"Fix: out={out.with_suffix('.csv')}")
    return [out, out.with_suffix(".npy")] + ([out.with_suffix(".png")] if plot else [])


def predict(ckpt_path, out, features_csv=None, room=None, plot: bool = False, materials_file=None) -> pd.DataFrame:
    """Predict the rooms of ``features_csv`` (or the one ``room``) and write ``out`` (.csv: the parameters),
    the curves beside it (.npy, ``(n_rooms, C, n_samples)`` linear energy) and, with ``plot``, a .png:
    all of them or, on an error, none."""
    if (features_csv is None) == (room is None):
        raise EdcInputError("give exactly one of features_csv=FILE or room=[16 numbers].")
    if not out:
        raise EdcInputError("out is not set. Fix: out=predictions.csv (the EDCs go to predictions.npy).")
    written = output_paths(out, plot)
    frame = read_features(features_csv, materials_file) if features_csv else room_frame(room)
    predictor = load(ckpt_path)
    frame = predictor.in_layout(frame, str(features_csv or "room"))
    edcs, params = predictor.predict(frame, validated=True, warn=False)
    if outside := predictor.outside_training(frame):
        print(f"warning: {outside}", file=sys.stderr)
    with atomic_paths(written, ["", ".npy", ".png"]) as temps:
        params.to_csv(temps[0], index=False, na_rep="nan")
        np.save(temps[1], edcs)
        if plot:
            _plot(temps[2], edcs, params["ID"], predictor.fs)
    print(summary(params))
    print("wrote " + ", ".join(map(str, written)))
    return params


def summary(params: pd.DataFrame) -> str:
    """The parameters of the predicted rooms in a few lines (broadband, and T_mid / EDT_mid of a band model):
    every room if there are few, else their spread."""
    params = params[[c for c in params.columns if "_" not in c or c.endswith("_mid")]]
    if len(params) <= 10:
        return params.to_string(index=False)
    spread = params.drop(columns="ID").describe(percentiles=[0.5]).loc[["min", "50%", "max"]]
    return f"{len(params)} rooms (EDT, T20, T30 in s; C50, C80 in dB; D50 a fraction):\n" + \
        spread.rename(index={"50%": "median"}).to_string(float_format="%.3f")


def _plot(path, edcs, ids, fs):
    """The broadband EDCs of up to 20 rooms in dB; for a band model also the first room's octave bands.
    edcs: (n_rooms, channels, samples), channel 0 broadband."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def db(curve):
        return 10 * np.log10(np.clip(curve, 1e-30, None))

    bands = edcs.shape[1] > 1
    fig, axes = plt.subplots(1, 2 if bands else 1, figsize=(12 if bands else 7, 4), squeeze=False)
    t = np.arange(edcs.shape[-1]) / fs
    for curve, name in list(zip(edcs[:, 0], ids))[:20]:
        axes[0, 0].plot(t, db(curve), label=str(name))
    axes[0, 0].set_title("broadband")
    if bands:
        for curve, band in zip(edcs[0, 1:], OCTAVE_BANDS_HZ):
            axes[0, 1].plot(t, db(curve), label=f"{band} Hz")
        axes[0, 1].set_title(f"room {ids.iloc[0]}, octave bands")
    for ax in axes[0]:
        ax.set(xlabel="time (s)", ylabel="EDC (dB)", ylim=(-80, 2))
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
@task
def main(cfg: DictConfig):
    if not cfg.ckpt_path:
        raise EdcInputError("ckpt_path is not set. Fix: ckpt_path=RUN_DIR/checkpoints/best.ckpt")
    predict(cfg.ckpt_path, cfg.out, cfg.features_csv, cfg.room, cfg.plot, cfg.materials_file)


if __name__ == "__main__":
    entrypoint(main)()
