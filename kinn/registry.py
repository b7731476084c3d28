"""The registries — problems, families, forms — and their lookup with helpful errors.

    kinn.problems.PROBLEMS   name -> "module:attribute" of a `kinn.Problem`       (problems/__init__.py)
    kinn.solvers.FAMILIES    name -> "module:class" of a `kinn.models.Family`      (solvers/__init__.py)
    FORMS (here)             kind -> "module:class" of a `kinn.forms.base.Form`

Entries are strings, imported on first lookup, so problem and family files can `from kinn import ...`
freely. Adding a problem, a family or a form is one file and one line in its dict.

Problems and families also come from outside the package:

- installed packages declare entry points in the groups `kinn.problems` and `kinn.families` (the Python
  packaging convention, read by `importlib.metadata`), `name = "module:attribute"`; the catalogue's own
  names win over a package's;
- a problem spec `path/to/file.py:NAME` (or `package.module:NAME`) names a `Problem` (or a function that
  makes one) in a user's own file or module, on the command line, in a config file and in `kinn.load`.
"""
from __future__ import annotations

import importlib
import inspect
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from kinn.errors import KinnError, unknown

FORMS = {
    "strong": "kinn.forms.strong:StrongForm",
    "energy": "kinn.forms.energy:EnergyForm",
    "inverse": "kinn.forms.boundary_integral:BoundaryIntegralForm",  # BINN, not inverse problems
    "operator": "kinn.forms.operator:OperatorForm",
    "fit": "kinn.forms.fit:FitForm",
}
PROBLEM_GROUP, FAMILY_GROUP = "kinn.problems", "kinn.families"
CATALOGUE = "catalogue"


def _resolve(entry):
    if not isinstance(entry, str):
        return entry
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of `group` by name (the first one found wins on a clash)."""
    out: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        out.setdefault(ep.name, ep)
    return out


def _with_plugins(builtin: dict, group: str) -> dict[str, tuple[object, str]]:
    """{name: (entry, where it comes from)}: the built-in dict first, then the group's entry points."""
    out = {name: (entry, CATALOGUE) for name, entry in builtin.items()}
    for name, ep in _entry_points(group).items():
        if name not in out:
            dist = ep.dist.name if ep.dist is not None else "an installed package"
            out[name] = (ep, f"package {dist} ({ep.value})")
    return out


def _problems() -> dict[str, tuple[object, str]]:
    from kinn.problems import PROBLEMS

    return _with_plugins(PROBLEMS, PROBLEM_GROUP)


def _families() -> dict[str, tuple[object, str]]:
    from kinn.solvers import FAMILIES

    return _with_plugins(FAMILIES, FAMILY_GROUP)


def _load(entry, kind: str, name: str):
    """An entry of a registry (a "module:attr" string, an entry point or the object itself), imported."""
    if isinstance(entry, metadata.EntryPoint):
        try:
            return entry.load()
        except (ImportError, AttributeError) as e:
            raise KinnError(f"{kind} '{name}' from entry point {entry.value} cannot be loaded: {e}") from None
    return _resolve(entry)


def form_kinds() -> list[str]:
    return list(FORMS)


def problem_names() -> list[str]:
    return list(_problems())


def family_names() -> list[str]:
    return list(_families())


def problem_sources() -> dict[str, str]:
    """{problem name: where it comes from ("catalogue", or the package and entry point)}."""
    return {name: where for name, (_, where) in _problems().items()}


def family_sources() -> dict[str, str]:
    """{family name: where it comes from}."""
    return {name: where for name, (_, where) in _families().items()}


def is_spec(name: str) -> bool:
    """Whether `name` names a problem in a file or module ("file.py:NAME", "pkg.mod:NAME"), not a registry entry."""
    return ":" in name


def canonical(name: str) -> str:
    """A problem name as a run directory records it: a file spec with its absolute path (so --resume and
    `kinn.load` find the file from anywhere), anything else unchanged."""
    where, _, attr = name.rpartition(":")
    return f"{Path(where).expanduser().resolve()}:{attr}" if is_spec(name) and where.endswith(".py") else name


def get_problem(name: str):
    """The `Problem` called `name`: a registered name (catalogue or entry point), or a spec
    "path/to/file.py:NAME" / "package.module:NAME" naming a Problem, or a function that returns one."""
    problems = _problems()
    if name in problems:
        p = _load(problems[name][0], "problem", name)
        return _problem_of(p, f"problem '{name}' ({problems[name][1]})")
    if not is_spec(name):
        raise KinnError(str(unknown("problem", name, problems)) + "; or give path/to/file.py:NAME")
    where, _, attr = name.rpartition(":")
    module = _module_of(where)
    if not attr or not hasattr(module, attr):
        found = [k for k, v in vars(module).items() if _is_problem(v)]
        raise KinnError(f"{where} defines no '{attr}'; problems it defines: {', '.join(found) or 'none'}")
    return _problem_of(getattr(module, attr), f"'{attr}' in {where}")


def _is_problem(obj) -> bool:
    from kinn.pde.problem import Problem

    return isinstance(obj, Problem)


def _problem_of(obj, what: str):
    """obj, a Problem or a function of no arguments returning one; anything else is refused."""
    if not _is_problem(obj) and inspect.isfunction(obj) and _no_arguments(obj):
        obj = obj()
    if not _is_problem(obj):
        kind = "function that takes arguments" if inspect.isfunction(obj) else type(obj).__name__
        raise KinnError(f"{what} is a {kind}, not a kinn.Problem (nor a function of no arguments returning one)")
    return obj


def _no_arguments(fn) -> bool:
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in inspect.signature(fn).parameters.values())


_FILES: dict[str, object] = {}  # resolved path -> module: a file is executed once per process


def _module_of(where: str):
    """The module a spec names: a .py file (executed once, under a private name) or an importable module."""
    if not where.endswith(".py"):
        try:
            return importlib.import_module(where)
        except ImportError as e:
            raise KinnError(f"cannot import module '{where}' ({e}); give an importable module or a path/to/file.py") from None
    path = Path(where).expanduser().resolve()
    if not path.is_file():
        raise KinnError(f"problem file not found: {where}")
    key = str(path)
    if key not in _FILES:
        spec = importlib.util.spec_from_file_location(f"kinn_user_{len(_FILES)}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except KinnError as e:
            del sys.modules[spec.name]
            raise KinnError(f"{where}: {e}") from None
        _FILES[key] = module
    return _FILES[key]


def get_family(name: str):
    """An instance of the family called `name` (catalogue or entry point)."""
    from kinn.models.family import Family

    families = _families()
    if name not in families:
        raise unknown("family", name, families)
    cls = _load(families[name][0], "family", name)
    if not (isinstance(cls, type) and issubclass(cls, Family)):
        raise KinnError(f"family '{name}' ({families[name][1]}) is a {type(cls).__name__}, not a kinn.Family subclass")
    return cls()


def get_form(kind: str) -> type:
    """The form class registered for `kind`."""
    if kind not in FORMS:
        raise unknown("form", kind, FORMS)
    return _resolve(FORMS[kind])
