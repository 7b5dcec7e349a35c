"""Can a sweep run in parallel on this machine's GPUs?

    python -m edc.gpu [--model physics] [--batch-size 32] [--n-samples 2000] [--runs 3]

Lists the GPUs with their free memory, estimates the memory of one training run from the
model config and batch size, says how many runs fit side by side and which launcher to use.
Exit codes: 0 parallel feasible, 1 tight (fits with under 20 % headroom), 2 use sequential,
3 no GPU, 4 an error of this command.
"""
from __future__ import annotations

import argparse
import sys

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from edc.cli.config import CONF_DIR
from edc.data.layouts import load_demo
from edc.data.schema import FEATURES
from edc.models import build_net, build_surrogate

CONTEXT_MB = 500.0  # CUDA context and allocator slack per process
EXIT_PARALLEL, EXIT_TIGHT, EXIT_SEQUENTIAL, EXIT_NO_GPU, EXIT_ERROR = 0, 1, 2, 3, 4


def model_config(model: str, n_samples: int) -> dict:
    """The resolved ``model`` section of ``conf/model/<model>.yaml``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", f"data.duration={n_samples / 1000}"])
    return OmegaConf.to_container(cfg, resolve=True)["model"]


def parameter_count(model: str, n_samples: int) -> int:
    """Parameters of ``conf/model/<model>.yaml`` for ``n_samples`` outputs (built on the meta device)."""
    with torch.device("meta"):
        net = build_net(model_config(model, n_samples)["net"], len(FEATURES), n_samples)
    return sum(p.numel() for p in net.parameters())


def activation_bytes_per_room(model: str, n_samples: int, n_rooms: int = 4) -> float:
    """Bytes the forward pass keeps for the backward pass, per room in the batch: measured on the CPU
    on ``n_rooms`` demo rooms (every tensor autograd saves, each storage counted once)."""
    surrogate = build_surrogate(model_config(model, n_samples), len(FEATURES), n_samples, 1000.0)
    raw = torch.as_tensor(load_demo().features[FEATURES].to_numpy()[:n_rooms], dtype=torch.float32)
    surrogate.fit_scalers(raw, torch.ones(n_rooms, n_samples))
    storages = {}

    def keep(tensor):
        storages[(tensor.untyped_storage().data_ptr(), tensor.device)] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        surrogate(raw)
    return sum(storages.values()) / n_rooms


def run_memory_mb(n_parameters: int, batch_size: int, per_room_bytes: float) -> float:
    """Training memory of one run, MB: fp32 weights, gradients and two Adam moments, what the forward
    pass saves for the backward pass (``per_room_bytes`` per room of the batch), and the CUDA context."""
    return (n_parameters * 4 * 4 + batch_size * per_room_bytes) / 2**20 + CONTEXT_MB


def gpus() -> list[dict]:
    out = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        out.append({"index": i, "name": torch.cuda.get_device_name(i), "free_mb": free / 2**20,
                    "total_mb": total / 2**20})
    return out


def advise(free_mb: list[float], per_run_mb: float, runs: int) -> tuple[int, str]:
    """``(exit code, advice)`` for ``runs`` jobs of ``per_run_mb`` on GPUs with ``free_mb``."""
    fit = sum(int(f // per_run_mb) for f in free_mb)
    if fit >= runs:
        headroom = 1 - runs * per_run_mb / sum(free_mb)
        launcher = "hydra/launcher=local_parallel (or slurm_gpu on a cluster)"
        if headroom < 0.2:
            return EXIT_TIGHT, f"{fit} runs fit, but with {headroom:.0%} headroom: {launcher}, watch memory"
        return EXIT_PARALLEL, f"{fit} runs fit ({runs} asked): {launcher}"
    return EXIT_SEQUENTIAL, f"only {fit} run(s) fit ({runs} asked): run them one after another (basic launcher)"


class _Parser(argparse.ArgumentParser):
    """Bad arguments exit with this command's own error code, never 2 (which here means: sequential)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def main(argv=None) -> int:
    parser = _Parser(prog="python -m edc.gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="physics")
    parser.add_argument("--batch-size", type=_positive, default=32)
    parser.add_argument("--n-samples", type=_positive, default=2000, help="output length (duration x target_fs)")
    parser.add_argument("--runs", type=_positive, default=3, help="jobs of the sweep")
    args = parser.parse_args(argv)
    try:
        n_parameters = parameter_count(args.model, args.n_samples)
        per_room = activation_bytes_per_room(args.model, args.n_samples)
    except Exception as err:  # noqa: BLE001 - this command's own error: exit 4 with the reason
        print(f"error: cannot build model={args.model!r} ({type(err).__name__}: {err}). "
              "Fix: use a name from conf/model/.", file=sys.stderr)
        return EXIT_ERROR
    per_run = run_memory_mb(n_parameters, args.batch_size, per_room)
    print(f"model={args.model}: {n_parameters:,} parameters; about {per_run:,.0f} MB per run "
          f"(batch {args.batch_size}, {args.n_samples} samples)")
    devices = gpus()
    if not devices:
        print("no CUDA GPU visible: train on the CPU (trainer=cpu), or on a GPU node (hydra/launcher=slurm_gpu).")
        return EXIT_NO_GPU
    for d in devices:
        print(f"GPU {d['index']}: {d['name']}, {d['free_mb']:,.0f} MB free of {d['total_mb']:,.0f} MB")
    code, advice = advise([d["free_mb"] for d in devices], per_run, args.runs)
    print(advice)
    return code


if __name__ == "__main__":
    sys.exit(main())
