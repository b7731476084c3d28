"""Fundamental solutions in 2-D: the kernels of the boundary integral equation and of the representation.

With r = x − ξ (x on the boundary, ξ the source or evaluation point), ρ = |r|, r̂ = r/ρ and n the outward
normal at x, every kernel gives four arrays, broadcast over leading axes:

    single(r)            (..., c, c)  U_ij: u_i at ξ due to a unit load j at x (Laplace: u*)
    double(r, n)         (..., c, c)  T_ij: the traction (flux) of U on the normal n (Laplace: q*)
    single_derived(r)    (..., m, c)  the derived quantities at ξ of U (Laplace ∇_ξ u*; Kelvin D_kij)
    double_derived(r, n) (..., m, c)  the same of T (Laplace ∇_ξ q*; Kelvin S_kij)

so that the representation formula reads u_i(ξ) = ∫ U_ij q_j ds − ∫ T_ij u_j ds and the derived field
(Laplace ∇u, Kelvin stresses σ_xx, σ_yy, σ_xy) D(ξ) = ∫ single_derived q ds − ∫ double_derived u ds.
`log_coefficient` a is the factor of the singular part U = a ln ρ · I + (bounded), which the boundary
integral splits off and integrates with the Gauss-log rule.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from kinn.errors import KinnError

_EYE = np.eye(2)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...) a · b over the last axis (2): written out, as numpy's reduction over an axis of two is slow."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]


def _polar(r: np.ndarray):
    rho2 = _dot(r, r)
    rho = np.sqrt(rho2)
    return rho, rho2, r / rho[..., None]


# Stress kernels are built directly in Voigt rows m = (i, j) ∈ {xx, yy, xy} against columns k.
_I, _J = np.array([0, 1, 0]), np.array([0, 1, 1])
_D_IJ = (_I == _J).astype(float)[:, None]   # (3, 1) δ_ij
_D_IK = _EYE[_I]                            # (3, 2) δ_ik
_D_JK = _EYE[_J]                            # (3, 2) δ_jk
_ROWS = ((0, 0), (1, 1), (0, 1))            # the Voigt rows as index pairs (i, j)


def _voigt(v: np.ndarray):
    """v (..., 2) as three views broadcast to (..., m, k): v_k, v_i, v_j with (i, j) the row's pair."""
    return v[..., None, :], v[..., _I][..., :, None], v[..., _J][..., :, None]


class Kernel(ABC):
    """A 2-D fundamental solution (see the module's docstring for the four arrays and their shapes)."""

    components: int          # c: 1 (a scalar potential) or 2 (a displacement)
    derived: tuple           # names of the m derived quantities
    log_coefficient: float   # a in U = a ln ρ · I + (bounded)

    @abstractmethod
    def single(self, r: np.ndarray) -> np.ndarray:
        """(..., c, c) the single-layer kernel U(r)."""

    @abstractmethod
    def double(self, r: np.ndarray, n: np.ndarray) -> np.ndarray:
        """(..., c, c) the double-layer kernel T(r, n)."""

    @abstractmethod
    def single_derived(self, r: np.ndarray) -> np.ndarray:
        """(..., m, c) the derived quantities at ξ of the single layer."""

    @abstractmethod
    def double_derived(self, r: np.ndarray, n: np.ndarray) -> np.ndarray:
        """(..., m, c) the derived quantities at ξ of the double layer."""


class Laplace(Kernel):
    """−Δu = 0: u* = −ln ρ / (2π), q* = −(r·n) / (2πρ²); derived: ∇_ξ u* = r / (2πρ²) and
    ∇_ξ q* = [n − 2 (r·n) r / ρ²] / (2πρ²), so that ∇u(ξ) = ∫ ∇_ξ u* q − ∫ ∇_ξ q* u."""

    components = 1
    derived = ("du/dx", "du/dy")
    log_coefficient = -1.0 / (2.0 * np.pi)

    def single(self, r):
        return (-np.log(np.sqrt(_dot(r, r))) / (2 * np.pi))[..., None, None]

    def double(self, r, n):
        return (-_dot(r, n) / (2 * np.pi * _dot(r, r)))[..., None, None]

    def single_derived(self, r):
        return (r / (2 * np.pi * _dot(r, r)[..., None]))[..., None]

    def double_derived(self, r, n):
        rho2, rn = _dot(r, r), _dot(r, n)
        return ((n - 2 * (rn / rho2)[..., None] * r) / (2 * np.pi * rho2[..., None]))[..., None]


class Kelvin(Kernel):
    """Plane elasticity (Kelvin's solution; Brebbia & Dominguez, Boundary Elements, ch. 5), shear
    modulus mu and Poisson's ratio nu; plane stress uses ν̄ = ν / (1 + ν) in every formula:

        U_ij = −[(3 − 4ν) ln ρ δ_ij − r̂_i r̂_j] / (8π(1 − ν)μ)
        T_ij = −[∂ρ/∂n ((1 − 2ν) δ_ij + 2 r̂_i r̂_j) − (1 − 2ν)(r̂_i n_j − r̂_j n_i)] / (4π(1 − ν)ρ)
        D_kij = [(1 − 2ν)(δ_ki r̂_j + δ_kj r̂_i − δ_ij r̂_k) + 2 r̂_i r̂_j r̂_k] / (4π(1 − ν)ρ)
        S_kij = μ / (2π(1 − ν)ρ²) {2 ∂ρ/∂n [(1 − 2ν) δ_ij r̂_k + ν(δ_ik r̂_j + δ_jk r̂_i) − 4 r̂_i r̂_j r̂_k]
                 + 2ν(n_i r̂_j r̂_k + n_j r̂_i r̂_k) + (1 − 2ν)(2 n_k r̂_i r̂_j + n_j δ_ik + n_i δ_jk)
                 − (1 − 4ν) n_k δ_ij}

    with σ_ij(ξ) = ∫ D_kij t_k ds − ∫ S_kij u_k ds; derived rows ij = xx, yy, xy."""

    components = 2
    derived = ("sxx", "syy", "sxy")

    def __init__(self, mu: float, nu: float, plane: str = "stress"):
        if plane not in ("stress", "strain"):
            raise KinnError(f"unknown plane '{plane}'; valid: stress, strain")
        if not mu > 0 or not -1 < nu < 0.5:
            raise KinnError(f"Kelvin needs mu > 0 and -1 < nu < 0.5, got mu={mu}, nu={nu}")
        self.mu, self.nu, self.plane = float(mu), float(nu), plane
        self.nu_bar = self.nu / (1 + self.nu) if plane == "stress" else self.nu
        self.log_coefficient = -(3 - 4 * self.nu_bar) / (8 * np.pi * (1 - self.nu_bar) * self.mu)

    def single(self, r):
        nu, (rho, _, e) = self.nu_bar, _polar(r)
        outer = e[..., :, None] * e[..., None, :]
        return -((3 - 4 * nu) * np.log(rho)[..., None, None] * _EYE - outer) / (8 * np.pi * (1 - nu) * self.mu)

    def double(self, r, n):
        nu, (rho, _, e) = self.nu_bar, _polar(r)
        a, drdn = 1 - 2 * nu, _dot(e, n)
        skew = a * (e[..., 0] * n[..., 1] - n[..., 0] * e[..., 1])  # (1 − 2ν)(r̂_x n_y − n_x r̂_y)
        scale = -1 / (4 * np.pi * (1 - nu) * rho)
        out = np.empty(r.shape[:-1] + (2, 2))
        out[..., 0, 0] = drdn * (a + 2 * e[..., 0] ** 2) * scale
        out[..., 1, 1] = drdn * (a + 2 * e[..., 1] ** 2) * scale
        cross = 2 * drdn * e[..., 0] * e[..., 1]
        out[..., 0, 1] = (cross - skew) * scale
        out[..., 1, 0] = (cross + skew) * scale
        return out

    # The derived kernels component by component (rows ij = xx, yy, xy; columns k = x, y), skipping the
    # Kronecker deltas' zeros: the broadcast (..., 3, 2) form took most of a representation's time.
    def single_derived(self, r):
        nu, (rho, _, e) = self.nu_bar, _polar(r)
        a, E = 1 - 2 * nu, (e[..., 0], e[..., 1])
        out = np.empty(r.shape[:-1] + (3, 2))
        for m, (i, j) in enumerate(_ROWS):
            for k in (0, 1):
                v = 2 * E[i] * E[j] * E[k]
                if k == i:
                    v = v + a * E[j]
                if k == j:
                    v = v + a * E[i]
                if i == j:
                    v = v - a * E[k]
                out[..., m, k] = v
        return out / (4 * np.pi * (1 - nu) * rho[..., None, None])

    def double_derived(self, r, n):
        nu, (_, rho2, e) = self.nu_bar, _polar(r)
        a, E, N = 1 - 2 * nu, (e[..., 0], e[..., 1]), (n[..., 0], n[..., 1])
        drdn2 = 2 * _dot(e, n)
        out = np.empty(r.shape[:-1] + (3, 2))
        for m, (i, j) in enumerate(_ROWS):
            eij = E[i] * E[j]
            for k in (0, 1):
                inner = -4 * eij * E[k]               # the bracket multiplying 2 ∂ρ/∂n
                if i == j:
                    inner = inner + a * E[k]
                if i == k:
                    inner = inner + nu * E[j]
                if j == k:
                    inner = inner + nu * E[i]
                v = drdn2 * inner + 2 * nu * (N[i] * E[j] + N[j] * E[i]) * E[k] + 2 * a * N[k] * eij
                if i == k:
                    v = v + a * N[j]
                if j == k:
                    v = v + a * N[i]
                if i == j:
                    v = v - (1 - 4 * nu) * N[k]
                out[..., m, k] = v
        return out * (self.mu / (2 * np.pi * (1 - nu) * rho2))[..., None, None]
