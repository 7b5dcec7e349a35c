"""Console output (rich) and plots (matplotlib) of a run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from edc import acoustics
from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.acoustics.iso3382 import band_parameters
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


def bands_table(metrics: dict, targets: dict, title: str = "test MAE per octave band") -> Table:
    """EDT / T20 / C50 MAE per band (and T_mid), each marked met where it is at most
    ``band_floor_factor`` x the band's noise floor (``targets.band_floor``)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in ("Hz", *(f"{band // 1000}k" if band >= 1000 else str(band) for band in OCTAVE_BANDS_HZ), "mid"):
        table.add_column(column, justify="right", no_wrap=True, min_width=6)
    floors, factor = targets.get("band_floor") or {}, targets.get("band_floor_factor", 1.5)
    for name in PARAMETER_NAMES:
        cells = []
        for b, band in enumerate(OCTAVE_BANDS_HZ):
            mae, floor = metrics[f"{name}_{band}_mae"], (floors.get(name) or [None] * 7)[b]
            value = f"{mae:.2f}" if UNITS[name] == "dB" else f"{mae:.3f}"
            cells.append(value if floor is None else
                         f"[green]{value}*[/]" if mae <= factor * floor else f"[red]{value}[/]")
        mid = metrics.get(f"{name}_mid_mae")
        table.add_row(f"{name.upper()} {UNITS[name]}", *cells, "-" if mid is None else f"{mid:.3f}")
    if floors:
        table.caption = f"*: met, at most {factor:g}x the band's noise floor (docs/data.md)"
    return table


def overlay_rooms(pred_edc: np.ndarray, target_edc: np.ndarray, n_rooms: int = 6) -> tuple[list[int], list[int]]:
    """``(typical, worst)`` room indices for the overlay: half evenly spread over the rooms, half those of the
    largest mean |dB error| (the curves ``(n, n_samples)``, linear), worst first."""
    with np.errstate(divide="ignore"):
        error = np.abs(10 * np.log10(np.clip(pred_edc, 1e-10, None)) - 10 * np.log10(np.clip(target_edc, 1e-10, None)))
    worst = [int(i) for i in np.argsort(-error.mean(-1))[: n_rooms // 2]]
    others = [i for i in range(len(target_edc)) if i not in worst]
    picks = np.linspace(0, len(others) - 1, min(n_rooms - len(worst), len(others))).astype(int) if others else []
    return [others[i] for i in picks], worst


def scatter_summary(predicted: np.ndarray, expected: np.ndarray, unit: str) -> str:
    """``'MAE 0.012 s, R² 0.981, 2 undefined'`` over the rooms where both values are defined."""
    both = np.isfinite(predicted) & np.isfinite(expected)
    if not both.any():
        return f"no defined values ({len(expected)} undefined)"
    p, q = predicted[both], expected[both]
    r2 = 1.0 - np.sum((p - q) ** 2) / max(np.sum((q - q.mean()) ** 2), 1e-30)
    return f"MAE {np.mean(np.abs(p - q)):.3g} {unit}, R² {r2:.3f}, {int((~both).sum())} undefined"


def plot_run(out_dir, pred_edc: np.ndarray, target_edc: np.ndarray, fs: float, ids, n_rooms: int = 6) -> None:
    """``edc_overlay.png`` (dB curves of typical test rooms and the worst, the EDT and T20 fit ranges
    shaded) and ``parameters.png`` (predicted vs true, with MAE, R² and the undefined count)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    t = np.arange(target_edc.shape[1]) / fs
    typical, worst = overlay_rooms(pred_edc, target_edc, n_rooms)
    fig, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True, sharey=True)
    for ax, i in zip(axes.flat, typical + worst):
        with np.errstate(divide="ignore"):
            ax.plot(t, 10 * np.log10(target_edc[i]), label="target")
            ax.plot(t, 10 * np.log10(np.clip(pred_edc[i], 1e-30, None)), "--", label="predicted")
        for (upper, lower), colour in ((acoustics.DECAY_LIMITS_DB["edt"], "tab:green"),
                                       (acoustics.DECAY_LIMITS_DB["t20"], "tab:orange")):
            ax.axhspan(lower, upper, color=colour, alpha=0.08)
        ax.set_title(f"{'worst: ' if i in worst else ''}{ids[i]}", fontsize=8)
        ax.set_ylim(-80, 2)
    axes[0, 0].legend(fontsize=7)
    fig.supxlabel("time (s); shaded: the EDT (green) and T20 (orange) fit ranges")
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
        ax.set_title(scatter_summary(p, q, UNITS[name]), fontsize=9)
        ax.set_xlabel(f"true {name.upper()} ({UNITS[name]})")
        ax.set_ylabel(f"predicted {name.upper()} ({UNITS[name]})")
    fig.tight_layout()
    fig.savefig(out_dir / "parameters.png", dpi=100)
    plt.close(fig)


def plot_bands(out_dir, pred: np.ndarray, target: np.ndarray, fs: float, ids, floor: dict, n_rooms: int = 3) -> None:
    """``bands.png``: EDT, T20 and C50 against octave band for a few test rooms (typical and the worst of
    T20 at 1 kHz), predicted against reference with the band's noise floor shaded; and
    ``band_edc_overlay.png``: their band curves in dB, predicted dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    predicted, expected = band_parameters(pred[:, 1:], fs), band_parameters(target[:, 1:], fs)
    error = np.abs(predicted["t20_1000"] - expected["t20_1000"])
    error = np.nan_to_num(error, nan=-1.0)  # an undefined T20 (the curve ends above -25 dB) ranks last
    picks = list(np.argsort(error)[[len(error) // 4, len(error) // 2]]) + [int(np.argmax(error))]
    picks = picks[:n_rooms] if len(error) >= n_rooms else list(range(len(error)))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    x = np.arange(len(OCTAVE_BANDS_HZ))
    for ax, name in zip(axes, PARAMETER_NAMES):
        for k, i in enumerate(picks):
            reference = np.array([expected[f"{name}_{band}"][i] for band in OCTAVE_BANDS_HZ])
            guess = np.array([predicted[f"{name}_{band}"][i] for band in OCTAVE_BANDS_HZ])
            line = ax.plot(x, reference, "o-", label=f"{ids[i]} reference")[0]
            ax.plot(x, guess, "x--", color=line.get_color(), label=f"{ids[i]} predicted")
            if floor.get(name):
                ax.fill_between(x, reference - np.array(floor[name]), reference + np.array(floor[name]),
                                color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xticks(x, [f"{b // 1000}k" if b >= 1000 else str(b) for b in OCTAVE_BANDS_HZ])
        ax.set(xlabel="octave band (Hz)", ylabel=f"{name.upper()} ({UNITS[name]})")
    axes[0].legend(fontsize=7)
    fig.suptitle("shaded: reference ± the band's noise floor", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "bands.png", dpi=100)
    plt.close(fig)

    t = np.arange(target.shape[-1]) / fs
    fig, axes = plt.subplots(1, len(picks), figsize=(4.5 * len(picks), 4), sharey=True, squeeze=False)
    for ax, i in zip(axes[0], picks):
        for b, band in enumerate(OCTAVE_BANDS_HZ):
            with np.errstate(divide="ignore"):
                line = ax.plot(t, 10 * np.log10(target[i, b + 1]), lw=1, label=f"{band} Hz")[0]
                ax.plot(t, 10 * np.log10(np.clip(pred[i, b + 1], 1e-30, None)), "--", lw=1, color=line.get_color())
        ax.set(title=str(ids[i]), xlabel="time (s)", ylim=(-60, 2))
    axes[0, 0].set_ylabel("band EDC (dB); dashed: predicted")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "band_edc_overlay.png", dpi=100)
    plt.close(fig)
