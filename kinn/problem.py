"""`Problem`: a PDE as data — domain, fields, the forms it can be solved in, and its reference solution."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from . import geometry
from .errors import KinnError

FORMS = ("strong", "energy", "inverse")


@dataclass(frozen=True)
class Problem:
    """A PDE problem, written once and solved by any family.

    name:      registry name.
    domain:    a deepxde geometry (`kinn.geometry.Rectangle`, ..., or `GeometryXTime`).
    fields:    names of the unknown fields, e.g. ("u",) or ("ux", "uy").
    strong, energy, inverse: the forms it can be solved in (at least one).
    exact:     exact solution, a torch function x (N, D) -> (N, C); or None.
    reference: a data file (name under `data/` or a path) holding a reference solution; or None.
    coords:    coordinate names; default ("x",), ("x", "y"), ("x", "y", "z"), plus "t" for a time axis.
    defaults:  recommended run settings, nested like the config: {"train": {...}, "points": {...},
               "model": {"mlp": {...}, "kan": {...}}}. The config file and CLI flags override them.
    """

    name: str
    domain: Any
    fields: tuple[str, ...] = ("u",)
    strong: Any = None
    energy: Any = None
    inverse: Any = None
    exact: Callable[[torch.Tensor], torch.Tensor] | None = None
    reference: str | None = None
    coords: tuple[str, ...] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        if not self.forms:
            raise KinnError(f"problem '{self.name}' declares no form; give at least one of {', '.join(FORMS)}")
        if self.coords is None:
            names = ("x", "y", "z")[: geometry.space(self.domain).dim]
            object.__setattr__(self, "coords", names + (("t",) if self.time_dependent else ()))
        object.__setattr__(self, "fields", tuple(self.fields))
        if len(self.coords) != self.dim:
            raise KinnError(f"problem '{self.name}': {len(self.coords)} coordinate names for a {self.dim}-D domain")

    @property
    def forms(self) -> dict[str, Any]:
        """The declared forms by kind, in the order strong, energy, inverse."""
        return {k: getattr(self, k) for k in FORMS if getattr(self, k) is not None}

    def form(self, kind: str | None):
        """The form of that kind (default: the first declared); a clear error if it is not declared."""
        forms = self.forms
        if kind is None:
            return next(iter(forms.values()))
        if kind not in forms:
            raise KinnError(f"problem '{self.name}' has no {kind} form; it has: {', '.join(forms)}")
        return forms[kind]

    @property
    def time_dependent(self) -> bool:
        return geometry.is_timedependent(self.domain)

    @property
    def dim(self) -> int:
        return geometry.space(self.domain).dim + int(self.time_dependent)

    @property
    def n_space(self) -> int:
        return geometry.space(self.domain).dim

    @property
    def t_index(self) -> int | None:
        return self.dim - 1 if self.time_dependent else None

    def reference_values(self, x: np.ndarray) -> np.ndarray:
        """Reference solution at points x (N, D) as float64 (N, C): exact, else interpolated data."""
        if self.exact is not None:
            with torch.no_grad():
                v = self.exact(torch.as_tensor(x, dtype=torch.float64))
            return v.reshape(len(x), -1).numpy()
        if self.reference is not None:
            from .reference import load_reference

            return load_reference(self.reference, self)(x)
        raise KinnError(f"problem '{self.name}' has neither an exact solution nor reference data")
