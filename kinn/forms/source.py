"""The source term of the inverse (boundary-integral) form: Poisson's −Δu = f instead of Laplace's.

The fundamental solution removes the domain integral of Δu only; a source leaves ∫Ω u* f dΩ in the
boundary integral equation and in the representation formula. Two ways to carry it:

    ParticularSolution(u_p)   a known u_p with −Δu_p = f: the BIE and the representation act on the
                              harmonic v = u − u_p (its boundary data u − u_p, q − ∂u_p/∂n), and u_p is
                              added back inside. Exact (no domain quadrature); prefer it when f has one.
    DomainIntegral(f, h)      the domain term itself, ∫Ω u*(ξ, x) f(x) dΩ, by a singular-aware triangle
                              quadrature on a triangulation of spacing h (`kinn.boundary.domain`), at the
                              collocation points once and at each evaluation point.

Both give constants (the network does not enter them): assembled once in float64. Sign convention:
−Δu = f with u* = −ln ρ / (2π), so u(ξ) = ∫ u* q ds − ∫ q* u ds + ∫Ω u* f dΩ.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from kinn.boundary import Boundary, Field, Kernel, Laplace, Nodes
from kinn.boundary.domain import domain_integrals, triangulate
from kinn.errors import KinnError


def values_of(fn: Callable, x: np.ndarray, c: int, what: str) -> np.ndarray:
    """fn (a torch function of float64 points) at x (N, 2), as float64 (N, c); `what` names fn in the one
    line that refuses another shape or a value that is not finite."""
    with torch.no_grad():
        return _checked(fn(torch.as_tensor(x, dtype=torch.float64)), x, c, what)


def _checked(v, x: np.ndarray, c: int, what: str) -> np.ndarray:
    """fn's values v at x (N, 2) as float64 (N, c), or the one line refusing their shape or a non-finite value."""
    v = np.asarray(v, dtype=float)
    if v.size != len(x) * c or v.shape[:1] != (len(x),):
        allowed = "(N,) or (N, 1)" if c == 1 else f"(N, {c})"
        raise KinnError(f"{what} gave shape {v.shape} at {len(x)} points (N, 2); allowed: {allowed}")
    bad = ~np.isfinite(v).reshape(len(x), c).all(1)
    if bad.any():
        raise KinnError(f"{what} is NaN or infinite at {int(bad.sum())} of {len(x)} points, e.g. {x[bad][0].tolist()}; "
                        "allowed: finite values")
    return v.reshape(len(x), c)


def _function(fn, what: str) -> None:
    if not callable(fn):
        raise KinnError(f"{what} must be a function of points (N, 2) (a torch function), got {type(fn).__name__}")


class Source(ABC):
    """A source term of the inverse form (see the module's docstring). Every array is float64."""

    @abstractmethod
    def check(self, kernel: Kernel) -> None:
        """Refuse, with one line, a kernel this source cannot serve."""

    @abstractmethod
    def shift(self, nodes: Nodes, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(u_s, q_s) (M, c): boundary data taken off the network's before the BIE and the representation."""

    @abstractmethod
    def bie(self, boundary: Boundary, kernel: Kernel, points: np.ndarray) -> np.ndarray:
        """(S, c) the domain term at the collocation points, subtracted from the BIE residual."""

    @abstractmethod
    def interior(self, boundary: Boundary, kernel: Kernel, points: np.ndarray, derived: bool = True) -> Field:
        """What adds to the representation at interior points (P, 2): value (P, c), derived (P, m) (NaN
        where not `derived`: a source may then skip it)."""


@dataclass(frozen=True, eq=False)
class ParticularSolution(Source):
    """u_p(x) (a torch function of points (N, 2) -> (N,) or (N, 1), differentiable) with −Δu_p = f:
    the form solves Laplace's equation for u − u_p. Laplace's kernel only (a particular displacement of
    elasticity would need its stresses too)."""

    u: Callable

    def __post_init__(self):
        _function(self.u, "ParticularSolution's u")

    def check(self, kernel: Kernel) -> None:
        if not isinstance(kernel, Laplace):
            raise KinnError(f"a ParticularSolution serves Laplace's kernel only, got {type(kernel).__name__}; "
                            "give a body force as DomainIntegral(f)")

    def _with_gradient(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
        u = self.u(xt)
        value = _checked(u.detach(), x, 1, "ParticularSolution's u")  # its shape and finiteness, with one line
        (g,) = torch.autograd.grad(u.sum(), xt)
        return value, g.numpy()

    def shift(self, nodes: Nodes, c: int) -> tuple[np.ndarray, np.ndarray]:
        u, g = self._with_gradient(nodes.points)
        return u, (g * nodes.normals).sum(1, keepdims=True)

    def bie(self, boundary: Boundary, kernel: Kernel, points: np.ndarray) -> np.ndarray:
        return np.zeros((len(points), 1))  # all in the shift

    def interior(self, boundary: Boundary, kernel: Kernel, points: np.ndarray, derived: bool = True) -> Field:
        return Field(*self._with_gradient(points))  # the gradient costs next to nothing here


@dataclass(frozen=True, eq=False)
class DomainIntegral(Source):
    """f(x) (a torch function of points (N, 2) -> (N,) or (N, c): a body force per unit area for
    elasticity) integrated against the fundamental solution over a triangulation of spacing h (default:
    the longest panel's length). Error: f's interpolation by degree-10 polynomials per triangle, and for
    curved boundaries the chords' O(h²) (straight edges are exact)."""

    f: Callable
    h: float | None = None

    def __post_init__(self):
        _function(self.f, "DomainIntegral's f")
        if self.h is not None and not self.h > 0:
            raise KinnError(f"DomainIntegral: the spacing h must be > 0, got {self.h}")

    def check(self, kernel: Kernel) -> None:
        pass  # any kernel: the domain term needs its single layer only

    def shift(self, nodes: Nodes, c: int) -> tuple[np.ndarray, np.ndarray]:
        zero = np.zeros((len(nodes.points), c))
        return zero, zero

    def triangles(self, boundary: Boundary) -> np.ndarray:
        """(T, 3, 2) the triangles the domain term integrates over."""
        h = self.h or max(p.length for p in boundary.panels)
        points, cells = triangulate(boundary, h)
        return points[cells]

    def _integrals(self, boundary: Boundary, kernel: Kernel, points: np.ndarray, derived: bool):
        c = kernel.components
        return domain_integrals(kernel, lambda x: values_of(self.f, x, c, "DomainIntegral's f"), self.triangles(boundary),
                                points, derived=derived)

    def bie(self, boundary: Boundary, kernel: Kernel, points: np.ndarray) -> np.ndarray:
        return self._integrals(boundary, kernel, points, False)[0]

    def interior(self, boundary: Boundary, kernel: Kernel, points: np.ndarray, derived: bool = True) -> Field:
        return Field(*self._integrals(boundary, kernel, points, derived))
