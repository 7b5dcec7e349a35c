"""What every Hydra command shares: bad input exits 2 with one message, a full disk exits 1 with one, a
sweep job records its failure and the sweep goes on."""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import sys
import traceback
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from edc.cli.config import CONF_DIR
from edc.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EdcInputError,
    full_error,
    report_input_error,
)
from edc.io import try_lock, update_metadata


def task(fn):
    """Decorate a Hydra task function: bad input exits 2 with one clear message.

    Inside a multirun a job never raises or exits (Hydra would abort the other jobs
    and skip the sweep summary): it records its status in ``metadata.json`` and
    returns it; the summary callback sets the sweep's exit code at the end.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        _state["task_started"] = True
        if _in_multirun():
            return _run_sweep_job(fn, *args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except EdcInputError as err:
            _discard_empty_run_dir()
            sys.exit(report_input_error(err))
        except Exception as err:
            full = disk_full(err)
            if full is None or full_error():
                raise
            print(f"error: no space left on the device{' for ' + str(full.filename) if full.filename else ''}. "
                  "Fix: free space there, or write elsewhere (hydra.run.dir=, out=, out_dir=). Every file is "
                  "written to a temporary name and renamed: those written before are whole, none is half-written.",
                  file=sys.stderr)
            sys.exit(EXIT_FAILED)

    return wrapped


def disk_full(err: BaseException) -> OSError | None:
    """The 'no space left' (or quota) error in ``err``'s chain of causes, or None. Libraries wrap it (torch
    raises a RuntimeError from its writer, a handler's own write then fails too)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and (err.errno in (errno.ENOSPC, errno.EDQUOT)
                                         or (err.errno is None and " requested and " in str(err))):
            return err  # the latter: numpy's short write ("16000 requested and 992 written")
        err = err.__cause__ or err.__context__
    return None


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN"


def _run_sweep_job(fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
        if os.environ.get("SLURM_JOB_ID") and isinstance(result, dict) \
                and result.get("exit_code") in (EXIT_SIGINT, EXIT_SIGTERM):
            # Preempted or requeued: leave no result, so that submitit waits for the requeued run,
            # which resumes from last.ckpt in this job's dir.
            sys.exit(result["exit_code"])
        return result
    except EdcInputError as err:
        code, error = report_input_error(err), f"bad input: {err}"
    except Exception as err:  # noqa: BLE001 - recorded, and the sweep goes on
        traceback.print_exception(err)
        code, error = EXIT_FAILED, f"{type(err).__name__}: {err}"
    update_metadata(Path(HydraConfig.get().runtime.output_dir), status="failed", error=error, exit_code=code)
    return {"status": "failed", "exit_code": code}


def _discard_empty_run_dir() -> None:
    """Remove the Hydra run dir of a refused job if Hydra made it and it holds nothing but Hydra's own
    files (a command without a run dir of its own, such as predict, is left alone)."""
    if not HydraConfig.initialized() or HydraConfig.get().output_subdir is None:
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if run_dir.resolve() == Path.cwd().resolve():
        return
    if not run_dir.is_dir() or not all(p.name in (".hydra", ".lock") or p.suffix == ".log" for p in run_dir.iterdir()):
        return
    fd = try_lock(run_dir / ".lock")
    if fd is not None:  # not while another process trains into it
        shutil.rmtree(run_dir, ignore_errors=True)
        os.close(fd)


def entrypoint(hydra_main):
    """Wrap a ``@hydra.main`` function for ``python -m``.

    Hydra exits 1 for errors of its own, such as an unknown config option
    (``model=nope``); they happen before any task starts, so that 1 becomes 2,
    the code for bad configuration.
    """

    @functools.wraps(hydra_main)
    def wrapped():
        _state["task_started"] = False
        try:
            hydra_main()
        except SystemExit as exit_:
            if exit_.code == EXIT_FAILED and not _state["task_started"]:
                sys.exit(EXIT_BAD_INPUT)
            raise

    return wrapped


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep the memory a process frees for its next allocations (blocks up to 32 MB from
    its heap, trimmed beyond 2 GB, grown 1 GB at a time) instead of handing it back at once; False where the
    C library is not glibc (nothing changed). Prediction allocates and frees tens of MB per batch: handed
    back, each batch faults it in again, about a third of a band model's prediction time on 2 cores
    (docs/benchmarks.md). For a command's process: its memory goes back to the system when it ends."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process runs on
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS), no C library by that handle (Windows)
        return False
    trim_threshold, top_pad, mmap_threshold = -1, -2, -3  # glibc's M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD
    return all(mallopt(option, value) for option, value in
               ((mmap_threshold, 2**25), (trim_threshold, 2**31 - 1), (top_pad, 2**30)))


def composed_once(config_name: str, hydra_main, task_fn):
    """``python -m`` for a command with no run dir of its own (predict): ``task_fn(cfg)`` on the config
    composed once with Hydra's compose API, sparing ``@hydra.main``'s second composition and job set-up
    (0.2 s of a 3.5 s command on 2 cores). Hydra's flags (``--help``, ``--cfg job``, ``-m``) and overrides that do
    not compose go through ``hydra_main`` (:func:`entrypoint`), with Hydra's own messages and exit codes."""

    def wrapped():
        overrides = sys.argv[1:]
        if any(arg.startswith("-") for arg in overrides):
            return entrypoint(hydra_main)()
        try:
            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3", job_name=config_name):
                cfg = compose(config_name, overrides=overrides)
        except Exception:  # noqa: BLE001 - Hydra reports it, as it does for every command
            return entrypoint(hydra_main)()
        keep_freed_memory()
        return task(task_fn)(cfg)

    return wrapped


_state = {"task_started": False}
