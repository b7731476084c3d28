"""Classical solvers the operator datasets are made with (numpy / scipy, float64).

- `grf_2d`, `darcy_coefficient`, `darcy_fd`: the Darcy problem of the FNO paper (Li et al. 2021),
  -div(a grad u) = f on [0, 1]^2, u = 0 on the boundary, a = 12 / 3 thresholded from a Gaussian random field,
  solved by a conservative 5-point finite-volume scheme with a sparse direct solver (second order).
- `grf_1d_periodic`, `burgers_spectral`: periodic Burgers u_t + (u^2/2)_x = nu u_xx on [0, 1) from random
  initial data, Fourier pseudo-spectral in space (2/3 dealiasing, spectrally accurate), ETDRK4 in time.
- `make_darcy_dataset`, `make_burgers_dataset`: generate and write the HDF5 datasets (layout: kinn.data.datasets,
  data/README.md).

Grids are node grids: in 2-D `u[i, j]` is u at (x_i, y_j) = (i, j) / (n - 1) ("ij" indexing); the periodic
1-D grid is x_j = j / n. Bad shapes raise ValueError naming what was wrong.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.sparse
import scipy.sparse.linalg

A_HIGH, A_LOW = 12.0, 3.0  # the FNO paper's Darcy coefficient values


# ----------------------------------------------------------------------------------------------------
# Darcy flow
# ----------------------------------------------------------------------------------------------------
def grf_2d(n: int, count: int, rng: np.random.Generator, alpha: float = 2.0, tau: float = 3.0) -> np.ndarray:
    """`count` samples (count, n, n) of a Gaussian random field at the nodes (i, j) / (n - 1) of [0, 1]^2.

    The field is the Karhunen-Loeve expansion of FNO's GRF.m: with orthonormal Neumann eigenfunctions
    phi_k = c_k1 c_k2 cos(pi k1 x) cos(pi k2 y) (c_0 = 1, c_k = sqrt 2), 0 <= k1, k2 < n,

        field = sum_k coef_k xi_k phi_k,   coef_k = tau^(alpha-1) (pi^2 (k1^2 + k2^2) + tau^2)^(-alpha/2),

    xi_k standard normal and the mean mode k = (0, 0) set to zero, i.e. covariance
    tau^(2 alpha - 2) (-Laplacian + tau^2)^(-alpha) with Neumann conditions. GRF.m sums the series with a
    DCT-II (idct2), which puts the values at the cell centres (i + 1/2) / n; here a DCT-I sums the same
    series exactly at the nodes i / (n - 1), so the samples are the stated field on the stated grid.
    """
    if n < 2 or count < 0:
        raise ValueError(f"grf_2d needs n >= 2 and count >= 0, got n={n}, count={count}")
    k = np.arange(n)
    coef = tau ** (alpha - 1) * (np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (-alpha / 2)
    coef[0, 0] = 0.0
    # idct type 1 with norm="forward" is the plain sum X_0 + (-1)^i X_{n-1} + 2 sum_{0<k<n-1} X_k cos(pi k i/(n-1)),
    # so X_k = c_k coef_k xi_k / (that sum's weight of mode k).
    w = np.full(n, 1 / np.sqrt(2))
    w[0], w[-1] = 1.0, np.sqrt(2)
    xi = rng.standard_normal((count, n, n))
    return scipy.fft.idctn(xi * (coef * w[:, None] * w[None, :]), type=1, axes=(-2, -1), norm="forward")


def darcy_coefficient(field) -> np.ndarray:
    """The FNO paper's thresholding: a = 12 where field >= 0, else 3."""
    return np.where(np.asarray(field) >= 0, A_HIGH, A_LOW)


def darcy_fd(a, f=1.0) -> np.ndarray:
    """Solve -div(a grad u) = f on [0, 1]^2, u = 0 on the boundary, on the node grid of `a`.

    a: (n, n) or (count, n, n), the coefficient at the nodes (i, j) / (n - 1), positive. f: a scalar or an
    array broadcastable to a's shape (node values). Returns u with a's shape, exactly 0 on boundary nodes.

    Scheme: a conservative 5-point finite-volume stencil on the interior nodes,
        [a_{i+1/2,j} (u_ij - u_{i+1,j}) + a_{i-1/2,j} (u_ij - u_{i-1,j}) + (same in j)] / h^2 = f_ij,
    with the face coefficient the harmonic mean 2 a_L a_R / (a_L + a_R) of the two adjacent nodes. For
    smooth a it equals a at the face to O(h^2), so the scheme is second order; for a jump between two nodes
    it is the exact series conductance of two half-cells (flux continuity), which the arithmetic mean
    overstates (7.5 instead of 4.8 for 12 | 3): on a 12 | 3 field at n = 129 the relative L2 error against
    n = 1025 is 0.39% with it, 0.61% with the arithmetic mean. The matrix is symmetric positive definite;
    each sample is assembled without loops over nodes and solved by a sparse LU (SuperLU, ~35 ms at n = 129).
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"darcy_fd: a must have shape (n, n) or (count, n, n), got {a.shape}")
    n = a.shape[-1]
    if n < 3:
        raise ValueError(f"darcy_fd: a needs at least 3 x 3 nodes, got {a.shape}")
    if not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise ValueError("darcy_fd: a must be finite and positive at every node")
    try:
        f = np.broadcast_to(np.asarray(f, dtype=np.float64), a.shape)
    except ValueError:
        raise ValueError(f"darcy_fd: f of shape {np.shape(f)} does not match a's shape {a.shape}") from None
    batch = a.reshape(-1, n, n)
    rhs = f.reshape(-1, n, n)[:, 1:-1, 1:-1].reshape(len(batch), -1)
    u = np.zeros_like(batch)
    rows, cols = _darcy_pattern(n)
    h2 = (1.0 / (n - 1)) ** 2
    m = (n - 2) ** 2
    for s in range(len(batch)):  # one sparse factorisation per sample
        A = scipy.sparse.csc_matrix((_darcy_values(batch[s]) / h2, (rows, cols)), shape=(m, m))
        u[s, 1:-1, 1:-1] = scipy.sparse.linalg.splu(A, permc_spec="MMD_AT_PLUS_A").solve(rhs[s]).reshape(n - 2, n - 2)
    return u.reshape(a.shape)


def _darcy_pattern(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the interior stencil, in the order `_darcy_values` fills them."""
    idx = np.arange((n - 2) ** 2).reshape(n - 2, n - 2)
    rows = [idx.ravel(), idx[:-1].ravel(), idx[1:].ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel()]
    cols = [idx.ravel(), idx[1:].ravel(), idx[:-1].ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel()]
    return np.concatenate(rows), np.concatenate(cols)


def _darcy_values(a: np.ndarray) -> np.ndarray:
    """Matrix entries (times h^2) for one (n, n) coefficient: diagonal, then -face for the x and y links."""
    ax = 2 * a[:-1] * a[1:] / (a[:-1] + a[1:])          # (n-1, n): face between nodes i and i+1 in x
    ay = 2 * a[:, :-1] * a[:, 1:] / (a[:, :-1] + a[:, 1:])  # (n, n-1)
    diag = ax[1:, 1:-1] + ax[:-1, 1:-1] + ay[1:-1, 1:] + ay[1:-1, :-1]  # (n-2, n-2)
    link_x = -ax[1:-1, 1:-1].ravel()  # between interior nodes i and i+1
    link_y = -ay[1:-1, 1:-1].ravel()
    return np.concatenate([diag.ravel(), link_x, link_x, link_y, link_y])


# ----------------------------------------------------------------------------------------------------
# Periodic Burgers
# ----------------------------------------------------------------------------------------------------
def grf_1d_periodic(n: int, count: int, rng: np.random.Generator, alpha: float = 2.0, tau: float = 5.0,
                    sigma: float = 25.0) -> np.ndarray:
    """`count` samples (count, n) of N(0, sigma^2 (-Laplacian + tau^2)^(-alpha)) at x_j = j / n on [0, 1).

    The defaults are the FNO paper's Burgers initial data, 625 (-Laplacian + 25 I)^(-2). Karhunen-Loeve with
    the orthonormal periodic modes sqrt 2 cos(2 pi k x), sqrt 2 sin(2 pi k x), 1 <= k < n/2, each with
    standard deviation sigma (4 pi^2 k^2 + tau^2)^(-alpha/2) (FNO's GRF1.m); the mean mode is zero, the
    Nyquist mode left out, so the samples are real and of zero mean. Summed by an inverse real FFT.
    """
    if n < 2 or count < 0:
        raise ValueError(f"grf_1d_periodic needs n >= 2 and count >= 0, got n={n}, count={count}")
    k = np.arange(n // 2 + 1)
    std = sigma * (4 * np.pi**2 * k**2 + tau**2) ** (-alpha / 2)
    std[0] = 0.0
    if n % 2 == 0:
        std[-1] = 0.0
    xi = rng.standard_normal((count, 2, k.size))
    # irfft sums (1/n)(c_0 + 2 Re sum c_k e^{2 pi i k j/n}); c_k = n std_k (xi - i eta) / sqrt 2 gives the series.
    c = n * std * (xi[:, 0] - 1j * xi[:, 1]) / np.sqrt(2)
    return np.fft.irfft(c, n, axis=-1)


def burgers_spectral(u0, nu: float, t_final: float, n_steps: int | None = None) -> np.ndarray:
    """u(., t_final) of the periodic Burgers equation u_t + (u^2/2)_x = nu u_xx on [0, 1).

    u0: (n,) or (count, n) at x_j = j / n; the result has u0's shape. Fourier pseudo-spectral in space with
    the 2/3 rule (modes above n/3 are removed from u before the product and from the product; they only
    decay), ETDRK4 in time (Kassam & Trefethen 2005) with the phi-functions evaluated by a contour integral,
    all samples at once. `n_steps` defaults to `burgers_default_steps` (an advective step limit).
    """
    u0 = np.asarray(u0, dtype=np.float64)
    if u0.ndim not in (1, 2) or u0.shape[-1] < 4:
        raise ValueError(f"burgers_spectral: u0 must have shape (n,) or (count, n) with n >= 4, got {u0.shape}")
    if not np.all(np.isfinite(u0)):
        raise ValueError("burgers_spectral: u0 has non-finite values")
    if nu < 0 or t_final < 0:
        raise ValueError(f"burgers_spectral: need nu >= 0 and t_final >= 0, got nu={nu}, t_final={t_final}")
    n = u0.shape[-1]
    if n_steps is None:
        n_steps = burgers_default_steps(u0, nu, t_final)
    if n_steps < 1:
        raise ValueError(f"burgers_spectral: n_steps must be >= 1, got {n_steps}")
    if t_final == 0:
        return u0.copy()
    h = t_final / n_steps
    k = 2 * np.pi * np.arange(n // 2 + 1)          # wavenumbers of [0, 1)-periodic modes
    keep = np.arange(n // 2 + 1) < n / 3           # 2/3 rule
    g = np.where(keep, -0.5j * k, 0.0)             # (u^2/2)_x in Fourier space, dealiased
    coefficients = etdrk4_coefficients(-nu * k**2, h)

    def nonlin(v):
        return g * np.fft.rfft(np.fft.irfft(v * keep, n, axis=-1) ** 2, axis=-1)

    v = np.fft.rfft(u0, axis=-1)
    for _ in range(n_steps):
        v = etdrk4_step(v, nonlin, coefficients)
    return np.fft.irfft(v, n, axis=-1)


def burgers_default_steps(u0, nu: float, t_final: float, cfl: float = 0.5, h_max: float = 2e-3) -> int:
    """A safe ETDRK4 step count for `burgers_spectral`: the stability limit below, and h <= h_max.

    Advection needs h U k <= cfl (U = max|u0|, which viscous Burgers never exceeds) only on modes that
    the exact linear factor does not damp, |k| <= min(k_max, sqrt(1 / (nu h))), k_max = 2 pi n / 3 after
    dealiasing: h <= max(cfl / (U k_max), cfl^2 nu / U^2). That alone allows ~60 steps for the FNO data
    (nu = 0.1, n = 1024, t = 1; error ~1e-7); h_max = 2e-3 (500 steps) brings the error to ~3e-10, below
    float32 rounding of the outputs.
    """
    u0 = np.asarray(u0)
    U = float(np.abs(u0).max(initial=0.0))
    k_max = 2 * np.pi * u0.shape[-1] / 3
    h = min(h_max, max(cfl / (U * k_max), cfl**2 * nu / U**2)) if U > 0 else h_max
    return max(1, int(np.ceil(t_final / h - 1e-9)))


def etdrk4_step(v, nonlin, coefficients):
    """One ETDRK4 step of v' = L v + N(v) in a diagonal (Fourier) basis, with `etdrk4_coefficients`."""
    E, E2, Q, f1, f2, f3 = coefficients
    Nv = nonlin(v)
    a = E2 * v + Q * Nv
    Na = nonlin(a)
    b = E2 * v + Q * Na
    Nb = nonlin(b)
    c = E2 * a + Q * (2 * Nb - Nv)
    return E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * nonlin(c)


def etdrk4_coefficients(L: np.ndarray, h: float, m: int = 32):
    """ETDRK4 coefficients for a real diagonal linear part L and step h (Kassam & Trefethen 2005).

    The phi-functions are means over m points of a half circle of radius 1 around each h L (real L: the
    real part of the upper half-circle mean), which avoids the cancellation of the closed forms at small h L.
    """
    r = np.exp(1j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
    LR = h * L[:, None] + r[None, :]
    Q = h * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=1))
    f1 = h * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=1))
    f2 = h * np.real(np.mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=1))
    return np.exp(h * L), np.exp(h * L / 2), Q, f1, f2, f3


# ----------------------------------------------------------------------------------------------------
# Self-checks on manufactured / exact solutions (the scripts print them, the datasets record them)
# ----------------------------------------------------------------------------------------------------
def richardson(q2, q1, q0, size) -> tuple[float, float]:
    """(error estimate of q0, observed rate p) from three levels q2, q1, q0, each halving h: the rate
    p = log2(size(q2 - q1) / size(q1 - q0)) and the error size(q1 - q0) / (2^p - 1) (inf if p <= 0)."""
    d1, d0 = size(q2 - q1), size(q1 - q0)
    p = float(np.log2(d1 / d0))
    return (float(d0 / (2.0**p - 1.0)) if p > 0 else float("inf")), p


def darcy_check(n: int) -> float:
    """Max nodal error of `darcy_fd` on n x n nodes for u = sin(pi x) sin(pi y), a = 1 + sin(2 pi x) cos(pi y) / 2."""
    x = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    s, c = np.sin(np.pi * X), np.cos(np.pi * Y)
    a = 1 + 0.5 * np.sin(2 * np.pi * X) * c
    u = s * np.sin(np.pi * Y)
    # f = -a lap u - grad a . grad u
    f = 2 * np.pi**2 * a * u - np.pi**2 * (np.cos(2 * np.pi * X) * np.cos(np.pi * X) * c * np.sin(np.pi * Y)
                                            - 0.5 * np.sin(2 * np.pi * X) * s * np.sin(np.pi * Y) * c)
    return float(np.abs(darcy_fd(a, f) - u).max())


def burgers_exact(x, t, nu: float, eps: float = 0.5) -> np.ndarray:
    """An exact periodic solution (Cole-Hopf): u = -2 nu phi_x / phi, phi = 1 + eps exp(-4 pi^2 nu t) cos(2 pi x)."""
    e = eps * np.exp(-4 * np.pi**2 * nu * np.asarray(t))
    x = np.asarray(x)
    return 4 * np.pi * nu * e * np.sin(2 * np.pi * x) / (1 + e * np.cos(2 * np.pi * x))


def burgers_check(n: int, nu: float, t_final: float, n_steps: int | None = None, eps: float = 0.9) -> float:
    """Max error of `burgers_spectral` at t_final on n points against `burgers_exact`."""
    x = np.arange(n) / n
    return float(np.abs(burgers_spectral(burgers_exact(x, 0.0, nu, eps), nu, t_final, n_steps)
                        - burgers_exact(x, t_final, nu, eps)).max())


# ----------------------------------------------------------------------------------------------------
# Dataset generators (layout: kinn.data.datasets)
# ----------------------------------------------------------------------------------------------------
_CHUNK = 100  # samples generated and solved at a time (the random stream does not depend on it)


def make_darcy_dataset(path, n: int = 129, n_train: int = 1000, n_test: int = 100, seed: int = 0,
                       progress: bool = True, created_by: str | None = None) -> Path:
    """Generate the FNO Darcy dataset: input "a" (12 | 3 thresholded `grf_2d`), output "u" from `darcy_fd`, f = 1.

    n x n nodes of [0, 1]^2 with n odd (= 2m + 1, so every 2nd node is again a node grid); samples
    0..n_train-1 are the train split, the next n_test the test split. float32, written by
    `kinn.data.datasets.write_dataset`. Returns the path.
    """
    from kinn.data.datasets import write_dataset

    if n < 3 or n % 2 == 0:
        raise ValueError(f"make_darcy_dataset: n must be odd and >= 3 (2m + 1 nodes), got {n}")
    if n_train < 1 or n_test < 0:
        raise ValueError(f"make_darcy_dataset: need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    alpha, tau, f = 2.0, 3.0, 1.0
    count = n_train + n_test
    rng = np.random.default_rng(seed)
    inputs = np.empty((count, 1, n, n), np.float32)
    outputs = np.empty((count, 1, n, n), np.float32)
    start = time.perf_counter()
    for lo in range(0, count, _CHUNK):
        a = darcy_coefficient(grf_2d(n, min(_CHUNK, count - lo), rng, alpha, tau))
        inputs[lo:lo + len(a), 0] = a
        outputs[lo:lo + len(a), 0] = darcy_fd(a, f)
        _report(progress, "darcy", lo + len(a), count, start)
    check = darcy_check(n)
    x = np.linspace(0.0, 1.0, n)
    return write_dataset(
        path, inputs, outputs, {"x": x, "y": x.copy()}, np.arange(n_train), np.arange(n_train, count), ("a",), ("u",),
        description="Darcy flow of the FNO paper (Li et al. 2021): permeability a (12 | 3) -> pressure u",
        equation="-div(a grad u) = f on [0, 1]^2, u = 0 on the boundary, f = 1",
        method=("a = 12 where a Gaussian random field with covariance tau^(2 alpha - 2) (-Laplacian + tau^2)^(-alpha) "
                "(Neumann, zero mean; FNO's GRF.m, summed at the nodes by a DCT-I) is >= 0, else 3; u by a "
                "conservative 5-point finite-volume scheme on the n x n node grid (harmonic-mean face coefficients) "
                "and a sparse LU solve, float64, stored as float32"),
        accuracy=(f"finite-difference solver: max nodal error {check:.2e} on the manufactured solution "
                  f"u = sin(pi x) sin(pi y), a = 1 + sin(2 pi x) cos(pi y) / 2 at this n (second order)"),
        check_error=check,
        created_by=created_by or (f"kinn.data.generators.make_darcy_dataset(n={n}, n_train={n_train}, "
                                  f"n_test={n_test}, seed={seed})"),
        n=n, n_train=n_train, n_test=n_test, seed=seed, alpha=alpha, tau=tau, a_high=A_HIGH, a_low=A_LOW, f=f,
        face_mean="harmonic", dtype="float32")


def make_burgers_dataset(path, n: int = 1024, n_train: int = 1000, n_test: int = 100, nu: float = 0.1,
                         t_final: float = 1.0, seed: int = 0, progress: bool = True,
                         created_by: str | None = None) -> Path:
    """Generate the FNO Burgers dataset: input "u0" (`grf_1d_periodic`), output "u" = u(., t_final).

    Periodic grid x_j = j / n of [0, 1); `burgers_spectral` with one step count for all samples
    (`burgers_default_steps` over the whole set). The time-stepping error is measured on the first 8 samples
    against twice the steps and recorded. float32. Returns the path.
    """
    from kinn.data.datasets import write_dataset

    if n < 4 or n_train < 1 or n_test < 0:
        raise ValueError(f"make_burgers_dataset: need n >= 4, n_train >= 1, n_test >= 0, got {n}, {n_train}, {n_test}")
    alpha, tau, sigma = 2.0, 5.0, 25.0
    count = n_train + n_test
    rng = np.random.default_rng(seed)
    u0 = grf_1d_periodic(n, count, rng, alpha, tau, sigma)
    steps = burgers_default_steps(u0, nu, t_final)
    outputs = np.empty((count, 1, n), np.float32)
    start = time.perf_counter()
    for lo in range(0, count, _CHUNK):
        outputs[lo:lo + _CHUNK, 0] = burgers_spectral(u0[lo:lo + _CHUNK], nu, t_final, steps)
        _report(progress, "burgers", min(lo + _CHUNK, count), count, start)
    dt_check = float(np.abs(burgers_spectral(u0[:8], nu, t_final, 2 * steps)
                            - burgers_spectral(u0[:8], nu, t_final, steps)).max())  # both float64
    exact_check = burgers_check(n, nu, t_final, steps)
    return write_dataset(
        path, u0[:, None].astype(np.float32), outputs, {"x": np.arange(n) / n}, np.arange(n_train),
        np.arange(n_train, count), ("u0",), ("u",), periodic=("x",),
        description="Burgers of the FNO paper (Li et al. 2021): initial data u0 -> u(., t_final), periodic",
        equation=f"u_t + (u^2 / 2)_x = nu u_xx on [0, 1) periodic, 0 < t <= t_final, nu = {nu:g}",
        method=(f"u0 ~ N(0, sigma^2 (-Laplacian + tau^2)^(-alpha)) (zero mean, by FFT); Fourier pseudo-spectral "
                f"on n points with 2/3 dealiasing, ETDRK4 (Kassam & Trefethen 2005) with {steps} steps, float64, "
                f"stored as float32"),
        accuracy=(f"max difference to twice the time steps on 8 samples {dt_check:.1e}; max error on the exact "
                  f"Cole-Hopf solution (eps = 0.9) at this n, nu, t_final and step count {exact_check:.1e}"),
        check_error=max(dt_check, exact_check),
        created_by=created_by or (f"kinn.data.generators.make_burgers_dataset(n={n}, n_train={n_train}, n_test={n_test}, "
                                  f"nu={nu}, t_final={t_final}, seed={seed})"),
        n=n, n_train=n_train, n_test=n_test, seed=seed, nu=nu, t_final=t_final, alpha=alpha, tau=tau, sigma=sigma,
        n_steps=steps, dtype="float32")


def _report(progress: bool, what: str, done: int, total: int, start: float) -> None:
    if progress:
        print(f"{what}: {done}/{total} samples ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
