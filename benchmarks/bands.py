"""Per-band accuracy against the noise floor of the same rooms: the paper's rooms (random and
configuration splits) and 300 off-grid rooms; with ``--suite rooms``, 6000 realistic rooms with a
material per surface (split by rows and by geometry) and 300 new ones with new materials.

    python benchmarks/datasets.py                 # once: the band data and the noise-floor sets
    python benchmarks/bands.py                    # every model (about 90 minutes on 2 cores)
    python benchmarks/bands.py --models physics   # some of them; rows are merged into the table
    python benchmarks/bands.py --table-only
    python benchmarks/bands.py --suite rooms      # the realistic rooms: results/rooms.md

A benchmark whose noise-floor set is not built here (``datasets.py --only paper6000_bands offgrid300``
builds only what the models train and are tested on) keeps the floor measured before, in
``results/noise-floors.json``.

A model whose run dir under ``--work`` holds a completed run of the same epoch budget is not trained
again (an interrupted benchmark goes on where it stopped).

Each model is trained with ``edc.cli.train.train`` on ``data/paper6000_bands`` on both splits; the
random-split checkpoint is also evaluated on ``data/offgrid300``. The noise floor of each benchmark is
measured on 200 of its test rooms simulated a second time (docs/data.md): another seed for the random
split (geometries seen in training), another seed and ray set for the configuration split and the
off-grid rooms. Each MAE is divided by its band's floor. One JSON per row goes to
``results/bands/``; ``results/bands.md`` is the table of all rows there.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, floor_between, report  # noqa: E402

from edc.acoustics import OCTAVE_BANDS_HZ, room  # noqa: E402
from edc.acoustics.iso3382 import band_parameters, parameters  # noqa: E402
from edc.cli.config import CONF_DIR  # noqa: E402
from edc.cli.evaluate import evaluate  # noqa: E402
from edc.cli.train import train  # noqa: E402
from edc.data import load_compact  # noqa: E402
from edc.training.datamodule import EdcDataModule  # noqa: E402
from edc.training.metrics import edc_metrics  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
NAMES = ("edt", "t20", "c50")
CURVES = ["broadband", *map(str, OCTAVE_BANDS_HZ), "mid"]
MODELS = {  # name: (overrides, epoch budget): the default model its experiment's 120 epochs; the others, which
    # take 3-20x longer per epoch at 8 curves of 2000 samples, one budget of 10 (2 CPU cores)
    "physics": (["experiment=paper6000_bands_best"], 120),
    "band_convnet": (["data=paper6000_bands", "model=band_convnet"], 10),
    "mlp": (["data=paper6000_bands", "model=mlp", "loss=mse"], 10),
    "lstm": (["data=paper6000_bands", "model=lstm", "loss=weighted_edc"], 10),
    "hybrid_v2": (["data=paper6000_bands", "model=hybrid_v2", "loss=weighted_edc"], 10),
}
SUITES = {  # the datasets of each benchmark (benchmarks/datasets.py), the curves' length, the models
    "paper": {"train": "paper6000_bands", "offgrid": "offgrid300", "offgrid_from": "rows", "duration": 2.0,
              "models": MODELS,
              "floors": {"rows": "floor-rows", "configuration": "floor-configuration", "offgrid": "floor-offgrid"}},
    "rooms": {"train": "rooms12000", "offgrid": "rooms-offgrid300", "offgrid_from": "configuration", "duration": 3.0,
              "models": {"physics": (["experiment=rooms_best"], 40)},
              "floors": {"rows": "rooms12000-floor-rows", "configuration": "rooms12000-floor-configuration",
                         "offgrid": "rooms-floor-offgrid"}},
}
SUITE = SUITES["paper"]  # set by --suite


def parameter_table(curves: np.ndarray, fs: float) -> dict:
    """``{"t20_broadband": (n,), "t20_125": ..., "t20_mid": ...}`` of curves ``(n, 8, n_samples)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        values = parameters(curves[:, 0], fs, names=NAMES)
    return {**{f"{k}_broadband": v for k, v in values.items()}, **band_parameters(curves[:, 1:], fs)}


def curves_of(data, rows) -> np.ndarray:
    return data.curves(rows, 1000, SUITE["duration"], bands=True).astype(np.float64)


def originals(benchmark: str) -> str:
    return SUITE["offgrid"] if benchmark == "offgrid" else SUITE["train"]


def noise_floor(benchmark: str) -> dict:
    """``{"t20_1000": floor, ...}``: mean |difference| / sqrt(2) between the two simulations of 200 test rooms."""
    second, first = load_compact(DATA / SUITE["floors"][benchmark]), load_compact(DATA / originals(benchmark))
    index = pd.Series(np.arange(len(first)), index=first.ids)
    a = parameter_table(curves_of(second, np.arange(len(second))), 1000)
    b = parameter_table(curves_of(first, index[second.ids].to_numpy()), 1000)
    return {key: floor_between(a[key], b[key]) for key in a}


def eyring_curves(raw: torch.Tensor, n_samples: int = 2000, fs: float = 1000) -> np.ndarray:
    """Barron's EDC with Eyring's decay (air absorption included) in the broadband mix of the simulator's
    bands and in each octave alone: ``(n, 8, n_samples)``."""
    raw = raw.double()
    broadband = room.barron_edc(raw, fs, n_samples, "eyring")
    volume, _, distance = room.geometry(raw)
    decay = room.reverberation_time(raw, "eyring")[:, :7]  # (n, 7)
    t = torch.arange(n_samples, dtype=raw.dtype) / fs
    air = torch.as_tensor(room.AIR_ABSORPTION[:7], dtype=raw.dtype)
    reflected = (31200.0 * decay / volume[:, None])[..., None] * torch.exp(
        -room.DECAY_60_DB * (t + (distance / room.SPEED_OF_SOUND)[:, None, None]) / decay[..., None])
    direct = 100.0 / distance[:, None] ** 2 * torch.exp(-air * distance[:, None])
    bands = torch.cat([reflected[..., :1] + direct[..., None], reflected[..., 1:]], -1)
    return torch.cat([broadband[:, None], bands / bands[..., :1]], 1).numpy()


def model_rows(name: str, split_by: str, work: Path, epochs: int | None, offgrid: bool) -> list[dict]:
    overrides, budget = SUITE["models"][name]
    epochs = epochs or budget
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"data.path={DATA / SUITE['train']}", f"data.split_by={split_by}",
                                          "trainer=cpu", "~callbacks.progress_bar", f"trainer.max_epochs={epochs}"])
    run_dir = work / f"{name}-{split_by}"
    done = json.loads((run_dir / "metadata.json").read_text()) if (run_dir / "metadata.json").is_file() else {}
    if done.get("status") == "completed" and done["training_config"]["max_epochs"] == epochs:  # resumed benchmark
        metrics = {"status": "completed", **json.loads((run_dir / "metrics.json").read_text())}
    else:
        metrics = train(cfg, run_dir)
    meta = json.loads((run_dir / "metadata.json").read_text())
    common = {"model": name, "parameters": meta["parameter_count"],
              "train_s": 60.0 * meta["training_config"]["duration_minutes"],
              "epochs": meta["training_config"]["actual_epochs"], "budget": epochs, "status": metrics["status"]}
    rows = [{**common, "benchmark": split_by, **metrics}]
    if offgrid:
        data = OmegaConf.create({"layout": "compact", "path": str(DATA / SUITE["offgrid"])})
        rows.append({**common, "benchmark": "offgrid",
                     **evaluate(run_dir / "checkpoints" / "best.ckpt", data, "all", work / f"{name}-offgrid")})
    return rows


def eyring_rows(benchmarks) -> list[dict]:
    rows = []
    for benchmark, split_by in (("rows", "rows"), ("configuration", "configuration"), ("offgrid", "rows")):  # offgrid: all
        if benchmark not in benchmarks:
            continue
        dm = EdcDataModule(layout="compact", path=str(DATA / originals(benchmark)), split_by=split_by,
                           duration=SUITE["duration"])
        dm.setup()
        raw, curves, _ = dm.tensors("all" if benchmark == "offgrid" else "test")
        rows.append({"model": "eyring", "benchmark": benchmark, "parameters": 0, "train_s": 0.0,
                     **edc_metrics(eyring_curves(raw, curves.shape[-1]), curves.numpy(), 1000)})
    return rows


def row_dir() -> Path:
    return RESULTS / ("bands" if SUITE is SUITES["paper"] else "rooms")


def save(rows: list[dict]) -> None:
    row_dir().mkdir(parents=True, exist_ok=True)
    for row in rows:
        clean = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in row.items()}
        (row_dir() / f"{row['model']}-{row['benchmark']}.json").write_text(json.dumps(clean, indent=1))


def key(name: str, curve: str) -> str:
    return f"{name}_mae" if curve == "broadband" else f"{name}_{curve}_mae"


def table(floors: dict, command: str) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(row_dir().glob("*.json"))]
    order, names = [b for b in ("rows", "configuration", "offgrid") if b in floors], ["eyring", *SUITE["models"]]
    rows.sort(key=lambda r: (order.index(r["benchmark"]), names.index(r["model"])))
    label = {"rows": "random", "configuration": "configuration" if SUITE is SUITES["paper"] else "unseen geometry",
             "offgrid": "off-grid" if SUITE is SUITES["paper"] else "new rooms, new materials"}
    columns = ["benchmark", "model", "parameter", *CURVES, "mean ratio (7 bands)"]
    body = []
    for benchmark in order:
        floor = floors[benchmark]
        body.append([label[benchmark], "noise floor", "EDT / T20 (s), C50 (dB)", *[
            " / ".join(f"{floor.get(f'{n}_{c}', float('nan')):.3g}" for n in NAMES) for c in CURVES], "1"])
        for r in (r for r in rows if r["benchmark"] == benchmark):
            for name in NAMES:
                ratios = [r[key(name, c)] / floor[f"{name}_{c}"] for c in CURVES[1:8]]
                cells = [f"{r[key(name, c)]:.3g} ({r[key(name, c)] / floor[f'{name}_{c}']:.2f}x)"
                         if key(name, c) in r else "-" for c in CURVES]
                tag = f"{r['model']} ({r.get('epochs', '-')}/{r.get('budget', '-')} ep, {r['parameters']:,} p)" \
                    if name == "edt" else ""
                body.append([label[benchmark], tag, name.upper(), *cells, f"{np.mean(ratios):.2f}x"])
    name, what = ("bands", "") if SUITE is SUITES["paper"] else ("rooms", ", realistic rooms")
    report(name, f"Per-band accuracy{what}: MAE (its ratio to the noise floor of the same rooms)", columns, body, command,
           "Floors (first row of each benchmark): mean |difference| / sqrt(2) between two simulations of 200 of "
           "its test rooms (random split: another seed; configuration split and off-grid rooms: another seed "
           "and ray set, docs/data.md). MAE over all test rooms (off-grid: all 300, with the "
           f"{'random' if SUITE['offgrid_from'] == 'rows' else 'geometry'}-split checkpoint). Eyring: Barron's EDC with Eyring's decay per octave, air absorption included. "
           "Epochs: run / budget (early stopping may end a run sooner); p: parameters.")


def main():
    global SUITE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="paper", choices=list(SUITES))
    parser.add_argument("--models", nargs="+", default=None, choices=list(MODELS), help="default: the suite's")
    parser.add_argument("--splits", nargs="+", default=["rows", "configuration"], choices=["rows", "configuration"])
    parser.add_argument("--benchmarks", nargs="+", default=["rows", "configuration", "offgrid"],
                        choices=["rows", "configuration", "offgrid"], help="test sets in the table (default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override every model's epoch budget")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--work", default=None, help="run dirs (default: outputs/benchmark-bands, or -rooms)")
    args = parser.parse_args()
    SUITE = SUITES[args.suite]
    work = Path(args.work or ("outputs/benchmark-bands" if args.suite == "paper" else "outputs/benchmark-rooms"))
    models = args.models or list(SUITE["models"])
    benchmarks = [b for b in args.benchmarks if b in SUITE["floors"]]
    needed = [SUITE["train"]] + [SUITE["offgrid"]] * ("offgrid" in benchmarks)
    missing = [n for n in needed if not (DATA / n / "band_edcs.npy").is_file()]
    if missing and not args.table_only:
        sys.exit(f"missing datasets {missing}: build them with python benchmarks/datasets.py")
    saved = RESULTS / ("noise-floors.json" if args.suite == "paper" else f"noise-floors-{args.suite}.json")
    floors = json.loads(saved.read_text()) if saved.is_file() else {}
    for benchmark in benchmarks:  # measured where its floor set and its rooms are built here, else as saved
        if all((DATA / n / "band_edcs.npy").is_file() for n in (SUITE["floors"][benchmark], originals(benchmark))):
            floors[benchmark] = noise_floor(benchmark)
        elif benchmark in floors:
            print(f"{benchmark}: floor from {saved} ({SUITE['floors'][benchmark]} is not built here)")
        else:
            sys.exit(f"no noise floor for {benchmark}: build {SUITE['floors'][benchmark]} with python benchmarks/datasets.py")
    saved.write_text(json.dumps(floors, indent=1))
    if not args.table_only:
        if not args.no_baselines:
            save(eyring_rows(benchmarks))
        for split_by in args.splits:
            for name in models:
                save(model_rows(name, split_by, work, args.epochs,
                                offgrid=split_by == SUITE["offgrid_from"] and "offgrid" in benchmarks))
    table(floors, " ".join(["python benchmarks/bands.py", *(a for a in sys.argv[1:] if a != "--table-only")]))


if __name__ == "__main__":
    main()
