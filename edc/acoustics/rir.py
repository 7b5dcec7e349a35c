"""A room impulse response rebuilt from octave-band energy decay curves (docs/auralisation.md).

The RIR at 48 kHz is the direct sound and the early reflections as pulses (the shoebox's image sources:
arrival times and band energies) plus a late part of seeded noise, one per octave band (a zero-phase
crossover), each band scaled by a gain that follows its curve less what the pulses carry. The gains undo
what the analysis does to them: the octave filters of docs/data.md spread energy in time (deconvolved) and
leak between neighbouring bands (inverted), so that the RIR, analysed as a simulated one is (pyfar's order-6
octave filters, Schroeder integration from the broadband onset), gives back the curves up to the noise of
one realisation, which is about the simulator's own (docs/auralisation.md measures both).

Energies are those of a unit white pulse's share in each octave (what the octave filter passes of a
pulse of energy 1), the units of :func:`edc.acoustics.room.octave_band_energy`.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from edc.acoustics import room
from edc.acoustics.decay_curves import octave_filter_bank, octave_filtered_energy
from edc.acoustics.iso3382 import OCTAVE_BANDS_HZ
from edc.acoustics.simulate import SIM_FS, SPEED_OF_SOUND

RIR_FS = SIM_FS  # Hz, the rate of a synthesised RIR (the simulator's)
_MID_HZ = np.array([1000.0 * 10.0 ** (0.3 * k) for k in range(-3, 4)])  # exact octave mid-band frequencies


def crossover(n_fft: int, fs: float = RIR_FS, fade_octaves: float = 1.0 / 3.0) -> np.ndarray:
    """``(7, n_fft // 2 + 1)`` zero-phase octave bands on the rfft bins: band ``b`` is 1 inside its octave
    and fades to its neighbour as ``cos^2`` in log frequency over ``fade_octaves`` around their edge, so
    the bands add up to 1 from 88 Hz to 11 kHz (the lowest and highest fade out the same way). The late
    part's noise uses narrow fades, which keep a band's decay out of its neighbours' octaves as the
    simulator's bands do; the pulses use fades of an octave (mid-band to mid-band), a smooth spectrum
    and so a short pulse."""
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    octave = np.log2(np.maximum(f, 1e-9) / _MID_HZ[0])  # 0 at 125 Hz, 6 at 8 kHz

    def rising(edge):  # 0 below edge - fade / 2, 1 above edge + fade / 2
        return np.sin(0.5 * np.pi * np.clip((octave - edge) / fade_octaves + 0.5, 0.0, 1.0)) ** 2

    return np.stack([rising(b - 0.5) - rising(b + 0.5) for b in range(len(_MID_HZ))])


def _filter_power(n_fft: int, fs: float = RIR_FS) -> np.ndarray:
    """``(7, n_fft // 2 + 1)``: ``|H_b(f)|^2`` of the octave filters of docs/data.md on the rfft bins."""
    import pyfar

    response = octave_filter_bank(fs).process(pyfar.signals.impulse(n_fft, sampling_rate=int(fs))).time[:, 0]
    return np.abs(np.fft.rfft(response, axis=-1)) ** 2


@functools.cache
def white_shares(fs: float = RIR_FS) -> np.ndarray:
    """``(7,)``: the energy each octave filter passes of a unit pulse (its share of white noise's power)."""
    return _filter_power(int(fs), fs).mean(-1)


@functools.cache
def band_leakage(fs: float = RIR_FS) -> np.ndarray:
    """``(7, 7)``: power that octave filter ``b`` (rows) passes of unit white noise through the late part's
    crossover band ``c`` (columns). Nearly diagonal; the octave filters' skirts reach into the neighbours."""
    n_fft = int(fs)
    return _filter_power(n_fft, fs) @ (crossover(n_fft, fs) ** 2).T / (n_fft // 2 + 1)


def room_rir(features: np.ndarray, band_edcs: np.ndarray, fs: float, band_energy: np.ndarray,
             seed: int = 0) -> np.ndarray:
    """:func:`synthesise` for one shoebox room, features ``(16,)`` or ``(93,)`` (docs/data.md): its image
    sources up to the simulator's order 3 (arrival times and octave energies, :mod:`edc.acoustics.room`)
    as the early reflections, the direct sound ``r / c`` after the RIR's first sample."""
    raw = torch.as_tensor(np.asarray(features, np.float64))[None]
    sample, energy = room.image_sources(raw, RIR_FS)  # (1, k), (1, k, 8)
    octaves = room.octave_band_energy(energy, torch.as_tensor(room.BAND_ENERGY, dtype=raw.dtype))[0]
    distance = float(room.geometry(raw)[2][0])
    return synthesise(band_edcs, fs, band_energy, sample[0].numpy() / RIR_FS, octaves.numpy(),
                      lead_s=distance / SPEED_OF_SOUND, seed=seed)


def synthesise(band_edcs: np.ndarray, fs: float, band_energy: np.ndarray, image_delays: np.ndarray,
               image_energies: np.ndarray, lead_s: float = 0.01, seed: int = 0) -> np.ndarray:
    """An RIR whose octave-band curves are, in expectation, ``band_edcs``.

    Args:
        band_edcs: ``(7, n)`` curves (linear energy, 1 at the onset) at ``fs`` Hz, 125 Hz to 8 kHz.
        band_energy: ``(7,)`` each band's whole energy, the level that scales its curve.
        image_delays: ``(k,)`` arrival (s) of the direct sound (0) and the early reflections after it.
        image_energies: ``(k, 7)`` their energy per band.
        lead_s: silence before the direct sound (s).
        seed: seed of the late part's noise (one seed, one sound).

    Returns:
        ``(n_rir,)`` float64 at :data:`RIR_FS`: ``lead_s`` and the curves' duration.
    """
    lead, n_edc = round(lead_s * RIR_FS), round(band_edcs.shape[-1] * RIR_FS / fs)
    n = lead + n_edc
    weights = crossover(2 * n)  # twice as long: the zero-phase bands' ringing does not wrap around
    shares = white_shares()
    early = _pulses(2 * n, lead, image_delays, image_energies / shares, crossover(2 * n, fade_octaves=1.0))[:n]
    target = _on_grid(band_edcs, fs, n_edc) * np.asarray(band_energy, np.float64)[:, None]  # (7, n_edc)
    # the noise's share: the curve's energy per sample less the pulses', both averaged over a period of the
    # band (a pulse's energy sits in a few samples), never below a trace of the curve's
    pulses = _density(_band_curves(early, _onset(early), n_edc))
    wanted = np.maximum(_smoothed(_density(target)) - _smoothed(pulses), 1e-6 * _smoothed(_density(target)))
    # one noise per band, so that the bands' energies add (the filters' leakage is then what it is on average)
    noise = np.fft.rfft(np.random.default_rng(seed).standard_normal((len(weights), 2 * n)))
    band_noise = _flattened(np.fft.irfft(weights * noise, 2 * n)[:, :n])  # (7, n)
    return early + _late(band_noise, wanted, lead)


def _late(band_noise: np.ndarray, density: np.ndarray, lead: int) -> np.ndarray:
    """The late part whose band curves have the energy ``density`` ``(7, n_edc)`` per sample (expected): each
    octave filter passes its own band's noise and some of its neighbours' (:func:`band_leakage`), spread in
    time (:func:`_deconvolved`)."""
    gain_sq = np.maximum(np.linalg.solve(band_leakage(), _deconvolved(density)), 1e-6 * density)
    gains = np.zeros_like(band_noise)
    gains[:, lead:] = np.sqrt(gain_sq)
    return (gains * band_noise).sum(0)


DECONVOLUTION_STEP = 24  # samples (0.5 ms): the grid on which the noise's envelope is deconvolved
DECONVOLUTION_ITERATIONS = 5


def _deconvolved(density: np.ndarray) -> np.ndarray:
    """``(7, n)``: the noise envelope per band whose energy, spread in time by the band's octave filter,
    is ``density`` ``(7, n)`` (the curves were filtered once already). Richardson-Lucy deconvolution with
    each filter's energy kernel (:func:`edc.acoustics.room.octave_energy_kernels`) on a 0.5 ms grid, which
    keeps the envelope non-negative and its energy; applied to ``density`` as a factor per grid interval."""
    step = DECONVOLUTION_STEP
    m = density.shape[-1] // step
    coarse = density[:, :m * step].reshape(len(density), m, step).sum(-1)
    kernels = room.octave_energy_kernels(RIR_FS / step, int(0.1 * RIR_FS / step)).double().numpy()  # (7, k)
    estimate = coarse.copy()
    for _ in range(DECONVOLUTION_ITERATIONS):
        spread = np.stack([np.convolve(e, k)[:m] for e, k in zip(estimate, kernels)])
        ratio = np.divide(coarse, spread, out=np.zeros_like(coarse), where=spread > 0)
        estimate *= np.stack([np.correlate(np.pad(r, (0, len(k) - 1)), k, "valid") for r, k in zip(ratio, kernels)])
    factor = np.divide(estimate, coarse, out=np.ones_like(coarse), where=coarse > 0)
    factor = np.pad(np.repeat(factor, step, axis=-1), ((0, 0), (0, density.shape[-1] - m * step)), mode="edge")
    return density * factor


def _flattened(band_noise: np.ndarray) -> np.ndarray:
    """Each band's noise divided by its own power averaged over 4 periods of the band's mid-band frequency
    (a moving mean; 2 ms at least), times the band's mean power: the same noise within a few periods, without
    the slow swells of one realisation, so that the energy of every few tens of ms is what the curve asks
    (a band-limited noise's energy over 50 ms at 125 Hz varies by about half from seed to seed otherwise)."""
    out = np.empty_like(band_noise)
    for b, band in enumerate(OCTAVE_BANDS_HZ):
        width = max(int(4.0 * RIR_FS / band), int(0.002 * RIR_FS))
        total = np.concatenate([[0.0], np.cumsum(band_noise[b] ** 2)])
        index = np.arange(band_noise.shape[-1])
        low, high = np.clip(index - width // 2, 0, None), np.clip(index + width // 2 + 1, None, band_noise.shape[-1])
        power = (total[high] - total[low]) / (high - low)
        out[b] = band_noise[b] * np.sqrt(power.mean() / power)
    return out


def _pulses(n_fft: int, lead: int, delays, spectra, weights) -> np.ndarray:
    """``(n_fft,)``: a pulse per image at ``lead + delay``, its amplitude in band b ``sqrt(spectra[:, b])``
    (energy per unit of white power), fractional delays exact (in frequency)."""
    f = np.fft.rfftfreq(n_fft, 1.0 / RIR_FS)
    spectrum = np.zeros(len(f), complex)
    for delay, level in zip(np.asarray(delays, np.float64), np.sqrt(np.asarray(spectra, np.float64))):
        spectrum += (level @ weights) * np.exp(-2j * np.pi * f * (lead / RIR_FS + delay))
    return np.fft.irfft(spectrum, n_fft)


def _on_grid(curves: np.ndarray, fs: float, n: int) -> np.ndarray:
    """``(7, n)``: the curves at :data:`RIR_FS`, interpolated in dB (and floored at -300 dB)."""
    t = np.arange(curves.shape[-1]) / fs
    level = 10.0 * np.log10(np.clip(np.asarray(curves, np.float64), 1e-30, None))
    return 10.0 ** (np.stack([np.interp(np.arange(n) / RIR_FS, t, band) for band in level]) / 10.0)


def _onset(rir: np.ndarray) -> int:
    """docs/data.md's onset: the first sample within 20 dB of the squared peak."""
    energy = rir * rir
    return int(np.argmax(energy >= energy.max() * 1e-2))


def _band_curves(rir: np.ndarray, onset: int, n: int) -> np.ndarray:
    """``(7, n)`` absolute band curves (not normalised) of ``rir`` from ``onset``: octave filters, squares,
    backward sums."""
    energy = octave_filtered_energy(rir, RIR_FS)
    tail = np.flip(np.cumsum(np.flip(energy, -1), -1), -1)[:, onset:onset + n]
    return np.pad(tail, ((0, 0), (0, n - tail.shape[-1])))


def _density(curves: np.ndarray) -> np.ndarray:
    """``(7, n)`` energy per sample from backward sums (the last sample keeps what is left)."""
    return curves - np.pad(curves[:, 1:], ((0, 0), (0, 1)))


def _smoothed(density: np.ndarray) -> np.ndarray:
    """Each band's density averaged (Hann window) over a period of its mid-band frequency (2 ms at least):
    a gain that follows it changes slowly against the band's bandwidth, so it moves no energy to other bands
    (the curves' 1 ms grid would, by steps)."""
    out = np.empty_like(density)
    for b, band in enumerate(OCTAVE_BANDS_HZ):
        kernel = np.hanning(max(int(RIR_FS / band), int(0.002 * RIR_FS)) + 2)[1:-1]
        out[b] = np.convolve(density[b], kernel / kernel.sum(), mode="same")
    return out
