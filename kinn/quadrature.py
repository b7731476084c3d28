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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import geometry
from .errors import KinnError

RULES = ("monte_carlo", "trapezoid", "simpson", "gauss")


@dataclass(frozen=True)
class Rule:
    points: np.ndarray   # (N, D)
    weights: np.ndarray  # (N,)


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


def box(lo, hi, n: int, rule: str) -> Rule:
    """Tensor-product rule on the box [lo, hi] with about n points in all (n^(1/D) per direction)."""
    lo, hi = np.atleast_1d(lo).astype(float), np.atleast_1d(hi).astype(float)
    d = len(lo)
    if rule == "monte_carlo":  # random in all directions at once, not a product of random lines
        x = lo + (hi - lo) * np.random.random_sample((n, d))
        return Rule(x, np.full(n, np.prod(hi - lo) / n))
    per = max(int(round(n ** (1 / d))), 2)
    lines = [line(a, b, per, rule) for a, b in zip(lo, hi)]
    grids = np.meshgrid(*[r.points[:, 0] for r in lines], indexing="ij")
    weights = np.meshgrid(*[r.weights for r in lines], indexing="ij")
    return Rule(np.stack([g.ravel() for g in grids], 1), np.prod([w.ravel() for w in weights], 0))


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
            face = box(lo[others], hi[others], n, rule) if others else Rule(np.zeros((1, 0)), np.ones(1))
            pts = np.insert(face.points, d, value, axis=1)
            if not geometry.is_box(domain) and not np.all(geometry.on_boundary(domain, pts)):
                raise KinnError(f"the boundary part selected by {on!r} includes the face x{d} = {value:g} of the "
                                "bounding box, which is not wholly on the domain's boundary; boundary quadrature "
                                "covers straight boundary parts on the bounding box only")
            parts.append(Rule(pts, face.weights))
    if not parts:
        raise KinnError(f"the boundary part selected by {on!r} contains no face of the box")
    return Rule(np.concatenate([r.points for r in parts]), np.concatenate([r.weights for r in parts]))


# Symmetric rules on a triangle: orbits of barycentric coordinates with their weights (summing to 1).
def _orbit(a: float) -> list[list[float]]:  # the 3 permutations of (a, a, 1 - 2a)
    return [[a, a, 1 - 2 * a], [a, 1 - 2 * a, a], [1 - 2 * a, a, a]]


TRIANGLE_RULES = {
    1: ([[1 / 3, 1 / 3, 1 / 3]], [1.0]),
    2: (_orbit(1 / 6), [1 / 3] * 3),
    4: (_orbit(0.445948490915965) + _orbit(0.091576213509771), [0.223381589678011] * 3 + [0.109951743655322] * 3),
    5: ([[1 / 3, 1 / 3, 1 / 3]] + _orbit(0.470142064105115) + _orbit(0.101286507323456),
        [0.225] + [0.132394152788506] * 3 + [0.125939180544827] * 3),
}


def triangles(points: np.ndarray, cells: np.ndarray, degree: int = 1) -> Rule:
    """A rule over a triangulation, points (P, 2) and cells (M, 3), exact for polynomials of `degree`
    (1, 2, 4 or 5) on each triangle: the rule's barycentric points mapped into every triangle."""
    if degree not in TRIANGLE_RULES:
        raise KinnError(f"no triangle rule of degree {degree}; valid: {', '.join(map(str, TRIANGLE_RULES))}")
    bary, w = (np.asarray(v, dtype=np.float64) for v in TRIANGLE_RULES[degree])
    corners = np.asarray(points, dtype=np.float64)[np.asarray(cells)]  # (M, 3, 2)
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])  # (M,)
    x = np.einsum("qk,mkd->mqd", bary, corners).reshape(-1, corners.shape[2])
    return Rule(x, (area[:, None] * w[None, :]).reshape(-1))
