"""KINN example 1: multi-scale heat equation u_t = u_xx / (50π)² with u = sin(50πx) e^(−t)."""
from math import pi

import torch

from kinn.pde import ops
from kinn import Dirichlet, GeometryXTime, Initial, Interval, Problem, StrongForm, TimeDomain

K = 50 * pi  # the wavenumber: 25 periods on [0, 1]


def exact(x):  # x: (N, 2) columns (x, t)
    return torch.sin(K * x[:, :1]) * torch.exp(-x[:, 1:])


heat_multiscale = Problem(
    name="heat_multiscale",
    description="u_t = u_xx/(50π)² on [0,1]², u(0,t) = u(1,t) = 0, u(x,0) = sin(50πx) (KINN ex. 1)",
    domain=GeometryXTime(Interval(0, 1), TimeDomain(0, 1)),
    strong=StrongForm(
        lambda u, x: ops.d(u, "t") - ops.d(u, "x", "x") / K**2,
        bcs=[Dirichlet(0.0), Initial(lambda x: torch.sin(K * x[:, :1]))],
    ),
    exact=exact,
    # KINN: 4,000 random interior points resampled each epoch, 5,000 epochs.
    # KAN as KINN: [2, 5, 5, 1] with G = 100 (reaches ~2e-3 in 3,000 steps).
    defaults={"train": {"steps": 3000, "resample_every": 1, "eval_every": 500},
              "points": {"n_interior": 4000, "n_boundary": 1000, "n_initial": 1000},
              "model": {"kan": {"hidden": [5, 5], "grid": 100}}},
)
