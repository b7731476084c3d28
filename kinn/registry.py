"""The registries — problems, families, forms — and their lookup with helpful errors.

    kinn.problems.PROBLEMS   name -> "module:attribute" of a `kinn.Problem`       (problems/__init__.py)
    kinn.solvers.FAMILIES    name -> "module:class" of a `kinn.models.Family`      (solvers/__init__.py)
    FORMS (here)             kind -> "module:class" of a `kinn.forms.base.Form`

Entries are strings, imported on first lookup, so problem and family files can `from kinn import ...`
freely. Adding a problem, a family or a form is one file and one line in its dict.
"""
from __future__ import annotations

import importlib

from kinn.errors import unknown

FORMS = {
    "strong": "kinn.forms.strong:StrongForm",
    "energy": "kinn.forms.energy:EnergyForm",
    "inverse": "kinn.forms.boundary_integral:BoundaryIntegralForm",  # BINN, not inverse problems
    "operator": "kinn.forms.operator:OperatorForm",
}


def _resolve(entry):
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def form_kinds() -> list[str]:
    return list(FORMS)


def problem_names() -> list[str]:
    from kinn.problems import PROBLEMS

    return list(PROBLEMS)


def family_names() -> list[str]:
    from kinn.solvers import FAMILIES

    return list(FAMILIES)


def get_problem(name: str):
    """The registered `Problem` called `name`."""
    from kinn.pde.problem import Problem
    from kinn.problems import PROBLEMS

    if name not in PROBLEMS:
        raise unknown("problem", name, PROBLEMS)
    p = _resolve(PROBLEMS[name])
    return p if isinstance(p, Problem) else p()  # a Problem, or a function that makes one


def get_family(name: str):
    """An instance of the registered family called `name`."""
    from kinn.solvers import FAMILIES

    if name not in FAMILIES:
        raise unknown("family", name, FAMILIES)
    return _resolve(FAMILIES[name])()


def get_form(kind: str) -> type:
    """The form class registered for `kind`."""
    if kind not in FORMS:
        raise unknown("form", kind, FORMS)
    return _resolve(FORMS[kind])
