"""The classical solvers behind the operator datasets: orders of convergence on exact solutions, GRF sanity.

Manufactured and exact solutions are written out here, independently of the self-check helpers in
kinn.data.generators. About 2 s.
"""
from __future__ import annotations

import numpy as np
import pytest

from kinn.data.generators import (burgers_default_steps, burgers_spectral, darcy_coefficient, darcy_fd, grf_1d_periodic,
                           grf_2d)

PI = np.pi


def darcy_manufactured(n: int):
    """a, f and the exact u on n x n nodes: u = sin(pi x) sin(pi y), a = 1 + sin(2 pi x) cos(pi y) / 2."""
    x = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    a = 1 + 0.5 * np.sin(2 * PI * X) * np.cos(PI * Y)
    a_x, a_y = PI * np.cos(2 * PI * X) * np.cos(PI * Y), -0.5 * PI * np.sin(2 * PI * X) * np.sin(PI * Y)
    u = np.sin(PI * X) * np.sin(PI * Y)
    u_x, u_y = PI * np.cos(PI * X) * np.sin(PI * Y), PI * np.sin(PI * X) * np.cos(PI * Y)
    f = -(a_x * u_x + a_y * u_y) + a * 2 * PI**2 * u  # -div(a grad u), with lap u = -2 pi^2 u
    return a, f, u


def test_darcy_fd_is_second_order():
    ns = np.array([17, 33, 65, 129])
    errors = []
    for n in ns:
        a, f, u = darcy_manufactured(n)
        errors.append(np.abs(darcy_fd(a, f) - u).max())
    slope = np.polyfit(np.log(1.0 / (ns - 1)), np.log(errors), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.15), (slope, errors)
    assert errors[-1] < 1e-4


def test_darcy_fd_batch_matches_single_solves():
    a, f, _ = darcy_manufactured(17)
    batch = np.stack([a, 2 * a, a**2])
    u = darcy_fd(batch, np.stack([f, f, f]))
    assert u.shape == batch.shape
    for k in range(3):
        np.testing.assert_allclose(u[k], darcy_fd(batch[k], f), rtol=0, atol=1e-14)
    np.testing.assert_allclose(u[1], u[0] / 2, rtol=1e-12, atol=1e-15)  # linear in 1/a


def test_darcy_fd_piecewise_constant_maximum_principle():
    rng = np.random.default_rng(0)
    a = darcy_coefficient(grf_2d(33, 3, rng))
    u = darcy_fd(a)  # f = 1
    assert u.shape == a.shape and np.all(np.isfinite(u))
    assert np.all(u[:, 0, :] == 0) and np.all(u[:, -1, :] == 0) and np.all(u[:, :, 0] == 0) and np.all(u[:, :, -1] == 0)
    assert np.all(u[:, 1:-1, 1:-1] > 0)
    # the compliance sum(f u) = f^T A(a)^-1 f decreases as a grows (A(a) grows in the PSD order), so it lies
    # between those of the constant coefficients 12 and 3 (u itself need not be pointwise between them)
    u12, u3 = darcy_fd(np.full((33, 33), 12.0)), darcy_fd(np.full((33, 33), 3.0))
    np.testing.assert_allclose(u12, u3 / 4, rtol=1e-12, atol=1e-17)
    assert np.all(u.sum(axis=(1, 2)) < u3.sum()) and np.all(u.sum(axis=(1, 2)) > u12.sum())


@pytest.mark.parametrize("a, f, match", [
    (np.ones((5, 6)), 1.0, "shape"),
    (np.ones((2, 2)), 1.0, "3 x 3"),
    (np.ones((4, 5, 5, 1)), 1.0, "shape"),
    (np.ones((5, 5)), np.ones((4, 4)), "f of shape"),
    (-np.ones((5, 5)), 1.0, "positive"),
])
def test_darcy_fd_rejects_bad_input(a, f, match):
    with pytest.raises(ValueError, match=match):
        darcy_fd(a, f)


def burgers_exact(x, t, nu, eps):
    """Cole-Hopf: phi = 1 + eps exp(-4 pi^2 nu t) cos(2 pi x) solves phi_t = nu phi_xx, u = -2 nu phi_x / phi."""
    e = eps * np.exp(-4 * PI**2 * nu * t)
    return 4 * PI * nu * e * np.sin(2 * PI * x) / (1 + e * np.cos(2 * PI * x))


def test_burgers_exact_solution_solves_burgers():
    """The test's own exact solution: its central-difference residual vanishes at the second-order rate."""
    nu, eps = 0.1, 0.9
    x, t = np.linspace(0, 1, 41)[:, None], np.linspace(0.05, 0.5, 5)[None, :]

    def residual(h):
        def u(dx=0.0, dt=0.0):
            return burgers_exact(x + dx, t + dt, nu, eps)
        u_t, u_x = (u(dt=h) - u(dt=-h)) / (2 * h), (u(dx=h) - u(dx=-h)) / (2 * h)
        u_xx = (u(dx=h) - 2 * u() + u(dx=-h)) / h**2
        return np.abs(u_t + u() * u_x - nu * u_xx).max(), np.abs(u_t).max()

    (r1, scale), (r2, _) = residual(1e-3), residual(1e-4)
    assert r2 < 1e-5 * scale and r1 / r2 > 50, (r1, r2, scale)  # measured: 3.0e-3, 3.0e-5, |u_t| 14


def test_burgers_spectral_accuracy():
    nu, eps, t = 0.1, 0.9, 0.5
    errors = {}
    for n in (16, 32, 64):
        x = np.arange(n) / n
        errors[n] = np.abs(burgers_spectral(burgers_exact(x, 0.0, nu, eps), nu, t, 1000)
                           - burgers_exact(x, t, nu, eps)).max()
    # measured: 5.1e-5, 1.8e-7, 4.7e-12; a second-order method would gain a factor 4 per doubling
    assert errors[64] < 1e-10, errors
    assert errors[16] / errors[32] > 100 and errors[32] / errors[64] > 1e4, errors


def test_burgers_etdrk4_is_fourth_order_in_time():
    nu, eps, t, n = 0.1, 0.5, 0.5, 32  # spatial error ~1e-14 here, so the time error shows
    x = np.arange(n) / n
    steps = np.array([25, 50, 100])
    errors = [np.abs(burgers_spectral(burgers_exact(x, 0.0, nu, eps), nu, t, s) - burgers_exact(x, t, nu, eps)).max()
              for s in steps]
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope == pytest.approx(4.0, abs=0.3), (slope, errors)


def test_burgers_spectral_batch_and_default_steps():
    rng = np.random.default_rng(0)
    u0 = grf_1d_periodic(128, 4, rng)
    u = burgers_spectral(u0, 0.1, 0.2)
    assert u.shape == u0.shape and np.all(np.isfinite(u))
    np.testing.assert_allclose(u[2], burgers_spectral(u0[2], 0.1, 0.2, burgers_default_steps(u0, 0.1, 0.2)),
                               rtol=0, atol=1e-13)
    assert np.abs(u.mean(axis=1)).max() < 1e-12  # the mean is conserved (zero here)
    assert np.abs(u).max() <= np.abs(u0).max()  # maximum principle
    with pytest.raises(ValueError, match="u0 must have shape"):
        burgers_spectral(np.zeros((2, 3, 8)), 0.1, 1.0)


def test_grf_2d():
    rng = np.random.default_rng(1)
    g = grf_2d(33, 400, rng)
    assert g.shape == (400, 33, 33) and g.dtype == np.float64
    assert abs(g.mean()) < 0.05 * g.std()
    np.testing.assert_array_equal(grf_2d(17, 3, np.random.default_rng(5)), grf_2d(17, 3, np.random.default_rng(5)))
    assert not np.array_equal(grf_2d(17, 3, np.random.default_rng(5)), grf_2d(17, 3, np.random.default_rng(6)))
    a = darcy_coefficient(g)
    assert set(np.unique(a)) == {3.0, 12.0}
    assert 0.3 < (a == 12).mean() < 0.7


def test_grf_2d_variance_is_the_karhunen_loeve_series():
    """Var field(x, y) = sum_k coef_k^2 phi_k(x, y)^2 with orthonormal Neumann modes phi_k, at every node
    (checks the DCT-I weights, the end nodes included)."""
    n, count = 9, 40000
    g = grf_2d(n, count, np.random.default_rng(2), alpha=2.0, tau=3.0)
    k, x = np.arange(n), np.linspace(0, 1, n)
    coef2 = 3.0**2 * (PI**2 * (k[:, None] ** 2 + k[None, :] ** 2) + 9.0) ** -2.0
    coef2[0, 0] = 0
    phi2 = np.where(k > 0, 2.0, 1.0)[None, :] * np.cos(PI * np.outer(x, k)) ** 2  # (node, mode)
    expected = phi2 @ coef2 @ phi2.T
    np.testing.assert_allclose(g.var(axis=0), expected, rtol=0.05)


def test_grf_1d_periodic():
    rng = np.random.default_rng(3)
    u = grf_1d_periodic(64, 5000, rng)
    assert u.shape == (5000, 64) and np.isrealobj(u)
    assert np.abs(u.mean(axis=1)).max() < 1e-12  # zero mean mode, every sample
    k = np.arange(1, 32)  # modes below the Nyquist mode; sqrt 2 cos and sqrt 2 sin add 2 std^2 each
    expected_var = 2 * (625.0 * (4 * PI**2 * k**2 + 25.0) ** -2.0).sum()
    np.testing.assert_allclose(u.var(axis=0), expected_var, rtol=0.1)
    np.testing.assert_array_equal(grf_1d_periodic(16, 2, np.random.default_rng(4)),
                                  grf_1d_periodic(16, 2, np.random.default_rng(4)))
