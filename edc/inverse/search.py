"""The search over treatments: every design where they are few, else a beam search from the untreated room
that changes one surface at a time; each design predicted at every receiver in one batch.

A design's *violation* is the sum, over the target's bounds and the receivers, of how far the prediction
lies outside its range, in just noticeable differences (:attr:`Bound.jnd`); its *margin* the least signed
distance to a bound (positive: inside), in the same unit. Feasible designs (violation 0) come first; among
them ``least_area`` ranks by treated area (then margin), ``centre`` by margin; infeasible ones by violation.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from edc.inverse.problem import Problem


@dataclasses.dataclass
class Scores:
    """For designs ``(n, 6)``: ``values`` ``(n, n_receivers, n_bounds)`` predicted parameters, ``violation``
    and ``margin`` (n,) in JNDs, ``area`` (n,) treated m2."""

    designs: np.ndarray
    values: np.ndarray
    violation: np.ndarray
    margin: np.ndarray
    area: np.ndarray

    def order(self, objective: str) -> np.ndarray:
        """Indices from best to worst."""
        second = self.area if objective == "least_area" else -self.margin
        return np.lexsort((-self.margin, second, self.violation))

    def take(self, index) -> Scores:
        return Scores(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    @staticmethod
    def join(parts: list[Scores]) -> Scores:
        return Scores(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Scores)))


@dataclasses.dataclass
class Result:
    scores: Scores  # every design evaluated, best first
    method: str  # exhaustive or beam
    seconds: float  # wall-clock of the search

    @property
    def best(self) -> np.ndarray:
        return self.scores.designs[0]

    @property
    def feasible(self) -> bool:
        return bool(self.scores.violation[0] == 0)


def judge(values: np.ndarray, problem: Problem, safety: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(violation, margin)`` (n,) in JNDs of parameters ``values`` ``(n, n_receivers, n_bounds)``; an
    undefined value (NaN) violates by 10 JNDs. ``safety`` (JND): a value closer than that to a bound
    violates too (by what it lacks), so that a feasible prediction leaves room for the model's error."""
    bounds = problem.target.bounds
    low = np.array([-np.inf if b.low is None else b.low for b in bounds])
    high = np.array([np.inf if b.high is None else b.high for b in bounds])
    jnd = np.array([b.jnd for b in bounds])
    inside = np.minimum(values - low, high - values) / jnd  # (n, r, b), positive inside
    inside = np.where(np.isnan(inside), -10.0, inside)
    return np.clip(safety - inside, 0, None).sum((1, 2)), inside.min((1, 2))


class Predictions:
    """A model's parameters of designs at every receiver, ``(n, n_receivers, n_bounds)``: each design
    predicted once (``predictor``: :class:`edc.api.Predictor` of a surfaces band model), plus ``offset``
    ``(n_receivers, n_bounds)``, a correction learnt from a simulation (:func:`refined`)."""

    def __init__(self, predictor, problem: Problem, batch: int = 4096):
        self.predictor, self.problem, self.batch = predictor, problem, batch
        self.cache, self.offset = {}, 0.0

    def raw(self, designs: np.ndarray) -> np.ndarray:
        """The model's own values (no offset)."""
        problem, columns = self.problem, [b.column for b in self.problem.target.bounds]
        missing = list(dict.fromkeys(tuple(d) for d in designs if tuple(d) not in self.cache))
        per_batch = max(1, self.batch // len(problem.receivers))
        for start in range(0, len(missing), per_batch):
            chunk = np.array(missing[start:start + per_batch], dtype=np.int64)
            _, params = self.predictor.predict(problem.rows(chunk), validated=True, warn=False)
            values = params[columns].to_numpy(np.float64).reshape(len(chunk), len(problem.receivers), len(columns))
            self.cache.update(zip(map(tuple, chunk), values))
        return np.stack([self.cache[tuple(d)] for d in designs])

    def __call__(self, designs: np.ndarray) -> np.ndarray:
        return self.raw(designs) + self.offset


def score(values_of, problem: Problem, designs: np.ndarray, safety: float = 0.0) -> Scores:
    """Judge ``designs`` ``(n, 6)`` by ``values_of(designs)`` (e.g. :class:`Predictions`)."""
    values = values_of(designs)
    violation, margin = judge(values, problem, safety)
    return Scores(designs, values, violation, margin, problem.treated_area(designs))


def search(values_of, problem: Problem, beam_width: int = 16, max_rows: int = 12000, safety: float = 0.0) -> Result:
    """The best designs of ``problem`` by ``values_of`` (:class:`Predictions`, or anything that gives
    ``(n, n_receivers, n_bounds)`` values of designs): :class:`Result`, every design tried, best first; all of them where
    designs x receivers <= ``max_rows`` (the rows predicted), else a beam search of ``beam_width`` that
    predicts at most ``max_rows`` rows. Feasible: every bound held with ``safety`` JND to spare (:func:`judge`)."""
    start = time.perf_counter()
    if problem.n_designs * len(problem.receivers) <= max_rows:
        scores, method = score(values_of, problem, problem.all_designs(), safety), "exhaustive"
    else:
        max_designs = max(max_rows // len(problem.receivers), 1)
        scores, method = _beam(values_of, problem, beam_width, max_designs, safety), "beam"
    scores = scores.take(scores.order(problem.target.objective))
    return Result(scores, method, time.perf_counter() - start)


def _neighbours(designs: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Every design that differs from one of ``designs`` in one surface's choice."""
    out = []
    for design in designs:
        for surface, size in enumerate(sizes):
            for choice in range(size):
                if choice != design[surface]:
                    changed = design.copy()
                    changed[surface] = choice
                    out.append(changed)
    return np.unique(np.array(out, dtype=np.int64), axis=0) if out else np.zeros((0, len(sizes)), np.int64)


def _beam(values_of, problem: Problem, width: int, max_designs: int, safety: float) -> Scores:
    sizes = [len(s.choices) for s in problem.surfaces]
    tried = score(values_of, problem, np.zeros((1, len(sizes)), np.int64), safety)
    seen = {tuple(d) for d in tried.designs}
    beam = tried
    while len(seen) < max_designs:
        fresh = np.array([d for d in _neighbours(beam.designs, sizes) if tuple(d) not in seen], dtype=np.int64)
        if not len(fresh):
            break
        fresh = fresh[: max_designs - len(seen)]
        seen |= {tuple(d) for d in fresh}
        new = score(values_of, problem, fresh, safety)
        tried = Scores.join([tried, new])
        pool = Scores.join([beam, new])
        best = pool.take(pool.order(problem.target.objective)[:width])
        if {tuple(d) for d in best.designs} == {tuple(d) for d in beam.designs}:
            break  # no neighbour enters the beam: a local optimum
        beam = best
    return tried


def refined(predictions: Predictions, problem: Problem, simulate, attempts: int, **options) -> list[dict]:
    """Search, simulate the chosen design (``simulate(design)``: a parameter table, one row per receiver), and while the
    simulation misses the target search again with the model corrected by what it missed at that design
    (``offset`` = simulated - predicted, per receiver and bound; the model's error varies slowly between
    neighbouring designs of one room): at most ``attempts`` searches. Returns each attempt's
    ``{"result", "simulated", "met"}``; the last is the answer."""
    history = []
    for _ in range(max(attempts, 1)):
        result = search(predictions, problem, **options)
        simulated = simulate(result.best)
        values = simulated[[b.column for b in problem.target.bounds]].to_numpy(np.float64)
        met = bool(judge(values[None], problem)[0][0] == 0)
        history.append({"result": result, "simulated": simulated, "met": met})
        if met:
            break
        predictions.offset = np.nan_to_num(values - predictions.raw(result.best[None])[0])
    return history
