"""Predict EDCs and ISO 3382-1 parameters for new rooms.

    python -m edc.predict ckpt_path=P features_csv=rooms.csv out=pred.csv
    python -m edc.predict ckpt_path=P 'room=[3.5,4,3,1.4,2,1.5,1,1,1.5,.2,.3,.5,.6,.6,.6,.6]' out=one.csv

Writes ``out`` (CSV: ID, EDT, T20, T30, C50, C80, D50 in s, s, s, dB, dB, fraction, and for a
band model the same per octave band, EDT_125 ... D50_8000, with EDT_mid and T20_mid; ``nan`` where
undefined) and the curves beside it (same stem, ``.npy``, ``(n_rooms, C, n_samples)``: broadband,
then the bands; rows in CSV order); ``plot=true`` adds a PNG of the curves. ``rir=true`` (a band model)
writes each room's synthesised impulse response as ``STEM_rir/ID.wav`` (48 kHz, peak -1 dBFS) and
``STEM_rir/scaling.csv`` (ID, file, scale: file samples = scale * RIR); ``convolve=DRY.wav`` adds
``STEM_rir/ID_convolved.wav``, the dry sound through each room (docs/auralisation.md).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig

from edc.acoustics.iso3382 import OCTAVE_BANDS_HZ
from edc.acoustics.rir import RIR_FS
from edc.acoustics.wav import read_wav, write_wav
from edc.api import load
from edc.cli.config import CONF_DIR
from edc.cli.entry import composed_once, task
from edc.data.schema import FEATURES
from edc.data.validation import read_features, validate_features
from edc.errors import EdcInputError, describe_rows
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


def predict(ckpt_path, out, features_csv=None, room=None, plot: bool = False, materials_file=None,
            rir: bool = False, convolve=None) -> pd.DataFrame:
    """Predict the rooms of ``features_csv`` (or the one ``room``) and write ``out`` (.csv: the parameters),
    the curves beside it (.npy, ``(n_rooms, C, n_samples)`` linear energy), with ``plot`` a .png and with
    ``rir`` (or ``convolve``) the WAV files of the module docstring: all of them or, on an error, none."""
    if convolve and not rir:
        raise EdcInputError(f"convolve={convolve} convolves the rooms' impulse responses. Fix: add rir=true.")
    dry = read_wav(convolve, "convolve") if convolve else None
    if dry is not None and dry[1] != RIR_FS:
        raise EdcInputError(f"convolve={convolve}: sampled at {dry[1]} Hz; the impulse responses are at {RIR_FS} Hz. "
                            f"Fix: resample the dry file to {RIR_FS} Hz (e.g. sox in.wav -r {RIR_FS} out.wav).")
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
    rirs = predictor.rir(frame, validated=True) if rir else []
    sounds = _sound_files(Path(out), params["ID"], dry is not None) if rir else []
    with atomic_paths(written + sounds, ["", ".npy", ".png"][:len(written)] + [""] * len(sounds)) as temps:
        params.to_csv(temps[0], index=False, na_rep="nan")
        np.save(temps[1], edcs)
        if plot:
            _plot(temps[2], edcs, params["ID"], predictor.fs)
        if rir:
            _write_sounds(temps[len(written):], sounds, params["ID"], rirs, dry)
    print(summary(params))
    print("wrote " + ", ".join(map(str, written)) + (f" and {len(sounds)} files in {sounds[0].parent}" if sounds else ""))
    return params


def _sound_files(out: Path, ids, convolved: bool) -> list[Path]:
    """``[STEM_rir/ID.wav ... (ID_convolved.wav ...), STEM_rir/scaling.csv]``; IDs that would share a file
    name are refused."""
    folder = out.with_name(out.stem + "_rir")
    names = [re.sub(r"[^A-Za-z0-9._-]", "_", str(i)) for i in ids]
    if len(set(names)) < len(names):
        shared = sorted({str(i) for i, name in zip(ids, names) if names.count(name) > 1})
        raise EdcInputError(f"room IDs {describe_rows(shared)} give the same WAV file name. "
                            "Fix: give every room an ID of its own (letters, digits, . _ -).")
    files = [folder / f"{name}.wav" for name in names]
    if convolved:
        files += [folder / f"{name}_convolved.wav" for name in names]
    return files + [folder / "scaling.csv"]


def _write_sounds(temps, files, ids, rirs, dry) -> None:
    """The RIRs (and the dry sound through each) as WAV files, and the scale of each in scaling.csv."""
    rows = [(i, file.name, write_wav(temp, h, RIR_FS)) for i, file, temp, h in zip(ids, files, temps, rirs)]
    if dry is not None:
        n = len(ids)
        for i, file, temp, h in zip(ids, files[n:], temps[n:], rirs):
            rows.append((i, file.name, write_wav(temp, fftconvolve(dry[0], h), RIR_FS)))
    pd.DataFrame(rows, columns=["ID", "file", "scale"]).to_csv(temps[-1], index=False)


def fftconvolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The full linear convolution of ``x`` and ``h`` (by FFT), ``(len(x) + len(h) - 1,)``."""
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]


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


def run(cfg: DictConfig):
    """The command on its composed config."""
    if not cfg.ckpt_path:
        raise EdcInputError("ckpt_path is not set. Fix: ckpt_path=RUN_DIR/checkpoints/best.ckpt")
    predict(cfg.ckpt_path, cfg.out, cfg.features_csv, cfg.room, cfg.plot, cfg.materials_file, cfg.rir, cfg.convolve)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
@task
def main(cfg: DictConfig):
    run(cfg)


if __name__ == "__main__":
    composed_once("predict", main, run)()
