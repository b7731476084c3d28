"""A spectral reference solution of the Allen–Cahn equation of Raissi et al. (2019), for tests.

    u_t = 0.001 u_xx + 5 (u - u^3),  x in [-1, 1],  t in [0, 1],
    u(x, 0) = x^2 cos(pi x),  u(-1, t) = u(1, t) = -1.

Chebyshev collocation in x (the n + 1 Gauss–Lobatto points, the boundary rows fixed at -1), a stiff
integrator in t (scipy's BDF or Radau with the analytic Jacobian), barycentric interpolation to a uniform
output grid. The interfaces are ~0.02 wide, so the Chebyshev points resolve them from n ≈ 384 on: the
solutions at n = 128, 256, 384, 512, 768 differ by 2e-2, 1e-4, 5e-7, 3e-9 (max over a 401 x 11 grid).
"""
from __future__ import annotations

import contextlib

import numpy as np
from scipy.integrate import solve_ivp

EPS, RATE, BOUNDARY = 0.001, 5.0, -1.0


def cheb(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev–Gauss–Lobatto points x_j = cos(pi j / n), j = 0..n (decreasing from 1 to -1), and the
    (n + 1, n + 1) differentiation matrix D (Trefethen, Spectral Methods in MATLAB, cheb.m)."""
    x = np.cos(np.pi * np.arange(n + 1) / n)
    c = np.r_[2.0, np.ones(n - 1), 2.0] * (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    d = np.outer(c, 1.0 / c) / (dx + np.eye(n + 1))
    d -= np.diag(d.sum(axis=1))  # negative-sum trick: each row differentiates constants to 0
    return d, x


def barycentric_matrix(n: int, x: np.ndarray) -> np.ndarray:
    """The (len(x), n + 1) matrix that maps values at the points of `cheb(n)` to the interpolating
    polynomial's values at x (barycentric formula of the second kind; exact where x is a node)."""
    nodes = np.cos(np.pi * np.arange(n + 1) / n)
    w = (-1.0) ** np.arange(n + 1)
    w[[0, -1]] *= 0.5
    diff = np.asarray(x, dtype=np.float64)[:, None] - nodes[None, :]
    hit = diff == 0
    c = w / np.where(hit, 1.0, diff)
    e = c / c.sum(axis=1, keepdims=True)
    rows = hit.any(axis=1)
    e[rows] = hit[rows].astype(np.float64)
    return e


def solve_allen_cahn(n: int = 512, nx: int = 201, nt: int = 101, *, method: str = "BDF",
                     rtol: float = 1e-10, atol: float = 1e-12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve the Allen–Cahn problem above with Chebyshev degree n (n + 1 points).

    Returns (x, t, u): x = linspace(-1, 1, nx), t = linspace(0, 1, nt) and u (nx, nt), u[i, j] = u(x_i, t_j).
    `method` is solve_ivp's "BDF" or "Radau" (both get the analytic Jacobian). Max error ≈ 5e-7 at n = 384,
    ≈ 3e-9 at n = 512 (the default), against n = 768; the time error at the default tolerances is ~1e-9.
    """
    d, xc = cheb(n)
    d2 = d @ d
    inner = slice(1, n)
    lap = EPS * d2[inner, inner]
    lift = EPS * d2[inner][:, [0, n]] @ np.array([BOUNDARY, BOUNDARY])

    def rhs(_, v):
        return lap @ v + lift + RATE * (v - v**3)

    def jac(_, v):
        return lap + np.diag(RATE * (1.0 - 3.0 * v**2))

    t = np.linspace(0.0, 1.0, nt)
    v0 = xc[inner] ** 2 * np.cos(np.pi * xc[inner])
    with _one_blas_thread():
        sol = solve_ivp(rhs, (0.0, 1.0), v0, method=method, jac=jac, rtol=rtol, atol=atol, t_eval=t)
    if not sol.success:
        raise RuntimeError(f"Allen–Cahn solve at n = {n} failed: {sol.message}")
    edge = np.full((1, nt), BOUNDARY)
    nodal = np.vstack([edge, sol.y, edge])  # (n + 1, nt) at the Chebyshev points
    x = np.linspace(-1.0, 1.0, nx)
    return x, t, barycentric_matrix(n, x) @ nodal


def _one_blas_thread():
    """BLAS on one thread where threadpoolctl is installed: matrices of a few hundred rows gain nothing from
    threads, and on busy shared cores threaded BLAS made the n = 512 solve 15x slower (6.3 s against 0.4 s)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
