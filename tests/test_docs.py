"""Every command in the README and docs/ runs as written.

Each command line of a page's ```bash blocks runs, in order, in one scratch directory per page.
A line whose comment starts with ``long:`` is only composed (``--cfg job`` for the Hydra commands,
once per value of a ``-m`` sweep, ``--help`` for the others); ``exit N-M:`` names the exit codes it may end with; ``make`` lines run
as ``make -n`` and benchmark scripts with ``--help`` (they take minutes to hours)."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HYDRA_COMMANDS = ("edc.train", "edc.evaluate", "edc.predict", "edc.generate")


def command_lines(page: Path) -> list[tuple[str, str]]:
    """``(command, comment)`` of every command line in the page's bash blocks."""
    found, inside = [], False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith("```"):  # fences indented in a list item too
            inside = not inside and line.strip() == "```bash"
            continue
        if not inside or not line.strip() or line.lstrip().startswith("#"):
            continue
        commented = re.match(r"(.*?)\s+#\s?(.*)$", line)
        command, comment = (commented[1], commented[2]) if commented else (line, "")
        found.append((command.strip(), comment.strip()))
    return found


def sweep_runs(argv: list[str]) -> list[list[str]]:
    """A ``-m`` command as the single runs it sweeps (Hydra composes no ``--cfg`` of a multirun);
    the command itself if it is no sweep."""
    if "-m" not in argv[3:]:  # argv: python -m edc.COMMAND ...
        return [argv]
    argv = argv[:3] + [a for a in argv[3:] if a != "-m"]
    runs = [argv]
    for i, arg in enumerate(argv):
        key, _, values = arg.partition("=")
        if "," in values and not values.startswith(("[", "{")):
            runs = [run[:i] + [f"{key}={value}"] + run[i + 1:] for run in runs for value in values.split(",")]
    return runs


def how_to_run(command: str, comment: str) -> tuple[list[list[str]], Path | None, range]:
    """``(argvs, cwd, accepted exit codes)``; cwd None: the page's scratch directory."""
    argv = shlex.split(command)
    codes = range(0, 1)
    if match := re.match(r"exit (\d+)-(\d+):", comment):
        codes = range(int(match[1]), int(match[2]) + 1)
    if argv[0] == "make":
        return [["make", "-n", *argv[1:]]], ROOT, codes
    if argv[0].startswith(".venv/bin/"):
        return [[str(Path(sys.executable).parent / Path(argv[0]).name), *argv[1:]]], ROOT, codes
    assert argv[0] == "python", f"not a command the docs test knows: {command}"
    argv[0] = sys.executable
    if argv[1].startswith("benchmarks/") or argv[1].startswith("scripts/"):
        return [[argv[0], argv[1], "--help"]], ROOT, codes
    if comment.startswith("long:"):
        if argv[2] not in HYDRA_COMMANDS:
            return [argv + ["--help"]], None, codes
        return [run + ["--cfg", "job"] for run in sweep_runs(argv)], None, codes
    return [argv], None, codes


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_of_the_page_runs(page, tmp_path):
    lines = command_lines(page)
    if not lines:
        pytest.skip("no commands")
    scratch = tmp_path / "work"
    scratch.mkdir()
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)  # ../shared, as beside the repository
    for command, comment in lines:
        argvs, cwd, codes = how_to_run(command, comment)
        for argv in argvs:
            result = subprocess.run(argv, cwd=cwd or scratch, capture_output=True, text=True, timeout=900)
            assert result.returncode in codes, f"{page.name}: `{shlex.join(argv[1:])}` exited {result.returncode}:\n" \
                                               f"{result.stdout[-1500:]}\n{result.stderr[-2500:]}"
