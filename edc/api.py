"""Python API: ``edc.load(ckpt).predict(features)`` -> EDCs and ISO 3382-1 parameters.

Inference reads a checkpoint without Lightning or Hydra: the tensors and the run config (plain
data, ``torch.load(weights_only=True)``), and builds only the :class:`edc.models.Surrogate`.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from edc.acoustics.decay_curves import n_samples
from edc.acoustics.iso3382 import parameter_columns
from edc.acoustics.rir import room_rir
from edc.data.schema import FEATURES, LAYOUTS, OPTIONAL_COLUMNS, layout_of, paper_features, to_surfaces
from edc.data.validation import validate_features
from edc.errors import EdcInputError, describe_rows
from edc.models import Surrogate, build_surrogate, predict_in_batches

# classes a config of an earlier edc names by the module they lived in then
MOVED_TARGETS = {"edc.losses.": "edc.training.losses.", "edc.datamodule.": "edc.training.datamodule.",
                 "edc.sweep.": "edc.runs.sweep."}


def upgrade(config: dict) -> dict:
    """A run config written by an earlier edc, in today's keys (a copy): scalers under ``model``
    (they were under ``data``), classes at their present module paths."""
    config = copy.deepcopy(config)
    model, data = config["model"], config["data"]
    feature_scaler, target_scaler = data.pop("feature_scaler", None), data.pop("target_scaler", None)
    model.setdefault("feature_scaler", feature_scaler or "standard")
    if model.get("target_scaler") is None:
        model["target_scaler"] = target_scaler or "standard"
    model.setdefault("target", "linear")

    def moved(node):
        if isinstance(node, dict):
            return {k: moved(v) for k, v in node.items()}
        if isinstance(node, list):
            return [moved(v) for v in node]
        if isinstance(node, str):
            for old, new in MOVED_TARGETS.items():
                if node.startswith(old):
                    return new + node[len(old):]
        return node

    return moved(config)


RANGE_SLACK = 0.01  # a feature counts as outside its training range beyond 1 % of the range's width


class Predictor:
    """A trained model with its scalers, ready to predict on new rooms."""

    def __init__(self, surrogate: Surrogate, config: dict):
        self.surrogate, self.config = surrogate.eval(), config
        self.fs = surrogate.fs
        self.layout = config.get("feature_layout", "paper")  # the rooms it reads: 16 columns or a material per surface

    def _rooms(self, features: pd.DataFrame, source: str) -> pd.DataFrame:
        """Validated rooms; IDs ``room0, room1, ...`` where the table has none."""
        if "ID" not in features.columns:
            features = features.assign(ID=[f"room{i}" for i in range(len(features))])
        if layout_of(features.columns) == "paper":
            features = features[["ID"] + FEATURES + [c for c in OPTIONAL_COLUMNS if c in features.columns]]
        return self.in_layout(validate_features(features, source), source)

    def in_layout(self, rooms: pd.DataFrame, source: str) -> pd.DataFrame:
        """Validated ``rooms`` in the layout the model reads: 16-column rooms as their surfaces copy for a
        surfaces model; surfaces rooms as 16 columns for a paper model where they have one material
        everywhere (others are refused, :func:`edc.data.schema.paper_features`)."""
        if self.layout == "surfaces":
            return to_surfaces(rooms) if layout_of(rooms.columns) == "paper" else rooms
        return paper_features(rooms, source)

    def outside_training(self, rooms: pd.DataFrame) -> str | None:
        """A warning naming the features in which ``rooms`` leave the training rooms' ranges (by more than
        :data:`RANGE_SLACK` of their width: a database material's scattering of 0.1 beside trained 0.101 is in), or None
        (all inside, or a checkpoint written before edc kept the ranges)."""
        ranges = self.config.get("feature_ranges")
        if not ranges:
            return None
        slack = {name: RANGE_SLACK * (high - low) + 1e-9 for name, (low, high) in ranges.items()}
        outside = {name: (rooms[name].to_numpy() < low - slack[name]) | (rooms[name].to_numpy() > high + slack[name])
                   for name, (low, high) in ranges.items() if name in rooms}
        named = [f"{name} {int(mask.sum())}x (trained on {ranges[name][0]:g} to {ranges[name][1]:g})"
                 for name, mask in outside.items() if mask.any()]
        if not named:
            return None
        n_out = int(np.any(list(outside.values()), axis=0).sum())
        return (f"{n_out} of {len(rooms)} rooms lie outside the training rooms' ranges: {describe_rows(named)}. "
                "Their predictions are extrapolations.")

    def predict(self, features: pd.DataFrame, source: str = "features", validated: bool = False, warn: bool = True):
        """Curves ``(n, C, n_samples)`` (linear energy at ``fs`` Hz; C = 8: broadband, then 125 Hz to 8 kHz;
        C = 1: broadband) and a DataFrame ``ID, EDT, T20, T30, C50, C80, D50`` (broadband) and, for a band
        model, the same per band ``EDT_125 ... D50_8000`` with ``EDT_mid``, ``T20_mid`` (s, dB, a fraction
        for D; NaN where undefined). ``validated``: the table was checked and put in the model's layout
        already (:meth:`in_layout`); ``warn``: a warning
        (:meth:`outside_training`) for rooms outside the training ranges."""
        rooms = features if validated else self._rooms(features, source)
        if warn and (outside := self.outside_training(rooms)):
            warnings.warn(outside, stacklevel=2)
        curves = predict_in_batches(self.surrogate, torch.as_tensor(rooms[LAYOUTS[self.layout]].to_numpy(np.float32)))
        return curves, pd.DataFrame({"ID": rooms["ID"].tolist(), **parameter_columns(curves, self.fs)})


    def rir(self, features: pd.DataFrame, source: str = "features", seed: int = 0,
            validated: bool = False) -> list[np.ndarray]:
        """Room impulse responses of the rooms, one ``(n,)`` float64 array at 48 kHz each (relative to a unit
        white pulse at 1 m; :func:`edc.acoustics.rir.room_rir`): the image sources and a noise that follows
        the predicted octave-band curves at the model's band levels (:meth:`Surrogate.band_energies`).
        ``seed`` seeds every room's noise: the same room always sounds the same. ``validated`` as in
        :meth:`predict`."""
        if self.surrogate.n_curves == 1:
            raise EdcInputError("this checkpoint predicts the broadband curve only, and an RIR is built from "
                                "the octave-band curves. Fix: use a checkpoint trained on band curves (e.g. data=paper6000_bands, data=rooms3000).")
        rooms = features if validated else self._rooms(features, source)
        curves, _ = self.predict(rooms, validated=True, warn=False)
        raw = rooms[LAYOUTS[self.layout]].to_numpy(np.float64)
        energies = self.surrogate.band_energies(torch.as_tensor(raw, dtype=torch.float32)).numpy()
        return [room_rir(row, bands, self.fs, energy, seed) for row, bands, energy in zip(raw, curves[:, 1:], energies)]


def physics_prior(rooms: pd.DataFrame, duration: float = 3.0, fs: float = 1000.0) -> Predictor:
    """A band model without training: the physics model's closed-form part (its learned corrections start
    at 0), for rooms in the layout of ``rooms`` (which its input scaling is fitted on). What Eyring, Barron
    and the image sources predict; a checkpoint-free stand-in for :func:`load` (the auralisation example)."""
    from edc.models import PhysicsEDC, Scaler, TargetTransform

    layout = layout_of(rooms.columns)
    raw = torch.as_tensor(rooms[LAYOUTS[layout]].to_numpy(np.float32))
    n_out = round(duration * fs)
    net = PhysicsEDC(raw.shape[1], n_out, fs, band_hidden=(8,), hidden=(8,), memory_size=0, n_curves=8)
    net.fit_features(raw)
    surrogate = Surrogate(net, Scaler("none", raw.shape[1]), TargetTransform("db", "none", 8 * n_out), fs)
    return Predictor(surrogate, {"feature_layout": layout, "data": {"duration": duration, "target_fs": fs}})


def read_checkpoint(path) -> dict:
    """The checkpoint's tensors and config, read as plain data (no code in the file runs)."""
    path = Path(path)
    if not path.is_file():
        raise EdcInputError(f"{path}: checkpoint not found. Fix: pass ckpt_path=RUN_DIR/checkpoints/best.ckpt.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        checkpoint["edc_config"] = upgrade(checkpoint["edc_config"])
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise EdcInputError(f"{path}: not an edc checkpoint ({type(err).__name__}: {err}). "
                            "Fix: pass a best.ckpt or last.ckpt written by python -m edc.train.") from None
    return checkpoint


def load(ckpt_path) -> Predictor:
    """Rebuild a trained model from its checkpoint alone (config and scalers inside)."""
    checkpoint = read_checkpoint(ckpt_path)
    config = checkpoint["edc_config"]
    data = config["data"]
    surrogate = build_surrogate(config["model"], len(LAYOUTS[config.get("feature_layout", "paper")]),
                                n_samples(data["duration"], data["target_fs"]),
                                data["target_fs"], 8 if data.get("bands") else 1)
    try:
        surrogate.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise EdcInputError(f"{ckpt_path}: its weights do not fit the network its config describes ({err}). "
                            "Fix: pass the checkpoint unchanged, as python -m edc.train wrote it; a checkpoint of an "
                            "older edc needs training again (the physics model of the surfaces layout reads each "
                            "surface's coefficients since 2026-12-06, in the same order for a room's mirror images "
                            "since 2026-12-07).") from None
    return Predictor(surrogate, config)
