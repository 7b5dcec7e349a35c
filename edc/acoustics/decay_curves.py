"""Energy decay curves of room impulse responses, broadband and per octave band (docs/data.md).

The octave bands are pyfar's IEC 61260-1 filter bank (order 6) applied to the whole RIR; every
band is cut at the broadband onset, so that all curves of a room share one time axis.
"""
from __future__ import annotations

import numpy as np
import torch

from edc.acoustics.iso3382 import OCTAVE_BANDS_HZ, from_tensor, to_tensor

FILTER_ORDER = 6  # Butterworth order of each octave band-pass


def n_samples(duration: float, fs: float) -> int:
    """Samples of a curve of ``duration`` s at ``fs`` Hz: ``round(duration * fs)``."""
    return int(round(duration * fs))


def energy_decay_curve(rir, fs: float, duration: float = 2.0, octave_bands: bool = False):
    """Onset-aligned Schroeder energy decay curve of room impulse responses.

    Onset is the first sample whose energy ``h^2`` is within 20 dB of its maximum
    (ISO 3382-1, A.3.4); samples before it are dropped. ``E(t) = sum_{tau>=t} h^2``
    over the whole RIR, normalised to ``E(0) = 1``, then cut or zero-padded to
    ``duration`` seconds.

    Args:
        rir: ``(..., n_rir)`` impulse responses, numpy or torch.
        fs: sampling rate in Hz.
        duration: length of the returned EDC in s.
        octave_bands: if True, filter the whole RIR into the octave bands 125 Hz to
            8 kHz first (:func:`octave_filter_bank`), cut every band at the broadband
            onset and return ``(..., 7, n_samples)``.

    Returns:
        ``(..., n_samples)`` linear-energy EDCs with ``n_samples = round(duration * fs)``
        (float64 for numpy input).
    """
    rir, was_numpy = to_tensor(rir)
    energy = rir * rir
    onset = torch.argmax((energy >= energy.amax(-1, keepdim=True) * 1e-2).to(torch.int8), dim=-1)
    if octave_bands:
        energy = _octave_band_energy(rir, fs)
        onset = onset.unsqueeze(-1)
    # Reverse cumulative sum: the order that reproduces the shared data bit for bit.
    tail = torch.flip(torch.cumsum(torch.flip(energy, (-1,)), -1), (-1,))
    n_out = n_samples(duration, fs)
    index = onset.unsqueeze(-1) + torch.arange(n_out, device=rir.device)
    inside = index < energy.shape[-1]
    curve = torch.gather(tail, -1, index.clamp(max=energy.shape[-1] - 1).expand(*tail.shape[:-1], n_out))
    curve = torch.where(inside, curve, torch.zeros_like(curve))
    curve = curve / curve[..., :1]
    return from_tensor(curve, was_numpy)


def octave_filter_bank(fs: float):
    """The octave filter bank of docs/data.md: pyfar's IEC 61260-1 octave bands 125 Hz to 8 kHz, Butterworth
    band-passes of order 6 (second-order sections, applied causally from sample 0), a
    ``pyfar.FilterSOS`` with 7 channels."""
    import pyfar

    return pyfar.dsp.filter.fractional_octave_bands(None, num_fractions=1, sampling_rate=int(fs),
                                                    frequency_range=(OCTAVE_BANDS_HZ[0], OCTAVE_BANDS_HZ[-1]),
                                                    order=FILTER_ORDER)


def octave_filtered_energy(rir: np.ndarray, fs: float) -> np.ndarray:
    """``(..., 7, n)`` float64: the squared octave bands of RIRs ``(..., n)`` (:func:`octave_filter_bank`
    on the whole RIR, from sample 0)."""
    import pyfar

    h = np.asarray(rir, dtype=np.float64)
    lead, n = h.shape[:-1], h.shape[-1]
    bands = octave_filter_bank(fs).process(pyfar.Signal(h.reshape(-1, n), int(fs))).time  # (7, m, n)
    bands = np.moveaxis(bands, 0, 1).reshape(*lead, len(OCTAVE_BANDS_HZ), n)
    return bands * bands


def _octave_band_energy(rir: torch.Tensor, fs: float) -> torch.Tensor:
    """:func:`octave_filtered_energy` of a tensor, in its dtype and device."""
    energy = octave_filtered_energy(rir.detach().cpu().numpy(), fs)
    return torch.as_tensor(energy, dtype=rir.dtype, device=rir.device)
