"""Inverse problems: unknown scalars (`Unknown`) and fields (`UnknownField`) of a problem, fitted to
`Observations` together with the physics, in the strong form (`InverseProblemForm`, kind "strong": the
collocation residual plus a data term) or in the energy form (`EnergyInverseProblemForm`, kind "energy":
the potential's first variation against test functions plus a data term).

An inverse *problem* is a property of the problem, not a form: `Problem.inverse_problem` says a problem has
unknowns, and `--form strong` or `--form energy` picks how its physics is posed. KINN's *inverse form* is
the boundary integral equation (`kinn.forms.boundary_integral`, `--form inverse`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from kinn.data.reference import Reference, resolve
from kinn.errors import KinnError
from kinn.forms.energy import EnergyForm
from kinn.forms.points import PointForm, at_points, columns
from kinn.forms.strong import StrongForm
from kinn.pde import geometry
from kinn.pde.conditions import BoundaryResidual
from kinn.pde.fields import Backend, Field
from kinn.run.config import PointsConfig


@dataclass(frozen=True)
class Unknown:
    """An unknown scalar of an inverse problem, trained with the network.

    initial:  the starting guess. positive: parametrised as exp(θ), so it stays positive.
    true:     the value that made the observations, when known: the run reports the estimate's error.
    """

    name: str
    initial: float
    positive: bool = False
    true: float | None = None
    is_field: ClassVar[bool] = False  # a scalar, not a field (`UnknownField`)

    def __post_init__(self):
        if self.positive and not self.initial > 0:
            raise KinnError(f"unknown '{self.name}' is positive, so its initial value must be > 0, got {self.initial}")


@dataclass(frozen=True)
class UnknownField:
    """An unknown coefficient field of an inverse problem, K(x): a second network of the run's family
    and options, trained with the solution's. A residual reads it as a function of the points,
    `p["K"](x)` -> (N, 1), differentiable in x (so ∇·(K∇u) takes ∇K too).

    initial:  the field where the network outputs 0: K = initial · exp(N(x)) when `positive`, else
              initial + N(x).
    true:     the field that made the observations, x (N, D) -> (N,) or (N, 1), when known: the run
              reports its relative L2 error (`rel_error/K`) on 4,096 points inside the domain.
    """

    name: str
    initial: float = 1.0
    positive: bool = True
    true: Callable | None = None
    is_field: ClassVar[bool] = True

    def __post_init__(self):
        if self.positive and not self.initial > 0:
            raise KinnError(f"unknown field '{self.name}' is positive, so its initial value must be > 0, "
                            f"got {self.initial}")


@dataclass(frozen=True)
class Observations:
    """The data of an inverse form: a file, or values drawn from the problem's reference.

    path:   an HDF5 file in the reference `points` layout (data/README.md): `points` (N, D) inside the
            domain and `fields/<name>` (N,) for each observed field. None: `n` points drawn inside the
            domain (a stream of their own, not the evaluation set) valued by the problem's exact solution
            or reference, plus Gaussian noise of standard deviation `noise` × the field's RMS.
    fields: the observed fields (default: all).
    """

    path: str | None = None
    n: int = 500
    noise: float = 0.0
    fields: Sequence[str] | None = None
    seed: int = 0                     # the data are the same whatever the run's seed
    subset: int | None = None         # from a file: a random subset of this many points (seeded), not all

    def columns(self, problem) -> list[int]:
        """The observed fields' columns among the problem's fields."""
        names = list(self.fields or problem.fields)
        unknown = [n for n in names if n not in problem.fields]
        if unknown:
            raise KinnError(f"observed field(s) {', '.join(unknown)} are not fields of problem '{problem.name}' "
                            f"({', '.join(problem.fields)})")
        return [problem.fields.index(n) for n in names]

    def load(self, problem) -> tuple[np.ndarray, np.ndarray]:
        """(points (N, D), values (N, k) of the observed fields), read or drawn once per process."""
        key = (id(problem), self)  # the problem is kept with its data, so no other object takes its id
        if key not in _OBSERVED:
            _OBSERVED[key] = (problem, *self._load(problem))
        return _OBSERVED[key][1:]

    def _load(self, problem):
        cols = self.columns(problem)
        names = [problem.fields[c] for c in cols]
        if self.path is None:
            with geometry.numpy_seed(self.seed):
                x = geometry.interior(problem.domain, self.n)
                y = problem.reference_values(x)[:, cols]
                y = y + self.noise * np.sqrt((y**2).mean(0)) * np.random.standard_normal(y.shape)
            return x, y
        x, y = _read_observations(self.path, problem, names)
        if self.subset is not None and self.subset < len(x):
            keep = np.sort(np.random.default_rng(self.seed).choice(len(x), self.subset, replace=False))
            x, y = x[keep], y[keep]
        outside = ~geometry.inside(problem.domain, x)
        if outside.any():
            raise KinnError(f"observations {self.path}: {int(outside.sum())} of {len(x)} points lie outside the "
                            f"domain of problem '{problem.name}', e.g. {x[outside][0].tolist()}")
        return x, y


_OBSERVED: dict = {}


def _read_observations(path, problem, names) -> tuple[np.ndarray, np.ndarray]:
    ref = Reference(resolve(path), tuple(names), problem.coords)
    if ref.layout != "points":
        raise KinnError(f"observations {path}: layout '{ref.layout}'; observations use the 'points' layout")
    return ref.points, ref.node_values


def with_unknowns(fn, p: dict):
    """fn with the unknowns: `fn(*args, p)` when fn takes one argument more than given, else fn(*args)."""
    import inspect

    try:
        takes = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a builtin or C function: no unknowns
        takes = None

    def call(*args):
        return fn(*args, p) if takes == len(args) + 1 else fn(*args)

    return call


@dataclass(frozen=True)
class InverseProblemForm(PointForm):
    """The strong form of an inverse problem: unknown scalars (and fields) fitted to observations with the
    physics. Of kind "strong": the collocation form, with a data term.

    residual:     `residual(u, x, p)` with p = {name: scalar tensor} of the unknown scalars and
                  {name: function of x} of the unknown fields, written with `ops`.
    unknowns:     `Unknown` scalars and `UnknownField`s; they live in the model (`model.unknowns`,
                  `model.unknown_fields`), so the optimiser, checkpoints and resumes treat them like weights.
    observations: where the data come from (`Observations`).
    bcs:          as in the strong form; a `BoundaryResidual` fn may take p as a fourth argument.

    Loss terms: "pde", the soft conditions, and "data", the mean squared misfit at the observations
    relative to the observations' mean square (scale-free).
    """

    residual: Callable
    unknowns: Sequence[Unknown]
    observations: Observations = field(default_factory=Observations)
    bcs: Sequence = field(default_factory=tuple)
    kind: ClassVar[str] = "strong"
    order: ClassVar[int] = 2
    collocation: ClassVar[bool] = True
    physics_terms: ClassVar[tuple[str, ...]] = ("pde",)

    def strong(self, model) -> StrongForm:
        """The physics at the model's current unknowns, as a strong form."""
        p = model.unknown_values()
        bcs = [dataclass_replace(c, fn=with_unknowns(c.fn, p)) if isinstance(c, BoundaryResidual) else c
               for c in self.bcs]
        return StrongForm(with_unknowns(self.residual, p), bcs)

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        """The strong form's point sets, plus the observations ("data", "data/values")."""
        out = StrongForm(self.residual, self.bcs).sample(problem, points)
        out["data"], out["data/values"] = self.observations.load(problem)
        return out

    def residuals(self, model, problem, x, create_graph: bool = True) -> torch.Tensor:
        return self.strong(model).residuals(model, problem, x, create_graph)

    def loss(self, model, problem, pts: dict[str, torch.Tensor], weights=None) -> dict[str, torch.Tensor]:
        return {**self.strong(model).loss(model, problem, pts), "data": misfit(model, pts)}

    def weights(self) -> dict[str, float]:
        return StrongForm(self.residual, self.bcs).weights()


def misfit(model, pts: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean squared misfit at the observations relative to their mean square (scale-free)."""
    y = pts["data/values"]
    miss = model(pts["data"])[:, model.observed] - y
    return miss.square().mean() / y.square().mean().clamp_min(torch.finfo(y.dtype).tiny)


class _FirstOrder(Backend):
    """Values (N, c) and gradients (N, c, D) given as tensors: what an energy density reads, so that its
    partials by them are one autograd pass over the density alone."""

    def __init__(self, values: torch.Tensor, grads: torch.Tensor):
        self.values, self.grads = values, grads

    def d(self, c: int, i: int) -> torch.Tensor:
        return self.grads[:, c, i : i + 1]

    def d2(self, c: int, i: int, j: int) -> torch.Tensor:
        raise KinnError("the energy form of an inverse problem takes densities of first derivatives only")


def legendre(x: torch.Tensor, lo, hi, m: int) -> torch.Tensor:
    """(N, m²) the products P_i(ξ) P_j(η), i, j < m, of Legendre polynomials of the coordinates of x
    (N, 2) mapped from the box [lo, hi] to [−1, 1]² (by the three-term recurrence; differentiable in x)."""
    t = 2 * (x - x.new_tensor(lo)) / x.new_tensor(hi - lo) - 1
    P = [torch.ones_like(t), t]
    for k in range(1, m - 1):
        P.append(((2 * k + 1) * t * P[k] - k * P[k - 1]) / (k + 1))
    P = torch.stack(P[:m], -1)                                                      # (N, 2, m)
    return (P[:, 0, :, None] * P[:, 1, None, :]).reshape(len(x), m * m)


@dataclass(frozen=True)
class EnergyInverseProblemForm(PointForm):
    """The energy form of an inverse problem: unknown scalars (and fields) fitted to observations with
    the physics of a potential Π(u; p) = ∫Ω ψ(u, x, p) dΩ − ∫Γ t·u dΓ. Of kind "energy".

    Why not minimise Π + misfit over u and p together: Π is not a loss in p. For linear elasticity
    Π(u; E) at fixed u grows with E, so the minimisation drives E to its lower bound (or, with u adjusting,
    to the degenerate E where the misfit alone sets u) — the principle says u minimises Π at the *true* p,
    not that p minimises Π. What holds at the true p is stationarity: the first variation

        g_k(u; p) = δΠ(u; p)[v_k] = d/dε Π(u + ε v_k; p) at ε = 0,   k = 1 … K,

    vanishes for every admissible v_k (zero where u is prescribed). So the loss is the Galerkin residual
    Σ_k g_k² (relative to Σ_k of its two parts' squares, the load's work and the internal virtual work,
    the latter detached: a scale, not an objective) plus the data misfit. g_k depends on p through ψ (for
    elasticity linearly in E), which gives p a proper gradient; it is computed by autograd through the
    energy form's own quadrature (Π evaluated on u + Σ ε_k v_k at ε = 0), so any density works.

    Test functions: v_k = T(x, φ_j e_c) − T(x, 0), with φ_j the products of Legendre polynomials of degree
    < `tests` in each coordinate of the domain's bounding box, e_c each component, and T the form's hard
    conditions (`OutputTransform`, hard `Dirichlet`), assumed affine in the raw output (as the distance
    constructions are): v_k vanishes where u is prescribed. K = components × tests².

    density:      `density(u, x, p)` -> ψ, (N,) or (N, 1), with p the unknowns (as `InverseProblemForm`).
    unknowns:     `Unknown` scalars and `UnknownField`s (trained with the network, as in the strong form).
    observations: where the data come from (`Observations`).
    bcs:          as `EnergyForm`'s: hard Dirichlet conditions or OutputTransforms, and Tractions.
    tests:        Legendre degrees per coordinate (default 6: 36 test functions per component).

    Loss terms: "galerkin" and "data". The quadrature and its jitter are `EnergyForm`'s.
    """

    density: Callable
    unknowns: Sequence[Unknown]
    observations: Observations = field(default_factory=Observations)
    bcs: Sequence = field(default_factory=tuple)
    tests: int = 6
    kind: ClassVar[str] = "energy"
    quadrature: ClassVar[bool] = True

    def __post_init__(self):
        EnergyForm(self.density, self.bcs)  # the energy form's checks of the conditions
        if int(self.tests) != self.tests or not 1 <= self.tests <= 20:
            raise KinnError(f"EnergyInverseProblemForm: tests is the number of Legendre degrees per coordinate, "
                            f"1 to 20, got {self.tests!r}")

    @property
    def energy(self) -> EnergyForm:
        """The energy form of the physics, whose quadrature this form integrates with."""
        return EnergyForm(self.density, self.bcs)

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        if problem.n_space != 2 or problem.time_dependent:
            raise KinnError(f"problem '{problem.name}': the energy form of an inverse problem tests with Legendre "
                            "polynomials in 2-D; steady 2-D problems only")
        out = self.energy.sample(problem, points)
        out["data"], out["data/values"] = self.observations.load(problem)
        return out

    def redraw(self, pts: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        return self.energy.redraw(pts, gen)

    def test_functions(self, problem, x: torch.Tensor, gradient: bool = False):
        """(N, c, K) the test functions v_k at x (see the class docstring); with `gradient`, also their
        gradients (N, c, K, D), by forward mode (each point's v_k depends on that point only)."""
        if not gradient:
            return self._tests(problem, x.detach())
        x = x.detach()
        unit = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        pairs = [torch.func.jvp(lambda y: self._tests(problem, y), (x,), (unit[i].expand_as(x),))
                 for i in range(x.shape[1])]
        return pairs[0][0], torch.stack([d for _, d in pairs], -1)

    def _tests(self, problem, x: torch.Tensor) -> torch.Tensor:
        lo, hi = geometry.bbox(problem.domain)
        phi = legendre(x, lo, hi, self.tests)                                            # (N, m²)
        c, m2 = len(problem.fields), phi.shape[1]
        eye = torch.eye(c, dtype=x.dtype, device=x.device)
        raw = (eye[None, :, :, None] * phi[:, None, None, :]).reshape(len(x), c, c * m2)  # φ_j e_i: (N, c, c·m²)
        T = self.transform(problem)
        if T is None:
            return raw
        zero = T(x, torch.zeros(len(x), c, dtype=x.dtype, device=x.device))
        K = raw.shape[2]  # all test functions in one call of the (pointwise) transform: K copies of the points
        out = T(x.repeat(K, 1), raw.permute(2, 0, 1).reshape(K * len(x), c)).reshape(K, len(x), c)
        return out.permute(1, 2, 0) - zero[:, :, None]

    def variations(self, model, problem, pts: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(internal (K,), external (K,)): the internal virtual work δ∫ψ [v_k] and the loads' ∫ t·v_k, whose
        difference is the Galerkin residual g_k.

        δ∫ψ [v] = Σ_q w_q (∂ψ/∂u · v + ∂ψ/∂∇u : ∇v): the partials of the (pointwise) density by one
        autograd pass over ψ of the model's values and gradients, which are read once as the energy form
        reads them (jets where the model has them), so a step costs about an energy form's step."""
        p = model.unknown_values()
        x = pts["pde"]
        dim, c = problem.n_space, len(problem.fields)

        def first_order(u, x):
            return u.values, torch.stack([torch.cat([u.backend.d(j, i) for i in range(dim)], 1) for j in range(c)], 1)

        values, grads = at_points(model, problem, x, first_order)                       # (N, c), (N, c, D)
        # a part that depends on nothing trainable (the gradient of an affine field) is a constant: a leaf
        values, grads = (t if t.requires_grad else t.detach().requires_grad_(True) for t in (values, grads))
        u = Field(_FirstOrder(values, grads), problem.fields, problem.coords, problem.n_space)
        psi = columns(with_unknowns(self.density, p)(u, x))[:, 0]
        da, db = torch.autograd.grad((pts["pde/weight"] * psi).sum(), (values, grads), create_graph=True,
                                     allow_unused=True)
        V, dV = self.test_functions(problem, x, gradient=True)                           # (N, c, K), (N, c, K, D)
        internal = torch.zeros(V.shape[2], dtype=x.dtype, device=x.device)
        if da is not None:
            internal = internal + torch.einsum("nc,nck->k", da, V)
        if db is not None:
            internal = internal + torch.einsum("ncd,nckd->k", db, dV)
        external = torch.zeros_like(internal)
        for name, cond in self.energy.tractions().items():
            xb, comps = pts[name], cond.components(problem.fields)
            Vb = self.test_functions(problem, xb)[:, comps]                              # (Nb, k, K)
            external = external + torch.einsum("n,nk,nkK->K", pts[name + "/weight"], cond.target(xb, len(comps)), Vb)
        return internal, external

    def loss(self, model, problem, pts: dict[str, torch.Tensor], weights=None) -> dict[str, torch.Tensor]:
        internal, external = self.variations(model, problem, pts)
        scale = (external.square() + internal.detach().square()).sum().clamp_min(torch.finfo(internal.dtype).tiny)
        return {"galerkin": (internal - external).square().sum() / scale, "data": misfit(model, pts)}

    def residuals(self, model, problem, x, create_graph: bool = True) -> None:
        return None  # a weak form has no pointwise residual to report

    def weights(self) -> dict[str, float]:
        return {}
