"""Forms turn (problem, model, points) into named loss terms: `StrongForm` (collocation, PINN) and
`EnergyForm` (a potential minimised by quadrature, the Deep Energy Method).

A form owns three things: which point sets it trains on (`sample`), which hard constraints it imposes on
the model's output (`transform`), and the loss terms (`loss`). Energy and inverse forms implement the
same three methods, so the trainer, the evaluator and the families never change when a form is added.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from . import geometry, ops
from .conditions import Condition, Dirichlet, Initial, Neumann, OutputTransform, Traction, hard_transform
from .config import PointsConfig
from .errors import KinnError
from .fields import AutogradBackend, Field, JetBackend


def field_at(model, problem, x: torch.Tensor, create_graph: bool = True) -> Field:
    """The model's field handle at points x: where the derivative backend is chosen."""
    x = x.detach().requires_grad_(True)
    if getattr(model, "use_jets", False):
        backend = JetBackend(model.jet(x), x, create_graph)
    else:
        backend = AutogradBackend(model(x), x, create_graph)
    return Field(backend, problem.fields, problem.coords, problem.n_space)


def columns(r) -> torch.Tensor:
    """A residual may return one tensor or several (a system); stack them as columns (N, R)."""
    if isinstance(r, (tuple, list)):
        return torch.cat([columns(t) for t in r], dim=1)
    r = r.values if isinstance(r, Field) else r
    return r.reshape(len(r), -1)


def term_name(cond, i: int) -> str:
    kind = "ic" if isinstance(cond, Initial) else "bc"
    return f"{kind}:{cond.name or type(cond).__name__.lower() + str(i)}"


@dataclass(frozen=True)
class StrongForm:
    """Collocation form: mean squared residual at interior points plus soft conditions at their points.

    residual: `residual(u, x)` -> tensor (N, R) or a tuple of tensors, written with `kinn.ops` on the
              field handle `u`; x are the points (N, D).
    bcs:      boundary and initial conditions (`kinn.conditions`), soft or hard.
    """

    residual: Callable
    bcs: Sequence = field(default_factory=tuple)
    kind: ClassVar[str] = "strong"

    def __post_init__(self):
        for c in self.bcs:
            if not isinstance(c, (Condition, OutputTransform)):
                raise KinnError(f"StrongForm bcs must be kinn.conditions objects, got {type(c).__name__}")

    def transform(self, problem):
        return hard_transform(self.bcs, problem.fields, problem.t_index,
                              problem.domain.timedomain.t0 if problem.time_dependent else 0.0)

    def soft(self):
        """The soft conditions with their loss-term names."""
        return {term_name(c, i): c for i, c in enumerate(self.bcs)
                if isinstance(c, Condition) and not getattr(c, "hard", False)}

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        """Training point sets: "pde" inside, one set per soft condition (plus normals for Neumann)."""
        out = {"pde": geometry.interior(problem.domain, points.n_interior, points.sampler)}
        for name, c in self.soft().items():
            if isinstance(c, Initial):
                out[name] = geometry.initial(problem.domain, points.n_initial)
                continue
            out[name] = geometry.boundary(problem.domain, points.n_boundary, c.on, points.sampler)
            if isinstance(c, Neumann):
                out[name + "/normal"] = geometry.normals(problem.domain, out[name])
        return out

    def residuals(self, model, problem, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        """The PDE residual at x, (N, R)."""
        return columns(self.residual(field_at(model, problem, x, create_graph), x))

    def loss(self, model, problem, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms = {"pde": self.residuals(model, problem, pts["pde"]).square().mean()}
        for name, c in self.soft().items():
            x = pts[name]
            comps = c.components(problem.fields)
            if isinstance(c, Neumann):
                du = ops.normal(field_at(model, problem, x), pts[name + "/normal"])[:, comps]  # (N, len(comps))
                terms[name] = (du - c.target(x, len(comps))).square().mean()
            else:
                terms[name] = (model(x)[:, comps] - c.target(x, len(comps))).square().mean()
        return terms

    def weights(self) -> dict[str, float]:
        return {name: c.weight for name, c in self.soft().items()}


@dataclass(frozen=True)
class EnergyForm:
    """Deep Energy Method: minimise the potential Π(u) = ∫Ω ψ(u, x) dΩ − ∫Γ t·u dΓ by quadrature.

    density: `density(u, x)` -> ψ at the quadrature points, (N,) or (N, 1), written with `kinn.ops`.
    bcs:     essential conditions, imposed exactly: hard `Dirichlet(..., hard=True, distance=...)` or an
             `OutputTransform`; and natural ones, `Traction(t, on=...)`, whose work enters Π. A soft
             Dirichlet condition is refused: the energy principle does not contain it. The quadrature
             rule is the config's `points.quadrature` with about `points.n_interior` points inside and
             `points.n_boundary` on each loaded face (`kinn.quadrature`); Π can be negative.
    """

    density: Callable
    bcs: Sequence = field(default_factory=tuple)
    kind: ClassVar[str] = "energy"

    def __post_init__(self):
        for c in self.bcs:
            if not isinstance(c, (Dirichlet, Traction, OutputTransform)):
                raise KinnError(f"EnergyForm bcs must be hard Dirichlet conditions, Tractions or OutputTransforms, "
                                f"got {type(c).__name__}")
            if isinstance(c, Dirichlet) and not c.hard:
                raise KinnError(f"the energy form imposes essential conditions exactly, so {c.describe()} must be "
                                "hard: Dirichlet(..., hard=True, distance=d) or an OutputTransform")

    def tractions(self):
        return {f"work:{c.name or 'traction' + str(i)}": c for i, c in enumerate(self.bcs) if isinstance(c, Traction)}

    transform = StrongForm.transform

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        from .quadrature import boundary_rule, domain_rule

        rule = domain_rule(problem.domain, points.n_interior, points.quadrature)
        out = {"pde": rule.points, "pde/weight": rule.weights}
        for name, c in self.tractions().items():
            face = boundary_rule(problem.domain, c.on, points.n_boundary, points.quadrature)
            out[name], out[name + "/weight"] = face.points, face.weights
        return out

    def loss(self, model, problem, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = pts["pde"]
        psi = columns(self.density(field_at(model, problem, x), x))  # (N, 1)
        terms = {"energy": (pts["pde/weight"] * psi[:, 0]).sum()}
        for name, c in self.tractions().items():  # the loads' potential: −∫ t·u dΓ
            xb, comps = pts[name], c.components(problem.fields)
            work = (c.target(xb, len(comps)) * model(xb)[:, comps]).sum(1)  # (N,)
            terms[name] = -(pts[name + "/weight"] * work).sum()
        return terms

    def weights(self) -> dict[str, float]:
        return {}
