"""A user's own problem file, as a new user writes it (copied to a temp folder by the tests and by
scripts/allen_cahn_byo.py): the Allen–Cahn equation, which has no closed-form solution.

    u_t = 0.001 u_xx + 5 (u - u^3),  x in [-1, 1],  t in [0, 1],
    u(x, 0) = x^2 cos(pi x),  u(-1, t) = u(1, t) = -1,

both conditions imposed exactly by an output transform: u = x^2 cos(pi x) + t (1 - x^2) N(x, t).
"""
from math import pi

import torch

from kinn import GeometryXTime, Interval, OutputTransform, Problem, StrongForm, TimeDomain, ops


def residual(u, x):
    return ops.dt(u) - 0.001 * ops.d(u, "x", "x") - 5.0 * (u - u**3)


def exact_conditions(x, raw):
    xs, t = x[:, :1], x[:, 1:]
    return xs**2 * torch.cos(pi * xs) + t * (1.0 - xs**2) * raw


allen_cahn = Problem(
    name="allen_cahn",
    domain=GeometryXTime(Interval(-1.0, 1.0), TimeDomain(0.0, 1.0)),
    strong=StrongForm(residual, bcs=[OutputTransform(exact_conditions)]),
    description="Allen-Cahn, u_t = 0.001 u_xx + 5(u - u^3): no exact solution, no reference",
)
