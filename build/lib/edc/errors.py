"""User-facing errors and the exit codes of the Hydra commands (train, evaluate, predict, generate).

Exit codes (docs/commands.md): 0 completed, 1 failed (unexpected error), 2 bad input or
configuration, 3 diverged, 130 interrupted by SIGINT, 143 by SIGTERM. ``edc.gpu`` has codes of its
own (its docstring).
"""
from __future__ import annotations

import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class EdcInputError(Exception):
    """Bad input or configuration. The message says what, where and how to fix it."""


def describe_rows(labels, limit: int = 5) -> str:
    """``'a, b, c (and 7 more; 10 in all)'`` for error messages."""
    labels = [str(x) for x in labels]
    head = ", ".join(labels[:limit])
    return head if len(labels) <= limit else f"{head} (and {len(labels) - limit} more; {len(labels)} in all)"


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def report_input_error(err: EdcInputError) -> int:
    """Print ``err`` as one clear message (traceback only with HYDRA_FULL_ERROR=1)."""
    if full_error():
        import traceback

        traceback.print_exception(err)
    print(f"error: {err}", file=sys.stderr)
    return EXIT_BAD_INPUT
