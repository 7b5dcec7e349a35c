"""Optuna studies over a training config: the sweeper behind ``python -m edc.train -m hparams_search=NAME``.

Each trial is one training run (a job of the sweep, numbered as its trial) launched by the configured
Hydra launcher (basic, local_parallel, slurm). The study lives in a storage (an SQLite file in the sweep
dir unless ``hydra.sweeper.storage`` names one): the same command with the same sweep dir (or storage)
goes on where it stopped. Each run reports its validation metric to its trial every epoch (the job
reads the study from the storage: ``trial.number/storage/study``), so that the study's pruner stops
runs that are clearly worse than the others at the same epoch. A run that fails or diverges is a
failed trial, and the study goes on.

Hydra finds sweepers only in the ``hydra_plugins`` package: ``hydra_plugins.edc_optuna_sweeper``
hands over to :class:`OptunaSearch`.
"""
from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.core.plugins import Plugins
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from edc.errors import EdcInputError, report_input_error
from edc.io import atomic_path
from edc.training.logged import BAND_ERRORS, OBJECTIVES

log = logging.getLogger(__name__)

STUDY_FILE = "optuna.db"
SIGNATURE = "edc_search"  # the study's user attribute that says which search made it


# -- the search space ----------------------------------------------------------------------------------------

def search_space(params: dict, arguments: list[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """``({key: distribution}, fixed overrides)`` of the config's ``params`` (``{key: "interval(0.1, 10)"}``)
    and the command line's ``arguments`` (those with a sweep, ``key=choice(...)``, join the space; the
    others go to every trial as they are). Hydra's sweep syntax: ``interval(a, b)``, ``tag(log, interval(a,
    b))``, ``tag(int, interval(a, b))``, ``range(a, b[, step])``, ``choice(a, b, ...)``."""
    lines = [f"{key}={value}" for key, value in _flat(params or {}).items()] + list(arguments)
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except Exception as err:  # noqa: BLE001 - Hydra's parse error says where
        raise EdcInputError(f"hydra.sweeper.params: {err}. Fix: write each as key: interval(a, b), "
                            "tag(log, interval(a, b)), range(a, b) or choice(a, b, ...).") from None
    space, fixed = {}, []
    for override in overrides:
        if override.is_sweep_override():
            space[override.get_key_element()] = _distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed


def _flat(params, prefix: str = "") -> dict:
    """``{"loss.t20_weight": ...}`` of params given flat (YAML) or nested (``hydra.sweeper.params.loss.x=...``)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, (dict, DictConfig)):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _distribution(override: Override) -> BaseDistribution:
    value = override.value()
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if value.start >= value.end or (log_scale and value.start <= 0):
            raise EdcInputError(f"hydra.sweeper.params.{override.key_or_group}={override.input_line.split('=', 1)[1]}: "
                                "needs low < high (and low > 0 on a log scale). Fix: e.g. tag(log, interval(0.1, 10)).")
        if "int" in value.tags:  # tag(int, interval(1, 8)): whole numbers
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(value.start, value.end, log=log_scale)
    if override.is_discrete_sweep():
        values = list(override.sweep_iterator())
        if all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in values):
            return CategoricalDistribution(values)
        return CategoricalDistribution(list(override.sweep_string_iterator()))  # lists, dicts: their override text
    raise EdcInputError(f"{override.input_line}: a sweep Optuna cannot sample. Fix: interval(a, b), range(a, b) or "
                        "choice(a, b, ...).")


def check_keys(space: dict, fixed: list[str], config: DictConfig) -> None:
    """Every key of the space names a config value or a config group of this run (``+key`` adds one)."""
    choices = config.hydra.runtime.choices
    for key in list(space) + [line.split("=", 1)[0] for line in fixed]:
        if key.startswith(("+", "~", "hydra.", "hydra/")) or key in choices:
            continue
        if OmegaConf.select(config, key, default=_ABSENT, throw_on_resolution_failure=False) is _ABSENT:
            parent = key.rsplit(".", 1)[0] if "." in key else None
            known = sorted(OmegaConf.select(config, parent).keys()) if parent and isinstance(
                OmegaConf.select(config, parent, default=None), DictConfig) else []
            hint = f" ({parent} has {', '.join(map(str, known))})" if known else ""
            raise EdcInputError(f"search space key {key}: this run's config has no such key{hint}. Fix: a key "
                                "of python -m edc.train --cfg job (with the search's groups), or +key to add one.")


_ABSENT = object()


def override_value(value) -> str:
    """A sampled value as Hydra override text (floats in full precision)."""
    return repr(value) if isinstance(value, float) else str(value)


# -- the study -------------------------------------------------------------------------------------------------

def storage_url(storage: str | None, sweep_dir) -> str:
    """The study's storage: the one configured, or ``sqlite:///SWEEP_DIR/optuna.db`` (absolute path)."""
    return storage or f"sqlite:///{(Path(sweep_dir) / STUDY_FILE).resolve()}"


def _storage(url: str):
    """An RDB storage that waits for a busy SQLite file (parallel trials report to it) instead of failing."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    return url


def signature(name: str, metric: str, direction: str, space: dict, pruner) -> dict:
    """What makes a study this search's: the objective, its direction, the space and the pruner."""
    return {"search": name, "metric": metric, "direction": direction,
            "space": {key: optuna.distributions.distribution_to_json(d) for key, d in sorted(space.items())},
            "pruner": OmegaConf.to_container(pruner, resolve=True) if pruner is not None else None}


def open_study(url: str, study_name: str, wanted: dict) -> optuna.Study:
    """Create the study, or load it to go on; refuse a stored study made by another search."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(storage=_storage(url), study_name=study_name, direction=wanted["direction"],
                                    load_if_exists=True)
    except Exception as err:  # noqa: BLE001 - a file that is no study, a server that is not there
        raise EdcInputError(f"hydra.sweeper.storage={url}: cannot open the study there ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:200]}). Fix: a new hydra.sweep.dir, or a storage URL "
                            "such as sqlite:///path/study.db.") from None
    recorded = study.user_attrs.get(SIGNATURE)
    if recorded is None and not study.trials:
        study.set_user_attr(SIGNATURE, wanted)
        return study
    if recorded != wanted:
        differ = [_difference(k, recorded.get(k), wanted[k]) for k in wanted if recorded.get(k) != wanted[k]] \
            if recorded else ["its maker (not edc)"]
        raise EdcInputError(f"hydra.sweeper.storage={url}: study {study_name!r} there was made by another search "
                            f"(it differs in {', '.join(differ)}; {len(study.trials)} trials). Fix: another "
                            "hydra.sweep.dir or hydra.sweeper.study_name for a new study, or the same search to go "
                            "on with it.")
    return study


def _difference(key: str, recorded, wanted) -> str:
    """``space (stored: a, b; this search: a, c)``: what differs, for the message of a refused study."""
    if key == "space" and isinstance(recorded, dict):
        changed = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
        return f"space ({', '.join(changed)})"
    return f"{key} (stored: {recorded}; this search: {wanted})" if key != "pruner" else key


def reported_trial(number: int, url: str, study_name: str) -> tuple[optuna.trial.Trial, str] | None:
    """``(trial, metric)``: trial ``number`` of a stored study, for a training run to report ``metric`` to
    (the study's pruner judges it); None where the trial has ended (a run resumed after its search)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=_storage(url))
    pruner = (study.user_attrs.get(SIGNATURE) or {}).get("pruner")
    study.pruner = instantiate(pruner) if pruner else optuna.pruners.NopPruner()
    frozen = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not frozen:
        raise EdcInputError(f"trial.number={number}: study {study_name!r} in {url} has no such trial. Fix: leave "
                            "trial= to the search (python -m edc.train -m hparams_search=...).")
    if frozen[0].state != TrialState.RUNNING:
        log.info("trial %d has ended (%s): this run reports nothing to it", number, frozen[0].state.name.lower())
        return None
    return optuna.trial.Trial(study, frozen[0]._trial_id), study.user_attrs[SIGNATURE]["metric"]


def finished(study: optuna.Study) -> int:
    """Trials that count toward ``n_trials``: completed, pruned and failed (not those an interruption cut)."""
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")) for t in study.trials)


def requeue_interrupted(study: optuna.Study) -> None:
    """Trials left running by a sweep that was stopped: failed (marked interrupted) and their parameters
    queued again, so that the study goes on with them."""
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        log.warning("trial %d was cut short by an earlier stop: it runs again", frozen.number)
        _interrupted(study, frozen.number, frozen._trial_id, frozen.params)


def _interrupted(study: optuna.Study, number: int, trial_id: int, params: dict) -> None:
    optuna.trial.Trial(study, trial_id).set_user_attr("interrupted", True)
    study.tell(number, state=TrialState.FAIL)
    study.enqueue_trial(params, skip_if_exists=False)


# -- the sweeper -----------------------------------------------------------------------------------------------

class OptunaSearch:
    """The work of ``hydra_plugins.edc_optuna_sweeper.OptunaSweeper`` (settings: ``conf/hydra/sweeper/optuna.yaml``)."""

    def __init__(self, settings: dict, hydra_context, task_function, config: DictConfig):
        self.settings, self.config = settings, config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        try:
            study, url, space, fixed = self._prepare(arguments)
        except EdcInputError as err:
            sys.exit(report_input_error(err))
        self._run(study, url, space, fixed)
        write_results(study, Path(self.config.hydra.sweep.dir), space, fixed)

    def _prepare(self, arguments: list[str]):
        s, config = self.settings, self.config
        metric = config.get("optimized_metric")
        if metric not in OBJECTIVES:
            raise EdcInputError(f"optimized_metric={metric}: runs do not log it. Fix: one of {', '.join(OBJECTIVES)} "
                                "(logged every epoch, so that pruning can read it too).")
        if metric in BAND_ERRORS and (config.get("data") or {}).get("bands") is False:
            raise EdcInputError(f"optimized_metric={metric} with data.bands=false: runs trained broadband only do "
                                "not log it. Fix: data.bands=null (bands where the data has them) or "
                                "optimized_metric=val/t20_mae.")
        if s.get("direction", "minimize") not in ("minimize", "maximize"):
            raise EdcInputError(f"hydra.sweeper.direction={s.get('direction')}: must be minimize or maximize.")
        for key in ("n_trials", "n_jobs"):
            if not (isinstance(s.get(key), int) and s[key] >= 1):
                raise EdcInputError(f"hydra.sweeper.{key}={s.get(key)}: must be a positive integer.")
        space, fixed = search_space(s.get("params"), arguments)
        if not space:
            raise EdcInputError("hydra.sweeper.params: the search space is empty. Fix: hparams_search=loss_weights "
                                "(or physics), or give params as key: interval(a, b).")
        check_keys(space, fixed, config)
        sweep_dir = Path(config.hydra.sweep.dir)
        url = storage_url(s.get("storage"), sweep_dir)
        wanted = signature(str(config.hydra.runtime.choices.get("hparams_search")), metric,
                           s.get("direction", "minimize"), space, config.hydra.sweeper.get("pruner"))
        study = open_study(url, s["study_name"], wanted)
        study.sampler = self._sampler(len(study.trials))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
        return study, url, space, fixed

    def _sampler(self, n_trials_before: int):
        """The configured sampler; a study that goes on seeds it ``seed + trials so far`` (the same seed would
        draw the first trials' parameters again)."""
        spec = self.config.hydra.sweeper.get("sampler")
        if spec is None:
            return optuna.samplers.TPESampler()
        seed = spec.get("seed")
        return instantiate(spec, **({"seed": seed + n_trials_before} if seed is not None and n_trials_before else {}))

    def _run(self, study: optuna.Study, url: str, space: dict, fixed: list[str]) -> None:
        """Launch batches of ``n_jobs`` trials until ``n_trials`` have ended; job ``N`` is trial ``N``."""
        requeue_interrupted(study)
        n_trials, n_jobs = self.settings["n_trials"], self.settings["n_jobs"]
        log.info("study %s (%s): %d of %d trials done", study.study_name, url, finished(study), n_trials)
        while (done := finished(study)) < n_trials:
            trials = [study.ask(space) for _ in range(min(n_jobs, n_trials - done))]
            overrides = [tuple(fixed) + tuple(f"{k}={override_value(v)}" for k, v in t.params.items())
                         + (f"trial.number={t.number}", f'trial.storage="{url}"',
                            f"trial.study={study.study_name}") for t in trials]
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            for trial, job in zip(trials, returns):
                tell(study, trial, job)


def tell(study: optuna.Study, trial: optuna.trial.Trial, job) -> None:
    """The trial's end from its job: completed with its objective, pruned, or failed (a diverged or failed
    run, or one without a finite objective). A run stopped by a signal ends the sweep; its trial runs again
    when the sweep goes on."""
    try:
        result = job.return_value
    except Exception as err:  # noqa: BLE001 - Hydra holds the job's error
        log.warning("trial %d failed: %s", trial.number, err)
        result = {"status": "failed"}
    result = result if isinstance(result, dict) else {"status": "failed"}
    status, value = result.get("status"), result.get("objective")
    if status == "interrupted":
        _interrupted(study, trial.number, trial._trial_id, trial.params)
        sys.exit(result.get("exit_code") or 130)
    if status == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    elif status == "completed" and value is not None and math.isfinite(value):
        study.tell(trial, value)
    else:
        trial.set_user_attr("status", status or "failed")
        study.tell(trial, state=TrialState.FAIL)


def write_results(study: optuna.Study, sweep_dir: Path, space: dict, fixed: list[str]) -> dict:
    """``optimization_results.yaml`` in the sweep dir: the best trial, its parameters and its overrides
    (to train it again), and how many trials ended how."""
    states = [t.state for t in study.trials]
    counts = {state.name.lower(): states.count(state) for state in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                     TrialState.FAIL)}
    results = {"name": "optuna", "study": study.study_name, "trials": counts}
    completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if completed:
        best = study.best_trial
        results.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                       best_overrides=" ".join(fixed + [f"{k}={override_value(v)}" for k, v in best.params.items()]))
        log.info("best trial %d: %s = %.4g with %s", best.number, study.user_attrs[SIGNATURE]["metric"], best.value,
                 results["best_overrides"])
    with atomic_path(sweep_dir / "optimization_results.yaml") as tmp:
        OmegaConf.save(OmegaConf.create(results), tmp)
    return results


def objective_value(metrics_csv: Path, metric: str, monitor: str = "val/loss") -> float | None:
    """``metric`` at the epoch of the run's best checkpoint (the epoch whose ``monitor`` was lowest), read
    from the run's ``logs/metrics.csv``: the validation error of the model the run delivers."""
    import pandas as pd

    if not metrics_csv.is_file():
        return None
    table = pd.read_csv(metrics_csv)
    if metric not in table or monitor not in table:
        return None
    epochs = table.dropna(subset=[monitor, metric])
    return float(epochs.loc[epochs[monitor].idxmin(), metric]) if len(epochs) else None
