"""How close a synthesised RIR's parameters lie to the simulator's, against the simulator's own seed noise.

    python benchmarks/auralisation.py --ckpt outputs/benchmark-rooms/physics-configuration/checkpoints/best.ckpt
    python benchmarks/auralisation.py --rooms 1     # no checkpoint: the physics model's closed-form part, the example pair

Rooms are drawn by the realistic-rooms sampler (``sampler=rooms``, seed 7: rooms no training set holds) and
simulated twice, seeds 0 and 1, as docs/data.md says, for the checkpoint's duration. Per octave band, the
mean |difference| from the seed-0 simulation of: the simulation with seed 1 (the simulator's own noise);
the model's predicted curves themselves (the model's error, no RIR); the RIR synthesised from the model's prediction (what a user hears: model error and synthesis noise); the
RIR synthesised from the seed-0 simulation's own curves and band energies (the synthesis alone). Also
writes ``results/auralisation/`` (``results/auralisation-physics-prior/`` without ``--ckpt``): a per-band
spectrogram of the first room, simulated and synthesised, and the pair of WAV files (not kept in git).
"""
from __future__ import annotations

import argparse

import numpy as np
from common import RESULTS, report

import edc
from edc.acoustics import OCTAVE_BANDS_HZ, energy_decay_curve
from edc.acoustics.decay_curves import octave_filtered_energy
from edc.acoustics.iso3382 import parameters
from edc.acoustics.rir import RIR_FS, room_rir
from edc.acoustics.simulate import SimulationSettings, simulate_room
from edc.acoustics.wav import write_wav
from edc.api import physics_prior
from edc.data.sampler import RoomsRanges, sample_surface_rooms
from edc.data.schema import LAYOUTS, room_of

NAMES = ("edt", "t20", "c50")


def band_params(rir: np.ndarray, duration: float) -> np.ndarray:
    """``(3, 7)`` EDT, T20 (s), C50 (dB) per band of an RIR at 48 kHz (its 1 kHz band curves)."""
    curves = energy_decay_curve(rir, RIR_FS, duration, octave_bands=True)[:, :: RIR_FS // 1000]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = parameters(curves, 1000.0, NAMES)
    return np.stack([values[name] for name in NAMES])


def own_energies(rir: np.ndarray) -> np.ndarray:
    """``(7,)`` each band's energy from the broadband onset on (relative to 1/r^2 with the simulator's scale)."""
    energy = rir * rir
    onset = int(np.argmax(energy >= energy.max() * 1e-2))
    return octave_filtered_energy(rir, RIR_FS)[:, onset:].sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=None, help="a band checkpoint (default: the untrained physics model)")
    parser.add_argument("--rooms", type=int, default=100)
    args = parser.parse_args()
    rooms = sample_surface_rooms(args.rooms, seed=7, ranges=RoomsRanges())
    predictor = edc.load(args.ckpt) if args.ckpt else physics_prior(rooms)
    duration = float(predictor.config["data"]["duration"])
    rooms = predictor.in_layout(rooms, "sampler")
    rirs = predictor.rir(rooms, validated=True)
    settings = SimulationSettings(duration=duration, keep_rir=True)
    curves_predicted, _ = predictor.predict(rooms, validated=True, warn=False)
    keys = ("seed 1", "the prediction's own curves (no RIR)", "synthesised from the prediction",
            "synthesised from the simulation")
    results = {key: [] for key in keys}
    for i, synthesised in enumerate(rirs):
        row = rooms.iloc[i]
        simulated = [simulate_room(room_of(row), seed, settings)["rir"].astype(np.float64) for seed in (0, 1)]
        sim = simulated[0]
        curves = energy_decay_curve(sim, RIR_FS, duration, octave_bands=True)[:, :: RIR_FS // 1000]
        resynthesised = room_rir(row[LAYOUTS[predictor.layout]].to_numpy(np.float64), curves, 1000.0, own_energies(sim))
        reference = band_params(sim, duration)
        for key, rir in zip(keys[2:], (synthesised, resynthesised)):
            results[key].append(band_params(rir, duration) - reference)
        results[keys[0]].append(band_params(simulated[1], duration) - reference)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = parameters(curves_predicted[i, 1:].astype(np.float64), predictor.fs, NAMES)
        results[keys[1]].append(np.stack([own[name] for name in NAMES]) - reference)
        if i == 0:
            write_examples(RESULTS / ("auralisation" if args.ckpt else "auralisation-physics-prior"), sim, synthesised, row.ID)
        print(f"{i + 1}/{len(rooms)}: {row.ID}")
    rows = []
    for k, (name, unit) in enumerate(zip(("EDT", "T20", "C50"), ("s", "s", "dB"))):
        for key, diffs in results.items():
            error = np.nanmean(np.abs(np.asarray(diffs)[:, k]), axis=0)
            rows.append([f"{name} ({unit})", key] + [f"{e:.3f}" if unit == "s" else f"{e:.2f}" for e in error])
    name = "auralisation" if args.ckpt else "auralisation-physics-prior"
    report(name, f"Parameters of synthesised RIRs against the simulation, {len(rooms)} rooms of sampler=rooms: "
           "mean |difference| from the seed-0 simulation per band",
           ["parameter", "RIR"] + [f"{band} Hz" for band in OCTAVE_BANDS_HZ], rows,
           f"python benchmarks/auralisation.py {'--ckpt ' + args.ckpt + ' ' if args.ckpt else ''}--rooms {args.rooms}",
           "'seed 1' is the simulator's own realisation noise. A synthesised RIR is one realisation too: the "
           "synthesis alone ('from the simulation') is as good as a second simulation where its row is at or "
           "below that one; 'from the prediction' adds it to the model's own error. Example sounds and the "
           "spectrogram: results/auralisation/ (results/auralisation-physics-prior/ without --ckpt), made by the same command.")


def write_examples(folder, simulated: np.ndarray, synthesised: np.ndarray, room_id: str) -> None:
    """The first room's two WAV files and a per-band spectrogram (octave level over time) of both, in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / f"{room_id}-simulated.wav", simulated, RIR_FS)
    write_wav(folder / f"{room_id}-synthesised.wav", synthesised, RIR_FS)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharex=True, sharey=True)
    n = max(len(simulated), len(synthesised))  # one time axis: the shorter padded with silence
    pair = [np.pad(rir, (0, n - len(rir))) for rir in (simulated, synthesised)]
    for ax, rir, title in zip(axes, pair, ("simulated (pyroomacoustics)", "synthesised (edc)")):
        energy = octave_filtered_energy(rir, RIR_FS)
        step = RIR_FS // 200  # 5 ms frames
        frames = energy[:, : energy.shape[-1] // step * step].reshape(7, -1, step).sum(-1)
        level = 10 * np.log10(np.maximum(frames / frames.max(), 1e-12))
        image = ax.imshow(level, aspect="auto", origin="lower", vmin=-80, vmax=0, cmap="magma",
                          extent=(0, frames.shape[-1] * step / RIR_FS, -0.5, 6.5))
        ax.set(title=f"room {room_id}, {title}", xlabel="time (s)", yticks=range(7),
               yticklabels=[f"{b} Hz" for b in OCTAVE_BANDS_HZ])
    fig.colorbar(image, ax=axes, label="octave band level (dB, 5 ms frames)")
    fig.savefig(folder / "spectrogram.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
