"""`EnergyForm`: the Deep Energy Method. The potential Π(u) = ∫Ω ψ(u, x) dΩ − ∫Γ t·u dΓ, minimised by
quadrature (`kinn.forms.quadrature`), with essential conditions imposed exactly."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.forms.points import PointForm, at_points, columns, segment_terms, segments
from kinn.forms.quadrature import boundary_rule, concat, domain_rule, segment, stratified, triangles
from kinn.pde.conditions import Dirichlet, Interface, OutputTransform, Traction
from kinn.run.config import PointsConfig


@dataclass(frozen=True)
class EnergyForm(PointForm):
    """Deep Energy Method: minimise the potential Π(u) = ∫Ω ψ(u, x) dΩ − ∫Γ t·u dΓ by quadrature.

    density: `density(u, x)` -> ψ at the quadrature points, (N,) or (N, 1), written with `kinn.pde.ops`.
    bcs:     essential conditions, imposed exactly: hard `Dirichlet(..., hard=True, distance=...)` or an
             `OutputTransform`; and natural ones, `Traction(t, on=...)`, whose work enters Π; on a problem
             with subdomains, `Interface(..., flux=False)` penalises the value jump across a segment (with
             its weight, by a Gauss rule). A soft
             Dirichlet condition is refused: the energy principle does not contain it. The quadrature
             rule is the config's `points.quadrature` with about `points.n_interior` points inside and
             `points.n_boundary` on each loaded face (`kinn.forms.quadrature`); triangle rules integrate over
             the problem's mesh (`Problem.mesh`) or a generated triangulation of about n_interior
             vertices. Π can be negative.
             With `points.jitter`, every Adam step and L-BFGS chunk integrates by a fresh stratified
             draw instead (in each cell of the rule, grid cell, triangle or edge segment, a uniform
             random node with its antithetic partners), whose expectation is Π itself: a network
             cannot lower its estimate by folding or spiking between fixed nodes, which a KAN learns
             to do (see `redraw`).
    """

    density: Callable
    bcs: Sequence = field(default_factory=tuple)
    kind: ClassVar[str] = "energy"
    quadrature: ClassVar[bool] = True
    physics_terms: ClassVar[tuple[str, ...]] = ("energy", "work")  # the potential itself: never reweighed

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

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
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
            line = segment(c, points.n_boundary, edge_rule)
            out[name], out[name + "/weight"] = line.points, line.weights
        return out

    def redraw(self, pts: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A stratified random draw (`kinn.forms.quadrature.stratified`) of every rule in `pts` that carries its
        cells (a `sample` with points.jitter): {name: points, name/weight: weights, ...}, to update the
        training points with. Its expected potential is exact; the spread is O(h²) per cell."""
        out = {}
        for key in [k for k in pts if k.endswith(("/cells", "/triangles"))]:
            name = key.rsplit("/", 1)[0]
            triangles = key.endswith("/triangles")
            out[name], out[name + "/weight"] = stratified(pts[key], pts[key + "/measure"], triangles, gen)
            if key + "/part" in pts:
                out[name + "/part"] = pts[key + "/part"].repeat(len(out[name]) // len(pts[key]))
        return out

    def loss(self, model, problem, pts: dict[str, torch.Tensor], weights=None) -> dict[str, torch.Tensor]:
        # each part's network on its own rule's points: a node on a shared edge is integrated from both sides
        parts = model.pieces() if problem.subdomains else []
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

    def residuals(self, model, problem, x, create_graph: bool = True) -> None:
        return None  # a potential has no pointwise residual to report

    def weights(self) -> dict[str, float]:
        return {name: c.weight for name, c in segments(self.bcs).items()}


def _cells(name: str, cells, part=None) -> dict[str, np.ndarray]:
    """A rule's cells as point-dict arrays: name/cells (boxes) or name/triangles, (C, 1 + K, D) corner and
    edges; with /measure and, for subdomains, /part."""
    key = name + ("/triangles" if cells.simplex else "/cells")
    out = {key: np.concatenate([cells.corner[:, None], cells.edges], 1), key + "/measure": cells.measure}
    return out if part is None else {**out, key + "/part": part}
