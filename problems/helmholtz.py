"""Helmholtz equation Δu + k²u = f on [−1,1]² with u = sin(πx) sin(4πy), k = 1."""
from math import pi

import torch

from kinn.pde import ops
from kinn import Dirichlet, Problem, Rectangle, StrongForm

K = 1.0


def exact(x):
    return torch.sin(pi * x[:, :1]) * torch.sin(4 * pi * x[:, 1:])


def source(x):  # f = Δu + k²u for the exact u
    return (K**2 - 17 * pi**2) * exact(x)


helmholtz2d = Problem(
    name="helmholtz2d",
    description="Δu + k²u = f on [-1,1]², u = sin(πx) sin(4πy), k = 1, u = 0 on the boundary",
    domain=Rectangle([-1, -1], [1, 1]),
    strong=StrongForm(lambda u, x: ops.laplacian(u) + K**2 * u - source(x), bcs=[Dirichlet(0.0)]),
    exact=exact,
    defaults={"train": {"steps": 5000, "lbfgs": 1000}, "points": {"n_interior": 4000, "n_boundary": 800}},
)
