"""List the materials a features CSV may name: ``python -m edc.materials [--file MY.csv] [--search carpet]``.

Prints each material's octave-band absorption (125 Hz to 8 kHz), its scattering and where its numbers
come from (docs/data.md, "Materials").
"""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.data.materials import DEFAULT_SCATTERING, catalogue
from edc.errors import EdcInputError, report_input_error


def table(materials: dict, search: str | None = None) -> Table:
    """A rich table of ``materials`` whose name, category or description contains ``search``."""
    out = Table("material", "category", *(f"a{b}" for b in OCTAVE_BANDS_HZ), "scattering", "description",
                title="absorption per octave band (Hz), scattering, description")
    needle = (search or "").lower()
    for m in materials.values():
        if needle in f"{m.name} {m.category} {m.description}".lower():
            flat = len(set(m.scattering)) == 1
            scattering = f"{m.scattering[0]:g}" if flat else " ".join(f"{s:g}" for s in m.scattering)
            absorption = [f"{a:.2f}" for a in m.absorption]
            if "repeats" in m.source:
                absorption[-1] += "*"
            out.add_row(m.name, m.category or f"(from {m.source})", *absorption, scattering, m.description)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edc.materials", description=__doc__.splitlines()[0])
    parser.add_argument("--file", help="your materials CSV (material, a125..a8000, optional s125..s8000)")
    parser.add_argument("--search", help="only materials whose name, category or description contain this")
    args = parser.parse_args(argv)
    try:
        materials = catalogue(args.file)
    except EdcInputError as err:
        return report_input_error(err)
    shown = table(materials, args.search)
    console = Console(width=200)
    console.print(shown)
    console.print(f"{shown.row_count} of {len(materials)} materials. Name one per surface in a features CSV "
                  "(west_material ... ceiling_material, or walls_material); numbers given beside a name win; "
                  f"materials without scattering data scatter {DEFAULT_SCATTERING:g} in every band; "
                  "* the database gives no 8 kHz value: the 4 kHz one is repeated.")
    return 0
