"""Accuracy on the paper's 6000 rooms: physics baselines, the original architectures, mlp, and the best model.

    python benchmarks/accuracy.py                      # everything (1-2 hours on 2 CPU cores)
    python benchmarks/accuracy.py --quick              # 600 rooms, 5 epochs: minutes
    python benchmarks/accuracy.py --models physics --splits rows   # a subset; rows are merged into the table

Each model is trained with ``edc.train.train`` on the CPU on the random split (``split_by=rows``) and
on unseen configurations (``split_by=configuration``); the random-split checkpoint is also evaluated
with ``edc.evaluate`` on rooms off the training grid (``--offgrid``, made by the generator's sampler:
continuous geometry, half of them with the paper's 30 absorption profiles). One JSON per row goes to
``results/accuracy/``; ``results/accuracy.md`` is the table of all rows there.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, report  # noqa: E402

from edc.acoustics.room import barron_edc  # noqa: E402
from edc.api import load  # noqa: E402
from edc.cli.config import CONF_DIR  # noqa: E402
from edc.cli.evaluate import evaluate  # noqa: E402
from edc.cli.train import train  # noqa: E402
from edc.training.datamodule import EdcDataModule  # noqa: E402
from edc.training.metrics import edc_metrics  # noqa: E402

MODELS = {  # name: overrides (the originals keep their original loss; physics is the best configuration)
    "physics": ["experiment=paper6000_best"],
    "mlp": ["model=mlp", "loss=mse"],
    "lstm": ["model=lstm", "loss=weighted_edc"],
    "hybrid_v2": ["model=hybrid_v2", "loss=weighted_edc"],
}
BASELINES = ("sabine", "eyring")
ROW_DIR = RESULTS / "accuracy"


def datamodule(path, split_by: str, max_samples) -> EdcDataModule:
    dm = EdcDataModule(layout="compact", path=str(path), split_by=split_by, max_samples=max_samples)
    dm.setup()
    return dm


def baseline_rows(path, offgrid, split_by: str, max_samples) -> list[dict]:
    """Barron's EDC with Sabine or Eyring decay per band (air absorption), on the test rooms."""
    dm = datamodule(path, split_by, max_samples)
    raw, edcs, _ = dm.tensors("test")
    sets = {split_by: (raw, edcs)}
    if offgrid and split_by == "rows":
        off = datamodule(offgrid, "rows", None)
        sets["offgrid"] = off.tensors("all")[:2]
    rows = []
    for formula in BASELINES:
        for benchmark, (x, y) in sets.items():
            t0 = time.perf_counter()
            pred = barron_edc(x.double(), dm.target_fs, dm.n_samples, formula).numpy()[:, None]
            rows.append({"model": formula, "benchmark": benchmark, "parameters": 0, "train_s": 0.0,
                         "infer_1000_s": (time.perf_counter() - t0) * 1000 / len(x),
                         **edc_metrics(pred, y.numpy(), dm.target_fs)})
    return rows


def model_rows(name: str, path, offgrid, split_by: str, epochs: int, max_samples, work: Path) -> list[dict]:
    overrides = MODELS[name] + [f"data.path={path}", f"data.split_by={split_by}", "trainer=cpu",
                                "~callbacks.progress_bar"]
    experiment = any(o.startswith("experiment=") for o in MODELS[name])  # brings its data and batch size
    if not experiment:
        overrides.append("data=compact")
    overrides.append(f"trainer.max_epochs={epochs}")  # one epoch budget for every model
    if max_samples:
        overrides.append(f"data.max_samples={max_samples}")
        if experiment:  # a few dozen steps: a 1000-step moving average would still be the untrained model
            overrides.append("~callbacks.ema")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    run_dir = work / f"{name}-{split_by}"
    t0 = time.perf_counter()
    metrics = train(cfg, run_dir)
    train_s = time.perf_counter() - t0
    meta = json.loads((run_dir / "metadata.json").read_text())
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    predictor = load(ckpt)
    rooms = torch.as_tensor(datamodule(path, split_by, max_samples).features[:1000])
    t0 = time.perf_counter()
    predictor.surrogate.predict_edc(rooms)
    infer = (time.perf_counter() - t0) * 1000 / len(rooms)
    common = {"model": name, "parameters": meta["parameter_count"], "train_s": train_s, "infer_1000_s": infer,
              "epochs": meta["training_config"]["actual_epochs"], "status": metrics["status"]}
    rows = [{**common, "benchmark": split_by, **metrics}]
    if offgrid and split_by == "rows":
        rows.append({**common, "benchmark": "offgrid",
                     **evaluate(ckpt, _data_cfg(offgrid), "all", work / f"{name}-offgrid")})
    return rows


def _data_cfg(path):
    from omegaconf import OmegaConf

    return OmegaConf.create({"layout": "compact", "path": str(path)})


def save(rows: list[dict], tag: str) -> None:
    ROW_DIR.mkdir(parents=True, exist_ok=True)
    for row in rows:
        clean = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in row.items()}
        (ROW_DIR / f"{tag}-{row['model']}-{row['benchmark']}.json").write_text(json.dumps(clean, indent=1))


def table(tag: str, command: str, notes: str) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(ROW_DIR.glob(f"{tag}-*.json"))]
    order = {"rows": 0, "configuration": 1, "offgrid": 2}
    names = list(BASELINES) + list(MODELS)
    rows.sort(key=lambda r: (order[r["benchmark"]], names.index(r["model"])))
    columns = ["benchmark", "model", "EDC dB MAE", "EDT MAE (s)", "T20 MAE (s)", "C50 MAE (dB)", "EDT/T20/C50 RMSE",
               "R2 EDT/T20/C50", "undefined", "epochs (status)", "parameters", "CPU train (s)", "infer 1000 rooms (s)"]
    body = [[{"rows": "random", "configuration": "configuration", "offgrid": "off-grid"}[r["benchmark"]], r["model"],
             f"{r['edc_db_mae']:.3f}", f"{r['edt_mae']:.4f}", f"{r['t20_mae']:.4f}", f"{r['c50_mae']:.3f}",
             f"{r['edt_rmse']:.3f}/{r['t20_rmse']:.3f}/{r['c50_rmse']:.2f}",
             f"{r['edt_r2']:.3f}/{r['t20_r2']:.3f}/{r['c50_r2']:.3f}",
             r["edt_n_undefined"] + r["t20_n_undefined"] + r["c50_n_undefined"],
             f"{r['epochs']} ({r['status']})" if "epochs" in r else "-", f"{r['parameters']:,}",
             f"{r['train_s']:.0f}", f"{r['infer_1000_s']:.3f}"] for r in rows]
    report("accuracy" if tag == "full" else f"accuracy-{tag}", "Accuracy on the paper's 6000 rooms (test rooms)",
           columns, body, command, notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/paper6000"))
    parser.add_argument("--offgrid", default="data/offgrid300", help="compact dataset of off-grid rooms ('' to skip)")
    parser.add_argument("--epochs", type=int, default=120, help="every model's epoch budget (paper6000_best's own)")
    parser.add_argument("--quick", action="store_true", help="600 rooms, 5 epochs")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--splits", nargs="+", default=["rows", "configuration"], choices=["rows", "configuration"])
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--work", help="run folders (default outputs/benchmark-accuracy, -quick with --quick)")
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from the saved rows")
    args = parser.parse_args()
    max_samples, epochs, tag = (600, 5, "quick") if args.quick else (None, args.epochs, "full")
    work = Path(args.work or "outputs/benchmark-accuracy" + ("-quick" if args.quick else ""))
    offgrid = args.offgrid if args.offgrid and Path(args.offgrid, "edcs.npy").is_file() else None
    if args.offgrid and not offgrid:
        print(f"no off-grid set at {args.offgrid}: make it with the sampler and python -m edc.generate "
              "(README, Measured); skipping that column")
    for split_by in [] if args.table_only else args.splits:
        if not args.no_baselines:
            save(baseline_rows(args.data, offgrid, split_by, max_samples), tag)
        for name in args.models:
            save(model_rows(name, args.data, offgrid, split_by, epochs, max_samples, work), tag)
    table(tag, "python benchmarks/accuracy.py" + (" --quick" if args.quick else f" --epochs {epochs}"),
          f"CPU training with {torch.get_num_threads()} threads; every model has an epoch budget of {epochs} "
          "(early stopping may end sooner; a run the divergence guard stopped is evaluated from its best.ckpt). "
          "physics is `experiment=paper6000_best` (batch 64, validated and saved as a moving average of the "
          "weights), the others batch 32; lstm and hybrid_v2 with their "
          "original weighted_edc loss. Sabine/Eyring: Barron's revised theory with per-band decay and air "
          "absorption in the simulator's 8 bands (16 kHz extrapolated), weighted by their share of the energy. "
          "Off-grid: 300 sampler rooms (continuous "
          "geometry; half with the paper's 30 absorption profiles, half new), evaluated with the random-split "
          "checkpoint.")


if __name__ == "__main__":
    main()
