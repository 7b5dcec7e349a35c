"""What simulating realistic rooms costs: seconds of one core per room against volume and T20, and
whether the stored curves reach -35 dB in every band.

    python benchmarks/generation.py                 # 60 rooms of sampler=rooms (about 5 minutes on one core)
    python benchmarks/generation.py --rooms 20      # fewer

Rooms are drawn by the realistic-rooms sampler (``sampler=rooms``: 20-600 m3, a material and scattering
per surface) and simulated one at a time in this process as ``edc.generate`` does (48 kHz, ISM order 3
+ ray tracing, octave bands, ``simulation.duration`` of the sampler's config). T20 is read from the
simulated 1 kHz band curve; "reaches -35 dB" counts rooms whose 7 band curves all end below -35 dB.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from common import report

from edc.acoustics import t20
from edc.acoustics.simulate import SimulationSettings, simulate_room
from edc.data.sampler import RoomsRanges, sample_surface_rooms
from edc.data.schema import room_of

DURATION = 5.0  # s, conf/sampler/rooms.yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rooms = sample_surface_rooms(args.rooms, seed=args.seed, ranges=RoomsRanges())
    settings = SimulationSettings(duration=DURATION)
    records = []
    for i, row in rooms.iterrows():
        start = time.process_time()
        curves = simulate_room(room_of(row), i, settings)
        seconds = time.process_time() - start
        bands = curves["band_edcs"].astype(np.float64)
        records.append((row.Length * row.Width * row.Height, float(t20(bands[3], 1000.0)), seconds,
                        bool((bands[:, -1] <= 10 ** -3.5).all()), float(t20(bands[0], 1000.0))))
        print(f"{i + 1}/{len(rooms)}: {records[-1][0]:.0f} m3, T20(1 kHz) {records[-1][1]:.2f} s, {seconds:.1f} s")
    volume, t20_1k, seconds, reached, t20_125 = map(np.asarray, zip(*records))
    rows = []
    for label, key, edges in (("volume m3", volume, [20, 75, 150, 300, 600]),
                              ("T20 at 1 kHz, s", t20_1k, [0.0, 0.5, 1.0, 2.0, 6.0])):
        for low, high in zip(edges[:-1], edges[1:]):
            inside = (key >= low) & (key < high)
            if inside.any():
                rows.append([f"{label} {low:g}-{high:g}", int(inside.sum()), f"{np.median(seconds[inside]):.2f}",
                             f"{seconds[inside].max():.2f}", f"{np.nanmax(t20_125[inside]):.2f}",
                             f"{int(reached[inside].sum())}/{int(inside.sum())}"])
    rows.append(["all", len(rooms), f"{np.median(seconds):.2f}", f"{seconds.max():.2f}", f"{np.nanmax(t20_125):.2f}",
                 f"{int(reached.sum())}/{len(rooms)}"])
    report("generation-cost", f"Simulating {len(rooms)} rooms of sampler=rooms: CPU seconds per room (one core)",
           ["rooms", "n", "median s/room", "max s/room", "max T20 at 125 Hz, s", f"reach -35 dB in {DURATION:g} s"],
           rows, f"python benchmarks/generation.py --rooms {args.rooms}",
           f"Mean {seconds.mean():.2f} s per room: a set of 3000 such rooms takes about "
           f"{3000 * seconds.mean() / 3600 / 2:.1f} h on 2 cores.")


if __name__ == "__main__":
    main()
