"""What absorption would I need? Free absorption per octave band on every surface that may be treated,
found by following the model's gradients (``search.continuous=true``, docs/design.md).

Each treatable surface gets one coefficient per band, ``a`` in [0.01, 1], over the largest share of it
that may be treated (the rest keeps its untreated finish, scattering stays the untreated one's). Adam
minimises the squared violations of the target (in JNDs, with the search's safety) plus a small cost of
the absorbed area (of the coefficients that reach the target, the least absorbing) and of jumps between
neighbouring bands (real absorbers' spectra are smooth). The result is the model's answer: with
``verify`` it is simulated like the chosen design.
"""
from __future__ import annotations

import numpy as np
import torch

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.acoustics.iso3382 import MID_BANDS, parameters
from edc.data.schema import LAYOUTS, absorption_columns
from edc.inverse.problem import Problem

NAMES = {"EDT": "edt", "T20": "t20", "C50": "c50"}
SMOOTHNESS = 0.1  # weight of the squared change between neighbouring bands (absorption units)
AIM_INSIDE = 0.5  # JND beyond the safety that the optimiser aims for: a squared hinge leaves values just short


def _bound_values(curves: torch.Tensor, columns: list[str], fs: float) -> torch.Tensor:
    """``(n, n_bounds)`` the bounded parameters of band curves ``(n, 8, n_samples)``, differentiable."""
    values = parameters(curves[:, 1:].double(), fs, names=("edt", "t20", "c50"))  # each (n, 7)
    out = []
    for column in columns:
        parameter, band = column.split("_")
        name = NAMES[parameter]
        if band == "mid":
            out.append(sum(values[name][:, OCTAVE_BANDS_HZ.index(b)] for b in MID_BANDS) / len(MID_BANDS))
        else:
            out.append(values[name][:, OCTAVE_BANDS_HZ.index(int(band))])
    return torch.stack(out, -1)


def needed_absorption(surrogate, problem: Problem, safety: float = 1.0, steps: int = 300,
                      area_cost: float = 1e-3) -> dict:
    """``{"absorption": {surface: [a125 .. a8000]}, "fraction": {surface: share}, "rows": DataFrame}``: the
    coefficients found for the treatable surfaces and the designed room's rows (every receiver)."""
    free = [i for i, s in enumerate(problem.surfaces) if len(s.choices) > 1]
    fraction = {i: max(c.fraction for c in problem.surfaces[i].choices) for i in free}
    rows = problem.rows(np.zeros((1, len(problem.surfaces)), np.int64))
    raw = torch.as_tensor(rows[LAYOUTS["surfaces"]].to_numpy(np.float32))
    index = {i: [LAYOUTS["surfaces"].index(c) for c in absorption_columns(problem.surfaces[i].name)] for i in free}
    untreated = {i: raw[0, index[i]].clone() for i in free}
    bounds = problem.target.bounds
    low = torch.tensor([-np.inf if b.low is None else b.low for b in bounds], dtype=torch.float64)
    high = torch.tensor([np.inf if b.high is None else b.high for b in bounds], dtype=torch.float64)
    jnd = torch.tensor([b.jnd for b in bounds], dtype=torch.float64)
    areas = torch.tensor([problem.surfaces[i].area * fraction[i] for i in free], dtype=torch.float64)
    logits = torch.zeros(len(free), len(OCTAVE_BANDS_HZ), requires_grad=True)  # a = 0.5 at the start
    optimiser = torch.optim.Adam([logits], lr=0.1)
    surrogate.eval()
    for _ in range(steps):
        absorption = 0.01 + 0.99 * torch.sigmoid(logits)
        curves = surrogate.target_transform.decode(surrogate(_designed(raw, free, index, untreated, fraction, absorption)))
        values = _bound_values(curves, [b.column for b in bounds], surrogate.fs)
        inside = torch.minimum(values - low, high - values) / jnd
        lacking = torch.nan_to_num(torch.relu(safety + AIM_INSIDE - inside), nan=10.0)
        smooth = (absorption[:, 1:] - absorption[:, :-1]).square().mean()  # real spectra change slowly with band
        loss = (lacking ** 2).mean() + area_cost * (areas[:, None] * absorption.double()).sum() / areas.sum() \
            + SMOOTHNESS * smooth
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    absorption = (0.01 + 0.99 * torch.sigmoid(logits)).detach()
    designed = _designed(raw, free, index, untreated, fraction, absorption).numpy().astype(np.float64)
    rows[LAYOUTS["surfaces"]] = designed
    return {"absorption": {problem.surfaces[i].name: [round(float(a), 3) for a in absorption[k]] for k, i in enumerate(free)},
            "fraction": {problem.surfaces[i].name: fraction[i] for i in free}, "rows": rows}


def _designed(raw, free, index, untreated, fraction, absorption) -> torch.Tensor:
    """``raw`` with each free surface's absorption the mix of ``absorption`` over its fraction."""
    out = raw.clone()
    for k, i in enumerate(free):
        out[:, index[i]] = fraction[i] * absorption[k] + (1 - fraction[i]) * untreated[i]
    return out
