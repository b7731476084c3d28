"""Viscous Burgers equation u_t + u u_x = (0.01/π) u_xx with a shock forming at x = 0.

Reference: data/burgers1d.h5, the Cole–Hopf solution by Gauss–Hermite quadrature
(scripts/make_burgers_reference.py; accuracy stated in the file and in data/README.md).
"""
from math import pi

import torch

from kinn.pde import ops
from kinn import Dirichlet, GeometryXTime, Initial, Interval, Problem, StrongForm, TimeDomain

NU = 0.01 / pi


def residual(u, x):
    return ops.d(u, "t") + u * ops.d(u, "x") - NU * ops.d(u, "x", "x")


burgers1d = Problem(
    name="burgers1d",
    description="u_t + u u_x = (0.01/π) u_xx on [-1,1]×[0,1], u(x,0) = -sin(πx), u(±1,t) = 0",
    domain=GeometryXTime(Interval(-1, 1), TimeDomain(0, 1)),
    strong=StrongForm(residual, bcs=[Dirichlet(0.0), Initial(lambda x: -torch.sin(pi * x[:, :1]))]),
    reference="burgers1d.h5",
    defaults={"train": {"steps": 2000, "lbfgs": 3000, "eval_every": 1000},
              "points": {"n_interior": 8000, "n_boundary": 400, "n_initial": 800},
              "model": {"mlp": {"widths": [32, 32, 32, 32, 32, 32]}}},
)
