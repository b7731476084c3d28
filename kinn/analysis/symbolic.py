"""Closed-form formulas read off a KAN: every edge fitted by a * f(b x + c) + d, then composed.

Liu et al., "KAN: Kolmogorov-Arnold Networks" (2024), section 2.5.1 (symbolification): each edge function
is matched against a library of candidate f, and the network's formula follows by composing the fitted
edges layer by layer. Here the edge is the whole phi_ij (spline and SiLU base branch together), sampled
over the range its input visits (`kinn.analysis.edges.edge_functions`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import scipy.optimize
import sympy
import torch

from kinn.errors import KinnError, unknown
from kinn.models.field import FieldModel
from kinn.solvers.kan import KAN

from .edges import edge_functions, kan_of


@dataclasses.dataclass(frozen=True)
class Candidate:
    """f for a * f(b x + c) + d: its numpy and sympy forms, complexity (for the choice rule), and which of
    b, c are fitted (b is redundant for x**n, whose scale a absorbs; c for exp, e**c being a factor)."""

    numpy: Callable[[np.ndarray], np.ndarray]
    sympy: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    scale: bool
    shift: bool


LIBRARY = {
    "0": Candidate(np.zeros_like, lambda t: sympy.Integer(0), 0, False, False),
    "x": Candidate(lambda t: t, lambda t: t, 1, False, False),
    "x^2": Candidate(lambda t: t**2, lambda t: t**2, 2, False, True),
    "sin": Candidate(np.sin, sympy.sin, 2, True, True),
    "cos": Candidate(np.cos, sympy.cos, 2, True, True),
    "exp": Candidate(np.exp, sympy.exp, 2, True, False),
    "log": Candidate(np.log, sympy.log, 2, True, True),
    "sqrt": Candidate(np.sqrt, sympy.sqrt, 2, True, True),
    "x^3": Candidate(lambda t: t**3, lambda t: t**3, 3, False, True),
    "x^4": Candidate(lambda t: t**4, lambda t: t**4, 3, False, True),
    "tanh": Candidate(np.tanh, sympy.tanh, 3, True, True),
}
DEFAULT_LIBRARY = tuple(LIBRARY)  # the order breaks ties of complexity

# The coarse grid of b' and c' on the input mapped to [-1, 1]: b' = 0 is left out (a constant).
_SCALES = np.concatenate([-np.geomspace(10, 0.2, 20), np.geomspace(0.2, 10, 20)])
_SHIFTS = np.linspace(-10, 10, 41)
_STARTS = 3  # grid minima refined by least squares
_INVALID = 1e8  # the residual (times the data's size) where f is undefined somewhere on the range
_ODD = {"sin": True, "tanh": True, "cos": False}  # the scaled f whose sign of b is made positive
_POWERS = {"x": 1, "x^2": 2, "x^3": 3, "x^4": 4}


@dataclasses.dataclass(frozen=True)
class EdgeFit:
    """The chosen a * f(b x + c) + d of one edge (b, c in the edge's own input units), its R^2 on the
    samples, and every candidate's R^2 (`r2s`, NaN where f is undefined on the whole range)."""

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    r2s: dict

    def expr(self, x: sympy.Expr) -> sympy.Expr:
        """The fitted edge as a sympy expression of x (unit factors and zero terms left out)."""
        arg = (x if self.b == 1 else self.b * x) + (self.c if self.c else 0)
        return (self.a * LIBRARY[self.name].sympy(arg) if self.a else 0) + (self.d if self.d else 0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.a * LIBRARY[self.name].numpy(self.b * np.asarray(x) + self.c) + self.d


def _project(z: np.ndarray, y: np.ndarray):
    """Least-squares a, d of y ~ a z + d for each row of z (K, n): a (K,), d (K,), residual sum (K,).

    Rows that are not finite get an infinite residual; constant rows get a = 0."""
    with np.errstate(all="ignore"):
        ok = np.isfinite(z).all(-1)
        z = np.where(ok[:, None], z, 0.0)
        zc, yc = z - z.mean(-1, keepdims=True), y - y.mean()
        var, cov = (zc**2).sum(-1), zc @ yc
        a = np.where(var > 1e-300, cov / np.where(var > 1e-300, var, 1.0), 0.0)
        d = y.mean() - a * z.mean(-1)
        ssr = ((yc - a[:, None] * zc) ** 2).sum(-1)
    return a, d, np.where(ok, ssr, np.inf)


def _fit_candidate(f: Candidate, u: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, float]:
    """a, b', c', d and the residual sum of y ~ a f(b' u + c') + d on u in [-1, 1]: the coarse grid of
    the free ones of (b', c'), then least squares from the best grid points (a and d projected out)."""
    bs = _SCALES if f.scale else np.ones(1)
    cs = _SHIFTS if f.shift else np.zeros(1)
    B, C = (g.reshape(-1) for g in np.meshgrid(bs, cs, indexing="ij"))
    with np.errstate(all="ignore"):
        a, d, ssr = _project(f.numpy(B[:, None] * u + C[:, None]), y)
    best = int(np.argmin(ssr))
    result = (a[best], B[best], C[best], d[best], ssr[best])
    free = [f.scale, f.shift]
    if not any(free) or not np.isfinite(result[-1]):
        return result

    def at(p):  # (a, b', c', d, residual sum) with the free ones of (b', c') set to p, and f's values there
        bc = np.array([B[0], C[0]], float)
        bc[free] = p
        with np.errstate(all="ignore"):
            z = f.numpy(bc[0] * u + bc[1])
        a_, d_, s_ = _project(z[None], y)
        return (a_[0], bc[0], bc[1], d_[0], s_[0]), z

    def residual(p):
        (a_, _, _, d_, _), z = at(p)
        r = y - a_ * z - d_
        return r if np.isfinite(r).all() else np.full_like(y, _INVALID * (1 + np.abs(y).max()))

    for k in np.argsort(ssr)[:_STARTS]:
        if not np.isfinite(ssr[k]):
            break
        with np.errstate(all="ignore"):
            fit = scipy.optimize.least_squares(residual, np.array([B[k], C[k]])[free], xtol=1e-14, ftol=1e-14,
                                               gtol=1e-14, max_nfev=200)
        refined, _ = at(fit.x)
        if refined[-1] < result[-1]:
            result = refined
    return result


def _canonical(name: str, a: float, b: float, c: float, d: float) -> tuple[float, float, float, float]:
    """The same function with b = 1 for powers (a b^n (x + c/b)^n, and c = 0 for x), b > 0 for sin, cos,
    tanh (by their parity), and for sin and cos a > 0 and c in (-pi, pi] (by their period):
    -0.8 sin(-2.5 x + 5.98) becomes 0.8 sin(2.5 x + 0.30)."""
    if name in _POWERS:
        a, b, c = a * b ** _POWERS[name], 1.0, c / b
        return (a, b, 0.0, d + a * c) if name == "x" else (a, b, c, d)
    if name in _ODD and b < 0:
        a, b, c = (-a if _ODD[name] else a), -b, -c
    if name in ("sin", "cos"):
        c += np.pi if a < 0 else 0.0
        a, c = abs(a), c - 2 * np.pi * np.ceil((c - np.pi) / (2 * np.pi))
    return a, b, c, d


def fit_edge(xs: np.ndarray, ys: np.ndarray, library: Sequence[str] = DEFAULT_LIBRARY, tol: float = 1e-6) -> EdgeFit:
    """Fit ys (n,) at xs (n,) by a * f(b x + c) + d for every f in `library` (names of `LIBRARY`).

    For each f, a and d are the closed-form least squares for given (b, c); (b, c) are searched on a coarse
    grid over the input mapped to [-1, 1] and refined by scipy's least squares from the best few grid
    points. The choice rule: among the candidates with R^2 >= 1 - tol, the least complex (`LIBRARY`'s
    complexity), ties going to the earlier in `library`; if none reaches it, the best R^2. Data with no
    variance fit every f with a = 0, so "0" (the constant d) is chosen.
    """
    for name in library:
        if name not in LIBRARY:
            raise unknown("symbolic candidate", name, LIBRARY)
    xs, ys = np.asarray(xs, float).reshape(-1), np.asarray(ys, float).reshape(-1)
    m, r = (xs.max() + xs.min()) / 2, (xs.max() - xs.min()) / 2
    u = (xs - m) / r if r > 0 else xs - m
    sst = ((ys - ys.mean()) ** 2).sum()
    flat = sst <= len(ys) * (1e-13 * np.abs(ys).max()) ** 2
    fits = {}
    for name in library:
        a, b, c, d, ssr = _fit_candidate(LIBRARY[name], u, ys)
        r2 = 1.0 if flat else 1 - ssr / sst if np.isfinite(ssr) else np.nan
        b_x = b / r if r > 0 else b
        a, b_x, c_x, d = _canonical(name, a, b_x, c - b_x * m, d)
        fits[name] = EdgeFit(name, float(a), float(b_x), float(c_x), float(d), float(r2), {})
    r2s = {name: fit.r2 for name, fit in fits.items()}
    good = [n for n in library if r2s[n] >= 1 - tol]
    best_r2 = lambda n: np.nan_to_num(r2s[n], nan=-np.inf)  # noqa: E731
    chosen = min(good, key=lambda n: LIBRARY[n].complexity) if good else max(library, key=best_r2)
    return dataclasses.replace(fits[chosen], r2s=r2s)


@dataclasses.dataclass
class Expression:
    """One output's formula: `expr` (sympy), `text` (str) and `latex`."""

    expr: sympy.Expr

    @property
    def text(self) -> str:
        return str(self.expr)

    @property
    def latex(self) -> str:
        return sympy.latex(self.expr)


@dataclasses.dataclass
class Formula:
    """A KAN's closed form: one `Expression` per output in the coordinates `symbols`, the edge fits
    fits[l][i][j], and a numpy callable: formula(points (N, D)) -> (N, C)."""

    outputs: list[Expression]
    symbols: tuple[sympy.Symbol, ...]
    fits: list[list[list[EdgeFit]]]

    def __post_init__(self):
        self._function = sympy.lambdify(self.symbols, [o.expr for o in self.outputs], "numpy")

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, float)
        values = self._function(*points.T)  # constants come back as scalars
        return np.stack([np.broadcast_to(np.asarray(v, float), points.shape[:1]) for v in values], -1)


def squash_expr(net: KAN, h: sympy.Expr) -> sympy.Expr:
    """What `KAN` applies between layers, as sympy: tanh, c + s tanh (with the fixed map of "rescale",
    read from the KAN's `_centre` and `_half`), or nothing."""
    if net.between == "tanh":
        return sympy.tanh(h)
    if net.between == "rescale":
        return net._centre + net._half * sympy.tanh(h)
    return h


def symbolic_formula(model, x: torch.Tensor, coords: Sequence[str] = ("x", "y"),
                     library: Sequence[str] = DEFAULT_LIBRARY, tol: float = 1e-6, n: int = 200,
                     simplify_ops: int = 60) -> Formula:
    """The closed form of a KAN (or a FieldModel wrapping one) for the data x (N, D): every edge fitted by
    `fit_edge` over the range its input visits (n samples), composed with sympy through the input scaling
    of the FieldModel, the edge sums and the squash between layers. Outputs of at most `simplify_ops`
    operations (`sympy.count_ops`) go through `sympy.simplify`; larger ones, whose simplification time
    grows steeply with the nesting of a deep KAN, are left as composed (0: simplify none).

    The formula is as good as the fits: score it on held-out points with `formula(points)`. A FieldModel's
    output transform (hard conditions) is an arbitrary function, not part of the formula, and is refused.
    """
    if isinstance(model, FieldModel) and model.transform is not None:
        raise KinnError("symbolic_formula cannot include a FieldModel's output transform; pass the model "
                        "without it (the formula is that of the network on scaled inputs)")
    net, _ = kan_of(model)
    D = net.layers[0].in_features
    if len(coords) < D:
        raise KinnError(f"the network takes {D} coordinates; name them all (coords has {len(coords)})")
    symbols = sympy.symbols(tuple(coords[:D]))
    h = list(symbols)
    if isinstance(model, FieldModel):
        lo, hi = model.lo.tolist(), model.hi.tolist()
        h = [2 * (s - a) / (b - a) - 1 for s, a, b in zip(symbols, lo, hi)]
    fits = []
    for l, (layer, samples) in enumerate(zip(net.layers, edge_functions(model, x, n))):
        h = [squash_expr(net, e) for e in h] if l else h
        fits.append([[fit_edge(samples.inputs[:, i], samples.values[:, i, j], library, tol)
                      for j in range(layer.out_features)] for i in range(layer.in_features)])
        h = [sum((fits[l][i][j].expr(h[i]) for i in range(layer.in_features)), sympy.Integer(0))
             for j in range(layer.out_features)]
    exprs = [sympy.simplify(e) if sympy.count_ops(e) <= simplify_ops else e for e in h]
    return Formula([Expression(e) for e in exprs], tuple(symbols), fits)
