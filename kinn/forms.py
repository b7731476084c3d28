"""Forms turn (problem, model, points) into named loss terms: `StrongForm` (collocation, PINN),
`EnergyForm` (a potential minimised by quadrature, the Deep Energy Method) and `OperatorForm`
(operator learning from a dataset of input/output functions, with an optional physics term).

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
from .conditions import (BoundaryResidual, Condition, Dirichlet, Initial, Neumann, OutputTransform, Traction,
                         hard_transform)
from .config import PointsConfig
from .errors import KinnError
from .fields import AutogradBackend, Field, JetBackend, NeedsAutograd


def field_at(model, problem, x: torch.Tensor, create_graph: bool = True) -> Field:
    """The model's field handle at points x: where the derivative backend is chosen."""
    if getattr(model, "grid", False):  # a grid family: derivatives along the grid (kinn.grid)
        return Field(model.backend(x.detach()), problem.fields, problem.coords, problem.n_space)
    x = x.detach().requires_grad_(True)
    if getattr(model, "use_jets", False):
        backend = JetBackend(model.jet(x), x, create_graph, getattr(model.net, "jets_nest", True))
    else:
        backend = AutogradBackend(model(x), x, create_graph)
    return Field(backend, problem.fields, problem.coords, problem.n_space)


def at_points(model, problem, x: torch.Tensor, fn, create_graph: bool = True):
    """fn(u) of the field handle u at x. Where jets cannot give what fn asks for (mixed derivatives of a
    fused KAN), "auto" switches the model to autograd for good; a forced "jet" is an error."""
    try:
        return fn(field_at(model, problem, x, create_graph))
    except NeedsAutograd as e:
        if model.derivatives == "jet":
            raise KinnError(f"derivatives = 'jet' cannot evaluate problem '{problem.name}': {e}; "
                            "use 'auto' or 'autograd'") from None
        model.jets_possible = False
        return fn(field_at(model, problem, x, create_graph))


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
            if isinstance(c, (Neumann, BoundaryResidual)):
                out[name + "/normal"] = geometry.normals(problem.domain, out[name])
        return out

    def residuals(self, model, problem, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        """The PDE residual at x, (N, R)."""
        return columns(at_points(model, problem, x, lambda u: self.residual(u, x), create_graph))

    def loss(self, model, problem, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms = {"pde": self.residuals(model, problem, pts["pde"]).square().mean()}
        for name, c in self.soft().items():
            x = pts[name]
            comps = c.components(problem.fields)
            if isinstance(c, BoundaryResidual):
                r = columns(at_points(model, problem, x, lambda u: c.fn(u, x, pts[name + "/normal"])))
                terms[name] = r.square().mean()
            elif isinstance(c, Neumann):
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
             `points.n_boundary` on each loaded face (`kinn.quadrature`); triangle rules integrate over
             the problem's mesh (`Problem.mesh`) or a generated triangulation of about n_interior
             vertices. Π can be negative.
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

        if points.quadrature.startswith("triangle"):  # on the problem's mesh, else on a generated one
            from .quadrature import triangles

            mesh = problem.triangulation(points.n_interior, points.n_boundary)
            rule = triangles(*mesh, degree=int(points.quadrature[len("triangle"):]))
        else:
            rule = domain_rule(problem.domain, points.n_interior, points.quadrature)
        out = {"pde": rule.points, "pde/weight": rule.weights}
        for name, c in self.tractions().items():
            edge_rule = "gauss" if points.quadrature.startswith("triangle") else points.quadrature  # 1-D edges
            face = boundary_rule(problem.domain, c.on, points.n_boundary, edge_rule)
            out[name], out[name + "/weight"] = face.points, face.weights
        return out

    def loss(self, model, problem, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = pts["pde"]
        psi = columns(at_points(model, problem, x, lambda u: self.density(u, x)))  # (N, 1)
        terms = {"energy": (pts["pde/weight"] * psi[:, 0]).sum()}
        for name, c in self.tractions().items():  # the loads' potential: −∫ t·u dΓ
            xb, comps = pts[name], c.components(problem.fields)
            work = (c.target(xb, len(comps)) * model(xb)[:, comps]).sum(1)  # (N,)
            terms[name] = -(pts[name + "/weight"] * work).sum()
        return terms

    def weights(self) -> dict[str, float]:
        return {}


def relative_l2(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-sample relative L2 error ‖pred − ref‖ / ‖ref‖ over all channels and nodes, shape (B,)."""
    diff = (pred - ref).flatten(1).norm(dim=1)
    return diff / ref.flatten(1).norm(dim=1).clamp_min(torch.finfo(ref.dtype).tiny)


@dataclass(frozen=True)
class OperatorForm:
    """Operator learning: a grid family (FNO) learns the map from input functions to the problem's
    fields on the pairs of a dataset, optionally with the PDE residual as a physics term (PINO).

    data:     the dataset, an HDF5 file in the `kinn.datasets` layout: a name under data/ or a path.
    inputs:   names of the input functions, the dataset's input channels in order (("a",) for Darcy).
    residual: optional `residual(u, x, **inputs)`, written with `kinn.ops` like a strong-form residual;
              the inputs arrive by name as (N, 1) tensors at the same nodes. It is evaluated by the grid
              backend (`kinn.grid`) at the nodes off the ends of the non-periodic axes. Its loss term
              "pde" has weight 0 (data only) unless `train.weights.pde` says otherwise.
    make:     optional `make(path)` that generates the dataset where the file is missing.

    The "data" term is the batch mean of the per-sample relative L2 error (as in Li et al.'s FNO), so
    it does not depend on the scale of the outputs.
    """

    data: str
    inputs: Sequence[str]
    residual: Callable | None = None
    make: Callable | None = None
    kind: ClassVar[str] = "operator"

    def transform(self, problem):
        return None

    def weights(self) -> dict[str, float]:
        return {"pde": 0.0} if self.residual is not None else {}

    def residuals(self, model, problem, inputs: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """The residual of predictions pred (B, C, *grid) for inputs (B, C_in, *grid) at the interior
        nodes of every sample, (M, R)."""
        from .grid import nodes

        batch, channels, *shape = pred.shape
        backend = model.backend(pred.movedim(1, -1).reshape(-1, channels), shape, batch)
        u = Field(backend, problem.fields, problem.coords, problem.n_space)
        x = torch.as_tensor(nodes(*model.bounds(), shape, model.periodic), dtype=pred.dtype, device=pred.device)
        named = {name: inputs[:, k].reshape(-1, 1) for k, name in enumerate(self.inputs)}
        return columns(self.residual(u, x.repeat(batch, 1), **named))[backend.interior()]

    def loss(self, model, problem, batch: dict[str, torch.Tensor], physics: bool = True) -> dict[str, torch.Tensor]:
        """{"data": mean relative L2 on the batch, "pde": mean squared residual (when physics)}."""
        pred = model(batch["inputs"])
        terms = {"data": relative_l2(pred, batch["outputs"]).mean()}
        if physics and self.residual is not None:
            terms["pde"] = self.residuals(model, problem, batch["inputs"], pred).square().mean()
        return terms
