"""The Chebyshev basis T_0 .. T_n of tanh(x), with x-derivatives, by the three-term recurrence.

Squashing by tanh maps the whole real line into (-1, 1), where the polynomials are bounded, so a
Chebyshev KAN layer needs no grid range and never sees an input off its domain.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class ChebyshevBasis(NamedTuple):
    """T_m(tanh x) for m = 0 .. n, shape (..., n + 1), and its first and second x-derivatives (or None)."""

    values: torch.Tensor
    d1: torch.Tensor | None
    d2: torch.Tensor | None


def chebyshev(x: torch.Tensor, degree: int, derivatives: int = 0) -> ChebyshevBasis:
    """T_0 .. T_degree of t = tanh(x), x (...,) -> (..., degree + 1), and up to two x-derivatives.

    Built from plain tensor operations, so every output is differentiable in x by autograd as well.
    """
    if derivatives not in (0, 1, 2):
        raise ValueError(f"derivatives must be 0, 1 or 2, not {derivatives}")
    t = torch.tanh(x)
    n = degree + 1
    # T_{m+1} = 2t T_m - T_{m-1}, and the same recurrence differentiated once and twice in t.
    T = _recur(t, [torch.ones_like(t), t], n)
    if derivatives == 0:
        return ChebyshevBasis(T, None, None)
    dT = _recur(t, [torch.zeros_like(t), torch.ones_like(t)], n, source=2 * T)
    dt = (1 - t * t).unsqueeze(-1)  # dt/dx
    d1 = dT * dt
    if derivatives == 1:
        return ChebyshevBasis(T, d1, None)
    ddT = _recur(t, [torch.zeros_like(t)] * 2, n, source=4 * dT)
    # d2/dx2 T(t) = T''(t) t'^2 + T'(t) t'', with t'' = -2 t t'
    return ChebyshevBasis(T, d1, ddT * dt**2 - 2 * t.unsqueeze(-1) * d1)


def _recur(t, first, n, source=None):
    """Stack P_0 .. P_{n-1}, (..., n), of P_{m+1} = 2t P_m - P_{m-1} + source_m from P_0, P_1 = `first`."""
    P = first[:n]
    for m in range(1, n - 1):
        P.append(2 * t * P[m] - P[m - 1] + (0.0 if source is None else source[..., m]))
    return torch.stack(P, -1)
