"""KINN example 5: a heterogeneous (two-material) Poisson problem, one network across the interface.

∇·(a∇u) = 16 r² on [−1, 1]², a = 1/15 for r < 0.5 and 1 outside; u = r⁴/a inside and
r⁴ + r₀⁴ (1/a₁ − 1/a₂) outside (continuous value and flux a∂u/∂r = 4r³ at r₀ = 0.5); Dirichlet data
from the exact solution. Energy form: Π = ∫ ½ a|∇u|² + 16 r² u, u = g + d·N exactly on the boundary
(g: the outer formula, which differs from the solution inside the inclusion).
"""
import torch

from kinn.pde import ops
from kinn import Dirichlet, EnergyForm, Problem, Rectangle

A_IN, A_OUT, R0 = 1 / 15, 1.0, 0.5


def r2(x):
    return x[:, 0] ** 2 + x[:, 1] ** 2


def a(x):  # (N,)
    return torch.where(r2(x) < R0**2, A_IN, A_OUT).to(x.dtype)


def exact(x):  # (N, 1)
    inside = r2(x) ** 2 / A_IN
    outside = r2(x) ** 2 + R0**4 * (1 / A_IN - 1 / A_OUT)
    return torch.where(r2(x) < R0**2, inside, outside)[:, None]


composite = Problem(
    name="composite",
    description="∇·(a∇u) = 16r² on [-1,1]², a = 1/15 in r < 0.5, 1 outside (KINN ex. 5, heterogeneous)",
    domain=Rectangle([-1, -1], [1, 1]),
    # the lift g is the outer formula everywhere: the boundary data, but not the solution inside r < 0.5
    energy=EnergyForm(lambda u, x: 0.5 * a(x) * ops.grad(u).square().sum(1) + 16 * r2(x) * u[:, 0],
                      bcs=[Dirichlet(lambda x: r2(x) ** 2 + R0**4 * (1 / A_IN - 1 / A_OUT), hard=True,
                                     distance=lambda x: (1 - x[:, 0] ** 2) * (1 - x[:, 1] ** 2))]),
    exact=exact,
    # KINN: KAN [2, 5, 5, 1], G = 20; the interface cuts the tensor rule's cells, so Monte Carlo by default
    defaults={"train": {"steps": 3000, "eval_every": 500, "resample_every": 1},
              "points": {"n_interior": 4000},
              "model": {"kan": {"hidden": [5, 5], "grid": 20}}},
)
