"""Make the built-in demo rooms (``edc/data/demo_data``) anew:

    python scripts/make_demo.py

400 rooms drawn by the built-in sampler (seed 2025) and simulated by ``python -m edc.generate``
(broadband and octave bands; about 6 minutes on 2 cores), then packed small for the package: each
curve as its level in steps of ``LEVEL_STEP_DB`` down to ``FLOOR_DB`` (what no loss or parameter
reads), stored as per-sample decrements (uint16 byte planes) compressed with zlib. Unpacked, every
curve is within half a step of the simulated one and still starts at 1 and never rises.
"""
from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

from edc.data.layouts import DEMO_DIR, load_compact
from edc.io import atomic_path, write_json

ROOT = Path(__file__).resolve().parents[1]
LEVEL_STEP_DB = 0.01
FLOOR_DB = -80.0


def pack_curves(curves: np.ndarray) -> bytes:
    """``(n_rooms, 8, n_samples)`` linear curves as zlib-compressed uint16 decrements of the level."""
    level = 10 * np.log10(np.clip(np.asarray(curves, np.float64), 1e-30, None))
    steps = np.round(np.maximum(level, FLOOR_DB) / LEVEL_STEP_DB).astype(np.int64)
    decrements = -np.diff(steps, axis=-1, prepend=0)
    assert decrements.min() >= 0 and decrements.max() < 2**16, "a curve that rises or falls too fast to pack"
    planes = np.ascontiguousarray(decrements.astype("<u2").view(np.uint8).reshape(-1, 2).T)
    return zlib.compress(planes.tobytes(), 9)


def pack(source_dir, out_dir=DEMO_DIR) -> None:
    """Pack a compact dataset with bands as the built-in demo (``features.csv``, ``curves.zlib``, ``meta.json``)."""
    data = load_compact(source_dir)
    curves = np.concatenate([np.asarray(data.edcs)[:, None], np.asarray(data.band_edcs)], axis=1)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "curves.zlib") as tmp:
        tmp.write_bytes(pack_curves(curves))
    with atomic_path(out_dir / "features.csv") as tmp:
        data.features.to_csv(tmp, index=False)
    write_json(out_dir / "meta.json", {**data.meta, "shape": list(curves.shape), "level_step_db": LEVEL_STEP_DB,
                                       "floor_db": FLOOR_DB,
                                       "packing": "curves.zlib: (n_rooms, 8, n_samples), broadband then the 7 "
                                                  "bands, as uint16 level decrements (byte planes), zlib"})
    (out_dir / "edcs.zlib").unlink(missing_ok=True)


def main():
    out = ROOT / "data" / "demo400"
    if not (out / "band_edcs.npy").is_file():
        subprocess.run([sys.executable, "-m", "edc.generate", "n_rooms=400", "seed=2025", f"out_dir={out}",
                        f"hydra.run.dir={out}/.run"], check=True, cwd=ROOT)
    pack(out)


if __name__ == "__main__":
    main()
