"""Speed: inference for 6000 rooms beside pyroomacoustics simulating a sample of the same rooms
(a per-room ratio), and training throughput (rooms/s) per model on the CPU and, when a GPU is
visible, per model and precision with peak memory.

    python benchmarks/speed.py [--rooms PATH] [--simulate 12] [--steps 30] [--ckpt best.ckpt] [--no-training]

Prediction is timed with a trained physics checkpoint when ``--ckpt`` names one: its learned onset
ramps set how much of the late curve is computed sample by sample (docs/benchmarks.md uses the
accuracy benchmark's random-split checkpoint); without it, with an untrained model. With a
checkpoint it also times the whole command a user runs, ``python -m edc.predict`` on the 6000
rooms (imports, reading and checking the CSV, writing the results), beside the imports alone.
Beside the model it times what any model that returns the curves pays before computing anything:
writing them into new memory (Eyring's exponentials, one ``exp`` a sample), the bound of the ratio.
A broadband checkpoint writes ``results/speed-inference.md``, a per-band one ``speed-inference-bands.md``.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from common import report

from edc.acoustics.room import reverberation_time
from edc.acoustics.simulate import simulate_room
from edc.api import load
from edc.cli.config import CONF_DIR
from edc.cli.entry import keep_freed_memory
from edc.data import load_compact, load_demo
from edc.data.schema import LAYOUTS, layout_of, room_of
from edc.models import predict_in_batches
from edc.training.losses import LossContext
from edc.training.module import build_module

MODELS = ("physics", "mlp", "lstm", "hybrid_v2")
PASSES = 5  # prediction passes over the 6000 rooms; single passes vary by up to half on this machine
N_SAMPLES, FS = 2000, 1000


def module_for(model: str, loss: str = "mse", n_curves: int = 1):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", f"loss={loss}"])
    return build_module(OmegaConf.to_container(cfg, resolve=True), N_SAMPLES, FS, n_curves)


def spread_rows(features, n: int) -> list[int]:
    """``n`` rows spread evenly over the set (its first rows may share one geometry: rooms3000 draws ten
    material sets per geometry)."""
    return sorted({round(k * (len(features) - 1) / max(n - 1, 1)) for k in range(n)})


def simulate_seconds(features, rows) -> float:
    """Summed wall-clock of simulating the rooms ``rows``, each with its row's seed."""
    t0 = time.perf_counter()
    for i in rows:
        simulate_room(room_of(features.iloc[i]), seed=i)
    return time.perf_counter() - t0


def curves_alone(n_rooms: int, n_curves: int, n_samples: int, raw: torch.Tensor) -> float:
    """Seconds per room to write each room's curves into new memory as Eyring's exponentials per simulated band
    (one ``exp`` per sample, 256 rooms at a time): what any model that returns ``n_curves`` curves of
    ``n_samples`` float32 pays before it computes anything."""
    rates = (13.8 / reverberation_time(raw, "eyring"))[:, :n_curves, None]  # (n, C, 1) nepers per s
    rates = rates.repeat(-(-n_rooms // len(raw)), 1, 1)[:n_rooms]
    t = torch.arange(n_samples) / FS
    t0 = time.perf_counter()
    out = torch.empty(n_rooms, n_curves, n_samples)
    for rate, rows in zip(rates.split(256), out.split(256)):
        torch.mul(rate, -t, out=rows).exp_()
    return (time.perf_counter() - t0) / n_rooms


def seconds(argv: list[str], repeats: int = 5) -> float:
    """Median wall-clock of a fresh process running ``argv``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def command_rows(ckpt, features) -> list[list[str]]:
    """``python -m edc.predict`` on ``features`` as a user runs it (a fresh process), beside a process that
    only imports what any such command needs (torch, pandas, Hydra): the floor no code of edc's can lower."""
    with tempfile.TemporaryDirectory() as tmp:
        features.to_csv(Path(tmp) / "rooms.csv", index=False)
        whole = seconds([sys.executable, "-m", "edc.predict", f"ckpt_path={ckpt}", f"features_csv={tmp}/rooms.csv",
                         f"out={tmp}/pred.csv"])
    imports = seconds([sys.executable, "-c", "import torch, pandas, hydra"])
    torch_only = seconds([sys.executable, "-c", "import torch"])
    n = len(features)
    return [[f"`python -m edc.predict` on the {n} rooms (whole command; median of 5)", f"{whole:.2f} s",
             f"{whole / n * 1e3:.3f} ms", "-"],
            [f"of which a process importing torch, pandas, hydra (torch alone: {torch_only:.2f} s)",
             f"{imports:.2f} s", "-", "-"],
            ["of which the command's own work (whole command less those imports)", f"{whole - imports:.2f} s",
             "-", "-"]]


def train_throughput(model: str, raw, edcs, steps: int, device: str, precision: str) -> tuple[float, float]:
    """Rooms/s of optimizer steps at batch 32, and peak GPU memory in MB (0 on CPU)."""
    module = module_for(model, n_curves=edcs.shape[1]).to(device)
    module.fit_scalers(raw.to(device), edcs.to(device))
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device) if precision == "16-mixed" else None
    raw, edcs = raw.to(device), edcs.to(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step(i):
        idx = torch.randint(0, len(raw), (32,), device=device)
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            pred = module(raw[idx])
        target = module.target_transform.encode(edcs[idx])
        loss, _ = module.loss(pred.float(), target, LossContext(edcs[idx], module.target_transform.decode, FS))
        optimizer.zero_grad()
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    for i in range(3):  # warm-up
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    if device == "cuda":
        torch.cuda.synchronize()
    memory = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
    return steps * 32 / (time.perf_counter() - t0), memory


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", default=str(Path(__file__).resolve().parents[1] / "data/paper6000_bands"),
                        help="compact dataset (default: the paper's rooms with bands, benchmarks/datasets.py)")
    parser.add_argument("--simulate", type=int, default=12, help="rooms pyroomacoustics simulates for the ratio")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--no-simulate", action="store_true", help="skip pyroomacoustics (e.g. on a GPU box)")
    parser.add_argument("--ckpt", help="trained physics checkpoint to time prediction with (default: untrained)")
    parser.add_argument("--no-training", action="store_true", help="skip the training throughput table")
    args = parser.parse_args()
    data = load_compact(args.rooms) if Path(args.rooms, "edcs.npy").is_file() else load_demo()
    layout = layout_of(data.features.columns)  # paper (16 columns) or surfaces (a material per surface)
    raw = torch.as_tensor(data.features[LAYOUTS[layout]].to_numpy("float32"))
    duration = load(args.ckpt).config["data"]["duration"] if args.ckpt else 2.0
    edcs = torch.as_tensor(data.curves(range(len(data)), FS, duration, bands=data.has_bands))  # (n, C, samples)
    rooms = raw.repeat(-(-6000 // len(raw)), 1)[:6000]

    if args.ckpt:
        module, which = load(args.ckpt).surrogate, f"trained, {args.ckpt}"
    else:
        module, which = module_for("physics", "log_edc", edcs.shape[1]), "untrained"
        module.fit_scalers(raw, edcs)
    keep_freed_memory()  # as python -m edc.predict does
    predict_in_batches(module, rooms[:256])  # warm-up: first-call allocations are not per-room cost
    # the prediction passes take turns with as many parts of the simulated rooms: this machine's speed drifts
    # by a third within minutes, and so both sides of the ratio see the same minutes
    sample = [] if args.no_simulate else spread_rows(data.features, args.simulate)
    times, floors, simulated = [], [], 0.0
    for part in range(PASSES):
        t0 = time.perf_counter()
        predicted = predict_in_batches(module, rooms)
        times.append((time.perf_counter() - t0) / len(rooms))
        del predicted  # freed: the next pass, like the curves alone, writes into new memory
        floors.append(curves_alone(len(rooms), module.n_curves, module.n_samples, raw))
        simulated += simulate_seconds(data.features, sample[part::PASSES])
    infer, floor = statistics.median(times), statistics.median(floors)
    curves = ("broadband and 7 octave bands" if module.n_curves > 1 else "broadband") + f", {duration:g} s" \
        + (", a material per surface" if layout == "surfaces" else "")
    rows = [[f"physics ({which}; {curves}): predict 6000 rooms (CPU)", f"{infer * 6000:.2f} s", f"{infer * 1e3:.3f} ms", "-"],
            ["of which any model pays: the curves written into new memory (Eyring's exponentials, one exp a sample)",
             f"{floor * 6000:.2f} s", f"{floor * 1e3:.3f} ms", "-"]]
    if args.ckpt:
        table = data.features.iloc[(torch.arange(6000) % len(data)).numpy()].assign(ID=[f"r{i}" for i in range(6000)])
        rows += command_rows(args.ckpt, table)
    if sample:
        simulated /= len(sample)
        rows.append([f"simulate {len(sample)} of the same rooms, spread over the set (pyroomacoustics and the band curves)", f"{simulated * len(sample):.1f} s",
                     f"{simulated * 1e3:.0f} ms", f"**{simulated / infer:,.0f}x** (writing the curves alone: {simulated / floor:,.0f}x)"])
    name = "speed-inference" + ("-rooms" if layout == "surfaces" else "-bands" if module.n_curves > 1 else "")
    report(name, "Inference beside simulation, per room",
           ["what", "total", "per room", "ratio"], rows, " ".join(["python benchmarks/speed.py", *sys.argv[1:]]),
           f"Rooms from {data.source}. Prediction: median of {PASSES} passes after a one-batch warm-up, batches of 256, each "
           f"pass followed by a {PASSES}th of the simulated rooms (so that both see the same minutes of this machine), "
           "freed memory kept for reuse as `python -m edc.predict` keeps it (edc.cli.entry.keep_freed_memory).")
    if args.no_training:
        return

    rows = []
    for device, precisions in [("cpu", ["32-true"])] + ([("cuda", ["32-true", "bf16-mixed", "16-mixed"])]
                                                        if torch.cuda.is_available() else []):
        for model in MODELS:
            for precision in precisions:
                rate, memory = train_throughput(model, raw, edcs, args.steps, device, precision)
                rows.append([model, device, precision, f"{rate:,.0f}", f"{memory:.0f}" if device == "cuda" else "-"])
    report("speed-training", "Training throughput (batch 32, 2000-sample curves)",
           ["model", "device", "precision", "rooms / s", "peak GPU memory (MB)"], rows,
           "python benchmarks/speed.py", "Optimizer steps with the model's own loss machinery (MSE here).")


if __name__ == "__main__":
    main()
