"""Console output (rich) and plots (matplotlib) of a run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edc import acoustics
from edc.training.metrics import PARAMETER_NAMES, UNITS

console = Console(stderr=False)


def metrics_table(metrics: dict, targets: dict, title: str = "test metrics") -> Table:
    """EDT / T20 / C50 MAE, RMSE and R2 beside the targets, each marked met or missed (fits 80 columns)."""
    table = Table(title=title)
    for column in ("", "MAE", "target", "RMSE", "R2", "target", "undef.", ""):
        table.add_column(column, justify="right", no_wrap=True)
    for name in PARAMETER_NAMES:
        mae, r2 = metrics[f"{name}_mae"], metrics[f"{name}_r2"]
        mae_target, r2_target = targets.get(f"{name}_mae"), targets.get(f"{name}_r2")
        met = (mae_target is None or mae <= mae_target) and (r2_target is None or r2 >= r2_target) \
            and metrics[f"{name}_n_undefined"] == 0
        unit = UNITS[name]
        table.add_row(f"{name.upper()} ({unit})", f"{mae:.4f}", f"<={mae_target}" if mae_target else "-",
                      f"{metrics[f'{name}_rmse']:.4f}", f"{r2:.4f}", f">={r2_target}" if r2_target else "-",
                      str(metrics[f"{name}_n_undefined"]), "[green]met[/]" if met else "[red]missed[/]")
    table.add_row("EDC (dB)", f"{metrics['edc_db_mae']:.3f}", "-", "-", f"{metrics['edc_r2']:.4f}", "-", "-", "")
    return table


def plot_run(out_dir, pred_edc: np.ndarray, target_edc: np.ndarray, fs: float, ids, n_rooms: int = 6) -> None:
    """``edc_overlay.png`` (dB curves of a few test rooms) and ``parameters.png`` (predicted vs true)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    t = np.arange(target_edc.shape[1]) / fs
    picks = np.linspace(0, len(target_edc) - 1, min(n_rooms, len(target_edc))).astype(int)
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True, sharey=True)
    for ax, i in zip(axes.flat, picks):
        with np.errstate(divide="ignore"):
            ax.plot(t, 10 * np.log10(target_edc[i]), label="target")
            ax.plot(t, 10 * np.log10(np.clip(pred_edc[i], 1e-30, None)), "--", label="predicted")
        ax.set_title(str(ids[i]), fontsize=8)
        ax.set_ylim(-80, 2)
    axes[0, 0].legend()
    fig.supxlabel("time (s)")
    fig.supylabel("EDC (dB)")
    fig.tight_layout()
    fig.savefig(out_dir / "edc_overlay.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = acoustics.parameters(pred_edc, fs, names=PARAMETER_NAMES)
        expected = acoustics.parameters(target_edc, fs, names=PARAMETER_NAMES)
    for ax, name in zip(axes, PARAMETER_NAMES):
        p, q = predicted[name], expected[name]
        ax.scatter(q, p, s=6, alpha=0.6)
        finite = np.isfinite(q)
        lo, hi = (np.nanmin(q[finite]), np.nanmax(q[finite])) if finite.any() else (0, 1)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"true {name.upper()} ({UNITS[name]})")
        ax.set_ylabel(f"predicted {name.upper()} ({UNITS[name]})")
    fig.tight_layout()
    fig.savefig(out_dir / "parameters.png", dpi=100)
    plt.close(fig)
