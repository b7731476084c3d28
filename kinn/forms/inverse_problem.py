"""Inverse problems: unknown scalars (`Unknown`) and fields (`UnknownField`) of a problem, fitted to
`Observations` together with the physics (`InverseProblemForm`, the strong form plus a data term).

An inverse *problem* is a property of the problem, not a form: `InverseProblemForm` is of kind "strong"
(`--form strong`), and `Problem.inverse_problem` says a problem has unknowns. KINN's *inverse form* is the
boundary integral equation (`kinn.forms.boundary_integral`, `--form inverse`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from kinn.data.reference import Reference, resolve
from kinn.errors import KinnError
from kinn.forms.points import PointForm
from kinn.forms.strong import StrongForm
from kinn.pde import geometry
from kinn.pde.conditions import BoundaryResidual
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
        terms = self.strong(model).loss(model, problem, pts)
        y = pts["data/values"]
        misfit = model(pts["data"])[:, model.observed] - y
        terms["data"] = misfit.square().mean() / y.square().mean().clamp_min(torch.finfo(y.dtype).tiny)
        return terms

    def weights(self) -> dict[str, float]:
        return StrongForm(self.residual, self.bcs).weights()
