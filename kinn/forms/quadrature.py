"""Quadrature rules: points and weights whose weighted sum integrates over a domain.

    rule = quadrature.domain_rule(domain, n, "simpson")   # Rule(points (N, D), weights (N,))
    integral = (rule.weights * f(rule.points)).sum()

Boxes (intervals, rectangles, cuboids) take tensor products of 1-D rules with about n^(1/D) points per
direction: "trapezoid" (composite, order 2), "simpson" (composite, order 4), "gauss" (Gauss–Legendre on
the whole interval, exact for polynomials of degree 2m − 1) and "monte_carlo" (uniform random points,
weights volume / N, error ~ N^(-1/2)). Other domains take Monte Carlo over their bounding box, keeping the
points inside (weights bbox volume / N drawn).

Triangulated domains (a mesh read with meshio, `geometry.read_mesh`) take symmetric triangle rules,
`triangles(points, cells, degree)`: the centroid (degree 1, KINN's "triangle area" quadrature), 3, 6 and
7 points (degrees 2, 4, 5; Strang–Fix and Dunavant), each weight a share of the triangle's area.

Box, boundary and triangle rules also carry the `Cells` that tile their region (a uniform grid of about
as many cells as the rule has points, or the triangles), from which `stratified` draws a random rule: a
uniform random point in every cell with its antithetic partners. Its expectation is the exact integral
whatever the integrand, so a network trained on fresh draws cannot hide energy between fixed nodes (the
energy form's `points.jitter`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.pde import geometry
from kinn.run.config import BOX_RULES as RULES
from kinn.run.config import TRIANGLE_DEGREES


@dataclass(frozen=True)
class Cells:
    """Cells tiling a region: cell c is {corner[c] + Σ_k r_k edges[c, k]}, r in the unit cube (boxes,
    segments) or in the unit triangle r_1 + r_2 <= 1 (`simplex`: triangles)."""

    corner: np.ndarray   # (C, D)
    edges: np.ndarray    # (C, K, D)
    simplex: bool = False

    @property
    def measure(self) -> np.ndarray:
        """(C,) the K-dimensional measure of each cell (its length, area or volume)."""
        gram = np.einsum("ckd,cjd->ckj", self.edges, self.edges)
        return np.sqrt(np.abs(np.linalg.det(gram))) / (2.0 if self.simplex else 1.0)

    def draw(self, gen: torch.Generator) -> "Rule":
        """A stratified random rule over the cells (see `stratified`), as numpy arrays."""
        cells = torch.as_tensor(np.concatenate([self.corner[:, None], self.edges], 1))
        x, w = stratified(cells, torch.as_tensor(self.measure), self.simplex, gen)
        return Rule(x.numpy(), w.numpy())


def stratified(cells: torch.Tensor, measure: torch.Tensor, simplex: bool, gen: torch.Generator):
    """Points (M·C, D) and weights of a stratified random rule over cells (C, 1 + K, D), each a corner
    and K edge vectors, with measures (C,): in every cell a uniform random point and its antithetic
    partners, M in all, each weighted measure / M. Boxes and segments take the point and its reflection
    through the cell's centre (M = 2); triangles take the point's barycentric coordinates and their two
    cyclic permutations (M = 3). Every point is uniform in its cell, so a draw's expectation is the exact
    integral of any integrand; the partners make each draw exact for integrands linear in a cell, so its
    spread falls as O(h²) per cell instead of O(h)."""
    corner, edges = cells[:, 0], cells[:, 1:]
    r = torch.rand(edges.shape[:2], generator=gen, device=cells.device, dtype=cells.dtype)
    if simplex:  # fold the far half of the unit square onto the triangle, then permute (b0, b1, b2)
        r = torch.where(r.sum(1, keepdim=True) > 1, 1 - r, r)
        b = torch.cat([1 - r.sum(1, keepdim=True), r], 1)
        rs = [b[:, [1, 2]], b[:, [2, 0]], b[:, [0, 1]]]
    else:
        rs = [r, 1 - r]
    x = torch.cat([corner + torch.einsum("ck,ckd->cd", ri, edges) for ri in rs])
    return x, (measure / len(rs)).repeat(len(rs))


@dataclass(frozen=True)
class Rule:
    points: np.ndarray   # (N, D)
    weights: np.ndarray  # (N,)
    cells: Cells | None = None  # what the rule integrates over, cut into cells (for stratified draws)


def concat(rules: list[Rule]) -> Rule:
    """One rule from several over disjoint regions (cells kept when every part has them)."""
    cells = [r.cells for r in rules]
    joined = None if any(c is None for c in cells) else Cells(
        np.concatenate([c.corner for c in cells]), np.concatenate([c.edges for c in cells]), cells[0].simplex)
    return Rule(np.concatenate([r.points for r in rules]), np.concatenate([r.weights for r in rules]), joined)


def line(lo: float, hi: float, n: int, rule: str) -> Rule:
    """A 1-D rule with n points on [lo, hi] (Simpson rounds n up to odd, every rule takes n >= 2)."""
    n = max(int(n), 2)
    if rule == "trapezoid":
        x = np.linspace(lo, hi, n)
        w = np.full(n, (hi - lo) / (n - 1))
        w[[0, -1]] /= 2
    elif rule == "simpson":
        n += (n + 1) % 2
        x = np.linspace(lo, hi, n)
        w = np.ones(n)
        w[1:-1:2], w[2:-1:2] = 4.0, 2.0
        w *= (hi - lo) / (n - 1) / 3
    elif rule == "gauss":
        t, w = np.polynomial.legendre.leggauss(n)
        x, w = lo + (t + 1) * (hi - lo) / 2, w * (hi - lo) / 2
    elif rule == "monte_carlo":
        x = lo + (hi - lo) * np.random.random_sample(n)
        w = np.full(n, (hi - lo) / n)
    else:
        raise KinnError(f"unknown quadrature rule '{rule}'; valid: {', '.join(RULES)}")
    return Rule(x.reshape(-1, 1), w)


def segment(seg, n: int, rule: str) -> Rule:
    """A 1-D rule of about n points along a straight segment inside the domain (`kinn.pde.conditions.Segment`:
    an interface or a crack face), weights in its arc length."""
    t = line(0.0, 1.0, n, rule)
    s, e = np.asarray(seg.start, float), np.asarray(seg.end, float)
    return Rule(s + t.points * (e - s), t.weights * seg.length)


def box(lo, hi, n: int, rule: str) -> Rule:
    """Tensor-product rule on the box [lo, hi] with about n points in all (n^(1/D) per direction)."""
    lo, hi = np.atleast_1d(lo).astype(float), np.atleast_1d(hi).astype(float)
    d = len(lo)
    per = max(int(round(n ** (1 / d))), 2)
    cells = _box_cells(lo, hi, per)
    if rule == "monte_carlo":  # random in all directions at once, not a product of random lines
        x = lo + (hi - lo) * np.random.random_sample((n, d))
        return Rule(x, np.full(n, np.prod(hi - lo) / n), cells)
    lines = [line(a, b, per, rule) for a, b in zip(lo, hi)]
    grids = np.meshgrid(*[r.points[:, 0] for r in lines], indexing="ij")
    weights = np.meshgrid(*[r.weights for r in lines], indexing="ij")
    return Rule(np.stack([g.ravel() for g in grids], 1), np.prod([w.ravel() for w in weights], 0), cells)


def _box_cells(lo: np.ndarray, hi: np.ndarray, per: int) -> Cells:  # per^D equal cells tiling the box
    h = (hi - lo) / per
    corner = np.stack([g.ravel() for g in np.meshgrid(*[a + h_ * np.arange(per) for a, h_ in zip(lo, h)],
                                                        indexing="ij")], 1)
    return Cells(corner, np.broadcast_to(np.diag(h), (len(corner), len(lo), len(lo))).copy())


def domain_rule(domain, n: int, rule: str) -> Rule:
    """A rule over the domain; tensor rules need a box, anything else takes Monte Carlo."""
    if rule not in RULES:
        raise KinnError(f"unknown quadrature rule '{rule}'; valid: {', '.join(RULES)}")
    lo, hi = geometry.bbox(domain)
    if geometry.is_box(domain):
        return box(lo, hi, n, rule)
    if rule != "monte_carlo":
        raise KinnError(f"quadrature rule '{rule}' needs a box domain; use monte_carlo or a triangle rule "
                        "(triangle1, triangle2, triangle4, triangle5) here")
    full = box(lo, hi, n, "monte_carlo")
    keep = geometry.inside(domain, full.points)
    return Rule(full.points[keep], full.weights[keep])


def boundary_rule(domain, on, n: int, rule: str) -> Rule:
    """A rule over the part of the boundary where `on` holds, for boundaries on the faces of the domain's
    bounding box (all of a box; the straight outer edges of a plate with a hole): the faces whose centre
    `on` selects, each with a tensor rule of about n points over the face (its lower-dimensional measure).
    A face that is not wholly on the domain's boundary is refused."""
    if geometry.is_timedependent(domain):
        raise KinnError("boundary quadrature (tractions) needs a domain without a time axis")
    lo, hi = geometry.bbox(domain)
    parts = []
    for d in range(len(lo)):
        for value in (lo[d], hi[d]):
            centre = (lo + hi) / 2
            centre[d] = value
            if on is not None and not np.asarray(on(centre[None]), dtype=bool)[0]:
                continue
            others = [k for k in range(len(lo)) if k != d]
            face = box(lo[others], hi[others], n, rule) if others else Rule(
                np.zeros((1, 0)), np.ones(1), Cells(np.zeros((1, 0)), np.zeros((1, 0, 0))))
            pts = np.insert(face.points, d, value, axis=1)
            if not geometry.is_box(domain) and not np.all(geometry.on_boundary(domain, pts)):
                raise KinnError(f"the boundary part selected by {on!r} includes the face x{d} = {value:g} of the "
                                "bounding box, which is not wholly on the domain's boundary; boundary quadrature "
                                "covers straight boundary parts on the bounding box only")
            cells = Cells(np.insert(face.cells.corner, d, value, axis=1), np.insert(face.cells.edges, d, 0.0, axis=2))
            parts.append(Rule(pts, face.weights, cells))
    if not parts:
        raise KinnError(f"the boundary part selected by {on!r} contains no face of the box")
    return concat(parts)


# Symmetric rules on a triangle: orbits of barycentric coordinates with their weights (summing to 1).
def _orbit(a: float) -> list[list[float]]:  # the 3 permutations of (a, a, 1 - 2a)
    return [[a, a, 1 - 2 * a], [a, 1 - 2 * a, a], [1 - 2 * a, a, a]]


TRIANGLE_RULES = {  # degree: (barycentric points, weights); the degrees are config.TRIANGLE_DEGREES
    1: ([[1 / 3, 1 / 3, 1 / 3]], [1.0]),
    2: (_orbit(1 / 6), [1 / 3] * 3),
    4: (_orbit(0.445948490915965) + _orbit(0.091576213509771), [0.223381589678011] * 3 + [0.109951743655322] * 3),
    5: ([[1 / 3, 1 / 3, 1 / 3]] + _orbit(0.470142064105115) + _orbit(0.101286507323456),
        [0.225] + [0.132394152788506] * 3 + [0.125939180544827] * 3),
}


def triangles(points: np.ndarray, cells: np.ndarray, degree: int = 1) -> Rule:
    """A rule over a triangulation, points (P, 2) and cells (M, 3), exact for polynomials of `degree`
    (`TRIANGLE_DEGREES`) on each triangle: the rule's barycentric points mapped into every triangle."""
    if degree not in TRIANGLE_DEGREES:
        raise KinnError(f"no triangle rule of degree {degree}; valid: {', '.join(map(str, TRIANGLE_DEGREES))}")
    bary, w = (np.asarray(v, dtype=np.float64) for v in TRIANGLE_RULES[degree])
    corners = np.asarray(points, dtype=np.float64)[np.asarray(cells)]  # (M, 3, 2)
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])  # (M,)
    x = np.einsum("qk,mkd->mqd", bary, corners).reshape(-1, corners.shape[2])
    return Rule(x, (area[:, None] * w[None, :]).reshape(-1), Cells(corners[:, 0], np.stack([e1, e2], 1), simplex=True))
