"""Acoustic design, the inverse question: which treatments bring a room's predicted parameters into a
target (``python -m edc.design``, docs/design.md)."""
from edc.inverse.problem import Problem, problem_of
from edc.inverse.search import Result, search

__all__ = ["Problem", "Result", "problem_of", "search"]
