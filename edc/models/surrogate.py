"""The trained predictor: feature scaler, network and target transform, raw room features in,
linear-energy curves out: ``(b, C, n_samples)``, C = 8 (the broadband curve, then the octave bands
125 Hz to 8 kHz) or C = 1 (broadband). Inference needs only this (no Lightning); the Lightning module of
training (:class:`edc.training.module.EdcModule`) is a Surrogate with a loss and an optimizer,
so both share one state-dict layout."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from edc.acoustics import room
from edc.models.scaling import Scaler, TargetTransform


class EdcNet(nn.Module):
    """Base of every network: ``forward(x, raw) -> (batch, n_curves, n_out)`` in the target space, where
    ``x`` is the scaled feature vector ``(batch, n_features)`` and ``raw`` the same rooms in physical
    units ``(batch, 16)`` (m, absorption); ``n_out`` is the number of grid samples, ``n_curves`` 1
    (broadband) or 8 (broadband, then the 7 octave bands)."""

    def fit_features(self, raw: torch.Tensor) -> None:
        """Fit what the network scales by itself on the training rooms ``(n, 16)`` (default: nothing)."""


class Surrogate(nn.Module):
    """Raw features ``(b, 16)`` -> curves ``(b, C, n_samples)`` on a grid of ``fs`` Hz.

    The one owner of scaling: :meth:`fit_scalers` fits the feature scaler, the network's own
    input scaling and the target transform on the training rooms.
    """

    def __init__(self, model: EdcNet, feature_scaler: Scaler, target_transform: TargetTransform, fs: float,
                 **kwargs):
        super().__init__(**kwargs)
        self.model, self.feature_scaler, self.target_transform = model, feature_scaler, target_transform
        self.fs = float(fs)

    @property
    def n_curves(self) -> int:
        return self.model.n_curves

    @property
    def n_samples(self) -> int:
        """Samples per curve: the target transform holds one column per curve and sample."""
        return self.target_transform.scaler.shift.numel() // self.n_curves

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw features ``(b, 16)`` -> model output in target space ``(b, C, n_samples)``."""
        return self.model(self.feature_scaler(raw), raw)

    @torch.no_grad()
    def predict_edc(self, raw: torch.Tensor, out: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """Raw features ``(b, 16)`` -> linear-energy curves ``(b, C, n_samples)`` float32, written into
        ``out`` where given (no autograd); a model with its own energy pass (:attr:`sorts_rooms`) takes the
        rooms ``batch_size`` at a time in its own order."""
        if self.sorts_rooms:
            return self.model.predict_energy(raw, out=out, batch_size=batch_size)
        return self.target_transform.decode(self(raw), out=out).float()

    @property
    def sorts_rooms(self) -> bool:
        """Whether the model computes linear energy itself (the physics model with its level in dB as the
        target), in batches of rooms alike (:meth:`edc.models.physics.PhysicsEDC.predict_energy`)."""
        return hasattr(self.model, "predict_energy") and self.target_transform.is_level_db

    @torch.no_grad()
    def fit_scalers(self, raw: torch.Tensor, curves) -> None:
        """Fit every scaler on the training split: raw features ``(n, 16)`` and the linear curves, as
        ``(rows, C, n_samples)`` chunks (or one tensor)."""
        self.feature_scaler.fit(raw)
        self.model.fit_features(raw)
        self.target_transform.fit([curves] if isinstance(curves, torch.Tensor) else curves)

    @torch.no_grad()
    def band_energies(self, raw: torch.Tensor) -> torch.Tensor:
        """``(b, 7)`` the whole energy of each octave curve (relative to 1/r^2, a unit white pulse's share): the
        network's own where it computes one (the physics model), else Barron's revised theory
        (:func:`edc.acoustics.room.barron_band_energy`)."""
        own = getattr(self.model, "band_energies", None)
        return (own(raw) if own is not None else room.barron_band_energy(raw.double())).double()

    def parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))


SORTING_POOL = 4096  # rooms a model that orders them (:attr:`Surrogate.sorts_rooms`) orders at once


def predict_in_batches(surrogate: Surrogate, raw: torch.Tensor, batch_size: int = 256,
                       workers: int | None = None) -> np.ndarray:
    """Linear curves ``(n, C, n_samples)`` float32 for raw features ``(n, 16)`` (eval mode, CPU or GPU); each
    batch is decoded straight into the collecting array on the CPU. A model that orders its rooms
    (:attr:`Surrogate.sorts_rooms`) is handed ``SORTING_POOL`` of them at a time and batches them itself.
    On the CPU, ``workers`` Python threads (default: torch's thread count, at most one per batch) each predict
    a contiguous share of the rooms with one torch thread (:func:`_on_threads`)."""
    surrogate.eval()
    device = next(surrogate.parameters()).device
    if len(raw) == 0:
        return np.zeros((0, surrogate.n_curves, 0), np.float32)
    curves = torch.empty((len(raw), surrogate.n_curves, surrogate.n_samples), dtype=torch.float32)
    pool = SORTING_POOL if surrogate.sorts_rooms else batch_size  # rooms handed over at once

    def predict(start: int, stop: int) -> None:
        with torch.inference_mode():  # thread-local: entered by each worker
            for i in range(start, stop, pool):
                end = min(i + pool, stop)
                batch, rows = raw[i:end].to(device), curves[i:end]
                if device.type == "cpu":
                    surrogate.predict_edc(batch, out=rows, batch_size=batch_size)
                else:
                    rows.copy_(surrogate.predict_edc(batch, batch_size=batch_size))

    if device.type != "cpu":
        predict(0, len(raw))
    else:
        _on_threads(predict, len(raw), min(workers or torch.get_num_threads(), -(-len(raw) // batch_size)))
    return curves.numpy()


def _on_threads(predict, n_rooms: int, workers: int) -> None:
    """``predict(start, stop)`` over ``workers`` contiguous shares of ``n_rooms`` rooms, each on a Python thread
    of its own that flushes subnormal floats to zero (:func:`_flushing`); where there are several, each computes
    with one torch thread (torch's count is 1 meanwhile, then set back). The rooms' batches then run side by
    side, their small operations included, where one batch at a time leaves the cores idle between the
    parallel parts of its operations: on 2 cores a quarter less time a room (docs/model.md#speed)."""
    bounds = [round(k * n_rooms / workers) for k in range(workers + 1)]
    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)  # threads started from here on compute with one
    try:
        with ThreadPoolExecutor(workers) as executor:
            list(executor.map(functools.partial(_flushing, predict), bounds[:-1], bounds[1:]))
    finally:
        torch.set_num_threads(threads)


def _flushing(predict, start: int, stop: int) -> None:
    """``predict(start, stop)`` with subnormal floats (below 1.2e-38: energies 380 dB down) read and written as
    0 on this thread and the threads it starts. On x86 CPUs an operation that meets or makes one takes a
    hundred times as long, and the octave filters' tails make them (an eighth of a band model's time on 2 cores,
    docs/model.md#speed). The thread is prediction's own: the caller's keeps its setting."""
    torch.set_flush_denormal(True)
    predict(start, stop)
