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
    return ChebyshevBasis(*chebyshev_derivatives(x, degree, derivatives), *[None] * (2 - derivatives))


def chebyshev_derivatives(x: torch.Tensor, degree: int, n: int) -> list[torch.Tensor]:
    """[T(tanh x), d/dx T(tanh x), ..., d^n/dx^n T(tanh x)] for n = 0 .. 3, each (..., degree + 1).

    The third derivative serves kernels with a hand-written backward pass (the x-gradient of a second
    derivative). Plain tensor operations, differentiable in x by autograd.
    """
    if n not in (0, 1, 2, 3):
        raise ValueError(f"n must be 0, 1, 2 or 3, not {n}")
    t = torch.tanh(x)
    size = degree + 1
    # T_{m+1} = 2t T_m - T_{m-1}, differentiated q times in t:
    # T^(q)_{m+1} = 2t T^(q)_m - T^(q)_{m-1} + 2q T^(q-1)_m.
    T = [_recur(t, [torch.ones_like(t), t], size)]
    for q in range(1, n + 1):
        first = [torch.zeros_like(t), torch.ones_like(t) if q == 1 else torch.zeros_like(t)]
        T.append(_recur(t, first, size, source=2 * q * T[q - 1]))
    # The chain rule in x, with dt/dx = 1 - t^2 =: t1, t2 = -2 t t1 and t3 = -2 t1^2 + 4 t^2 t1.
    t = t.unsqueeze(-1)  # (..., 1)
    t1 = 1 - t * t
    t2 = -2 * t * t1
    d = [T[0]]
    if n >= 1:
        d.append(T[1] * t1)
    if n >= 2:
        d.append(T[2] * t1**2 + T[1] * t2)
    if n >= 3:
        d.append(T[3] * t1**3 + 3 * T[2] * t1 * t2 + T[1] * (-2 * t1**2 + 4 * t * t * t1))
    return d


def _recur(t, first, n, source=None):
    """Stack P_0 .. P_{n-1}, (..., n), of P_{m+1} = 2t P_m - P_{m-1} + source_m from P_0, P_1 = `first`."""
    P = first[:n]
    for m in range(1, n - 1):
        P.append(2 * t * P[m] - P[m - 1] + (0.0 if source is None else source[..., m]))
    return torch.stack(P, -1)
