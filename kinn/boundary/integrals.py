"""Boundary integral operators in float64, linear in nodal boundary values.

    nd = nodes(boundary, n=10)                       # points (M, 2), normals, weights, panel, param
    op = bie_operator(boundary, Laplace(), n=10)     # op.A, op.B: (S·c, M·c)
    residual = op.A @ u.ravel() - op.B @ q.ravel()   # u, q: (M, c) values at the nodes
    field = representation(boundary, Laplace(), points)(u, q)   # field.value (P, c), field.derived (P, m)

**Nodal representation.** A boundary function (u and its flux q; a displacement and its traction) is
given by its values at the n Gauss–Legendre nodes of every panel; on a panel it is the Lagrange
interpolant of degree n − 1 in the panel parameter t. Any other quadrature (sub-panels, the log rule)
reads it through that interpolant, so every integral below is a matrix acting on nodal values. Values
are stored component-interleaved: entry node·c + j is component j at node `node` (rows likewise,
source·c + i).

**Regularised BIE.** At a source ξ on Γ (BINN.md §2), with r = x − ξ,

    R(ξ) = ∫_Γ T(ξ, x) [u(x) − u(ξ)] ds − ∫_Γ U(ξ, x) q(x) ds = 0,

valid at corners with no free term and no principal value. u(ξ) is the source's own panel's
interpolant at its parameter t₀. At a corner, the neighbouring panel that also ends at ξ subtracts its
own end value instead, so that T [u − u(ξ)] stays bounded on it too (the two agree for continuous data).
On the panels holding ξ, U's log singularity is split exactly, a ln|x(t) − x(t₀)| =
a ln|t − t₀| + a ln(|x(t) − x(t₀)| / |t − t₀|): the smooth part takes Gauss–Legendre on each side of t₀,
the log part the Gauss-log rule on each side (scaled to that side's length). Every other panel is
integrated adaptively (`_panel_integrals`): a sub-panel is bisected while its length exceeds `spread` ×
its distance to the point.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kinn.errors import KinnError
from kinn.boundary.kernels import Kernel
from kinn.boundary.panels import Boundary, Panel
from kinn.boundary.rules import gauss_legendre, gauss_log, lagrange

MAX_DEPTH = 50  # bisections: a sub-panel 2^-50 of its panel is below rounding of the coordinates
ORDER = 10      # fewest Gauss points on an accepted (sub)panel: ~1e-13 at length = distance, whatever n


@dataclass(frozen=True)
class Nodes:
    """The quadrature nodes that carry the boundary data: n Gauss–Legendre nodes per panel, panel by
    panel in `boundary.panels` order (node k of panel p is row p·n + k)."""

    points: np.ndarray   # (M, 2)
    normals: np.ndarray  # (M, 2) outward unit normals
    weights: np.ndarray  # (M,) arc-length weights: Σ w f ≈ ∫_Γ f ds
    panel: np.ndarray    # (M,) panel index
    param: np.ndarray    # (M,) parameter t of the node on its panel
    n: int


def nodes(boundary: Boundary, n: int = 10) -> Nodes:
    """The n-point Gauss–Legendre nodes of every panel of `boundary` (M = n × panels)."""
    s, w = gauss_legendre(n)
    panels = boundary.panels
    return Nodes(points=np.concatenate([p.point(s) for p in panels]),
                 normals=np.concatenate([p.normal(s) for p in panels]),
                 weights=np.concatenate([w * p.length for p in panels]),
                 panel=np.repeat(np.arange(len(panels)), n), param=np.tile(s, len(panels)), n=int(n))


Integrand = Callable[[np.ndarray, np.ndarray], tuple]


def _panel_integrals(panel: Panel, points: np.ndarray, integrand: Integrand, n: int,
                     spread: float) -> list[np.ndarray]:
    """For each kernel K returned by integrand(r (A, q, 2), normal (A, q, 2)) as (A, q, m, c), the
    integrals ∫_panel K(x(t) − p) φ_k(t) ds for every point p (P, 2): a list of (P, m, c, n), φ_k the
    panel's Lagrange basis.

    Adaptive: a piece [ta, tb] is accepted for a point when its length ≤ spread × its distance (Gauss
    with max(n, ORDER) points is then accurate to ~1e-13 for kernels up to 1/ρ³; a fixed relative error
    of the near pieces would not shrink under refinement) and bisected otherwise, down to MAX_DEPTH
    levels. The work goes level by level over (point, piece) pairs, vectorised."""
    s = gauss_legendre(n)[0]
    order = max(n, ORDER)
    g, w = gauss_legendre(order)
    out: list | None = None
    idx, ta, tb = np.arange(len(points)), np.zeros(len(points)), np.ones(len(points))
    for depth in range(MAX_DEPTH + 1):
        near = (tb - ta) * panel.length > spread * panel.distance(points[idx], ta, tb)
        if depth == MAX_DEPTH:
            near[:] = False
        done = ~near
        if done.any() or out is None:  # (with no points at all, this still gives the shapes)
            h = (tb - ta)[done, None]
            t = ta[done, None] + h * g                                          # (A, q)
            r = panel.point(t.ravel()).reshape(t.shape + (2,)) - points[idx[done], None]
            normal = panel.normal(t.ravel()).reshape(r.shape)
            weights = h * panel.length * w                                       # (A, q)
            on_nodes = depth == 0 and order == n
            terms = [_against_basis(K * weights[..., None, None], s, t, on_nodes) for K in integrand(r, normal)]
            if out is None:
                out = [np.zeros((len(points),) + a.shape[1:]) for a in terms]
            for total, a in zip(out, terms):
                if depth == 0:
                    total[idx[done]] += a      # each point once
                else:
                    np.add.at(total, idx[done], a)
        if not near.any():
            break
        mid = 0.5 * (ta[near] + tb[near])
        idx, ta, tb = (np.concatenate([idx[near], idx[near]]), np.concatenate([ta[near], mid]),
                       np.concatenate([mid, tb[near]]))
    return out


def _against_basis(weighted: np.ndarray, s: np.ndarray, t: np.ndarray, on_nodes: bool) -> np.ndarray:
    """(A, m, c, n) Σ_q weighted[a, q] φ_k(t[a, q]) for weighted kernel values (A, q, m, c) at the
    parameters t (A, q); on_nodes: t are the panel's own nodes, where φ_k(t_q) = δ_kq."""
    moved = np.moveaxis(weighted, 1, -1)                                         # (A, m, c, q)
    if on_nodes:
        return moved
    phi = lagrange(s, t.ravel()).reshape(t.shape + (len(s),))                  # (A, q, n)
    A, m, c, q = moved.shape
    return np.matmul(moved.reshape(A, m * c, q), phi).reshape(A, m, c, len(s))


def _singular_panel(panel: Panel, t0: float, kernel: Kernel, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The panel integrals for a source ξ = x(t₀) on the panel itself, each (c, c, n):
    double ∫ T(x(t) − ξ) [φ_k(t) − φ_k(t₀)] ds (bounded integrand) and single ∫ U(x(t) − ξ) φ_k(t) ds
    with U's log part integrated exactly on each side of t₀ (see the module's docstring)."""
    s = gauss_legendre(n)[0]
    g, w = gauss_legendre(max(n, ORDER))
    sl, wl = gauss_log(max(n, ORDER))
    c, a, length = kernel.components, kernel.log_coefficient, panel.length
    phi0 = lagrange(s, [t0])[0]
    double, single = np.zeros((c, c, n)), np.zeros((c, c, n))
    for side, h in ((-1.0, t0), (1.0, 1.0 - t0)):
        if h <= 0:
            continue
        t = t0 + side * h * g
        r, normal = panel.separation(t0, t), panel.normal(t)
        phi, weights = lagrange(s, t), h * length * w
        double += np.einsum("qij,q,qk->ijk", kernel.double(r, normal), weights, phi - phi0)
        smooth = kernel.single(r) - a * np.log(h * g)[:, None, None] * np.eye(c)
        single += np.einsum("qij,q,qk->ijk", smooth, weights, phi)
        # a L ∫ ln|t − t₀| φ_k dt over the side = a L h [ln h ∫₀¹ φ_k − ∫₀¹ φ_k(t₀ ± hσ) ln(1/σ) dσ]
        log_part = np.log(h) * (w @ phi) - wl @ lagrange(s, t0 + side * h * sl)
        single += a * length * h * np.eye(c)[:, :, None] * log_part
    return double, single


@dataclass(frozen=True)
class BieOperator:
    """The regularised BIE at S sources, R = A @ u − B @ q with u, q (M·c,) nodal values (interleaved)
    and R (S·c,). Sources are x(param) on panel `panel`; at a corner, `normals` is that panel's."""

    A: np.ndarray        # (S·c, M·c)
    B: np.ndarray        # (S·c, M·c)
    points: np.ndarray   # (S, 2) source points
    normals: np.ndarray  # (S, 2)
    panel: np.ndarray    # (S,) the panel that owns each source
    param: np.ndarray    # (S,) its parameter on that panel
    nodes: Nodes


def _source_params(sources_per_panel) -> np.ndarray:
    if np.ndim(sources_per_panel) == 0:
        k = int(sources_per_panel)
        if k != sources_per_panel or k < 1:
            raise KinnError(f"sources_per_panel: a positive whole number or parameters in [0, 1], got "
                            f"{sources_per_panel!r}")
        return (np.arange(k) + 0.5) / k
    t = np.unique(np.asarray(sources_per_panel, dtype=float))
    if len(t) == 0 or t.min() < 0 or t.max() > 1:
        raise KinnError(f"sources_per_panel: parameters must lie in [0, 1], got {t.tolist()}")
    if t.min() == 0 and t.max() == 1:
        raise KinnError("sources_per_panel: 0 and 1 both given, so every panel end would be collocated "
                        "twice (t = 1 of a panel is t = 0 of the next); keep one of them")
    return t


def _holders(boundary: Boundary, p: int, t0: float) -> list[tuple[int, float]]:
    """The panels holding the source x(t₀) of panel p, with its parameter on each: p itself, and the
    loop neighbour that ends (t₀ = 0) or starts (t₀ = 1) there."""
    first = 0
    for loop in boundary.loops:
        if p < first + len(loop.panels):
            break
        first += len(loop.panels)
    k, count = p - first, len(loop.panels)
    if count == 1 and t0 in (0.0, 1.0):
        raise KinnError(f"panel {p} is a loop on its own, so a source at its end (t = {t0:g}) sits at both of "
                        "its ends; split the loop (Boundary.refine) or keep sources inside panels (0 < t < 1)")
    held = [(p, t0)]
    if t0 == 0.0:
        held.append((first + (k - 1) % count, 1.0))
    elif t0 == 1.0:
        held.append((first + (k + 1) % count, 0.0))
    return held


def bie_operator(boundary: Boundary, kernel: Kernel, n: int = 10, sources_per_panel=1,
                 spread: float = 1.0) -> BieOperator:
    """The regularised, rigid-body-subtracted BIE residual as matrices (see the module's docstring).

    sources_per_panel: k (sources at the midpoints of k equal parts of every panel) or parameters in
    [0, 1] used on every panel (0: the panel's start, e.g. a corner). spread: bisect a neighbouring
    (sub)panel while its length exceeds spread × its distance to the source."""
    nd, c, panels = nodes(boundary, n), kernel.components, boundary.panels
    params = _source_params(sources_per_panel)
    owner = np.repeat(np.arange(len(panels)), len(params))
    param = np.tile(params, len(panels))
    points = np.concatenate([p.point(params) for p in panels])
    normals = np.concatenate([p.normal(params) for p in panels])
    S, M = len(points), len(nd.points)
    A, B = np.zeros((S, c, M, c)), np.zeros((S, c, M, c))
    held_by = [[] for _ in panels]  # panel -> [(source, t on that panel)]
    for src in range(S):
        for q, tq in _holders(boundary, owner[src], param[src]):
            held_by[q].append((src, tq))
    total = np.zeros((S, c, c))     # ∫ T ds over the panels not holding the source
    pair = lambda r, normal: (kernel.double(r, normal), kernel.single(r))
    for q, panel in enumerate(panels):
        cols = slice(q * n, (q + 1) * n)
        mine = [src for src, _ in held_by[q]]
        others = np.setdiff1d(np.arange(S), mine)
        T, U = _panel_integrals(panel, points[others], pair, n, spread)       # (S', c, c, n)
        A[others, :, cols, :] += T.transpose(0, 1, 3, 2)
        B[others, :, cols, :] += U.transpose(0, 1, 3, 2)
        total[others] += T.sum(-1)  # Σ_k φ_k = 1
        for src, tq in held_by[q]:
            double, single = _singular_panel(panel, tq, kernel, n)
            A[src, :, cols, :] += double.transpose(0, 2, 1)
            B[src, :, cols, :] += single.transpose(0, 2, 1)
    s, _ = gauss_legendre(n)
    phi = lagrange(s, param)                                                    # (S, n)
    for src in range(S):
        cols = slice(owner[src] * n, (owner[src] + 1) * n)
        A[src, :, cols, :] -= np.einsum("ij,k->ikj", total[src], phi[src])
    return BieOperator(A.reshape(S * c, M * c), B.reshape(S * c, M * c), points, normals, owner, param, nd)


@dataclass(frozen=True)
class Field:
    """The interior solution at P points: `value` (P, c) (u; displacement) and `derived` (P, m)
    (Laplace ∇u; Kelvin σ_xx, σ_yy, σ_xy), in the order of the kernel's `derived` names."""

    value: np.ndarray
    derived: np.ndarray


class Representation:
    """The representation formula at fixed interior points, from nodal boundary data:

        u_i(ξ) = u_i(x₀) + ∫ U_ij q_j ds − ∫ T_ij [u_j − u_j(x₀)] ds,
        D(ξ) = ∫ single_derived q ds − ∫ double_derived [u − u(x₀)] ds,

    the usual formula (∫ T ds = −I and ∫ double_derived ds = 0 inside) with the constant u(x₀) taken
    out, x₀ the boundary point nearest to ξ: near the boundary the double-layer integrals are then
    O(|∇u|) instead of O(|u| / distance), which keeps rounding and quadrature errors of the derived field
    (∇u, stresses) small up to the boundary.

    Points are processed `chunk` at a time, panel by panel, so memory stays O(chunk × n) however many
    points and nodes there are. Every panel is bisected near each point while a sub-panel's length
    exceeds `spread` × its distance (0.5: the 1/ρ² and 1/ρ³ kernels of the derived field need it)."""

    def __init__(self, boundary: Boundary, kernel: Kernel, points, n: int = 10, chunk: int = 2048,
                 spread: float = 0.5):
        self.boundary, self.kernel, self.n, self.chunk, self.spread = boundary, kernel, int(n), int(chunk), spread
        self.points = _interior(boundary, points)
        self.nodes = nodes(boundary, n)

    def _chunks(self):
        for start in range(0, len(self.points), self.chunk):
            yield slice(start, min(start + self.chunk, len(self.points)))

    def _panel_terms(self, points: np.ndarray, q: int) -> list[np.ndarray]:
        """Panel q's [single, double, single_derived, double_derived] integrals, each (P, m or c, c, n)."""
        k = self.kernel
        four = lambda r, normal: (k.single(r), k.double(r, normal), k.single_derived(r), k.double_derived(r, normal))
        return _panel_integrals(self.boundary.panels[q], points, four, self.n, self.spread)

    def _nearest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, n) node indices and Lagrange weights giving u(x₀) at each point's nearest boundary point."""
        panel, t, _ = self.boundary.nearest(points)
        cols = panel[:, None] * self.n + np.arange(self.n)
        return cols, lagrange(gauss_legendre(self.n)[0], t)

    def __call__(self, u, q) -> Field:
        """The field from nodal values u, q: (M, c) or (M·c,) interleaved."""
        c, M = self.kernel.components, len(self.nodes.points)
        u, q = (np.asarray(a, dtype=float).reshape(M, c) for a in (u, q))
        value = np.zeros((len(self.points), c))
        derived = np.zeros((len(self.points), len(self.kernel.derived)))
        for rows in self._chunks():
            cols0, phi0 = self._nearest(self.points[rows])
            u0 = np.einsum("pk,pkc->pc", phi0, u[cols0])                                   # (P, c)
            value[rows] += u0
            for p in range(len(self.boundary.panels)):
                cols = slice(p * self.n, (p + 1) * self.n)
                vq, vu, dq, du = self._panel_terms(self.points[rows], p)
                jump = u[cols][None] - u0[:, None]                                           # (P, n, c)
                value[rows] += np.einsum("pick,kc->pi", vq, q[cols]) - np.einsum("pick,pkc->pi", vu, jump)
                derived[rows] += np.einsum("pmck,kc->pm", dq, q[cols]) - np.einsum("pmck,pkc->pm", du, jump)
        return Field(value, derived)

    def blocks(self):
        """Yield (rows, Vu, Vq, Du, Dq) chunk by chunk: value = Vq @ q − Vu @ u with V (P·c, M·c) and
        derived = Dq @ q − Du @ u with D (P·m, M·c), for the points `self.points[rows]` (the same
        formula as calling the representation, u(x₀) folded into Vu and Du). Near the boundary the
        entries grow like 1/distance (Du: 1/distance²) and the matrix product then rounds to
        ~1e-16 × |entries| × |u|, which the call avoids by subtracting u(x₀) before contracting:
        measured on the plate at 1e-3 of a panel from the hole, stress error 2e-9 here, 1e-22 by call."""
        c, m, M = self.kernel.components, len(self.kernel.derived), len(self.nodes.points)
        for rows in self._chunks():
            P = rows.stop - rows.start
            Vq, Vu, Dq, Du = (np.zeros((P, k, M, c)) for k in (c, c, m, m))
            for p in range(len(self.boundary.panels)):
                cols = slice(p * self.n, (p + 1) * self.n)
                for block, term in zip((Vq, Vu, Dq, Du), self._panel_terms(self.points[rows], p)):
                    block[:, :, cols, :] = term.transpose(0, 1, 3, 2)
            # u(x₀) = Π u: value gains (I + Σ_nodes Vu) Π u, derived gains (Σ_nodes Du) Π u.
            cols0, phi0 = self._nearest(self.points[rows])
            for block, extra in ((Vu, np.eye(c)), (Du, 0.0)):
                factor = block.sum(2) + extra                                               # (P, k, c)
                for k in range(self.n):
                    block[np.arange(P), :, cols0[:, k], :] -= factor * phi0[:, k, None, None]
            yield rows, Vu.reshape(P * c, M * c), Vq.reshape(P * c, M * c), Du.reshape(P * m, M * c), \
                Dq.reshape(P * m, M * c)


def _interior(boundary: Boundary, points) -> np.ndarray:
    """The points (P, 2) as float64, refusing those outside the domain or on its boundary."""
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2:
        raise KinnError(f"evaluation points must be an array (P, 2), got shape {p.shape}")
    bad = ~boundary.contains(p) | (boundary.distance(p) <= 1e-12 * boundary.size)
    if bad.any():
        raise KinnError(f"{int(bad.sum())} of {len(p)} evaluation points lie outside the domain or on its "
                        f"boundary, e.g. {p[bad][0].tolist()}; the representation formula holds inside only")
    return p


def representation(boundary: Boundary, kernel: Kernel, points, n: int = 10, chunk: int = 2048) -> Representation:
    """The representation formula at `points` (P, 2), strictly inside: call the result with nodal
    (u, q) for a `Field`, or iterate its `blocks()` for the matrices. See `Representation`."""
    return Representation(boundary, kernel, points, n=n, chunk=chunk)
