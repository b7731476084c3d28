"""Solid mechanics in 2-D, written once with the `ops` helpers so every family and backend evaluates it.

A displacement field is a field handle `u` with two components (ux, uy). Small strain:

    ε = sym ∇u,   σ = λ tr(ε) I + 2μ ε,   ψ = ½ σ : ε

with Lamé parameters from (E, ν) for plane stress or plane strain (`lame`). Finite strain, the
compressible Neo-Hookean solid of KINN: F = I + ∇u, J = det F, C = FᵀF,

    ψ = λ/2 (ln J)² − μ ln J + μ/2 (tr C − 2),   P = μ (F − F⁻ᵀ) + λ ln J F⁻ᵀ,   σ = P Fᵀ / J

(the 3-D Lamé parameters, plane strain). Stress recovery from a trained field: `stress`,
`neo_hookean_stress`, then `von_mises`. `equilibrium` is the strong-form residual ∇·σ (+ body force)
and `traction` the boundary term σ·n.
"""
from __future__ import annotations

import torch

from kinn.pde import ops
from kinn.errors import KinnError

PLANES = ("stress", "strain")


def lame(E: float, nu: float, plane: str = "stress") -> tuple[float, float]:
    """(λ, μ) of the 2-D law: plane strain uses the 3-D λ; plane stress the reduced λ* = 2λμ / (λ + 2μ)."""
    if plane not in PLANES:
        raise KinnError(f"unknown plane '{plane}'; valid: {', '.join(PLANES)}")
    if not (E > 0 and -1 < nu < 0.5):
        raise KinnError(f"elastic constants need E > 0 and -1 < nu < 0.5, got E={E}, nu={nu}")
    mu = E / (2 * (1 + nu))
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    return (2 * lam * mu / (lam + 2 * mu) if plane == "stress" else lam), mu


def _displacement(u):
    if len(u.comps) != 2 or u.n_space != 2:
        raise KinnError(f"mechanics needs a 2-D displacement with two components, got {len(u.comps)} on "
                        f"{u.n_space} spatial coordinates")
    return ops.jacobian(u)  # (N, 2, 2), J[n, i, j] = ∂u_i/∂x_j


def strain(u) -> torch.Tensor:
    """Small strain ε = ½(∇u + ∇uᵀ), shape (N, 2, 2)."""
    J = _displacement(u)
    return 0.5 * (J + J.transpose(1, 2))


def stress(u, E: float, nu: float, plane: str = "stress") -> torch.Tensor:
    """Cauchy stress of linear elasticity σ = λ tr(ε) I + 2μ ε, shape (N, 2, 2)."""
    lam, mu = lame(E, nu, plane)
    eps = strain(u)
    tr = eps.diagonal(dim1=1, dim2=2).sum(-1)
    return lam * tr[:, None, None] * torch.eye(2, dtype=eps.dtype, device=eps.device) + 2 * mu * eps


def elastic_energy(u, E: float, nu: float, plane: str = "stress") -> torch.Tensor:
    """Strain energy density ψ = ½ σ : ε, shape (N,)."""
    return 0.5 * (stress(u, E, nu, plane) * strain(u)).sum((1, 2))


def equilibrium(sigma: torch.Tensor, u, body=None) -> torch.Tensor:
    """The residual ∇·σ + b of a stress (N, 2, 2) computed from the field u, shape (N, 2); rows of σ are
    differentiated by u's backend (`ops.div(q, u)`)."""
    r = torch.cat([ops.div(sigma[:, i, :], u) for i in range(2)], 1)
    return r if body is None else r + body


def traction(sigma: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """σ·n at boundary points with outward normals n (N, 2), shape (N, 2)."""
    return (sigma * n[:, None, :]).sum(-1)


def _deformation(u):
    J = _displacement(u)
    F = J + torch.eye(2, dtype=J.dtype, device=J.device)
    det = F[:, 0, 0] * F[:, 1, 1] - F[:, 0, 1] * F[:, 1, 0]
    return F, det


def neo_hookean_energy(u, E: float, nu: float) -> torch.Tensor:
    """KINN's compressible Neo-Hookean density ψ = λ/2 (ln J)² − μ ln J + μ/2 (tr C − 2), shape (N,).
    A non-positive J (an inverted element) gives NaN, which the trainer reports."""
    lam, mu = lame(E, nu, "strain")
    F, det = _deformation(u)
    log_j = torch.log(det)
    return 0.5 * lam * log_j**2 - mu * log_j + 0.5 * mu * (F.square().sum((1, 2)) - 2)


def neo_hookean_stress(u, E: float, nu: float) -> torch.Tensor:
    """Cauchy stress σ = P Fᵀ / J of the Neo-Hookean solid (in-plane components), shape (N, 2, 2)."""
    lam, mu = lame(E, nu, "strain")
    F, det = _deformation(u)
    F_inv_t = torch.linalg.inv(F).transpose(1, 2)
    P = mu * (F - F_inv_t) + lam * torch.log(det)[:, None, None] * F_inv_t
    return P @ F.transpose(1, 2) / det[:, None, None]


def neo_hookean_von_mises(u, E: float, nu: float) -> torch.Tensor:
    """Von Mises stress of the Neo-Hookean solid in plane strain (F_zz = 1: σ_zz = λ ln J / J), (N,)."""
    lam, _ = lame(E, nu, "strain")
    _, det = _deformation(u)
    return von_mises(neo_hookean_stress(u, E, nu), szz=lam * torch.log(det) / det)


def von_mises(sigma: torch.Tensor, nu: float | None = None, plane: str = "stress",
              szz: torch.Tensor | None = None) -> torch.Tensor:
    """Von Mises stress of in-plane stresses (N, 2, 2), shape (N,). Plane stress: σ_zz = 0; plane strain:
    σ_zz = ν (σ_xx + σ_yy) of linear elasticity, so ν is needed; or give σ_zz itself (`szz`, (N,))."""
    sxx, syy, sxy = sigma[:, 0, 0], sigma[:, 1, 1], sigma[:, 0, 1]
    if szz is not None:
        pass
    elif plane == "stress":
        szz = torch.zeros_like(sxx)
    elif plane == "strain":
        if nu is None:
            raise KinnError("von_mises in plane strain needs nu (σ_zz = ν (σ_xx + σ_yy))")
        szz = nu * (sxx + syy)
    else:
        raise KinnError(f"unknown plane '{plane}'; valid: {', '.join(PLANES)}")
    return torch.sqrt(0.5 * ((sxx - syy) ** 2 + (syy - szz) ** 2 + (szz - sxx) ** 2) + 3 * sxy**2)
