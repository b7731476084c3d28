"""`StrongForm`: collocation (PINN). The mean squared PDE residual at interior points plus the soft
conditions at their own points; hard conditions are output transforms."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.forms import quadrature
from kinn.forms.points import PointForm, at_points, columns, field_at, segment_terms, segments, term_name
from kinn.pde import geometry, ops
from kinn.pde.conditions import (BoundaryResidual, Condition, Initial, Interface, Neumann, OutputTransform,
                                 SegmentResidual)
from kinn.run.config import PointsConfig


def pde_term(r: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The mean square of the residual r (N, R), each point's square weighed by `weight` (N,) where given
    (adaptive weights: `kinn.run.weighting`)."""
    return r.square().mean() if weight is None else (weight[:, None] * r.square()).mean()


@dataclass(frozen=True)
class StrongForm(PointForm):
    """Collocation form: mean squared residual at interior points plus soft conditions at their points.

    residual: `residual(u, x)` -> tensor (N, R) or a tuple of tensors, written with `kinn.ops` on the
              field handle `u`; x are the points (N, D).
    bcs:      boundary and initial conditions (`kinn.pde.conditions`), soft or hard; on a problem with
              subdomains also `Interface` (value and flux continuity) and `SegmentResidual` terms.
    """

    residual: Callable
    bcs: Sequence = field(default_factory=tuple)
    kind: ClassVar[str] = "strong"
    order: ClassVar[int] = 2
    collocation: ClassVar[bool] = True
    physics_terms: ClassVar[tuple[str, ...]] = ("pde",)

    def __post_init__(self):
        for c in self.bcs:
            if not isinstance(c, (Condition, OutputTransform, Interface, SegmentResidual)):
                raise KinnError(f"StrongForm bcs must be kinn.pde.conditions objects, got {type(c).__name__}")

    def soft(self):
        """The soft conditions with their loss-term names."""
        return {term_name(c, i): c for i, c in enumerate(self.bcs) if isinstance(c, Condition) and not c.hard}

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        """Training point sets: "pde" inside, one set per soft condition (plus normals for Neumann)."""
        out = {"pde": geometry.interior(problem.domain, points.n_interior, points.sampler)}
        for name, c in self.soft().items():
            if isinstance(c, Initial):
                out[name] = geometry.initial(problem.domain, points.n_initial)
                continue
            out[name] = geometry.boundary(problem.domain, points.n_boundary, c.on, points.sampler)
            if isinstance(c, (Neumann, BoundaryResidual)):
                out[name + "/normal"] = geometry.normals(problem.domain, out[name])
        for name, c in segments(self.bcs).items():
            out[name] = quadrature.segment(c, points.n_boundary, "monte_carlo").points
        return out

    def residuals(self, model, problem, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        """The PDE residual at x, (N, R)."""
        return columns(at_points(model, problem, x, self.residual, create_graph))

    def loss(self, model, problem, pts: dict[str, torch.Tensor], weights=None) -> dict[str, torch.Tensor]:
        terms = {"pde": pde_term(self.residuals(model, problem, pts["pde"]), pts.get("pde/weight"))}
        for name, c in self.soft().items():
            x = pts[name]
            comps = c.components(problem.fields)
            if isinstance(c, BoundaryResidual):
                normal = pts[name + "/normal"]
                r = columns(at_points(model, problem, x, lambda u, x, c=c, normal=normal: c.fn(u, x, normal)))
                terms[name] = r.square().mean()
            elif isinstance(c, Neumann):
                du = ops.normal(field_at(model, problem, x), pts[name + "/normal"])[:, comps]  # (N, len(comps))
                terms[name] = (du - c.target(x, len(comps))).square().mean()
            else:
                terms[name] = (model(x)[:, comps] - c.target(x, len(comps))).square().mean()
        for name, c in segments(self.bcs).items():
            terms.update(segment_terms(model, problem, name, c, pts[name]))
        return terms

    def weights(self) -> dict[str, float]:
        out = {name: c.weight for name, c in self.soft().items()}
        for name, c in segments(self.bcs).items():
            out[name] = out[name + "/flux"] = c.weight
        return out
