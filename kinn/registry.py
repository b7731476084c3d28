"""Name lookup for problems and solver families, with helpful errors.

The dicts themselves live beside what they list (`problems/__init__.py: PROBLEMS`,
`solvers/__init__.py: FAMILIES`) as "module:attribute" strings, and are imported on first lookup, so that
problem and solver files can `from kinn import ...` freely.
"""
from __future__ import annotations

import importlib

from .errors import KinnError, unknown


def _resolve(entry):
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def problem_names() -> list[str]:
    from kinn.problems import PROBLEMS

    return list(PROBLEMS)


def family_names() -> list[str]:
    from kinn.solvers import FAMILIES

    return list(FAMILIES)


def get_problem(name: str):
    """The registered `Problem` called `name`."""
    from kinn.problems import PROBLEMS

    if name not in PROBLEMS:
        raise unknown("problem", name, PROBLEMS)
    p = _resolve(PROBLEMS[name])
    return p() if callable(p) and not hasattr(p, "domain") else p


def get_family(name: str):
    """An instance of the registered solver family called `name`."""
    from kinn.solvers import FAMILIES

    if name not in FAMILIES:
        raise unknown("solver", name, FAMILIES)
    return _resolve(FAMILIES[name])()
