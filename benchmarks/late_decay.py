"""What sets the late decay of realistic rooms: the simulator's own ray rules, in expectation, against its output.

    python benchmarks/late_decay.py              # 200 new rooms (rooms-offgrid300 and its floor set): about 2 min
    python benchmarks/late_decay.py --rooms 40 --rays 250
    python benchmarks/late_decay.py --set training   # 200 training rooms of rooms6000 (one simulation each)

pyroomacoustics (0.10, ``libroom_src/room.cpp``) traces each ray specularly, multiplies its energy by ``1 - a``
at every wall, and after each hit turns it to ``normalize(s L + (1 - s) R)``: ``R`` the specular direction,
``L`` a Lambertian one, ``s`` the wall's scattering averaged over the bands. It logs a ray passing within
0.5 m of the receiver (after the image-source order) and, at every hit, ``s`` of the ray's energy sent
straight to the receiver (the diffuse rain), without taking it from the ray.

This script follows those rules for random rays, with the receiver's hits taken in expectation (a ray
passes the receiver sphere at ``pi R^2 c / V`` per second, each pass logged as ``2 T / R^2``), adds the
exact image sources (order <= 3) and passes the simulator's 8 bands through the octave filters' leakage
(:data:`edc.acoustics.room.OCTAVE_LEAKAGE`). It compares EDT and T20 per octave with the mean of the two
simulations of each room, beside:

- the physics model's prior: the same image sources, then the late decay of
  :func:`edc.acoustics.room.specular_decay_rates` (its quadrature over directions) from the first
  4th-order arrival, at the rays' diffuse level ``4 pi c / V`` (no learning);
- the same rays without the turn towards a Lambertian direction (specular rays only);
- the floor: the two simulations' mean |difference| / sqrt(2), relative to the room's value.

Errors are relative: mean |estimate - simulation| / simulation, and the mean signed error (bias).
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
import bands  # noqa: E402
from common import report  # noqa: E402
from datasets import DATA  # noqa: E402

from edc.acoustics import OCTAVE_BANDS_HZ  # noqa: E402
from edc.acoustics import room  # noqa: E402
from edc.acoustics.iso3382 import parameters  # noqa: E402
from edc.data import load_compact  # noqa: E402
from edc.data.splits import split_rows  # noqa: E402

FS, DURATION = 1000, 5.0  # the stored curves' grid (Hz) and length (s)
N_SAMPLES = int(FS * DURATION)
RECEIVER_RADIUS = 0.5  # m: pyroomacoustics' default
ENERGY_0 = 2.0  # pyroomacoustics' ray energy in all (libroom constants), in the image sources' units (1 / r^2)
NAMES = ("edt", "t20")
ABSORBER = 0.6  # a surface's absorption above which its room counts as having an absorber


def _wall_distances(position, direction, dims):
    """Distance (m) along ``direction`` to the next wall of each axis, ``(n, 3)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(direction > 0, (dims - position) / direction,
                        np.where(direction < 0, -position / direction, np.inf))


def _lambertian(rng, axis, inward):
    """Lambertian directions ``(n, 3)`` about each hit wall's inward normal (Malley's method, as the simulator)."""
    n = len(axis)
    u1, u2 = rng.random(n), rng.random(n)
    out = np.zeros((n, 3))
    rows = np.arange(n)
    out[rows, axis] = inward * np.sqrt(1.0 - u1)
    out[rows, (axis + 1) % 3] = np.sqrt(u1) * np.cos(2 * math.pi * u2)
    out[rows, (axis + 2) % 3] = np.sqrt(u1) * np.sin(2 * math.pi * u2)
    return out


def ray_energy(features: np.ndarray, n_rays: int, blend: bool = True, seed: int = 0, ism_order: int = 3,
               directions: np.ndarray | None = None) -> np.ndarray:
    """Energy the simulator's rays log at the receiver, in expectation, ``(8, N_SAMPLES)`` per 1 ms (image
    sources' units), for one room in the surfaces layout ``(93,)``; ``blend=False``: specular rays only.
    ``directions``: the rays' unit directions ``(n_rays, 3)`` at the source (default: random)."""
    rng = np.random.default_rng(seed)
    alpha, scattering = (x[0].numpy() for x in room.surface_coefficients(torch.tensor(features[None])))  # (6, 8)
    dims, source, receiver = features[0:3], features[3:6], features[6:9]
    volume = float(dims.prod())
    kept = np.log1p(-np.minimum(alpha, 0.999))  # (6, 8) per reflection, in nepers
    blend_share = scattering.mean(-1)  # (6,): the simulator's average_scatter
    direction = rng.normal(size=(n_rays, 3)) if directions is None else np.array(directions, dtype=np.float64)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    position = np.repeat(source[None], n_rays, 0)
    log_energy = np.full((n_rays, 8), math.log(ENERGY_0 / n_rays))
    travelled = np.zeros(n_rays)
    energy = np.zeros((N_SAMPLES + 1, 8))
    rows = np.arange(n_rays)
    last = math.log(ENERGY_0 / n_rays * 1e-7)  # the simulator's energy threshold
    for hits in range(100000):
        alive = (travelled < room.SPEED_OF_SOUND * DURATION) & (log_energy.max(1) > last)
        if not alive.any():
            break
        to_wall = _wall_distances(position, direction, dims)
        axis = to_wall.argmin(1)
        step = to_wall[rows, axis]
        upper = direction[rows, axis] > 0
        wall = 2 * axis + upper
        if hits >= ism_order:  # specular passes: 2 pi T / V per metre, logged at the segment's middle
            sample = np.minimum(((travelled + step / 2) / room.SPEED_OF_SOUND * FS).astype(int), N_SAMPLES)
            np.add.at(energy, sample[alive], (np.exp(log_energy) * (2 * math.pi / volume) * step[:, None])[alive])
        position = position + direction * step[:, None]
        position[rows, axis] = np.where(upper, dims[axis], 0.0)
        travelled = travelled + step
        log_energy = log_energy + kept[wall]
        if scattering.any():  # the diffuse rain, as libroom's scat_ray computes it
            to_receiver = receiver - position
            hop = np.linalg.norm(to_receiver, axis=1)
            cosine = np.abs(to_receiver[rows, axis]) / hop
            r_sq = (travelled + hop) ** 2
            radius_sq = RECEIVER_RADIUS ** 2
            p_hit_equal = 1.0 - np.sqrt(1.0 - radius_sq / np.maximum(radius_sq, hop ** 2))
            p_hit = 1.0 - np.sqrt(1.0 - radius_sq / np.maximum(radius_sq, r_sq))
            rain = scattering[wall] * np.exp(log_energy) * (p_hit_equal * 2.0 * cosine / (r_sq * p_hit))[:, None]
            sample = np.minimum(((travelled + hop) / room.SPEED_OF_SOUND * FS).astype(int), N_SAMPLES)
            np.add.at(energy, sample[alive], rain[alive])
        direction[rows, axis] *= -1.0
        if blend and blend_share.any():
            share = blend_share[wall][:, None]
            direction = share * _lambertian(rng, axis, np.where(upper, -1.0, 1.0)) + (1.0 - share) * direction
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    air = np.exp(-np.outer(room.AIR_ABSORPTION, np.arange(N_SAMPLES) / FS * room.SPEED_OF_SOUND))
    return energy[:N_SAMPLES].T * air


def image_energy(features: np.ndarray) -> np.ndarray:
    """The image sources up to order 3, ``(8, N_SAMPLES)`` per 1 ms (:func:`edc.acoustics.room.image_energies`)."""
    distance, _, energy = room.image_energies(torch.tensor(features[None]))
    sample = np.minimum((distance[0].numpy() / room.SPEED_OF_SOUND * FS).astype(int), N_SAMPLES - 1)
    out = np.zeros((N_SAMPLES, 8))
    np.add.at(out, sample, energy[0].numpy())
    return out.T


def prior_energy(features: np.ndarray) -> np.ndarray:
    """The physics model's late decay before learning, ``(8, N_SAMPLES)``: its quadrature over directions from
    the first 4th-order arrival, at the rays' diffuse level ``4 pi c / V`` per second (image sources' units)."""
    raw = torch.tensor(features[None])
    rates, weights = (x[0].numpy() for x in room.specular_decay_rates(raw, 3))  # (8, 3) each
    t = np.arange(N_SAMPLES) / FS
    late = (weights[..., None] * np.exp(-rates[..., None] * t)).sum(1)
    late[:, t < float(room.first_arrival(raw, 4)[0])] = 0.0
    return late * 4.0 * math.pi * room.SPEED_OF_SOUND / float(features[0:3].prod()) / FS


def octave_parameters(energy: np.ndarray) -> dict:
    """EDT and T20 ``(7,)`` of the octave curves that the simulator's 8 bands ``(8, n)`` make."""
    octave = np.asarray(room.OCTAVE_LEAKAGE) @ (np.asarray(room.BAND_ENERGY)[:, None] * energy)
    edc = np.cumsum(octave[:, ::-1], 1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return parameters((edc / edc[:, :1])[None, :, :3000], FS, names=NAMES)


def estimates(job) -> dict:
    features, n_rays = job
    early = image_energy(features)
    return {"prior": octave_parameters(early + prior_energy(features)),
            "rays": octave_parameters(early + ray_energy(features, n_rays)),
            "specular rays": octave_parameters(early + ray_energy(features, n_rays, blend=False))}


def simulated(n_rooms: int, rooms: str = "new"):
    """The rooms' features ``(n, 93)`` and each parameter's simulations ``{name: (k, n, 7)}``, from curves of
    3 s as in the realistic rooms' benchmark (``bands.py --suite rooms``). ``rooms="new"``: rooms of
    ``rooms-offgrid300`` with their two simulations (``k = 2``); ``"training"``: rooms drawn from the training
    rooms of ``rooms6000``'s geometry split, with their one simulation (``k = 1``)."""
    bands.SUITE = bands.SUITES["rooms"]
    if rooms == "training":
        first = load_compact(DATA / "rooms6000")
        train = split_rows(first, 42, "configuration")["train"]
        rows = np.sort(np.random.default_rng(0).choice(train, n_rooms, replace=False))
        simulations = [(first, rows)]
    else:
        second, first = load_compact(DATA / "rooms-floor-offgrid"), load_compact(DATA / "rooms-offgrid300")
        rows = pd.Series(np.arange(len(first)), index=first.ids)[second.ids].to_numpy()[:n_rooms]
        simulations = [(first, rows), (second, np.arange(len(rows)))]
    tables = [bands.parameter_table(bands.curves_of(data, r), FS) for data, r in simulations]
    sims = {name: np.stack([np.stack([t[f"{name}_{b}"] for b in OCTAVE_BANDS_HZ], 1) for t in tables])
            for name in NAMES}
    return first.features.iloc[rows].drop(columns="ID").to_numpy(np.float64), sims


def _with_an_absorber(features: np.ndarray) -> np.ndarray:
    """``(n, 7)``: whether any surface of the room absorbs more than :data:`ABSORBER` in the octave's simulator
    band (125 Hz to 8 kHz)."""
    alpha, _ = room.surface_coefficients(torch.tensor(features))
    return (alpha.amax(-2)[:, 1:] > ABSORBER).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=200, help="new rooms with two simulations (at most 200)")
    parser.add_argument("--rays", type=int, default=2000, help="random rays per room")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", default="new", choices=["new", "training"],
                        help="new: rooms-offgrid300 with two simulations; training: rooms6000's training rooms")
    args = parser.parse_args()
    needed = ["rooms-offgrid300", "rooms-floor-offgrid"] if args.set == "new" else ["rooms6000"]
    missing = [name for name in needed if not (DATA / name).is_dir()]
    if missing:
        sys.exit(f"{', '.join(missing)}: not built in {DATA}. Fix: python benchmarks/datasets.py --only "
                 f"{' '.join(needed)} (6 minutes on 2 cores for the new rooms, about 50 for rooms6000).")
    features, sims = simulated(args.rooms, args.set)
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        per_room = pool.map(estimates, [(f, args.rays) for f in features])
    seconds = (time.perf_counter() - start) * args.workers / len(features)
    rows, undefined = [], 0
    for name in NAMES:
        mean = sims[name].mean(0)
        if len(sims[name]) == 2:
            floor = np.nanmean(np.abs(sims[name][0] - sims[name][1]) / np.sqrt(2.0) / mean, 0)
            rows.append([name.upper(), "floor (two simulations)", *(f"{x:.1%}" for x in floor),
                         f"{np.nanmean(floor):.1%}"])
        else:
            rows.append([name.upper(), "(one simulation: no floor)", *[""] * (len(OCTAVE_BANDS_HZ) + 1)])
        for model in per_room[0]:
            estimate = np.concatenate([r[model][name] for r in per_room])
            error = np.where(np.isfinite(estimate), (estimate - mean) / mean, np.nan)
            undefined += int((~np.isfinite(estimate)).sum())
            rows.append(["", model, *(f"{m:.1%} ({s:+.1%})" for m, s in zip(np.nanmean(np.abs(error), 0),
                                                                               np.nanmean(error, 0))),
                         f"{np.nanmean(np.abs(error)):.1%}"])
            if model == "rays":  # what a constant factor per band (a learned correction at its simplest) leaves
                unbiased = np.nanmean(np.abs(error - np.nanmean(error, 0)), 0)
                rows.append(["", "rays, each band's bias removed", *(f"{m:.1%}" for m in unbiased),
                             f"{np.nanmean(unbiased):.1%}"])
    command = "python benchmarks/late_decay.py" + "".join(
        f" --{k} {v}" for k, v in (("rooms", args.rooms), ("rays", args.rays), ("set", args.set))
        if v != parser.get_default(k))
    rooms = (f"{len(features)} rooms of rooms-offgrid300 (new geometries and materials, 20 to 600 m3), each the mean "
             "of its two simulations (rooms-floor-offgrid)" if args.set == "new" else
             f"{len(features)} training rooms of rooms6000's geometry split (drawn with seed 0), each its one simulation")
    absorber = _with_an_absorber(features)
    t20 = np.concatenate([r["prior"]["t20"] for r in per_room])
    bias = (t20 - sims["t20"].mean(0)) / sims["t20"].mean(0)
    rooms += (f". A surface absorbs more than {ABSORBER} in {absorber.mean():.0%} of the rooms' bands: the prior's "
              f"T20 is off by {np.nanmean(bias[absorber]):+.1%} there on average, {np.nanmean(bias[~absorber]):+.1%} "
              "in the other bands")
    if undefined:
        rooms += f". Left out: {undefined} estimates without a value (a curve past -10 dB in its first sample)"
    report("late-decay" + "-training" * (args.set == "training"),
           "Late decay of realistic rooms: relative error against the simulation (bias)",
           ["parameter", "estimate", *map(str, OCTAVE_BANDS_HZ), "mean"], rows, command,
           f"{rooms}. Rays: {args.rays} random rays a room, {seconds:.2f} s a room on one core (all three "
           "estimates). See the script's docstring.")


if __name__ == "__main__":
    main()
