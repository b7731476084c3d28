"""Domain integrals of a fundamental solution against a source, ∫Ω U(x − ξ) f(x) dΩ, in float64.

    pts, cells = triangulate(boundary, h=0.05)                 # a triangulation of the domain inside Γ
    value, derived = domain_integrals(Laplace(), f, pts[cells], targets)   # (P, c), (P, m)

The targets ξ are boundary collocation points (the BIE's domain term) or interior points (the
representation's); U is singular at ξ (ln ρ; the derived kernel 1/ρ), so one rule does not fit all
triangles. Each triangle is integrated by a collapsed (Duffy) Gauss rule from one corner,
x = a + u[(b − a) + v(c − b)], u, v ∈ [0, 1], with Jacobian u · cross(b − a, c − b):

- a triangle holding ξ (to 1e-12 × the domain's size) is split into the three triangles (ξ, a, b), (ξ, b, c), (ξ, c, a),
  each collapsed at ξ: the Jacobian's u cancels the 1/ρ of the derived kernel, and the ln ρ = ln u + ln|e(v)|
  of the single layer is split so that ∫ u ln u g(u) du takes the Gauss-log rule (exact for polynomial g);
  their signed areas add up to the triangle's, so ξ on an edge or a corner needs no special case;
- a triangle longer than `spread` × its distance to ξ is bisected into four (by its edge midpoints),
  level by level, vectorised over (target, piece) pairs, as the boundary integrals do (`integrals`);
- every other triangle takes the plain collapsed rule.

The error is then the source's (f interpolated by the rule's polynomials) and the geometry's: a curved
boundary is a polygon of chords (an O(h²) area error), straight edges are exact.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

from kinn.boundary.kernels import Kernel
from kinn.boundary.panels import Boundary
from kinn.boundary.rules import gauss_legendre, gauss_log
from kinn.errors import KinnError

ORDER = 6        # Gauss points per direction of the collapsed rule: exact for polynomials of degree 10
MAX_DEPTH = 40   # bisections of a triangle next to a target (2^-40 of its size: below rounding)
BLOCK = 2_000_000  # (target, quadrature point) pairs at a time


def triangulate(boundary: Boundary, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) and triangles (T, 3) filling the domain inside Γ: Delaunay triangles over every
    panel's ends and points about h apart along it, and a hexagonal lattice of spacing h inside kept h/2
    from Γ, without the triangles whose centroid lies outside (across a hole or a re-entrant corner)."""
    if not h > 0:
        raise KinnError(f"the triangulation's spacing h must be > 0, got {h}")
    along = [p.point(np.linspace(0, 1, max(1, int(np.ceil(p.length / h))) + 1)[:-1]) for p in boundary.panels]
    pts = np.concatenate([p.point(np.linspace(0, 1, 9)) for p in boundary.panels])
    lo, hi = pts.min(0), pts.max(0)
    rows = np.arange(lo[1], hi[1] + h, h * np.sqrt(3) / 2)
    row = [np.arange(lo[0] + (k % 2) * h / 2, hi[0] + h, h) for k in range(len(rows))]  # odd rows shifted
    lattice = np.concatenate([np.stack([x, np.full_like(x, y)], 1) for x, y in zip(row, rows)])
    keep = boundary.contains(lattice)
    keep[keep] = boundary.distance(lattice[keep]) > h / 2
    points = np.unique(np.concatenate(along + [lattice[keep]]).round(13), axis=0)
    cells = Delaunay(points).simplices
    cells = cells[boundary.contains(points[cells].mean(1))]
    return points, cells


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _distance(targets: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """(K,) distance from each target (K, 2) to its triangle (K, 3, 2): 0 inside. (Coordinates apart:
    numpy's sums over an axis of two are slow, and this runs on every (target, piece) pair.)"""
    px, py = targets[:, 0], targets[:, 1]
    orient = np.sign(_cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
    inside, d = np.ones(len(targets), bool), np.full(len(targets), np.inf)
    for i in range(3):
        ax, ay = tri[:, i, 0], tri[:, i, 1]
        ex, ey = tri[:, (i + 1) % 3, 0] - ax, tri[:, (i + 1) % 3, 1] - ay
        dx, dy = px - ax, py - ay
        inside &= orient * (ex * dy - ey * dx) >= 0
        t = np.clip((dx * ex + dy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        d = np.minimum(d, np.hypot(dx - t * ex, dy - t * ey))
    return np.where(inside, 0.0, d)


def _diameter(tri: np.ndarray) -> np.ndarray:
    e = tri - np.roll(tri, -1, axis=1)                                                # (K, 3, 2) the edges
    return np.hypot(e[..., 0], e[..., 1]).max(1)


def _collapsed(apex: np.ndarray, b: np.ndarray, c: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Points (K, Qu, Qv, 2) of the map x = apex + u[(b − apex) + v(c − b)] and its signed Jacobian
    over u, (K, Qu, Qv) / u (the factor u is left to the caller: the log rule carries its own)."""
    e = (b - apex)[:, None, :] + v[None, :, None] * (c - b)[:, None, :]          # (K, Qv, 2)
    x = apex[:, None, None, :] + u[None, :, None, None] * e[:, None, :, :]       # (K, Qu, Qv, 2)
    jac = _cross(b - apex, c - b)                                                  # (K,)
    return x, np.broadcast_to(jac[:, None, None], x.shape[:3])


def _singular(kernel: Kernel, f, apex: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, c), (K, m): ∫ U(x − ξ) f and ∫ U_derived(x − ξ) f over the (signed) triangles (apex, b, c),
    the apex the target ξ itself, by the collapsed rule from the apex, whose log the Gauss-log rule
    integrates (see the module's docstring)."""
    g, wg = gauss_legendre(ORDER)
    x, jac = _collapsed(apex, b, c, g, g)
    fx = f(x.reshape(-1, 2)).reshape(x.shape[:3] + (-1,))                          # (K, Q, Q, c)
    r = x - apex[:, None, None, :]
    w = wg[None, :, None] * wg[None, None, :] * g[None, :, None] * jac             # (K, Q, Q)
    U, D = kernel.single(r), kernel.single_derived(r)                              # (K, Q, Q, c, c), (.., m, c)
    # U − a ln u · I stays bounded along u; ∫ u ln u g du = −Σ wl ul g(ul)
    a, eye = kernel.log_coefficient, np.eye(kernel.components)
    U = U - a * np.log(g)[None, :, None, None, None] * eye
    value = np.einsum("kuvij,kuvj,kuv->ki", U, fx, w)
    derived = np.einsum("kuvmj,kuvj,kuv->km", D, fx, w)
    sl, wl = gauss_log(ORDER)
    xl, jl = _collapsed(apex, b, c, sl, g)
    fl = f(xl.reshape(-1, 2)).reshape(xl.shape[:3] + (-1,))
    wlog = -wl[None, :, None] * wg[None, None, :] * sl[None, :, None] * jl
    value += kernel.log_coefficient * np.einsum("kuvj,kuv->kj", fl, wlog)
    return value, derived


def _rule(f, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plain collapsed rule of each triangle (K, 3, 2), from its first corner: the points (K, Q², 2)
    and the weights times f there (K, Q², c)."""
    g, wg = gauss_legendre(ORDER)
    x, jac = _collapsed(tri[:, 0], tri[:, 1], tri[:, 2], g, g)
    w = wg[None, :, None] * wg[None, None, :] * g[None, :, None] * jac             # (K, Q, Q)
    x = x.reshape(len(tri), -1, 2)
    return x, w.reshape(len(tri), -1, 1) * f(x.reshape(-1, 2)).reshape(len(tri), x.shape[1], -1)


def _sum(kernel: Kernel, targets: np.ndarray, x: np.ndarray, wf: np.ndarray, rows: np.ndarray):
    """(K, c), (K, m): Σ_q U(x_q − ξ) wf_q and Σ_q U_derived(x_q − ξ) wf_q for each target ξ (K, 2) and
    the rule (points x, weights × f wf, `_rule`) of its piece, row rows[k] of x and wf: pieces that serve
    several targets are ruled once."""
    value, derived = np.empty((len(targets), kernel.components)), np.empty((len(targets), len(kernel.derived)))
    step = max(1, BLOCK // 8 // x.shape[1])  # smaller blocks than the far part's: ~30 MB of temporaries
    for start in range(0, len(targets), step):
        k = slice(start, start + step)
        r = x[rows[k]] - targets[k, None, :]                                           # (k, Q², 2)
        value[k] = np.einsum("kqij,kqj->ki", kernel.single(r), wf[rows[k]])
        derived[k] = np.einsum("kqmj,kqj->km", kernel.single_derived(r), wf[rows[k]])
    return value, derived


def _fan(kernel: Kernel, f, apex: np.ndarray, b: np.ndarray, c: np.ndarray, spread: float, tol: float):
    """(K, c), (K, m): the singular integrals over the triangles (apex, b, c), apex the target. Along
    the edge [b, c] the integrand is analytic with poles as near as the apex is to the edge, so the edge
    is bisected while a piece is longer than `spread` × its distance to the apex (a wide angle, or an
    apex next to the edge), as boundary panels are. A piece within `tol` of the apex is left out (its
    area is below tol × its length; the rule would subtract coordinates that agree to rounding)."""
    value = np.zeros((len(apex), kernel.components))
    derived = np.zeros((len(apex), len(kernel.derived)))
    idx = np.arange(len(apex))
    for depth in range(MAX_DEPTH + 1):
        e = c - b
        t = np.clip(((apex[idx] - b) * e).sum(1) / np.maximum((e * e).sum(1), 1e-300), 0.0, 1.0)
        dist = np.hypot(*(apex[idx] - b - t[:, None] * e).T)
        length = np.hypot(*e.T)
        split = (length > spread * dist) & (dist > tol) & (depth < MAX_DEPTH)
        done = ~split & (dist > tol)
        if done.any():
            v, d = _singular(kernel, f, apex[idx[done]], b[done], c[done])
            np.add.at(value, idx[done], v)
            np.add.at(derived, idx[done], d)
        if not split.any():
            break
        mid = 0.5 * (b[split] + c[split])
        b, c = np.concatenate([b[split], mid]), np.concatenate([mid, c[split]])
        idx = np.tile(idx[split], 2)
    return value, derived


def _plain(kernel: Kernel, f, targets: np.ndarray, tri: np.ndarray, key: np.ndarray):
    """(K, c), (K, m): each (target, piece) pair's integrals by the plain rule, the pieces (K, 3, 2) that
    share a `key` (K,) (the same piece of the same triangle, near several targets) ruled once, in blocks."""
    pieces, first, rows = np.unique(key, return_index=True, return_inverse=True)
    value, derived = np.empty((len(targets), kernel.components)), np.empty((len(targets), len(kernel.derived)))
    step = max(1, BLOCK // (ORDER * ORDER * 4))
    for start in range(0, len(pieces), step):
        stop = min(start + step, len(pieces))
        x, wf = _rule(f, tri[first[start:stop]])
        pairs = np.flatnonzero((rows >= start) & (rows < stop)) if len(pieces) > step else np.arange(len(rows))
        value[pairs], derived[pairs] = _sum(kernel, targets[pairs], x, wf, rows[pairs] - start)
    return value, derived


def _near(kernel: Kernel, f, targets: np.ndarray, tri: np.ndarray, ids: np.ndarray, spread: float, tol: float):
    """(K, c), (K, m): each (target, triangle) pair's integrals, adaptively (module docstring); ids (K,)
    number the triangles, so that a piece near several targets is ruled (f evaluated) once."""
    c, m = kernel.components, len(kernel.derived)
    value, derived = np.zeros((len(targets), c)), np.zeros((len(targets), m))
    idx, key = np.arange(len(targets)), np.asarray(ids)
    for depth in range(MAX_DEPTH + 1):
        if not len(idx):
            break
        p = targets[idx]
        dist, diam = _distance(p, tri), _diameter(tri)
        holds = dist <= tol  # within rounding: the fan's signed pieces still add up to the triangle
        split = ~holds & (diam > spread * dist) & (depth < MAX_DEPTH)
        done = ~holds & ~split
        if done.any():
            v, d = _plain(kernel, f, p[done], tri[done], key[done])
            np.add.at(value, idx[done], v)
            np.add.at(derived, idx[done], d)
        if holds.any():
            t = tri[holds]
            for k in range(3):
                v, d = _fan(kernel, f, p[holds], t[:, k], t[:, (k + 1) % 3], spread, tol)
                np.add.at(value, idx[holds], v)
                np.add.at(derived, idx[holds], d)
        t = tri[split]
        m01, m12, m20 = (0.5 * (t[:, i] + t[:, (i + 1) % 3]) for i in range(3))
        tri = np.concatenate([np.stack(q, 1) for q in ((t[:, 0], m01, m20), (m01, t[:, 1], m12),
                                                       (m20, m12, t[:, 2]), (m01, m12, m20))])
        idx = np.tile(idx[split], 4)
        # a child's key: its parent's, renumbered densely (no overflow at any depth), and which child
        parent = np.unique(key[split], return_inverse=True)[1]
        key = np.concatenate([4 * parent + j for j in range(4)])
    return value, derived


class _ValueOnly(Kernel):
    """A kernel's single layer without its derived quantities (m = 0): the domain term's value alone."""

    def __init__(self, kernel: Kernel):
        self.kernel, self.components, self.log_coefficient = kernel, kernel.components, kernel.log_coefficient
        self.derived = ()

    def single(self, r):
        return self.kernel.single(r)

    def double(self, r, n):
        return self.kernel.double(r, n)

    def single_derived(self, r):
        return np.zeros(r.shape[:-1] + (0, self.components))

    def double_derived(self, r, n):
        return np.zeros(r.shape[:-1] + (0, self.components))


def domain_integrals(kernel: Kernel, f, triangles: np.ndarray, targets: np.ndarray, spread: float = 0.5,
                     derived: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """∫Ω U(x − ξ) f(x) dΩ (P, c) and ∫Ω U_derived(x − ξ) f(x) dΩ (P, m) at the targets ξ (P, 2), Ω the
    union of the triangles (T, 3, 2) (any orientation), f: points (N, 2) -> (N, c) float64 numpy.
    A triangle is integrated adaptively where its diameter exceeds `spread` × its distance to ξ.
    derived=False: the value alone, in about half the time (the derived part is then NaN)."""
    if not derived:
        value, _ = domain_integrals(_ValueOnly(kernel), f, triangles, targets, spread)
        return value, np.full((len(value), len(kernel.derived)), np.nan)
    tri = np.asarray(triangles, dtype=float)
    tri = np.where((_cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) < 0)[:, None, None], tri[:, ::-1], tri)
    targets = np.asarray(targets, dtype=float).reshape(-1, 2)
    # the plain rule of every triangle, reused for all targets far from it
    x, wf = _rule(f, tri)
    xq, wf = x.reshape(-1, 2), wf.reshape(-1, wf.shape[-1])                          # (T·Q², 2), (T·Q², c)
    per, diam, centroid = ORDER * ORDER, _diameter(tri), tri.mean(1)
    tol = 1e-12 * np.ptp(tri.reshape(-1, 2), axis=0).max()  # a target this close to a triangle is on it
    value = np.zeros((len(targets), kernel.components))
    derived = np.zeros((len(targets), len(kernel.derived)))
    pairs = []
    chunk = max(1, BLOCK // len(xq))
    for start in range(0, len(targets), chunk):
        rows = slice(start, min(start + chunk, len(targets)))
        p = targets[rows]
        # a cheap lower bound on the distance (centroid distance − diameter) finds every near pair
        near = np.hypot(*(centroid[None] - p[:, None]).transpose(2, 0, 1)) - diam[None] < diam[None] / spread
        far = np.repeat(~near, per, axis=1)[..., None]
        weights = far * wf[None]                                                        # (C, T·Q², c)
        r = np.where(far, xq[None] - p[:, None], 1.0)  # near pairs: a harmless r, weighted by 0
        value[rows] = np.einsum("pqij,pqj->pi", kernel.single(r), weights)
        derived[rows] = np.einsum("pqmj,pqj->pm", kernel.single_derived(r), weights)
        k, t = np.nonzero(near)
        pairs.append((start + k, t))
    # the near pairs of all targets at once: a piece of a triangle near many targets is ruled once
    k, t = (np.concatenate(a) for a in zip(*pairs)) if pairs else (np.zeros(0, int), np.zeros(0, int))
    v, d = _near(kernel, f, targets[k], tri[t], t, spread, tol)
    np.add.at(value, k, v)
    np.add.at(derived, k, d)
    return value, derived
