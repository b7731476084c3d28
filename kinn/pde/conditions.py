"""Boundary and initial conditions, soft (a weighted penalty term) or hard (an output transform).

    Dirichlet(value, on=None, component=None, weight=1.0, hard=False, distance=None)
    Neumann(value, on=None, component=None, weight=1.0)       # ∂u/∂n = value
    BoundaryResidual(fn, on=None, weight=1.0)                  # fn(u, x, n) = 0, e.g. a traction σ·n − t
    Traction(value, on=..., component=None)                    # energy form: work −∫ t·u over a boundary part
    Initial(value, component=None, weight=1.0, hard=False)     # u(x, t0) = value
    OutputTransform(fn)                                         # u = fn(x, N(x)), any hard constraint
    Interface(a, b, start, end, flux=True, weight=1.0)          # subdomains a, b agree across a segment
    SegmentResidual(fn, part, start, end, weight=1.0)           # fn(u, x, n) = 0 on an inner segment

`value` is a number or a function of the points x (a torch tensor (N, D)) returning (N,) or (N, C).
`on` selects a part of the boundary: a function of numpy points (N, D) returning a boolean mask
(`kinn.pde.geometry.at(0, 0.0)` selects x = 0); None means the whole boundary.
`component` names the field it constrains (None: all fields).

Hard conditions are exact: a hard Dirichlet condition makes u_c = g(x) + distance(x)·N_c(x), with a
`distance` that vanishes on the constrained boundary part and is positive inside; a hard initial
condition makes u_c = g(x) + (t − t0)·N_c(x). One hard condition per component: combine several
into one `OutputTransform` yourself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from kinn.errors import KinnError


@dataclass(frozen=True)
class Condition:
    hard = False  # soft: a weighted penalty term; Dirichlet and Initial conditions may be hard
    value: float | Callable = 0.0
    on: Callable | None = None
    component: str | None = None
    weight: float = 1.0
    name: str | None = None

    def target(self, x: torch.Tensor, n_comp: int) -> torch.Tensor:
        """The prescribed values at x, shape (N, n_comp)."""
        if callable(self.value):
            g = self.value(x)
            g = g.reshape(len(x), -1) if g.dim() == 1 else g
            if g.shape[1] not in (1, n_comp):
                raise KinnError(f"{self.describe()}: value function returned {g.shape[1]} columns, "
                                f"expected {n_comp}")
            return g.to(x.dtype).expand(len(x), n_comp)
        return torch.full((len(x), n_comp), float(self.value), dtype=x.dtype, device=x.device)

    def components(self, fields: tuple[str, ...]) -> list[int]:
        if self.component is None:
            return list(range(len(fields)))
        if self.component not in fields:
            raise KinnError(f"{self.describe()}: no field '{self.component}'; fields: {', '.join(fields)}")
        return [fields.index(self.component)]

    def describe(self) -> str:
        return f"{type(self).__name__}{'(' + self.name + ')' if self.name else ''}"


@dataclass(frozen=True)
class Dirichlet(Condition):
    hard: bool = False
    distance: Callable | None = None

    def __post_init__(self):
        if self.hard and self.distance is None:
            raise KinnError(f"{self.describe()}: a hard Dirichlet condition needs distance=, a function of x "
                            "that is zero on the constrained boundary and positive inside")


@dataclass(frozen=True)
class Neumann(Condition):
    pass


@dataclass(frozen=True)
class BoundaryResidual(Condition):
    """A soft condition of any kind: `fn(u, x, n)` (written with `kinn.pde.ops` on the field handle u; n the
    outward unit normals, (N, d)) returns a residual (N, R) that must vanish on the part `on`. A traction
    condition is `BoundaryResidual(lambda u, x, n: mechanics.traction(σ(u), n) - t(x), on=...)`."""

    fn: Callable | None = None

    def __post_init__(self):
        if not callable(self.fn):
            raise KinnError(f"{self.describe()}: give fn(u, x, n), the residual that vanishes on the boundary part")


@dataclass(frozen=True)
class Traction(Condition):
    """A natural condition of the energy form: the work −∫Γ t·u dΓ of a prescribed traction t (`value`,
    one column per constrained field) on the boundary part `on`."""


@dataclass(frozen=True)
class Initial(Condition):
    hard: bool = False


@dataclass(frozen=True)
class OutputTransform:
    """A hard constraint of any kind: the model's output is `fn(x, raw)` instead of `raw` (both (N, C))."""

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, x, raw):
        return self.fn(x, raw)


@dataclass(frozen=True)
class Segment:
    """A straight segment inside the domain, start -> end (2-D points), for the two conditions below.

    Its unit normal n is the segment's direction turned a quarter to the left (start (0, 0) -> end (1, 0)
    gives n = (0, 1)). A strong form samples its points at random, an energy form by Gauss-Legendre
    (`kinn.forms.quadrature.segment`).
    """

    start: tuple[float, float] = (0.0, 0.0)
    end: tuple[float, float] = (1.0, 0.0)
    weight: float = 1.0
    name: str | None = None

    def __post_init__(self):
        if len(self.start) != 2 or len(self.end) != 2 or self.length == 0:
            raise KinnError(f"{type(self).__name__}: start and end must be two distinct 2-D points, "
                            f"got {self.start} and {self.end}")

    @property
    def length(self) -> float:
        return math.dist(self.start, self.end)

    def normal(self) -> tuple[float, float]:
        dx, dy = (e - s for s, e in zip(self.start, self.end))
        return (-dy / self.length, dx / self.length)


@dataclass(frozen=True)
class Interface(Segment):
    """Continuity across a segment between subdomains a and b (`Problem.subdomains`), each of which has its
    own network: the values agree (u_a = u_b, every field) and, with `flux`, so do the normal derivatives
    (∂u_a/∂n = ∂u_b/∂n). A strong form needs both; in an energy form flux continuity is natural, so there
    the condition is a value penalty alone and `flux` must be False."""

    a: str = ""
    b: str = ""
    flux: bool = True

    def describe(self) -> str:
        return f"Interface({self.name or self.a + '|' + self.b})"


@dataclass(frozen=True)
class SegmentResidual(Segment):
    """A soft condition on a segment inside the domain, seen from subdomain `part` (a crack face, say):
    `fn(u, x, n)` must vanish, written with `kinn.pde.ops` on the field of `part`'s network."""

    fn: Callable | None = None
    part: str = ""

    def describe(self) -> str:
        return f"SegmentResidual({self.name or self.part})"


def hard_transform(conditions, fields: tuple[str, ...], t_index: int | None, t0: float = 0.0):
    """Fold the hard conditions of a form into one output transform (None when there are none)."""
    transforms = [c for c in conditions if isinstance(c, OutputTransform)]
    per_comp: dict[int, Condition] = {}
    for c in conditions:
        if not (isinstance(c, Condition) and c.hard):
            continue
        if isinstance(c, Initial) and t_index is None:
            raise KinnError(f"{c.describe()}: a hard initial condition needs a time-dependent domain")
        for k in c.components(fields):
            if k in per_comp:
                raise KinnError(f"field '{fields[k]}' has two hard conditions ({per_comp[k].describe()}, "
                                f"{c.describe()}); combine them into one OutputTransform")
            per_comp[k] = c
    if not per_comp and not transforms:
        return None

    def transform(x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        cols = list(raw.unbind(1))
        for k, c in per_comp.items():
            dist = (x[:, t_index] - t0) if isinstance(c, Initial) else c.distance(x).reshape(-1)
            cols[k] = c.target(x, 1)[:, 0] + dist * cols[k]
        out = torch.stack(cols, 1)
        for t in transforms:
            out = t(x, out)
        return out

    return transform
