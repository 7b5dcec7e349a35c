"""Which treatments reach a target: ``python -m edc.design``.

    python -m edc.design ckpt_path=RUN/checkpoints/best.ckpt room=classroom target=speech
    python -m edc.design ckpt_path=P room_file=my_room.yaml target_file=my_target.yaml materials_file=mine.csv

The room and the target are the config groups ``conf/design/room`` and ``conf/design/target`` (or a
user's YAML file with the same keys); the search and the outputs are :mod:`edc.inverse`'s. Writes
``design.json``, ``design.md`` and ``design.png`` into the run dir (docs/design.md).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from edc.api import load
from edc.cli.config import CONF_DIR, check
from edc.cli.entry import task
from edc.data.materials import catalogue
from edc.data.validation import validate_features
from edc.errors import EdcInputError
from edc.inverse.continuous import needed_absorption
from edc.inverse.problem import problem_of
from edc.inverse.report import markdown, per_receiver, plot, simulate_design, simulate_rows, summary
from edc.inverse.search import Predictions, judge, refined, search
from edc.io import atomic_paths, update_metadata


def spec_of(path, group, key: str) -> dict:
    """The room or target: the YAML file at ``path`` where given, else the config group's content."""
    if path is None:
        return OmegaConf.to_container(group, resolve=True) if group is not None else None
    path = Path(path)
    if not path.is_file():
        raise EdcInputError(f"{key}={path}: file not found. Fix: the path of a YAML file with the keys of "
                            f"conf/design/{key.split('_')[0]}/ (docs/design.md).")
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # noqa: BLE001 - yaml's and omegaconf's parse errors, named as the file's
        raise EdcInputError(f"{key}={path}: not valid YAML ({str(err).splitlines()[0]}).") from None


def design(cfg: DictConfig, run_dir: Path) -> dict:
    """Search the treatments of ``cfg``'s room for its target, verify the best by simulation, write the
    report files into ``run_dir``; returns ``design.json``'s content."""
    if cfg.ckpt_path is None:
        raise EdcInputError("ckpt_path is not set. Fix: ckpt_path=RUN/checkpoints/best.ckpt, a model trained on "
                            "band curves with a material per surface (e.g. python -m edc.train experiment=rooms_best).")
    check(cfg)
    room, target = spec_of(cfg.room_file, cfg.get("room"), "room_file"), spec_of(cfg.target_file, cfg.get("target"), "target_file")
    predictor = load(cfg.ckpt_path)
    if predictor.layout != "surfaces":
        raise EdcInputError(f"ckpt_path={cfg.ckpt_path}: trained on the paper's 16 columns (one absorption spectrum "
                            "for every surface), and a design chooses a material per surface. Fix: use a checkpoint "
                            "trained with a material per surface (data=rooms3000, experiment=rooms_best).")
    problem = problem_of(room, target, catalogue(cfg.materials_file), bands_known=predictor.surrogate.n_curves > 1)
    untreated = np.zeros((1, len(problem.surfaces)), np.int64)
    validate_features(problem.rows(untreated), "room")
    predictions = Predictions(predictor, problem)
    options = {"beam_width": int(cfg.search.beam_width), "max_rows": int(cfg.search.max_rows),
               "safety": float(cfg.search.safety_jnd)}
    duration, workers = float(predictor.config["data"]["duration"]), int(cfg.workers)
    if cfg.verify:
        history = refined(predictions, problem, lambda d: simulate_design(problem, d, duration, predictor.fs, workers),
                          int(cfg.attempts), **options)
    else:
        history = [{"result": search(predictions, problem, **options), "simulated": None}]
    result = history[-1]["result"]
    if outside := predictor.outside_training(problem.rows(result.best[None])):
        print(f"warning: {outside}", file=sys.stderr)
    report = summary(problem, history, predictions.raw(result.best[None])[0], predictions.raw(untreated)[0],
                     int(cfg.runners_up), float(cfg.search.safety_jnd))
    if cfg.search.continuous:
        report["continuous"] = continuous(predictor, problem, cfg, duration, workers)
    files = [run_dir / "design.json", run_dir / "design.md", run_dir / "design.png"]
    page = markdown(report, problem)
    with atomic_paths(files) as temps:
        temps[0].write_text(json.dumps(report, indent=2) + "\n")
        temps[1].write_text(page)
        plot(temps[2], report, problem)
    print(page.split("\n\n")[0].lstrip("# "))
    print(f"wrote {', '.join(str(f) for f in files)}")
    return report


def continuous(predictor, problem, cfg: DictConfig, duration: float, workers: int) -> dict:
    """The absorption per band the treatable surfaces would need (:func:`needed_absorption`), predicted and,
    with ``verify``, simulated at every receiver."""
    found = needed_absorption(predictor.surrogate, problem, float(cfg.search.safety_jnd))
    columns = [b.column for b in problem.target.bounds]
    _, params = predictor.predict(found["rows"], validated=True, warn=False)
    predicted = params[columns].to_numpy(np.float64)[None]
    out = {"absorption": found["absorption"], "fraction": found["fraction"],
           "feasible_predicted": bool(judge(predicted, problem, float(cfg.search.safety_jnd))[0][0] == 0),
           "predicted": per_receiver(predicted[0], problem.target.bounds)}
    if cfg.verify:
        simulated = simulate_rows(found["rows"], duration, predictor.fs, workers)
        values = simulated[columns].to_numpy(np.float64)[None]
        out |= {"simulated": per_receiver(values[0], problem.target.bounds), "met": bool(judge(values, problem)[0][0] == 0)}
    return out


@hydra.main(version_base="1.3", config_path=str(Path(CONF_DIR) / "design"), config_name="design")
@task
def main(cfg: DictConfig) -> dict:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    report = design(cfg, run_dir)
    verified = report.get("met")
    update_metadata(run_dir, status="completed", command="design", ckpt_path=str(cfg.ckpt_path),
                    feasible_predicted=report["feasible_predicted"], met=verified)
    return {"status": "completed", "met": verified}
