"""A design problem: a shoebox room whose surfaces may be treated, and the target its parameters must reach
(docs/design.md). Read from plain dicts (the Hydra groups ``conf/design/room`` and ``conf/design/target``,
or a user's YAML file); every problem names its key.

A surface has an untreated ``material`` and optionally ``options``: treatments that may cover a
``fraction`` of it (a number, or a list of the fractions allowed). A treatment covering the fraction
``f`` gives the surface the area-weighted mix ``f * treatment + (1 - f) * untreated`` of absorption and
scattering. ``walls`` sets the four walls at once (each is still chosen on its own).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import pandas as pd

from edc.acoustics.decay_curves import OCTAVE_BANDS_HZ
from edc.acoustics.iso3382 import MID_BANDS
from edc.acoustics.simulate import SURFACES
from edc.data.materials import Material, lookup
from edc.data.schema import SURFACE_FEATURES, WALLS
from edc.errors import EdcInputError

PARAMETERS = ("EDT", "T20", "C50", "T_mid", "EDT_mid")  # what a target may bound
DECAY_TIMES = ("EDT", "T20", "T_mid", "EDT_mid")
JND = {"time": 0.05, "C50": 1.0}  # ISO 3382-1 Annex A: decay times 5 % (relative), C50 1 dB
OBJECTIVES = ("least_area", "centre")
SURFACE_KEYS = ("material", "options", "fraction")


@dataclasses.dataclass(frozen=True)
class Choice:
    """One finish of a surface: ``treatment`` (None: untreated) over ``fraction`` of it, and the surface's
    resulting ``absorption`` and ``scattering`` (7,) at 125 Hz to 8 kHz."""

    treatment: str | None
    fraction: float
    absorption: tuple
    scattering: tuple


@dataclasses.dataclass(frozen=True)
class Surface:
    name: str  # west, east, south, north, floor, ceiling
    untreated: str
    choices: tuple  # of Choice; choices[0] is the untreated surface
    area: float  # m2


@dataclasses.dataclass(frozen=True)
class Bound:
    """``low <= column <= high`` at every receiver (None: no bound on that side); ``column`` as in
    :func:`edc.acoustics.iso3382.parameter_columns` (``T20_500``, ``C50_1000``, ``T20_mid``)."""

    column: str
    low: float | None
    high: float | None

    @property
    def jnd(self) -> float:
        """The just noticeable difference at this bound: 1 dB for C50, 5 % of the bound for a decay time."""
        if self.column.startswith("C50"):
            return JND["C50"]
        return JND["time"] * max(b for b in (self.low, self.high) if b is not None)


@dataclasses.dataclass(frozen=True)
class Target:
    bounds: tuple  # of Bound
    objective: str  # least_area: the feasible design with the least treated area; centre: the most margin

    def as_ranges(self) -> dict:
        """``{"T20_500": [min, max], ...}`` (None where unbounded)."""
        return {b.column: [b.low, b.high] for b in self.bounds}


@dataclasses.dataclass(frozen=True)
class Problem:
    """The room (m), its receivers ``(n, 3)``, its six surfaces (:data:`SURFACES` order) and the target."""

    dimensions: tuple
    source: tuple
    receivers: np.ndarray
    surfaces: tuple
    target: Target

    @property
    def n_designs(self) -> int:
        return int(np.prod([len(s.choices) for s in self.surfaces]))

    def all_designs(self) -> np.ndarray:
        """Every design ``(n_designs, 6)``: the index of each surface's choice."""
        return np.array(list(itertools.product(*[range(len(s.choices)) for s in self.surfaces])), dtype=np.int64)

    @functools.cached_property
    def _choices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(absorption, scattering, fraction)`` of every surface's choices, ``(6, width, 7)`` twice and
        ``(6, width)``; surfaces with fewer choices padded with their untreated one (never indexed)."""
        width = max(len(s.choices) for s in self.surfaces)
        padded = [list(s.choices) + [s.choices[0]] * (width - len(s.choices)) for s in self.surfaces]
        return (np.array([[c.absorption for c in row] for row in padded]),
                np.array([[c.scattering for c in row] for row in padded]),
                np.array([[c.fraction for c in row] for row in padded]))

    def treated_area(self, designs: np.ndarray) -> np.ndarray:
        """``(n,)`` m2 covered by treatments in each design ``(n, 6)``."""
        areas = np.array([s.area for s in self.surfaces])
        return (self._choices[2][np.arange(6), designs] * areas).sum(1)

    def rows(self, designs: np.ndarray) -> pd.DataFrame:
        """The surfaces-layout rows (``ID``, PROTOCOL's 93 columns) of every design ``(n, 6)`` at every
        receiver: ``n * n_receivers`` rows, design-major, IDs ``d{design}_r{receiver}``."""
        n, n_rec = len(designs), len(self.receivers)
        absorption, scattering, _ = self._choices
        per_surface = np.concatenate([absorption[np.arange(6), designs], scattering[np.arange(6), designs]], axis=2)
        materials = np.repeat(per_surface.reshape(n, -1), n_rec, axis=0)  # (n * n_rec, 6 * 14)
        geometry = np.tile(np.concatenate([np.tile([*self.dimensions, *self.source], (n_rec, 1)), self.receivers], 1),
                           (n, 1))
        frame = pd.DataFrame(np.concatenate([geometry, materials], 1), columns=SURFACE_FEATURES)
        frame.insert(0, "ID", [f"d{d}_r{r}" for d in range(n) for r in range(n_rec)])
        return frame

    def describe(self, design) -> dict:
        """``{surface: {"material", "treatment", "fraction", "treated_m2"}}`` of one design (6,)."""
        out = {}
        for surface, k in zip(self.surfaces, design):
            choice = surface.choices[int(k)]
            out[surface.name] = {"material": surface.untreated, "treatment": choice.treatment,
                                 "fraction": choice.fraction, "treated_m2": round(choice.fraction * surface.area, 3)}
        return out


def _numbers(value, n: int, where: str) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != n or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise EdcInputError(f"{where}={value!r}: give a list of {n} numbers (m).")
    return tuple(float(v) for v in value)


def _inside(point: tuple, dimensions: tuple, where: str) -> None:
    if not all(0 < p < d for p, d in zip(point, dimensions)):
        raise EdcInputError(f"{where}={list(point)} lies outside the room (0, 0, 0) to {list(dimensions)} m. "
                            "Fix: give a position inside the room (x < Length, y < Width, z < Height).")


def receivers_of(spec, dimensions: tuple, where: str) -> np.ndarray:
    """``(n, 3)`` receiver positions: a list of points, or ``{grid: {x: [min, max], y: [min, max], z: h,
    n: [nx, ny]}}``, a regular grid over an audience area at the height ``z``."""
    if isinstance(spec, dict) and set(spec) == {"grid"}:
        grid = spec["grid"] or {}
        missing = [k for k in ("x", "y", "z", "n") if k not in grid]
        if missing:
            raise EdcInputError(f"{where}.grid: missing {missing}. Fix: grid: {{x: [min, max], y: [min, max], "
                                "z: height, n: [nx, ny]}} (m).")
        (x0, x1), (y0, y1) = _numbers(grid["x"], 2, f"{where}.grid.x"), _numbers(grid["y"], 2, f"{where}.grid.y")
        n = grid["n"]
        if not (isinstance(n, (list, tuple)) and len(n) == 2 and all(isinstance(k, int) and k >= 1 for k in n)):
            raise EdcInputError(f"{where}.grid.n={n!r}: give [nx, ny], two whole numbers >= 1.")
        xs, ys = np.linspace(x0, x1, n[0]), np.linspace(y0, y1, n[1])
        points = [(x, y, float(grid["z"])) for x in xs for y in ys]
    elif isinstance(spec, (list, tuple)) and spec:
        points = [_numbers(p, 3, f"{where}[{i}]") for i, p in enumerate(spec)]
    else:
        raise EdcInputError(f"{where}: give a list of [x, y, z] positions or a grid (docs/design.md).")
    for i, point in enumerate(points):
        _inside(point, dimensions, f"{where}[{i}]")
    return np.array(points, dtype=np.float64)


def _fractions(value, where: str) -> list[float]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1 for f in values):
        raise EdcInputError(f"{where}={value!r}: the share of the surface a treatment may cover, a number in "
                            "(0, 1] or a list of them.")
    return sorted({float(f) for f in values})


def _mix(treated: Material, untreated: Material, fraction: float) -> tuple[tuple, tuple]:
    a = fraction * np.asarray(treated.absorption) + (1 - fraction) * np.asarray(untreated.absorption)
    s = fraction * np.asarray(treated.scattering) + (1 - fraction) * np.asarray(untreated.scattering)
    return tuple(map(float, a)), tuple(map(float, s))


def surface_of(name: str, spec, materials: dict, area: float, where: str) -> Surface:
    """One surface from ``{material, options, fraction}``."""
    if not isinstance(spec, dict) or "material" not in spec:
        raise EdcInputError(f"{where}: give at least its untreated material ({where}.material: NAME).")
    unknown = sorted(set(spec) - set(SURFACE_KEYS))
    if unknown:
        raise EdcInputError(f"{where}: unknown key(s) {unknown}. Fix: use {', '.join(SURFACE_KEYS)}.")
    untreated = lookup(str(spec["material"]), materials, f"{where}.material")
    choices = [Choice(None, 0.0, untreated.absorption, untreated.scattering)]
    if "options" in spec:
        options = spec["options"]
        if not isinstance(options, (list, tuple)) or not options:
            raise EdcInputError(f"{where}.options={options!r}: an empty set of allowed treatments. Fix: list at "
                                "least one material name, or drop options to keep the surface as it is.")
        fractions = _fractions(spec.get("fraction", 1.0), f"{where}.fraction")
        for i, option in enumerate(options):
            treated = lookup(str(option), materials, f"{where}.options[{i}]")
            choices += [Choice(treated.name, f, *_mix(treated, untreated, f)) for f in fractions]
    elif "fraction" in spec:
        raise EdcInputError(f"{where}.fraction is given without options. Fix: add {where}.options: [NAMES].")
    return Surface(name, untreated.name, tuple(choices), area)


def surfaces_of(spec, materials: dict, dimensions: tuple, where: str) -> tuple:
    """The six surfaces from ``{west: ..., ..., ceiling: ...}`` (``walls`` for the four walls not named)."""
    if not isinstance(spec, dict):
        raise EdcInputError(f"{where}: give each surface (or walls, floor, ceiling) its material.")
    unknown = sorted(set(spec) - set(SURFACES) - {"walls"})
    if unknown:
        raise EdcInputError(f"{where}: unknown surface(s) {unknown}. Fix: use {', '.join(SURFACES)} or walls.")
    length, width, height = dimensions
    areas = dict(zip(SURFACES, [width * height] * 2 + [length * height] * 2 + [length * width] * 2))
    out = []
    for name in SURFACES:
        key = name if name in spec or name not in WALLS else "walls"
        if key not in spec:
            raise EdcInputError(f"{where}.{name}: not given. Fix: give {where}.{name} (or {where}.walls for the "
                                "four walls) a material.")
        out.append(surface_of(name, spec[key], materials, areas[name], f"{where}.{key}"))
    return tuple(out)


def target_of(spec, where: str = "target", bands_known: bool = True) -> Target:
    """The target from ``{T20: {bands: [...], min, max} or {bands, range: [min, max]}, C50: {...},
    T_mid: {min, max}, objective}``, or per band as ``T20_500: [min, max]`` (design.json's ``target``). ``bands_known``: the model predicts octave bands (else only
    broadband would do, and a design target is per band)."""
    if not isinstance(spec, dict):
        raise EdcInputError(f"{where}: give per-parameter bounds (docs/design.md).")
    spec = dict(spec)
    objective = spec.pop("objective", "least_area")
    if objective not in OBJECTIVES:
        raise EdcInputError(f"{where}.objective={objective!r}. Fix: one of {', '.join(OBJECTIVES)}.")
    if not spec:
        raise EdcInputError(f"{where}: no bounds. Fix: bound at least one of {', '.join(PARAMETERS)}.")
    bounds = []
    for key, rule in spec.items():
        parameter, _, band = str(key).partition("_")
        if parameter in ("EDT", "T20", "C50") and band:  # one band: T20_500: [min, max] (design.json's form)
            if not (isinstance(rule, (list, tuple)) and len(rule) == 2):
                raise EdcInputError(f"{where}.{key}={rule!r}: give [min, max] (null for an open side).")
            named = {"bands": [int(band)]} if band.isdigit() else {}
            if band == "mid" and parameter == "C50":
                raise EdcInputError(f"{where}.{key}: C50 has no mid-band value. Fix: bound C50 per band.")
            rule = {**named, "min": rule[0], "max": rule[1]}
            parameter = parameter if band.isdigit() else ("T_mid" if parameter == "T20" else "EDT_mid")
        elif key not in PARAMETERS:
            raise EdcInputError(f"{where}: unknown parameter {key!r}. Fix: bound any of {', '.join(PARAMETERS)}, "
                                "or one band as T20_500: [min, max].")
        bounds += _bounds(parameter, rule, f"{where}.{key}", bands_known)
    return Target(tuple(bounds), objective)


def _bounds(parameter: str, rule, where: str, bands_known: bool) -> list[Bound]:
    if not isinstance(rule, dict) or not set(rule) <= {"bands", "min", "max", "range"}:
        raise EdcInputError(f"{where}={rule!r}: give {{bands: [Hz, ...], min: X, max: Y}} (or range: [X, Y]).")
    low, high = rule.get("min"), rule.get("max")
    if "range" in rule:
        low, high = _numbers(rule["range"], 2, f"{where}.range")
    for key, value in (("min", low), ("max", high)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise EdcInputError(f"{where}.{key}={value!r}: not a number.")
    if low is None and high is None:
        raise EdcInputError(f"{where}: neither min nor max. Fix: give at least one bound.")
    if low is not None and high is not None and low > high:
        raise EdcInputError(f"{where}: min {low} > max {high}, an impossible range. Fix: min <= max.")
    if parameter in DECAY_TIMES and any(v is not None and v <= 0 for v in (low, high)):
        raise EdcInputError(f"{where}: a decay time bound must be > 0 s.")
    if not bands_known:
        raise EdcInputError(f"{where}: this checkpoint predicts the broadband curve only, and a design target is "
                            "per octave band. Fix: use a checkpoint trained on band curves (e.g. data=rooms3000).")
    low, high = (None if v is None else float(v) for v in (low, high))
    if parameter.endswith("_mid"):
        if "bands" in rule:
            raise EdcInputError(f"{where}: {parameter} is the mean of {MID_BANDS[0]} and {MID_BANDS[1]} Hz; "
                                "it takes no bands.")
        return [Bound(parameter.replace("T_mid", "T20_mid"), low, high)]
    bands = rule.get("bands")
    if not isinstance(bands, (list, tuple)) or not bands:
        raise EdcInputError(f"{where}.bands: give the octave bands (Hz) it holds in, e.g. [250, 500, 1000, 2000].")
    wrong = [b for b in bands if b not in OCTAVE_BANDS_HZ]
    if wrong:
        raise EdcInputError(f"{where}.bands: the model does not predict {wrong} Hz. Fix: octave bands among "
                            f"{', '.join(map(str, OCTAVE_BANDS_HZ))} Hz.")
    return [Bound(f"{parameter}_{int(b)}", low, high) for b in bands]


def problem_of(room: dict, target: dict, materials: dict, bands_known: bool = True) -> Problem:
    """The :class:`Problem` of a room and a target spec (the keys as in ``conf/design/``)."""
    if not isinstance(room, dict):
        raise EdcInputError("room: give dimensions, source, receivers and surfaces (docs/design.md).")
    unknown = sorted(set(room) - {"dimensions", "source", "receivers", "surfaces", "description"})
    missing = [k for k in ("dimensions", "source", "receivers", "surfaces") if k not in room]
    if unknown or missing:
        raise EdcInputError(f"room: {'unknown key(s) ' + str(unknown) if unknown else ''}"
                            f"{' and ' if unknown and missing else ''}{'missing ' + str(missing) if missing else ''}. "
                            "Fix: a room has dimensions, source, receivers and surfaces (docs/design.md).")
    dimensions = _numbers(room["dimensions"], 3, "room.dimensions")
    if min(dimensions) <= 0:
        raise EdcInputError(f"room.dimensions={list(dimensions)}: lengths must be > 0 m.")
    source = _numbers(room["source"], 3, "room.source")
    _inside(source, dimensions, "room.source")
    receivers = receivers_of(room["receivers"], dimensions, "room.receivers")
    surfaces = surfaces_of(room["surfaces"], materials, dimensions, "room.surfaces")
    return Problem(dimensions, source, receivers, surfaces, target_of(target, "target", bands_known))
