"""Train a model: ``python -m edc.train [group=option ...] [key=value ...]``.

    python -m edc.train                                   # demo data, default model and loss
    python -m edc.train loss=weighted_edc loss.t20_weight=3.0
    python -m edc.train -m loss=conservative,moderate,aggressive
    python -m edc.train experiment=seed_stable data=paper6000

``train(cfg, run_dir)`` is the plain function behind it (tests and benchmarks call it directly).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import sys
import time
import warnings
from pathlib import Path

import hydra
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.plugins.environments import SLURMEnvironment
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from edc.api import upgrade
from edc.cli import config as config_checks
from edc.cli.entry import entrypoint, task
from edc.data.schema import LAYOUTS
from edc.errors import EXIT_FAILED, EXIT_OK, EdcInputError
from edc.io import atomic_path, now, read_json, try_lock, update_metadata, write_json, write_text
from edc.runs.records import git_commit, package_versions, process_identity
from edc.training import report, tracking
from edc.training.callbacks import DIVERGENCE_CURES, AtomicCheckpointIO, RunStatus, TrialPruning
from edc.training.datamodule import EdcDataModule
from edc.training.evaluation import evaluate_split, print_metrics
from edc.training.logged import BAND_ERRORS
from edc.training.module import build_module

log = logging.getLogger(__name__)


def quiet_lightning() -> None:
    """Silence what Lightning prints that is no news to an edc user: its advertisement for a cloud
    logger, the hint to prepend srun (submitit starts the SLURM jobs) and a deprecation inside Lightning."""
    for message in ("The `srun` command is available", r"`isinstance\(treespec, LeafSpec\)` is deprecated"):
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("\N{ELECTRIC LIGHT BULB} Tip"))


def resolve_precision(asked: str, accelerator: str) -> str:
    """The precision that can run here: 16-mixed needs CUDA, else 32-true (one-line warning)."""
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if asked in ("16-mixed", "16") and not on_gpu:
        warnings.warn(f"precision={asked} needs a CUDA GPU; running 32-true on {accelerator}.", stacklevel=2)
        log.warning("precision=%s needs a CUDA GPU; running 32-true instead", asked)
        return "32-true"
    return asked


def build_trainer(cfg: DictConfig, run_dir: Path, status: RunStatus, precision: str) -> pl.Trainer:
    callbacks = [status] + [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks += [pruning] if (pruning := trial_pruning(cfg)) else []
    for cb in callbacks:
        if isinstance(cb, pl.callbacks.ModelCheckpoint):
            cb.dirpath = str(run_dir / "checkpoints")
    mlflow = cfg.get("logger") and str(cfg.logger.get("_target_", "")).endswith("MLFlowLogger")
    trial = cfg.get("trial") or {}
    tags = {"edc.run_dir": str(run_dir), **({"optuna.study": str(trial.study), "optuna.trial": str(trial.number)}
                                            if trial.get("number") is not None else {})}
    extra = {"tags": tags, **tracking.resumed_run(run_dir)} if mlflow else {}
    logger = tracking.with_run_log(instantiate(cfg.logger, save_dir=str(run_dir), **extra)
                                   if cfg.get("logger") else False, run_dir)
    trainer_cfg = {k: v for k, v in cfg.trainer.items() if k != "precision"}
    # One owner of requeueing on SLURM: submitit. Lightning's own (SIGUSR1) is switched off.
    plugins = [AtomicCheckpointIO()] + ([SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else [])
    try:
        return instantiate(trainer_cfg, precision=precision, callbacks=callbacks, logger=logger or False,
                           default_root_dir=str(run_dir), plugins=plugins)
    except InstantiationException as err:
        if not isinstance(err.__cause__, MisconfigurationException):
            raise
        reason = str(err.__cause__).rstrip(".!")
        raise EdcInputError(f"trainer (accelerator={cfg.trainer.get('accelerator')}, devices="
                            f"{cfg.trainer.get('devices')}): {reason}. Fix: trainer=cpu on this machine, or run "
                            "on one that has the device (e.g. hydra/launcher=slurm_gpu).") from None


def trial_pruning(cfg: DictConfig) -> TrialPruning | None:
    """The callback of a run of a search (``trial.number`` set by hparams_search): it reports the study's metric
    to its trial every epoch and stops the run when the study prunes it. None outside a search, and for a
    trial that has ended (a run resumed after its search)."""
    trial = cfg.get("trial") or {}
    if trial.get("number") is None:
        return None
    from edc.runs import search

    reported = search.reported_trial(int(trial.number), str(trial.storage), str(trial.study))
    return TrialPruning(*reported) if reported else None


def check_ddp_in_sweep(cfg: DictConfig) -> None:
    """Refuse DDP in a local multirun: Lightning re-runs ``sys.argv``, relaunching the whole sweep."""
    if not HydraConfig.initialized() or HydraConfig.get().mode.name != "MULTIRUN":
        return
    launcher = str(HydraConfig.get().launcher.get("_target_", ""))
    if "ddp" in str(cfg.trainer.get("strategy", "")) and "Slurm" not in launcher:
        raise EdcInputError("trainer=ddp inside a local multirun would relaunch the whole sweep in every "
                            "device process. Fix: run DDP sweeps on SLURM (hydra/launcher=slurm_gpu, one task "
                            "per device), or train one DDP run at a time without -m.")


def requeued() -> bool:
    """Whether SLURM restarted this job (preemption, timeout, scontrol requeue)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def requeued_checkpoint(run_dir: Path) -> str | None:
    """``last.ckpt`` of this job's dir when SLURM requeued the job."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if requeued() and last.is_file():
        log.info("requeued SLURM job: resuming from %s", last)
        return str(last)
    return None


def feature_ranges(raw: torch.Tensor, layout: str = "paper") -> dict:
    """``{feature: [min, max]}`` of the training rooms' raw features ``(n, 16)`` (``(n, 93)`` in the surfaces
    layout), kept in the checkpoint so that predict and evaluate can say when a room lies outside them."""
    low, high = raw.double().amin(0).tolist(), raw.double().amax(0).tolist()
    return {name: [lo, hi] for name, lo, hi in zip(LAYOUTS[layout], low, high)}


def check_start_checkpoint(ckpt_path, module: pl.LightningModule, continuing: bool) -> None:
    """A checkpoint to start or continue from must be whole and hold this run's network."""
    if ckpt_path is None:
        return
    try:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        fix = (f"start a new run from the run's best.ckpt (ckpt_path={Path(ckpt_path).parent / 'best.ckpt'})"
               if continuing else "pass a best.ckpt or last.ckpt written by python -m edc.train")
        raise EdcInputError(f"ckpt_path={ckpt_path}: unreadable ({type(err).__name__}: {str(err)[:200]}); a checkpoint "
                            f"cut short by a full disk or a kill reads so. Fix: {fix}.") from None
    ours = module.state_dict()
    wrong = [k for k in ours if k not in state or state[k].shape != ours[k].shape] + [k for k in state if k not in ours]
    if wrong:
        raise EdcInputError(f"ckpt_path={ckpt_path}: its weights are not this run's network ({len(wrong)} tensors "
                            f"differ, e.g. {wrong[0]}). Fix: start from a checkpoint of the same model= and settings, "
                            "or drop ckpt_path.")


def claim_run_dir(run_dir: Path, continuing: bool, overwrite: bool) -> None:
    """Make ``run_dir`` this run's: refuse a dir that holds another training run (its checkpoints and
    records would be replaced one by one), unless ``overwrite``: then that run's files go first
    (the ``.hydra`` record and the log of this job stay). A run continuing from its own checkpoint
    (``resume=``) and a requeued SLURM job keep their dir."""
    record = run_dir / "metadata.json"
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank != 0:  # DDP: the first process claims and holds the dir for all of them
        return
    _lock(run_dir)
    if not (continuing or requeued()) and record.is_file():
        if not overwrite:
            status = (read_json(record) or {}).get("status", "unknown")
            raise EdcInputError(f"hydra.run.dir={run_dir} holds a training run (status {status}); training "
                                f"there would replace its files. Fix: another hydra.run.dir, resume={run_dir} "
                                "to continue it, or overwrite=true to replace it.")
        for entry in run_dir.iterdir():
            if entry.name not in (".hydra", ".lock") and entry.suffix != ".log":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


_LOCKS: dict[Path, int] = {}  # run dir -> the open lock file this process holds (the OS frees it on exit)


def _lock(run_dir: Path) -> None:
    """Hold ``run_dir/.lock`` for this process's life: a second training process started into the same
    dir (two jobs given one hydra.run.dir, a resume while the run still trains) is refused."""
    path = (run_dir / ".lock").resolve()
    if path in _LOCKS:
        return
    fd = try_lock(path)
    if fd is None:
        holder = path.read_text(errors="replace").strip() or "another process"
        raise EdcInputError(f"{run_dir}: {holder} is training into this dir now. Fix: wait for it to end (or stop "
                            "it), or give this run another hydra.run.dir.") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
    _LOCKS[path] = fd


def _unlock(run_dir: Path) -> None:
    fd = _LOCKS.pop((run_dir / ".lock").resolve(), None)
    if fd is not None:
        os.close(fd)  # closing frees the lock


def resume_config(run_dir, overrides: list[str]) -> DictConfig:
    """The recorded config of ``run_dir``, to continue it from ``last.ckpt``.

    Only ``resume=...`` and a larger ``trainer.max_epochs`` may be given with it: anything else
    would make the continued run a different experiment.
    """
    run_dir = Path(run_dir)
    recorded, last = run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt"
    if not recorded.is_file() or not last.is_file():
        raise EdcInputError(f"resume={run_dir}: needs {recorded.name} and checkpoints/last.ckpt there. "
                            "Fix: pass the dir of a run started by python -m edc.train.")
    recorded_config = upgrade(OmegaConf.to_container(OmegaConf.load(recorded)))
    config_checks.check_buildable(recorded_config, str(recorded))
    cfg = OmegaConf.create(recorded_config)
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "resume":
            continue
        if key == "trainer.max_epochs" and value.isdigit() and int(value) >= cfg.trainer.max_epochs:
            scheduler = cfg.model.get("scheduler") or {}
            if scheduler.get("T_max") == cfg.trainer.max_epochs:  # a schedule over the run's epochs: the new plan's
                scheduler.T_max = int(value)
            cfg.trainer.max_epochs = int(value)
            continue
        raise EdcInputError(f"resume={run_dir} continues the run with its recorded configuration; {override!r} "
                            f"is refused. Fix: drop it (only a larger trainer.max_epochs is allowed, now "
                            f"{cfg.trainer.max_epochs}).")
    cfg.ckpt_path = str(last)
    return cfg


def test_set_fingerprint(datamodule: EdcDataModule) -> str:
    """Hash of the dataset and the test rooms: runs are ranked together only if tested on the same rooms."""
    digest = hashlib.sha256(datamodule.dataset.fingerprint().encode())
    digest.update(",".join(map(str, datamodule.splits["test"])).encode())
    return digest.hexdigest()[:16]


def train(cfg: DictConfig, run_dir) -> dict:
    """Train, test and write the run dir. Returns the test metrics (with ``status``).

    A run that starts from the ``last.ckpt`` of its own dir (``resume=``, a requeued job) continues
    that run: its record keeps the original choices and start, and adds this part to the time trained.
    """
    run_dir = Path(run_dir)
    ckpt_path = cfg.get("ckpt_path") or requeued_checkpoint(run_dir)
    continuing = ckpt_path is not None and Path(ckpt_path).resolve().parent == (run_dir / "checkpoints").resolve()
    claim_run_dir(run_dir, continuing, bool(cfg.get("overwrite")))
    try:
        return _train(cfg, run_dir, ckpt_path, continuing)
    finally:
        _unlock(run_dir)


def _train(cfg: DictConfig, run_dir: Path, ckpt_path: str | None, continuing: bool) -> dict:
    config_checks.validate(cfg)
    check_ddp_in_sweep(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule: EdcDataModule = instantiate(cfg.data)
    datamodule.setup("fit")
    if cfg.get("optimized_metric") in BAND_ERRORS and datamodule.n_curves == 1:
        raise EdcInputError(f"optimized_metric={cfg.optimized_metric}: runs log it only where the data has band "
                            f"curves, and {datamodule.dataset.source} trains broadband only. Fix: data with bands "
                            "(band_edcs.npy), or optimized_metric=val/t20_mae.")
    module = build_module(OmegaConf.to_container(cfg, resolve=True), datamodule.n_samples, datamodule.target_fs,
                          datamodule.n_curves, datamodule.layout)
    training_rooms = datamodule.split("train")
    module.fit_scalers(training_rooms.features[training_rooms.rows], (curves for _, curves in training_rooms.chunks()))
    module.config["feature_ranges"] = feature_ranges(training_rooms.features[training_rooms.rows], datamodule.layout)
    module.config["training_data"] = {"fingerprint": datamodule.dataset.fingerprint()}  # evaluate warns on it
    check_start_checkpoint(ckpt_path, module, continuing)

    asked = cfg.trainer.get("precision", "32-true")
    precision = resolve_precision(str(asked), str(cfg.trainer.get("accelerator", "auto")))
    status = RunStatus(run_dir, **cfg.get("divergence", {}))
    trainer = build_trainer(cfg, run_dir, status, precision)
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    write_json(run_dir / "splits.json", datamodule.split_ids())
    started, start = time.time(), now()
    before = (read_json(run_dir / "metadata.json") or {}) if continuing else {}
    first = {} if before else {"config_choices": dict(HydraConfig.get().runtime.choices)
                               if HydraConfig.initialized() else {}, "timestamp": start}
    update_metadata(run_dir, status="running", process=process_identity(), heartbeat=start, model=cfg.model.name, **first,
                    parameter_count=module.parameter_count(), git_commit=git_commit(),
                    versions=package_versions(), dataset_fingerprint=datamodule.dataset.fingerprint(),
                    test_fingerprint=test_set_fingerprint(datamodule), data=datamodule.summary(),
                    loss_config=_loss_config(cfg), precision_config={"asked": str(asked), "actual": precision},
                    training_config=_training_config(cfg, datamodule))
    tracking.start(trainer, OmegaConf.to_container(cfg, resolve=True), run_dir, continuing)
    history = continuing and rank_zero_only.rank == 0
    if history:
        _set_metrics_aside(run_dir)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except (SystemExit, KeyboardInterrupt, Exception):
        if status.exit_code in (None, EXIT_FAILED):  # an error, not a signal: shown, as any error is
            raise
        _record_segment(run_dir, before, start, started)
        return {"status": "interrupted", "exit_code": status.exit_code}
    finally:
        if history:
            _merge_metrics(run_dir)
    if trainer.interrupted and status.exit_code is None:  # a signal Lightning swallowed
        status.on_exception(trainer, module, KeyboardInterrupt())
        _record_segment(run_dir, before, start, started)
        return {"status": "interrupted", "exit_code": status.exit_code}
    if not trainer.is_global_zero:  # DDP: the first process tests and records the run
        return {"status": "completed", "exit_code": EXIT_OK}
    try:
        return _test_and_record(cfg, trainer, module, datamodule, status, run_dir,
                                _record_segment(run_dir, before, start, started))
    except Exception as err:  # after the fit: the record must not stay 'running'
        update_metadata(run_dir, status="failed", error=f"{type(err).__name__}: {err}")
        raise


def _test_and_record(cfg, trainer, module, datamodule, status, run_dir: Path, segments: list[dict]) -> dict:
    """Test the best checkpoint, write the run's results and its final record; the metrics (with status)."""
    best = _best_checkpoint(trainer)
    if best:
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    raw, edcs, rows = datamodule.tensors("test")
    module.to("cpu")
    targets = OmegaConf.to_container(cfg.targets)
    metrics = evaluate_split(module, raw, edcs, datamodule.dataset.ids[rows.numpy()], run_dir, targets.get("band_floor"))
    pruned = any(isinstance(cb, TrialPruning) and cb.pruned_epoch is not None for cb in trainer.callbacks)
    final = "diverged" if status.exit_code is not None else "pruned" if pruned else "completed"
    objective = _objective(cfg, run_dir)
    gpu_memory = {"gpu_peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)} \
        if torch.cuda.is_available() else {}
    update_metadata(run_dir, status=final, finished=segments[-1]["finished"], **gpu_memory, **objective,
                    training_config=_training_config(cfg, datamodule, actual_epochs=trainer.current_epoch,
                                                     duration_minutes=round(sum(s["minutes"] for s in segments), 3),
                                                     best_checkpoint=best))
    tracking.finish(trainer, run_dir, metrics, best)
    print_metrics(metrics, targets)
    if final == "diverged":
        report.console.print(f"[red]run diverged[/]: {status.reason}. The test metrics above are those of "
                             f"best.ckpt. Usually cured by: {DIVERGENCE_CURES}.", soft_wrap=True)
    return {**metrics, **{k: v["value"] for k, v in objective.items()}, "status": final,
            "exit_code": status.exit_code or EXIT_OK}


def _objective(cfg: DictConfig, run_dir: Path) -> dict:
    """``{"objective": {"metric": ..., "value": ...}}`` of a run with an ``optimized_metric`` (a search's): the
    metric at the epoch of its best checkpoint; ``{}`` without one."""
    metric = cfg.get("optimized_metric")
    if not metric:
        return {}
    from edc.runs.search import objective_value

    monitor = ((cfg.get("callbacks") or {}).get("model_checkpoint") or {}).get("monitor", "val/loss")
    return {"objective": {"metric": metric, "value": objective_value(run_dir / METRICS_LOG, metric, monitor)}}


def register_sweeper() -> None:
    """Register edc's Optuna sweeper with Hydra by hand. Hydra finds plugins by listing the ``hydra_plugins``
    package, and an editable install (``pip install -e .``) hides it from that listing once the command runs
    outside the repository."""
    from hydra.core.plugins import Plugins
    from hydra_plugins.edc_optuna_sweeper import OptunaSweeper

    Plugins.instance().register(OptunaSweeper)


METRICS_LOG, METRICS_ASIDE = Path("logs/metrics.csv"), Path("logs/metrics-before-resume.csv")


def _set_metrics_aside(run_dir: Path) -> None:
    """Before a continued run's fit: keep ``logs/metrics.csv`` (Lightning's CSV logger starts it again)
    aside, with what an earlier continuation killed before :func:`_merge_metrics` left there."""
    _write_metrics(run_dir / METRICS_ASIDE, [run_dir / METRICS_ASIDE, run_dir / METRICS_LOG])
    (run_dir / METRICS_LOG).unlink(missing_ok=True)


def _merge_metrics(run_dir: Path) -> None:
    """After the fit (finished or stopped): ``logs/metrics.csv`` holds every epoch, the earlier parts'
    first; the epochs a part trained again (it restarts at its checkpoint's) come from the later part."""
    if (run_dir / METRICS_ASIDE).is_file():
        _write_metrics(run_dir / METRICS_LOG, [run_dir / METRICS_ASIDE, run_dir / METRICS_LOG])
        (run_dir / METRICS_ASIDE).unlink()


def _write_metrics(out: Path, parts: list[Path]) -> None:
    frames = [pd.read_csv(p) for p in parts if p.is_file() and p.stat().st_size]
    if not frames:
        return
    merged = frames[0]
    for later in frames[1:]:
        if len(later):
            merged = pd.concat([merged[merged.epoch < later.epoch.min()], later], ignore_index=True)
    with atomic_path(out) as tmp:
        merged.to_csv(tmp, index=False)


def _record_segment(run_dir: Path, before: dict, start: str, started: float) -> list[dict]:
    """Add the part of the run trained by this process to its ``segments`` in metadata.json; returns them."""
    segments = _segments(before) + [{"started": start, "finished": now(),
                                     "minutes": round((time.time() - started) / 60, 3)}]
    update_metadata(run_dir, segments=segments)
    return segments


def _segments(before: dict) -> list[dict]:
    """The parts of a continued run trained so far (one, for a record written before segments were kept)."""
    if "segments" in before:
        return before["segments"]
    minutes = (before.get("training_config") or {}).get("duration_minutes")
    return [{"started": before.get("timestamp"), "finished": before.get("finished"), "minutes": minutes}] \
        if minutes is not None else []


def _training_config(cfg: DictConfig, datamodule: EdcDataModule, **extra) -> dict:
    return {"max_epochs": cfg.trainer.max_epochs, "batch_size": datamodule.batch_size,
            "eval_batch_size": datamodule.eval_batch_size, "seed": cfg.seed, **extra}


def _loss_config(cfg: DictConfig) -> dict:
    """Loss type, its weights and the gradient clipping, for metadata.json."""
    settings = {k: v for k, v in OmegaConf.to_container(cfg.loss, resolve=True).items() if k not in ("_target_", "name")}
    return {"type": cfg.loss.get("name"), **settings, "gradient_clip_val": cfg.trainer.get("gradient_clip_val")}


def _best_checkpoint(trainer: pl.Trainer) -> str | None:
    for cb in trainer.callbacks:
        if isinstance(cb, pl.callbacks.ModelCheckpoint) and cb.best_model_path:
            return cb.best_model_path
    return None


def print_choices(cfg: DictConfig, full: bool) -> None:
    """One line of the composed choices (``model=physics loss=log_edc ...``), or the whole config."""
    if full:
        report.console.print(OmegaConf.to_yaml(cfg, resolve=True))
    elif HydraConfig.initialized():
        choices = {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra/")}
        report.console.print(" ".join(f"{k}={v}" for k, v in choices.items() if v is not None), soft_wrap=True)


@hydra.main(version_base="1.3", config_path=config_checks.CONF_DIR, config_name="train")
@task
def main(cfg: DictConfig):
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.get("resume"):
        cfg = resume_config(cfg.resume, list(HydraConfig.get().overrides.task))
    print_choices(cfg, bool(cfg.get("print_config")))
    quiet_lightning()
    result = train(cfg, run_dir)
    report.console.print(f"run dir: {run_dir}", soft_wrap=True)
    code = result.get("exit_code", EXIT_OK)
    if code and HydraConfig.get().mode.name != "MULTIRUN":
        sys.exit(code)
    return result


if __name__ == "__main__":
    entrypoint(main)()
