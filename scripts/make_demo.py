"""Make the built-in demo rooms (``edc/data/demo_data``) anew:

    python scripts/make_demo.py

400 rooms drawn by the built-in sampler (seed 2025) and simulated by ``python -m edc.generate``
(about 8 minutes on 2 cores), then packed small: float32 byte planes compressed with zlib.
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


def _shuffle_bytes(edcs: np.ndarray) -> bytes:
    """float32 bytes grouped by significance: smooth curves then compress ~1.8x with zlib."""
    return np.ascontiguousarray(np.asarray(edcs, np.float32).view(np.uint8).reshape(-1, 4).T).tobytes()


def pack(source_dir, out_dir=DEMO_DIR) -> None:
    """Pack a compact dataset as the built-in demo (``features.csv``, ``edcs.zlib``, ``meta.json``)."""
    data = load_compact(source_dir)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "edcs.zlib") as tmp:
        tmp.write_bytes(zlib.compress(_shuffle_bytes(np.asarray(data.edcs)), 9))
    with atomic_path(out_dir / "features.csv") as tmp:
        data.features.to_csv(tmp, index=False)
    write_json(out_dir / "meta.json", {**data.meta, "shape": list(data.edcs.shape)})



def main():
    out = ROOT / "data" / "demo400"
    subprocess.run([sys.executable, "-m", "edc.generate", "n_rooms=400", "seed=2025", f"out_dir={out}",
                    f"hydra.run.dir={out}/.run"], check=True, cwd=ROOT)
    pack(out)


if __name__ == "__main__":
    main()
