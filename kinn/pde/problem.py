"""`Problem`: a PDE as data — domain, fields, the forms it can be solved in, and its reference solution."""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from kinn.pde import geometry
from kinn.data.reference import load_reference, resolve
from kinn.errors import KinnError
from kinn.forms.base import Form
from kinn.pde.fields import AutogradBackend, Backend, Field
from kinn.pde.conditions import Interface, SegmentResidual
from kinn.registry import form_kinds

@dataclass(frozen=True)
class Problem:
    """A PDE problem, written once and solved by any family.

    name:      registry name.
    domain:    a deepxde geometry (`kinn.pde.geometry.Rectangle`, ..., or `GeometryXTime`).
    fields:    names of the unknown fields, e.g. ("u",) or ("ux", "uy").
    forms:     the forms it can be solved in (at least one), `Form` objects (`kinn.forms`), each of its own
               kind; the first is the default. `strong=`, `energy=`, `inverse=` and `operator=` are
               shorthands for a form of that kind.
    order:     the highest derivative order its residuals take, where it is above the form's own
               (`Form.order`: 2 for the strong form, 1 for the energy form): families refuse networks
               whose derivatives of that order vanish (a KAN of cubic splines for a fourth order).
    exact:     exact solution, a torch function x (N, D) -> (N, C); or None.
    reference: a data file (name under `data/` or a path) holding a reference solution; or None. With
               neither, a run reports residual norms, condition misfits and `checks` instead of errors,
               and a reference can be attached afterwards (`kinn score RUN --reference FILE`).
    checks:    quantities a run reports besides errors, {name: fn(predict) -> float}, where
               predict(points (N, D)) gives the trained fields (N, C) as numpy: a conserved quantity, say.
    coords:    coordinate names; default ("x",), ("x", "y"), ("x", "y", "z"), plus "t" for a time axis.
    units:     units of coordinates, fields and derived quantities for the figures' labels, {name: unit}
               ({"x": "mm", "ux": "mm", "mises": "MPa"}); a name without one is labelled bare.
    derived:   quantities scored besides the fields, {name: fn(u, x) -> (N,)} written with `kinn.pde.ops`
               (a displacement magnitude, a von Mises stress); their reference comes from the exact
               solution through the same function, or from the reference file's `derived/<name>`.
    mesh:      a triangulation for triangle quadrature: a mesh file meshio reads (a name under data/ or
               a path), or a function returning (points (P, 2), cells (M, 3)); None: generated.
    subdomains: named parts of the domain, {name: deepxde geometry}, each solved by its own network
               (`kinn.models.piecewise.PiecewiseModel`; a point belongs to the first part containing it). The
               forms join the parts with `Interface` conditions; an energy form integrates over each part
               with its own rule, so quadrature cells never straddle an interface or a crack.
    defaults:  recommended run settings, nested like the config: {"train": {...}, "points": {...},
               "model": {"mlp": {...}, "kan": {...}}}, a family's own under its name ({"kan": {"train":
               {...}}}), and a form's own under the form's name ({"energy": {...}}, shaped the same way).
               The config file and CLI flags override them.
    """

    name: str
    domain: Any
    fields: tuple[str, ...] = ("u",)
    forms: Any = ()
    strong: InitVar[Any] = None
    energy: InitVar[Any] = None
    inverse: InitVar[Any] = None
    operator: InitVar[Any] = None
    exact: Callable[[torch.Tensor], torch.Tensor] | None = None
    reference: str | None = None
    coords: tuple[str, ...] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    derived: Mapping[str, Callable] = field(default_factory=dict)
    mesh: str | Callable | None = None
    subdomains: Mapping[str, Any] = field(default_factory=dict)
    order: int | None = None
    checks: Mapping[str, Callable] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self, strong, energy, inverse, operator):
        given = list(self.forms.values()) if isinstance(self.forms, Mapping) else list(self.forms)
        given += [f for f in (strong, energy, inverse, operator) if f is not None]
        forms = {}
        for f in given:
            if not isinstance(f, Form):
                raise KinnError(f"problem '{self.name}': forms must be kinn form objects (StrongForm, ...), got "
                                f"{type(f).__name__}")
            if f.kind in forms:
                raise KinnError(f"problem '{self.name}' declares two {f.kind} forms; give one of each kind")
            forms[f.kind] = f
        if not forms:
            raise KinnError(f"problem '{self.name}' declares no form; give at least one of {', '.join(form_kinds())}")
        object.__setattr__(self, "forms", forms)
        if self.coords is None:
            names = ("x", "y", "z")[: geometry.space(self.domain).dim]
            object.__setattr__(self, "coords", names + (("t",) if self.time_dependent else ()))
        object.__setattr__(self, "fields", tuple(self.fields))
        if len(self.coords) != self.dim:
            raise KinnError(f"problem '{self.name}': {len(self.coords)} coordinate names for a {self.dim}-D domain")
        object.__setattr__(self, "subdomains", dict(self.subdomains))
        for name, c in self.conditions():
            for part in ((c.a, c.b) if isinstance(c, Interface) else (c.part,) if isinstance(c, SegmentResidual) else ()):
                if part not in self.subdomains:
                    raise KinnError(f"problem '{self.name}', {name} form: {c.describe()} names subdomain '{part}'; "
                                    f"subdomains: {', '.join(self.subdomains) or 'none declared'}")

    def conditions(self):
        """(form kind, condition) for every condition of every declared form."""
        return [(kind, c) for kind, f in self.forms.items() for c in f.conditions()]

    def needs_order(self, kind: str) -> int:
        """The derivative order a network must have nonzero for the form `kind`: `order`, else the form's."""
        return max(self.order or 0, self.form(kind).order)

    def form(self, kind: str | None):
        """The form of that kind (default: the first declared); a clear error if it is not declared."""
        forms = self.forms
        if kind is None:
            return next(iter(forms.values()))
        if kind not in forms:
            raise KinnError(f"problem '{self.name}' has no {kind} form; it has: {', '.join(forms)}")
        return forms[kind]

    @property
    def has_reference(self) -> bool:
        """Whether a run can be scored against an exact solution or reference data."""
        return self.exact is not None or self.reference is not None

    def reference_label(self) -> str | None:
        """What a run is scored against, in words ("exact solution", the reference file), or None."""
        return "exact solution" if self.exact is not None else (str(self.reference) if self.reference else None)

    @property
    def inverse_problem(self) -> bool:
        """Whether this is an inverse problem: a form of it fits unknown scalars or fields to observations.
        (Orthogonal to the forms: KINN's *inverse form* is the boundary integral equation.)"""
        return any(f.unknowns for f in self.forms.values())

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

    def triangulation(self, n: int, n_boundary: int, domain=None) -> tuple[np.ndarray, np.ndarray]:
        """Points and triangles for triangle quadrature: the problem's mesh, else a generated one (of
        `domain`, a subdomain say; default the problem's)."""
        if self.mesh is None:
            return geometry.triangulate(self.domain if domain is None else domain, n, n_boundary)
        if callable(self.mesh):
            return self.mesh()
        return geometry.read_mesh(resolve(self.mesh))

    def derived_reference(self, name: str, x: np.ndarray) -> np.ndarray:
        """The reference value of derived quantity `name` at points x (N, D), float64 (N,)."""
        if self.exact is not None:
            xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
            u = Field(AutogradBackend(self.exact(xt), xt), self.fields, self.coords, self.n_space)
            return self.derived[name](u, xt).detach().reshape(len(x)).numpy()
        ref = load_reference(self.reference, self)
        if name in ref.derived:
            return ref.derived_at(name, x)
        values = Backend()  # a quantity of the values alone (|u|, say) from the reference fields
        values.values = torch.as_tensor(ref(x))
        try:
            return self.derived[name](Field(values, self.fields, self.coords, self.n_space), x).reshape(len(x)).numpy()
        except NotImplementedError:
            raise KinnError(f"derived quantity '{name}' needs derivatives, which {ref.path} lacks: store it as "
                            f"derived/{name}") from None

    def reference_values(self, x: np.ndarray) -> np.ndarray:
        """Reference solution at points x (N, D) as float64 (N, C): exact, else interpolated data."""
        if self.exact is not None:
            with torch.no_grad():
                v = self.exact(torch.as_tensor(x, dtype=torch.float64))
            return v.reshape(len(x), -1).numpy()
        if self.reference is not None:
            return load_reference(self.reference, self)(x)
        raise KinnError(f"problem '{self.name}' has neither an exact solution nor reference data; score a "
                        "finished run against one with `kinn score RUN --reference FILE`")
