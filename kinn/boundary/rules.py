"""One-dimensional quadrature rules on [0, 1]: Gauss–Legendre and Gauss with the weight ln(1/s).

    s, w = gauss_legendre(10)   # Σ w f(s) ≈ ∫₀¹ f(s) ds, exact for degree ≤ 19
    s, w = gauss_log(10)        # Σ w f(s) ≈ ∫₀¹ f(s) ln(1/s) ds, exact for degree ≤ 19

The log rule carries the singular part of the single-layer kernel (ln ρ) on the panel that holds the
source point. Its nodes are computed in float64 to full precision: an 8-digit table caps a boundary
integral residual near 1e-9 (BINN.md §2).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import eigh_tridiagonal

from kinn.errors import KinnError


def _check(n: int) -> int:
    if int(n) != n or n < 1 or n > 100:
        raise KinnError(f"a quadrature rule needs 1 to 100 points, got {n!r}")
    return int(n)


@lru_cache(maxsize=None)
def _legendre(n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    s, w = (x + 1.0) / 2.0, w / 2.0
    s.flags.writeable = w.flags.writeable = False  # cached: callers must not change them
    return s, w


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes s (n,) in (0, 1), increasing, and weights w (n,) with Σ w f(s) = ∫₀¹ f for degree ≤ 2n − 1."""
    return _legendre(_check(n))


def _shifted_legendre_log_moments(count: int) -> np.ndarray:
    """m_k = ∫₀¹ π_k(s) ln(1/s) ds for the monic shifted Legendre polynomials π_k, k < count.

    With P̃_k(s) = P_k(2s − 1) = π_k (2k)!/(k!)², ∫₀¹ P̃_k ln(1/s) ds = (−1)^k / (k(k + 1)) for k ≥ 1
    (and 1 for k = 0): closed forms, so no cancellation enters the moments.
    """
    m = np.empty(count)
    m[0] = 1.0
    scale = 1.0  # (k!)² / (2k)!
    for k in range(1, count):
        scale *= k / (2.0 * (2 * k - 1))
        m[k] = scale * (-1.0) ** k / (k * (k + 1.0))
    return m


def _modified_chebyshev(moments: np.ndarray, a: np.ndarray, b: np.ndarray, n: int):
    """Recurrence coefficients (α, β) (n,) of the measure whose modified moments against the monic
    polynomials π_{k+1} = (s − a_k) π_k − b_k π_{k−1} are `moments` (2n,). Gautschi's modified Chebyshev
    algorithm; well conditioned here because the shifted Legendre polynomials suit [0, 1]."""
    alpha, beta = np.empty(n), np.empty(n)
    previous = np.zeros(2 * n)  # σ_{k−2, l}
    current = moments.copy()    # σ_{k−1, l}
    alpha[0] = a[0] + moments[1] / moments[0]
    beta[0] = moments[0]
    for k in range(1, n):
        nxt = np.zeros(2 * n)
        for l in range(k, 2 * n - k):
            nxt[l] = (current[l + 1] - (alpha[k - 1] - a[l]) * current[l]
                      - beta[k - 1] * previous[l] + b[l] * current[l - 1])
        alpha[k] = a[k] + nxt[k + 1] / nxt[k] - current[k] / current[k - 1]
        beta[k] = nxt[k] / current[k - 1]
        previous, current = current, nxt
    return alpha, beta


@lru_cache(maxsize=None)
def _log(n: int):
    k = np.arange(2 * n, dtype=float)
    a = np.full(2 * n, 0.5)
    b = k**2 / (4.0 * (4.0 * k**2 - 1.0))  # monic shifted Legendre recurrence on [0, 1]
    alpha, beta = _modified_chebyshev(_shifted_legendre_log_moments(2 * n), a, b, n)
    # Golub–Welsch: nodes are the Jacobi matrix's eigenvalues, weights β₀ × (first eigenvector entry)².
    s, vectors = eigh_tridiagonal(alpha, np.sqrt(beta[1:]))
    w = beta[0] * vectors[0] ** 2
    s.flags.writeable = w.flags.writeable = False
    return s, w


def gauss_log(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes s (n,) in (0, 1), increasing, and weights w (n,) with Σ w f(s) = ∫₀¹ f(s) ln(1/s) ds for
    polynomials of degree ≤ 2n − 1 (∫₀¹ s^k ln(1/s) ds = 1/(k + 1)²), built by Golub–Welsch from the
    weight's modified moments in float64."""
    return _log(_check(n))


def lagrange(nodes: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(len(t), n) values φ_k(t) of the Lagrange basis on `nodes` (n,): φ_k(nodes_j) = δ_kj, Σ_k φ_k = 1.

    Product form (no division by t − nodes_j), exact at the nodes themselves; fine for n ≲ 20."""
    t = np.asarray(t, dtype=float).reshape(-1, 1, 1)
    diff = nodes[:, None] - nodes[None, :]                      # (n, n): s_k − s_j
    np.fill_diagonal(diff, 1.0)
    num = t - nodes[None, None, :]                               # (T, 1, n): t − s_j
    num = np.broadcast_to(num, (t.shape[0], len(nodes), len(nodes))).copy()
    idx = np.arange(len(nodes))
    num[:, idx, idx] = 1.0                                       # skip j = k
    return np.prod(num / diff[None], axis=2)
