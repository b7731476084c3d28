"""A kinn plugin: the problem -u'' = pi^2 sin(pi x) on [-1, 1] and a family of one-layer sine networks."""
from dataclasses import dataclass
from math import pi

import torch
from torch import nn

from kinn import Dirichlet, Family, Interval, Problem, StrongForm, ops


def exact(x):
    return torch.sin(pi * x)


demo_poisson1d = Problem(
    name="demo_poisson1d",
    domain=Interval(-1.0, 1.0),
    strong=StrongForm(lambda u, x: -ops.laplacian(u) - pi**2 * torch.sin(pi * x), bcs=[Dirichlet(0.0)]),
    exact=exact,
    description="a plugin's problem: -u'' = pi^2 sin(pi x), u(+-1) = 0",
)


@dataclass
class SineOptions:
    """width: hidden sine units."""

    width: int = 16


class SineNet(nn.Module):
    def __init__(self, in_dim, out_dim, width):
        super().__init__()
        self.inner, self.outer = nn.Linear(in_dim, width), nn.Linear(width, out_dim)

    def forward(self, x):  # (N, in) -> (N, out)
        return self.outer(torch.sin(self.inner(x)))


class SineFamily(Family):
    name = "demo_sine"
    Config = SineOptions

    def build(self, in_dim, out_dim, config):
        return SineNet(in_dim, out_dim, config.width)
