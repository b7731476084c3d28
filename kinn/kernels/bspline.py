"""B-spline bases of order k: the Cox-de Boor reference and the closed form on a uniform grid.

A grid of G intervals on [lo, hi] is extended by k knots each side (G + 2k + 1 knots), giving G + k bases;
basis m is supported on [t_m, t_{m+k+1}]. Both evaluations share the same semantics everywhere on the real
line: intervals are half-open [t_i, t_{i+1}), the bases sum to one on [lo, hi], they taper off on the k
extension intervals each side, and they are exactly zero beyond the extended knots. There is no clamping
and no extrapolation: whatever lies outside the knot span is the caller's to carry (the KAN layer's base
branch does).

`cox_de_boor` handles any strictly increasing knots (a grid fitted to data quantiles). `uniform_bspline` is
the fast path: on a uniform grid the k + 1 non-zero bases are fixed polynomials of the local coordinate,
so it evaluates only those, and their derivatives in closed form, at any depth of nested autograd.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import NamedTuple

import torch

_REFERENCE = False


def use_reference(on: bool = True) -> bool:
    """Force (or release) the Cox-de Boor reference wherever the fast closed form would run.

    A process-wide switch for checking and benchmarking the fast path; returns the previous setting so
    that a caller can restore it.
    """
    global _REFERENCE
    previous, _REFERENCE = _REFERENCE, bool(on)
    return previous


def reference_enabled() -> bool:
    """Whether `use_reference(True)` is in force."""
    return _REFERENCE


def uniform_knots(grid: int, order: int, lo: float, hi: float, dtype=None, device=None) -> torch.Tensor:
    """The G + 2k + 1 knots of G uniform intervals on [lo, hi], extended by k knots each side."""
    h = (hi - lo) / grid
    steps = torch.arange(-order, grid + order + 1, dtype=torch.float64, device=device)
    return (lo + h * steps).to(dtype or torch.get_default_dtype())


def cox_de_boor(x: torch.Tensor, knots: torch.Tensor, order: int, derivative: int = 0) -> torch.Tensor:
    """All bases by the Cox-de Boor recursion: x (...,) -> (..., K - 1 - order) for K knots.

    `knots` is strictly increasing along its last axis, shape (K,) or (F, K) with F = x.shape[-1] (one
    knot vector per input feature). Differentiable in x through plain tensor operations: this is the
    reference the closed form is checked against.

    `derivative` n > 0 gives the n-th x-derivative of the bases instead, by the derivative recursion
    B'_{m,p} = p (B_{m,p-1} / (t_{m+p} - t_m) - B_{m+1,p-1} / (t_{m+p+1} - t_{m+1})) applied to the bases of
    order k - n: one-sided (from the right) at knots, like the half-open intervals; zero for n > k.
    """
    x = x.unsqueeze(-1)  # (..., 1) against knot intervals (..., K - 1)
    t = knots
    bases = ((x >= t[..., :-1]) & (x < t[..., 1:])).to(x.dtype)
    if derivative > order:
        return bases[..., order:].zero_()
    for p in range(1, order + 1):
        span_left = t[..., p:-1] - t[..., : -(p + 1)]  # t_{m+p} - t_m
        span_right = t[..., p + 1 :] - t[..., 1:-p]  # t_{m+p+1} - t_{m+1}
        if p <= order - derivative:
            left, right = (x - t[..., : -(p + 1)]) / span_left, (t[..., p + 1 :] - x) / span_right
            bases = left * bases[..., :-1] + right * bases[..., 1:]
        else:
            bases = p * (bases[..., :-1] / span_left - bases[..., 1:] / span_right)
    return bases


class CompactBasis(NamedTuple):
    """The k + 1 bases that can be non-zero at each point: basis `index + r` has value `values[..., r]`.

    Entries whose basis number falls outside 0 .. G + k - 1 are zero. `d1` and `d2` are the first and
    second derivatives with respect to x, or None where not asked for.
    """

    index: torch.Tensor  # (...,) int64, may lie outside 0 .. G + k - 1
    values: torch.Tensor  # (..., k + 1)
    d1: torch.Tensor | None
    d2: torch.Tensor | None


def uniform_bspline(
    x: torch.Tensor, grid: int, order: int, lo: float, hi: float, derivatives: int = 0
) -> CompactBasis:
    """The non-zero bases of the uniform grid `uniform_knots(grid, order, lo, hi)` at x, in closed form.

    Equal to `cox_de_boor` on the same knots at every x, on knots and outside [lo, hi] too, for order >= 1
    (the bases are continuous there, so a point that rounds into the neighbouring interval agrees).
    `derivatives` (0, 1 or 2) says how many x-derivatives to return besides the values. Every returned
    tensor stays differentiable in x to any depth, each derivative order again in closed form.
    """
    if derivatives not in (0, 1, 2):
        raise ValueError(f"derivatives must be 0, 1 or 2, not {derivatives}")
    spec = _Spec(grid, order, lo, hi)
    local = _locate(x.detach(), spec)
    d = [_UniformBasis.apply(x, n, spec, local) for n in range(derivatives + 1)]
    return CompactBasis(local.index, *d, *[None] * (2 - derivatives))


def uniform_bspline_polynomials(
    grid: int, order: int, lo: float, hi: float, derivatives: int, dtype=None, device=None
) -> torch.Tensor:
    """The active bases and their x-derivatives as polynomials of the local coordinate u in [0, 1).

    Returns (derivatives + 1, k + 1, k + 1): entry [n, p, r] is the coefficient of u^p in the n-th
    x-derivative of basis j + r on interval j (du/dx = G / (hi - lo) folded in; zero for p > k - n). What a
    fused kernel evaluates by Horner's rule, with u = (x - lo) G / (hi - lo) - j as in `uniform_bspline`.
    """
    table = torch.zeros(derivatives + 1, order + 1, order + 1, dtype=torch.float64)
    for n in range(min(derivatives, order) + 1):
        coef = _coefficients(order, n, torch.float64, torch.device("cpu"))  # (k - n + 1, k + 1)
        table[n, : len(coef)] = coef * (grid / (hi - lo)) ** n
    return table.to(dtype=dtype or torch.get_default_dtype(), device=device)


def to_dense(index: torch.Tensor, compact: torch.Tensor, num_bases: int) -> torch.Tensor:
    """Scatter compact bases (..., k + 1), the first being basis `index`, into the dense (..., num_bases)."""
    slots = index.unsqueeze(-1) + torch.arange(compact.shape[-1], device=compact.device)
    # Off-grid slots carry zeros (see `_evaluate`), so clamping them onto a valid slot adds nothing.
    slots = slots.clamp(0, num_bases - 1)
    return compact.new_zeros(*compact.shape[:-1], num_bases).scatter_add(-1, slots, compact)


class _Spec(NamedTuple):
    grid: int
    order: int
    lo: float
    hi: float


class _Local(NamedTuple):
    index: torch.Tensor  # (...,) interval j = the first active basis
    u: torch.Tensor  # (..., 1) local coordinate in [0, 1)
    on_grid: torch.Tensor  # (..., k + 1) whether basis j + r exists
    # Each derivative order once per point set: a Laplacian's passes ask for the same orders again and again.
    derivatives: dict[int, torch.Tensor]


def _locate(x: torch.Tensor, spec: _Spec) -> _Local:
    """Where each x falls: j = floor((x - lo) / h), u = (x - lo) / h - j, and which of its bases exist."""
    k = spec.order
    # Clamping keeps j in int64 range; every basis is zero where it bites, so u there does not matter.
    s = ((x - spec.lo) * (spec.grid / (spec.hi - spec.lo))).clamp(-k - 1, spec.grid + k)
    j = torch.floor(s)
    index = j.long()
    slots = index.unsqueeze(-1) + torch.arange(k + 1, device=x.device)
    return _Local(index, (s - j).unsqueeze(-1), (slots >= 0) & (slots < spec.grid + k), {})


def _evaluate(local: _Local, n: int, spec: _Spec) -> torch.Tensor:
    """The n-th x-derivative of the k + 1 active bases, (..., k + 1), zero for bases off the grid."""
    if n > spec.order:
        return local.u.new_zeros(local.on_grid.shape)
    if n not in local.derivatives:
        coef = _coefficients(spec.order, n, local.u.dtype, local.u.device)  # (k - n + 1 powers, k + 1 bases)
        coef = coef * (spec.grid / (spec.hi - spec.lo)) ** n  # du/dx = 1/h
        values = coef[-1].expand(local.on_grid.shape)
        for p in range(coef.shape[0] - 2, -1, -1):  # Horner in u
            values = torch.addcmul(coef[p], values, local.u)
        local.derivatives[n] = torch.where(local.on_grid, values, 0.0)
    return local.derivatives[n]


class _UniformBasis(torch.autograd.Function):
    """The n-th derivative of the active bases; its backward is the (n + 1)-th, so nesting never ends."""

    @staticmethod
    def forward(ctx, x, n, spec, local):
        ctx.save_for_backward(x)
        ctx.n, ctx.spec, ctx.local = n, spec, local
        # A copy: autograd makes each output its own node, so one cached tensor cannot be two outputs.
        return _evaluate(local, n, spec).clone()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad * _UniformBasis.apply(x, ctx.n + 1, ctx.spec, ctx.local)).sum(-1), None, None, None


@functools.lru_cache(maxsize=None)
def _coefficients(order: int, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Power-basis coefficients of the n-th derivative of the k + 1 active bases: (k - n + 1, k + 1).

    Column r is basis j + r on interval j, i.e. the cardinal B-spline M_k at u + k - r, where
    M_k(t) = 1/k! sum_i (-1)^i C(k+1, i) (t - i)_+^k. Only terms with i <= k - r are active for u in
    [0, 1); expanding (u + k - r - i)^k binomially gives exact rationals.
    """
    k = order
    power = [[Fraction(0)] * (k + 1) for _ in range(k + 1)]  # power[p][r]: coefficient of u^p
    for r in range(k + 1):
        for i in range(k - r + 1):
            a = k - r - i
            for p in range(k + 1):
                term = (-1) ** i * math.comb(k + 1, i) * math.comb(k, p) * Fraction(a) ** (k - p)
                power[p][r] += term / math.factorial(k)
    # d^n/du^n u^p = p! / (p - n)! u^(p - n)
    derived = [[c * math.perm(p, n) for c in power[p]] for p in range(n, k + 1)]
    return torch.tensor([[float(c) for c in row] for row in derived], dtype=dtype, device=device)
