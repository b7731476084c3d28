"""kinn.pde.mechanics against closed forms, in float64."""
import math

import pytest
import torch

from kinn.pde import mechanics
from kinn import KinnError
from kinn.pde.fields import AutogradBackend, Field

F64 = torch.float64


def field(fn, n=40, seed=0):
    x = torch.rand(n, 2, dtype=F64, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
    return Field(AutogradBackend(fn(x), x), ("ux", "uy"), ("x", "y"), 2), x


def test_lame_parameters():
    lam, mu = mechanics.lame(1000, 0.3, "strain")
    assert mu == pytest.approx(1000 / 2.6) and lam == pytest.approx(300 / (1.3 * 0.4))
    lam_s, _ = mechanics.lame(1000, 0.3, "stress")
    assert lam_s == pytest.approx(1000 * 0.3 / (1 - 0.09))  # E ν / (1 − ν²)
    with pytest.raises(KinnError, match="unknown plane 'shell'"):
        mechanics.lame(1, 0.3, "shell")
    with pytest.raises(KinnError, match="-1 < nu < 0.5"):
        mechanics.lame(1, 0.5)


def test_uniaxial_plane_stress_recovers_hookes_law():
    E, nu, s = 1000.0, 0.3, 100.0  # σ_xx = s, everything else zero: ε_xx = s/E, ε_yy = −ν s/E
    u, x = field(lambda x: torch.stack([s / E * x[:, 0], -nu * s / E * x[:, 1]], 1))
    sigma = mechanics.stress(u, E, nu, "stress")
    expect = torch.tensor([[s, 0.0], [0.0, 0.0]], dtype=F64).expand_as(sigma)
    torch.testing.assert_close(sigma, expect, atol=1e-10, rtol=0)
    torch.testing.assert_close(mechanics.elastic_energy(u, E, nu), torch.full((len(x),), s**2 / (2 * E), dtype=F64))
    torch.testing.assert_close(mechanics.von_mises(sigma), torch.full((len(x),), s, dtype=F64))
    n = torch.tensor([[1.0, 0.0]], dtype=F64).expand(len(x), 2)
    torch.testing.assert_close(mechanics.traction(sigma, n), torch.tensor([[s, 0.0]], dtype=F64).expand(len(x), 2))


def test_equilibrium_residual_of_a_quadratic_field():
    E, nu = 200.0, 0.25
    lam, mu = mechanics.lame(E, nu, "strain")
    u, x = field(lambda x: torch.stack([x[:, 0] ** 2, x[:, 0] * x[:, 1]], 1))
    r = mechanics.equilibrium(mechanics.stress(u, E, nu, "strain"), u)
    # Navier: μ Δu + (λ + μ) ∇(∇·u); ∇·u = 3x, Δu = (2, 0)
    expect = torch.tensor([[2 * mu + 3 * (lam + mu), 0.0]], dtype=F64).expand(len(x), 2)
    torch.testing.assert_close(r.detach(), expect, atol=1e-9, rtol=0)


def test_neo_hookean_reduces_to_linear_elasticity_for_small_strains():
    E, nu, eps = 1000.0, 0.3, 1e-4  # relative nonlinearity O(eps), cancellation in ψ O(1e-16 / eps)
    A = torch.tensor([[0.3, -0.2], [0.5, 0.1]], dtype=F64)
    u, x = field(lambda x: eps * x @ A.T)
    u_lin, _ = field(lambda x: eps * x @ A.T)
    psi = mechanics.neo_hookean_energy(u, E, nu)
    psi_lin = mechanics.elastic_energy(u_lin, E, nu, "strain")
    torch.testing.assert_close(psi.detach(), psi_lin.detach(), rtol=1e-3, atol=0)
    sigma = mechanics.neo_hookean_stress(u, E, nu) / eps
    torch.testing.assert_close(sigma.detach(), mechanics.stress(u_lin, E, nu, "strain").detach() / eps,
                               rtol=1e-3, atol=1e-8)


def test_neo_hookean_stress_is_the_derivative_of_the_energy():
    """P = ∂ψ/∂F (by autograd on F), and σ = P Fᵀ / J, at a finite deformation."""
    E, nu = 1000.0, 0.3
    lam, mu = mechanics.lame(E, nu, "strain")
    F = torch.tensor([[1.2, 0.1], [-0.05, 0.9]], dtype=F64, requires_grad=True)
    J = torch.det(F)
    psi = 0.5 * lam * torch.log(J) ** 2 - mu * torch.log(J) + 0.5 * mu * ((F**2).sum() - 2)
    (P,) = torch.autograd.grad(psi, F)
    Fd = F.detach()
    u, x = field(lambda x: x @ (Fd - torch.eye(2, dtype=F64)).T, n=3)
    torch.testing.assert_close(mechanics.neo_hookean_energy(u, E, nu).detach(), psi.detach().expand(3))
    sigma = mechanics.neo_hookean_stress(u, E, nu)[0].detach()
    torch.testing.assert_close(sigma, P @ Fd.T / torch.det(Fd))


def test_von_mises_plane_strain_and_pure_shear():
    tau = 7.0
    sigma = torch.tensor([[[0.0, tau], [tau, 0.0]]], dtype=F64)
    assert float(mechanics.von_mises(sigma)) == pytest.approx(math.sqrt(3) * tau)
    hydro = torch.tensor([[[5.0, 0.0], [0.0, 5.0]]], dtype=F64)  # plane strain, ν = 0.5 would be hydrostatic
    assert float(mechanics.von_mises(hydro, nu=0.3, plane="strain")) == pytest.approx(5.0 * (1 - 0.6))
    with pytest.raises(KinnError, match="needs nu"):
        mechanics.von_mises(hydro, plane="strain")


def test_neo_hookean_von_mises_uses_the_plane_strain_out_of_plane_stress():
    E, nu = 1000.0, 0.3
    lam, _ = mechanics.lame(E, nu, "strain")
    F = torch.tensor([[1.1, 0.05], [0.0, 0.95]], dtype=F64)
    u, x = field(lambda x: x @ (F - torch.eye(2, dtype=F64)).T, n=2)
    J = torch.det(F)
    sigma = mechanics.neo_hookean_stress(u, E, nu)
    szz = lam * torch.log(J) / J  # F_zz = 1: P_zz = λ ln J, σ_zz = P_zz / J
    s = sigma[0].detach()
    expect = torch.sqrt(0.5 * ((s[0, 0] - s[1, 1]) ** 2 + (s[1, 1] - szz) ** 2 + (szz - s[0, 0]) ** 2) + 3 * s[0, 1] ** 2)
    torch.testing.assert_close(mechanics.neo_hookean_von_mises(u, E, nu)[0].detach(), expect)
