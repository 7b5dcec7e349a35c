"""Closed-form room acoustics: Sabine/Eyring decay per octave band and Barron's EDC.

These give the physics baseline of the benchmark and the prior of the ``physics``
model. Inputs are the 16 room features in physical units, ``(..., 16)`` (torch,
any float dtype); outputs keep the leading axes.
"""
from __future__ import annotations

import math

import torch

# Energy attenuation of air in 1/m per octave band 125 Hz - 8 kHz: pyroomacoustics'
# default (20 °C, 30-50 % humidity), so the baseline matches the simulator.
AIR_ABSORPTION = (0.1e-3, 0.3e-3, 0.6e-3, 1.0e-3, 1.9e-3, 5.8e-3, 20.3e-3)
SPEED_OF_SOUND = 343.0  # m/s, pyroomacoustics' default
DECAY_60_DB = 6.0 * math.log(10.0)  # ln(1e6) = 13.82: energy decays by 60 dB


def geometry(features: torch.Tensor):
    """``(volume m^3, surface m^2, source-receiver distance m)``, each ``(...)``."""
    length, width, height = features[..., 0], features[..., 1], features[..., 2]
    volume = length * width * height
    surface = 2.0 * (length * width + length * height + width * height)
    distance = torch.linalg.vector_norm(features[..., 3:6] - features[..., 6:9], dim=-1)
    return volume, surface, distance


def reverberation_time(features: torch.Tensor, formula: str = "eyring") -> torch.Tensor:
    """Reverberation time per octave band (s), ``(..., 7)``, with air absorption.

    Sabine: ``T = 24 ln10 V / (c (S a + 4 m V))``; Eyring: ``S a`` becomes
    ``-S ln(1 - a)``. ``a`` is the absorption f1..f7 of all surfaces, ``m`` air's.
    """
    volume, surface, _ = geometry(features)
    alpha = features[..., 9:16]
    air = torch.as_tensor(AIR_ABSORPTION, dtype=features.dtype, device=features.device)
    if formula == "sabine":
        absorption_area = surface[..., None] * alpha
    elif formula == "eyring":
        absorption_area = -surface[..., None] * torch.log1p(-alpha.clamp(max=0.999))
    else:
        raise ValueError(f"formula must be 'sabine' or 'eyring', got {formula!r}")
    total = absorption_area + 4.0 * air * volume[..., None]
    return 4.0 * DECAY_60_DB * volume[..., None] / (SPEED_OF_SOUND * total)


def barron_edc(features: torch.Tensor, fs: float, n_samples: int, formula: str = "eyring") -> torch.Tensor:
    """Broadband EDC from Barron's revised theory, ``(..., n_samples)``, E(0) = 1.

    Per band ``b`` (equal source energy per octave): the direct sound carries
    ``100 / r^2 exp(-m_b r)`` at t = 0 (the onset), the reflected energy left after
    time t is ``(31200 T_b / V) exp(-13.82 (t + r / c) / T_b)``. The bands are summed.
    """
    volume, _, distance = geometry(features)
    decay = reverberation_time(features, formula)  # (..., 7)
    air = torch.as_tensor(AIR_ABSORPTION, dtype=features.dtype, device=features.device)
    t = torch.arange(n_samples, dtype=features.dtype, device=features.device) / fs
    delay = (distance / SPEED_OF_SOUND)[..., None, None]
    reflected = (31200.0 * decay / volume[..., None])[..., None] * torch.exp(
        -DECAY_60_DB * (t + delay) / decay[..., None])  # (..., 7, n)
    direct = 100.0 / distance[..., None] ** 2 * torch.exp(-air * distance[..., None])  # (..., 7)
    energy = reflected.sum(-2)
    energy = torch.cat([energy[..., :1] + direct.sum(-1, keepdim=True), energy[..., 1:]], dim=-1)
    return energy / energy[..., :1]
