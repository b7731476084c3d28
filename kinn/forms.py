"""Forms turn (problem, model, points) into named loss terms: `StrongForm` (collocation, PINN),
`EnergyForm` (a potential minimised by quadrature, the Deep Energy Method) and `OperatorForm`
(operator learning from a dataset of input/output functions, with an optional physics term).

A form owns three things: which point sets it trains on (`sample`), which hard constraints it imposes on
the model's output (`transform`), and the loss terms (`loss`). Energy and inverse forms implement the
same three methods, so the trainer, the evaluator and the families never change when a form is added.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from . import geometry, ops
from .conditions import (BoundaryResidual, Condition, Dirichlet, Initial, Interface, Neumann, OutputTransform,
                         SegmentResidual, Traction, hard_transform)
from .config import PointsConfig
from .errors import KinnError
from .fields import AutogradBackend, Field, JetBackend, NeedsAutograd


def field_at(model, problem, x: torch.Tensor, create_graph: bool = True) -> Field:
    """The model's field handle at points x: where the derivative backend is chosen."""
    if getattr(model, "grid", False):  # a grid family: derivatives along the grid (kinn.grid)
        return Field(model.backend(x.detach()), problem.fields, problem.coords, problem.n_space)
    x = x.detach().requires_grad_(True)
    if getattr(model, "use_jets", False):
        backend = JetBackend(model.jet(x), x, create_graph, getattr(model, "jets_nest", True))
    else:
        backend = AutogradBackend(model(x), x, create_graph)
    return Field(backend, problem.fields, problem.coords, problem.n_space)


def at_points(model, problem, x: torch.Tensor, fn, create_graph: bool = True):
    """fn(u, x) of the field handle u at points x. fn receives the points the field's derivatives are taken
    with respect to, so a coefficient computed from them (K(x) in ∇·(K∇u)) is differentiated too. Where
    jets cannot give what fn asks for (mixed derivatives of a fused KAN), "auto" switches the model to
    autograd for good; a forced "jet" is an error."""
    def call():
        u = field_at(model, problem, x, create_graph)
        return fn(u, getattr(u.backend, "x", x))

    try:
        return call()
    except NeedsAutograd as e:
        if model.derivatives == "jet":
            raise KinnError(f"derivatives = 'jet' cannot evaluate problem '{problem.name}': {e}; "
                            "use 'auto' or 'autograd'") from None
        model.jets_possible = False
        return call()


def columns(r) -> torch.Tensor:
    """A residual may return one tensor or several (a system); stack them as columns (N, R)."""
    if isinstance(r, (tuple, list)):
        return torch.cat([columns(t) for t in r], dim=1)
    r = r.values if isinstance(r, Field) else r
    return r.reshape(len(r), -1)


def term_name(cond, i: int) -> str:
    kind = "ic" if isinstance(cond, Initial) else "bc"
    return f"{kind}:{cond.name or type(cond).__name__.lower() + str(i)}"


def segments(bcs) -> dict:
    """The conditions on inner segments (`Interface`, `SegmentResidual`) by loss-term name."""
    return {f"{'interface' if isinstance(c, Interface) else 'bc'}:{c.name or type(c).__name__.lower() + str(i)}": c
            for i, c in enumerate(bcs) if isinstance(c, (Interface, SegmentResidual))}


def segment_terms(model, problem, name: str, c, x: torch.Tensor, weight: torch.Tensor | None = None) -> dict:
    """The loss terms of one inner-segment condition at its points x: an interface's value mismatch (and
    normal-flux mismatch with `flux`), or a segment residual; mean squares, weighted by a quadrature rule's
    `weight` where given. A model without parts (one function everywhere) stands for every part."""
    def mean(sq):
        sq = sq.reshape(len(x), -1).sum(1)
        return sq.mean() if weight is None else (weight * sq).sum() / weight.sum()

    n = torch.tensor(c.normal(), dtype=x.dtype, device=x.device).expand(len(x), 2)
    parts = dict(getattr(model, "parts", {}))
    if isinstance(c, SegmentResidual):
        part = parts.get(c.part, model)
        return {name: mean(columns(at_points(part, problem, x, lambda u, x: c.fn(u, x, n))).square())}
    a, b = parts.get(c.a, model), parts.get(c.b, model)
    terms = {name: mean((a(x) - b(x)).square())}
    if c.flux:
        flux = [ops.normal(field_at(m, problem, x), n) for m in (a, b)]
        terms[name + "/flux"] = mean((flux[0] - flux[1]).square())
    return terms


@dataclass(frozen=True)
class StrongForm:
    """Collocation form: mean squared residual at interior points plus soft conditions at their points.

    residual: `residual(u, x)` -> tensor (N, R) or a tuple of tensors, written with `kinn.ops` on the
              field handle `u`; x are the points (N, D).
    bcs:      boundary and initial conditions (`kinn.conditions`), soft or hard; on a problem with
              subdomains also `Interface` (value and flux continuity) and `SegmentResidual` terms.
    """

    residual: Callable
    bcs: Sequence = field(default_factory=tuple)
    kind: ClassVar[str] = "strong"

    def __post_init__(self):
        for c in self.bcs:
            if not isinstance(c, (Condition, OutputTransform, Interface, SegmentResidual)):
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
        for name, c in segments(self.bcs).items():
            out[name] = c.rule(points.n_boundary, "monte_carlo").points
        return out

    def residuals(self, model, problem, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
        """The PDE residual at x, (N, R)."""
        return columns(at_points(model, problem, x, self.residual, create_graph))

    def loss(self, model, problem, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms = {"pde": self.residuals(model, problem, pts["pde"]).square().mean()}
        for name, c in self.soft().items():
            x = pts[name]
            comps = c.components(problem.fields)
            if isinstance(c, BoundaryResidual):
                r = columns(at_points(model, problem, x, lambda u, x: c.fn(u, x, pts[name + "/normal"])))
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


@dataclass(frozen=True)
class EnergyForm:
    """Deep Energy Method: minimise the potential Π(u) = ∫Ω ψ(u, x) dΩ − ∫Γ t·u dΓ by quadrature.

    density: `density(u, x)` -> ψ at the quadrature points, (N,) or (N, 1), written with `kinn.ops`.
    bcs:     essential conditions, imposed exactly: hard `Dirichlet(..., hard=True, distance=...)` or an
             `OutputTransform`; and natural ones, `Traction(t, on=...)`, whose work enters Π; on a problem
             with subdomains, `Interface(..., flux=False)` penalises the value jump across a segment (with
             its weight, by a Gauss rule). A soft
             Dirichlet condition is refused: the energy principle does not contain it. The quadrature
             rule is the config's `points.quadrature` with about `points.n_interior` points inside and
             `points.n_boundary` on each loaded face (`kinn.quadrature`); triangle rules integrate over
             the problem's mesh (`Problem.mesh`) or a generated triangulation of about n_interior
             vertices. Π can be negative.
             With `points.jitter`, every Adam step and L-BFGS chunk integrates by a fresh stratified
             draw instead (in each cell of the rule, grid cell, triangle or edge segment, a uniform
             random node with its antithetic partners), whose expectation is Π itself: a network
             cannot lower its estimate by folding or spiking between fixed nodes, which a KAN learns
             to do (see `jitter`).
    """

    density: Callable
    bcs: Sequence = field(default_factory=tuple)
    kind: ClassVar[str] = "energy"

    def __post_init__(self):
        for c in self.bcs:
            if not isinstance(c, (Dirichlet, Traction, OutputTransform, Interface)):
                raise KinnError(f"EnergyForm bcs must be hard Dirichlet conditions, Tractions, OutputTransforms or "
                                f"Interfaces, got {type(c).__name__} (conditions on crack faces are natural: the "
                                "energy needs none)")
            if isinstance(c, Interface) and c.flux:
                raise KinnError(f"{c.describe()}: flux continuity is natural in the energy form, which penalises "
                                "the value mismatch only; give flux=False")
            if isinstance(c, Dirichlet) and not c.hard:
                raise KinnError(f"the energy form imposes essential conditions exactly, so {c.describe()} must be "
                                "hard: Dirichlet(..., hard=True, distance=d) or an OutputTransform")

    def tractions(self):
        return {f"work:{c.name or 'traction' + str(i)}": c for i, c in enumerate(self.bcs) if isinstance(c, Traction)}

    transform = StrongForm.transform

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        from .quadrature import boundary_rule, concat, domain_rule

        triangle = points.quadrature.startswith("triangle")
        # a rule per subdomain, so that no cell straddles an interface (a given mesh is taken to conform)
        parts = list(problem.subdomains.values()) if not (triangle and problem.mesh) else []
        parts = parts or [problem.domain]
        # a jittered rule draws 2 points per box cell, 3 per triangle: as many cells as keep ~n_interior points
        per_cell = (3 if triangle else 2) if points.jitter else 1
        rules = []
        for part in parts:
            n = points.n_interior // len(parts) // per_cell
            if triangle:  # on the problem's mesh, else on a generated one
                from .quadrature import triangles

                mesh = problem.triangulation(n, points.n_boundary, part)
                rules.append(triangles(*mesh, degree=int(points.quadrature[len("triangle"):])))
            else:
                rules.append(domain_rule(part, n, points.quadrature))
        rule = concat(rules)
        out = {"pde": rule.points, "pde/weight": rule.weights,
               "pde/part": np.concatenate([np.full(len(r.weights), k) for k, r in enumerate(rules)])}
        if points.jitter:
            if rule.cells is None:
                raise KinnError(f"points.jitter needs a rule made of cells: a box rule or a triangle rule, not "
                                f"'{points.quadrature}' on a {type(problem.domain).__name__} (for fresh Monte Carlo "
                                "points, set train.resample_every)")
            out.update(_cells("pde", rule.cells, part=np.concatenate(
                [np.full(len(r.cells.corner), k) for k, r in enumerate(rules)])))
        edge_rule = "gauss" if triangle else points.quadrature  # 1-D edges
        for name, c in self.tractions().items():
            face = boundary_rule(problem.domain, c.on, points.n_boundary // per_cell, edge_rule)
            out[name], out[name + "/weight"] = face.points, face.weights
            if points.jitter:
                out.update(_cells(name, face.cells))
        for name, c in segments(self.bcs).items():
            line = c.rule(points.n_boundary, edge_rule)
            out[name], out[name + "/weight"] = line.points, line.weights
        return out

    @staticmethod
    def jitter(pts: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A stratified random draw (`kinn.quadrature.stratified`) of every rule in `pts` that carries its
        cells (a `sample` with points.jitter): {name: points, name/weight: weights, ...}, to update the
        training points with. Its expected potential is exact; the spread is O(h²) per cell."""
        from .quadrature import stratified

        out = {}
        for key in [k for k in pts if k.endswith(("/cells", "/triangles"))]:
            name = key.rsplit("/", 1)[0]
            triangles = key.endswith("/triangles")
            out[name], out[name + "/weight"] = stratified(pts[key], pts[key + "/measure"], triangles, gen)
            if key + "/part" in pts:
                out[name + "/part"] = pts[key + "/part"].repeat(len(out[name]) // len(pts[key]))
        return out

    def loss(self, model, problem, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # each part's network on its own rule's points: a node on a shared edge is integrated from both sides
        parts = list(getattr(model, "parts", {}).values()) if problem.subdomains else []
        energy = 0
        for k, part in enumerate(parts or [model]):
            mine = (pts["pde/part"] == k) if parts else slice(None)
            x = pts["pde"][mine]
            psi = columns(at_points(part, problem, x, self.density))  # (N, 1)
            energy = energy + (pts["pde/weight"][mine] * psi[:, 0]).sum()
        terms = {"energy": energy}
        for name, c in self.tractions().items():  # the loads' potential: −∫ t·u dΓ
            xb, comps = pts[name], c.components(problem.fields)
            work = (c.target(xb, len(comps)) * model(xb)[:, comps]).sum(1)  # (N,)
            terms[name] = -(pts[name + "/weight"] * work).sum()
        for name, c in segments(self.bcs).items():  # value continuity across interfaces, a penalty
            terms.update(segment_terms(model, problem, name, c, pts[name], pts[name + "/weight"]))
        return terms

    def weights(self) -> dict[str, float]:
        return {name: c.weight for name, c in segments(self.bcs).items()}


def _cells(name: str, cells, part=None) -> dict[str, np.ndarray]:
    """A rule's cells as point-dict arrays: name/cells (boxes) or name/triangles, (C, 1 + K, D) corner and
    edges; with /measure and, for subdomains, /part."""
    key = name + ("/triangles" if cells.simplex else "/cells")
    out = {key: np.concatenate([cells.corner[:, None], cells.edges], 1), key + "/measure": cells.measure}
    return out if part is None else {**out, key + "/part": part}


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

    def __post_init__(self):
        if self.positive and not self.initial > 0:
            raise KinnError(f"unknown '{self.name}' is positive, so its initial value must be > 0, got {self.initial}")


@dataclass(frozen=True)
class UnknownField:
    """An unknown coefficient field of an inverse problem, K(x): a second network of the solver's family
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
    from .reference import Reference, resolve

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
class InverseForm:
    """Inverse problems: unknown scalars (and the field) fitted to observations with the physics.

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
    kind: ClassVar[str] = "inverse"

    transform = StrongForm.transform

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

    def residuals(self, model, problem, x, create_graph: bool = True):
        return self.strong(model).residuals(model, problem, x, create_graph)

    def loss(self, model, problem, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        terms = self.strong(model).loss(model, problem, pts)
        y = pts["data/values"]
        misfit = model(pts["data"])[:, model.observed] - y
        terms["data"] = misfit.square().mean() / y.square().mean().clamp_min(torch.finfo(y.dtype).tiny)
        return terms

    def weights(self) -> dict[str, float]:
        return StrongForm(self.residual, self.bcs).weights()
