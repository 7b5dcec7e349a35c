"""What a design run leaves: the verification by simulation, ``design.json``, ``design.md`` and the plot
(docs/design.md)."""
from __future__ import annotations

import contextlib
import multiprocessing

import numpy as np
import pandas as pd

from edc.acoustics.iso3382 import parameter_columns
from edc.acoustics.simulate import SimulationSettings, simulate_room
from edc.data.schema import room_of
from edc.inverse.problem import Problem
from edc.inverse.search import judge


def simulate_design(problem: Problem, design, duration: float, fs: float, workers: int = 1) -> pd.DataFrame:
    """The design ``(6,)`` simulated per PROTOCOL at every receiver (seed 0 for the first, 1 for the next,
    ...): the parameter table of :func:`edc.acoustics.iso3382.parameter_columns`, one row per receiver."""
    return simulate_rows(problem.rows(np.asarray(design)[None]), duration, fs, workers)


def simulate_rows(rows: pd.DataFrame, duration: float, fs: float, workers: int = 1) -> pd.DataFrame:
    """Surfaces-layout ``rows`` simulated per PROTOCOL, seed 0 for the first row, 1 for the next, ...: their
    parameter table, one row each."""
    settings = SimulationSettings(edc_fs=int(fs), duration=duration)
    jobs = [(room_of(row), seed, settings) for seed, (_, row) in enumerate(rows.iterrows())]
    ctx = multiprocessing.get_context("spawn")  # not fork: torch has run in this process (its threads deadlock a fork)
    with (ctx.Pool(min(workers, len(jobs))) if workers > 1 and len(jobs) > 1 else contextlib.nullcontext()) as pool:
        results = list(pool.map(_simulate, jobs) if pool else map(_simulate, jobs))
    curves = np.stack([np.concatenate([r["edc"][None], r["band_edcs"]]) for r in results])
    return pd.DataFrame({"ID": rows["ID"].tolist(), **parameter_columns(curves, fs)})


def _simulate(job):
    return simulate_room(*job)


def summary(problem: Problem, history: list[dict], predicted: np.ndarray, before: np.ndarray,
            runners_up: int = 3, safety: float = 0.0) -> dict:
    """The content of ``design.json`` from the search's attempts (:func:`edc.inverse.search.refined`; the
    last is the answer): the chosen design, the model's prediction of it (``predicted``, ``before``: the
    untreated room's, each ``(n_receivers, n_bounds)``) and its simulation against the target per
    receiver, margin, runners-up, the designed room as surfaces-layout rows."""
    bounds = problem.target.bounds
    result, simulated = history[-1]["result"], history[-1]["simulated"]
    scores = result.scores
    rows = problem.rows(result.best[None])
    out = {
        "feasible_predicted": result.feasible,
        "design": problem.describe(result.best),
        "treated_area_m2": round(float(scores.area[0]), 3),
        "margin_jnd": round(float(scores.margin[0]), 3),
        "violation_jnd": round(float(scores.violation[0]), 3),
        "target": problem.target.as_ranges(),
        "objective": problem.target.objective,
        "search": {"method": result.method, "designs_tried": len(scores.designs), "of": problem.n_designs,
                   "seconds": round(sum(h["result"].seconds for h in history), 3), "attempts": len(history),
                   "safety_jnd": safety},
        "receivers": problem.receivers.tolist(),
        "room_row": _plain(rows.iloc[0].drop("ID").to_dict()),
        "room_rows": [_plain(r.drop("ID").to_dict()) for _, r in rows.iterrows()],
        "predicted": per_receiver(predicted, bounds),
        "predicted_untreated": per_receiver(before, bounds),
        "runners_up": [{"design": problem.describe(d), "treated_area_m2": round(float(a), 3),
                        "margin_jnd": round(float(m), 3), "violation_jnd": round(float(v), 3)}
                       for d, a, m, v in zip(scores.designs[1:runners_up + 1], scores.area[1:], scores.margin[1:],
                                             scores.violation[1:])],
    }
    if len(history) > 1:
        out["corrected"] = per_receiver(scores.values[0], bounds)  # the model plus what it missed before
        out["attempts"] = [{"design": problem.describe(h["result"].best), "met": h["met"]} for h in history]
    if simulated is not None:
        values = simulated[[b.column for b in bounds]].to_numpy(np.float64)[None]
        violation, margin = judge(values, problem)
        out["simulated"] = per_receiver(values[0], bounds)
        out["met"] = bool(violation[0] == 0)
        out["margin_simulated_jnd"] = round(float(margin[0]), 3)
    return out


def per_receiver(values: np.ndarray, bounds) -> list[dict]:
    return [{b.column: (None if np.isnan(v) else round(float(v), 4)) for b, v in zip(bounds, row)} for row in values]


def _plain(row: dict) -> dict:
    return {k: float(v) for k, v in row.items()}


def markdown(report: dict, problem: Problem) -> str:
    """``design.md``: the design, then each bounded parameter (worst receiver) against its range."""
    verdict = ("met: the simulation meets the target at every receiver" if report.get("met") else
               "NOT met: the simulation misses the target" if "met" in report else "not verified (verify=false)")
    lines = [f"# Design ({report['objective']}): {verdict}", "",
             f"Predicted {_predicted(report)}; "
             f"treated area {report['treated_area_m2']} m2; margin {report['margin_jnd']} JND "
             f"(search: {report['search']['method']}, {report['search']['designs_tried']} of "
             f"{report['search']['of']} designs, {report['search']['seconds']} s"
             + (f"; {report['search']['attempts']} searches, each after the last one's simulation corrected the "
                "model" if report['search']['attempts'] > 1 else "") + ").", "",
             "| surface | material | treatment | fraction | treated m2 |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {d['material']} | {d['treatment'] or '-'} | {d['fraction']:g} | {d['treated_m2']:g} |"
              for name, d in report["design"].items()]
    lines += ["", "Worst receiver per bound (s, dB):", "",
              "| parameter | min | max | untreated (predicted) | design (predicted) |"
              + (" design (simulated) |" if "simulated" in report else ""),
              "|---|---|---|---|---|" + ("---|" if "simulated" in report else "")]
    for bound in problem.target.bounds:
        cells = [_worst(report[key], bound) for key in ("predicted_untreated", "predicted", "simulated") if key in report]
        lines.append(f"| {bound.column} | {_num(bound.low)} | {_num(bound.high)} | " + " | ".join(cells) + " |")
    if "continuous" in report:
        found = report["continuous"]
        verdict = ("met in simulation" if found.get("met") else "NOT met in simulation" if "met" in found
                   else "not verified")
        lines += ["", f"Absorption the treatable surfaces would need (search.continuous, {verdict}; predicted "
                  f"{'feasible' if found['feasible_predicted'] else 'infeasible'}):", "",
                  "| surface | share | " + " | ".join(f"a{b}" for b in (125, 250, 500, 1000, 2000, 4000, 8000)) + " |",
                  "|---|---|" + "---|" * 7]
        lines += [f"| {name} | {found['fraction'][name]:g} | " + " | ".join(f"{a:.2f}" for a in values) + " |"
                  for name, values in found["absorption"].items()]
    if report["runners_up"]:
        lines += ["", "Runners-up:", ""]
        for i, runner in enumerate(report["runners_up"], 1):
            treated = ", ".join(f"{n}: {d['treatment']} x{d['fraction']:g}" for n, d in runner["design"].items()
                                if d["treatment"]) or "untreated"
            lines.append(f"{i}. {treated} ({runner['treated_area_m2']} m2, margin {runner['margin_jnd']} JND, "
                         f"violation {runner['violation_jnd']} JND)")
    return "\n".join(lines) + "\n"


def _predicted(report: dict) -> str:
    safety = report["search"]["safety_jnd"]
    if report["feasible_predicted"]:
        return f"feasible (every bound cleared by at least the safety, {safety:g} JND)"
    if report["margin_jnd"] >= 0:
        return f"inside every bound but short of the {safety:g} JND safety (the least violation)"
    return "infeasible (the least violation)"


def _num(value) -> str:
    return "-" if value is None else f"{value:g}"


def _worst(per_receiver: list[dict], bound) -> str:
    """The receiver's value nearest to (or furthest beyond) a bound."""
    values = np.array([np.nan if r[bound.column] is None else r[bound.column] for r in per_receiver])
    if np.isnan(values).any():
        return "undefined"
    low = -np.inf if bound.low is None else bound.low
    high = np.inf if bound.high is None else bound.high
    inside = np.minimum(values - low, high - values)
    return f"{values[int(np.argmin(inside))]:.3f}"


def plot(path, report: dict, problem: Problem) -> None:
    """Each bounded parameter against octave band: the target range shaded, the untreated and the designed
    room predicted (the range over the receivers), the design simulated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parameters = [p for p in ("EDT", "T20", "C50") if any(b.column.startswith(p + "_") and not b.column.endswith("_mid")
                                                         for b in problem.target.bounds)]
    fig, axes = plt.subplots(1, max(len(parameters), 1), figsize=(5 * max(len(parameters), 1), 3.6), squeeze=False)
    for ax, parameter in zip(axes[0], parameters):
        bounds = [b for b in problem.target.bounds if b.column.split("_")[0] == parameter and not b.column.endswith("_mid")]
        bands = [int(b.column.split("_")[1]) for b in bounds]
        for key, colour, label in (("predicted_untreated", "tab:gray", "untreated, predicted"),
                                   ("predicted", "tab:blue", "design, predicted"),
                                   ("simulated", "tab:red", "design, simulated")):
            if key not in report:
                continue
            values = np.array([[np.nan if r[b.column] is None else r[b.column] for b in bounds] for r in report[key]])
            ax.plot(bands, np.nanmean(values, 0), "o-", color=colour, label=label)
            ax.fill_between(bands, np.nanmin(values, 0), np.nanmax(values, 0), color=colour, alpha=0.2, lw=0)
        bottom, top = ax.get_ylim()
        for b, band in zip(bounds, bands):  # the target, to the plot's edge where one side is open
            ax.fill_between([band / 1.25, band * 1.25], bottom if b.low is None else b.low,
                            top if b.high is None else b.high, color="tab:green", alpha=0.15, lw=0)
        ax.set(xscale="log", xlabel="octave band (Hz)", ylabel=f"{parameter} ({'dB' if parameter == 'C50' else 's'})",
               title=f"{parameter}: target shaded, range over receivers", ylim=(bottom, top))
        ax.set_xticks(bands, [str(b) for b in bands])
        ax.minorticks_off()
        ax.set_xlim(bands[0] / 1.5, bands[-1] * 1.5)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
