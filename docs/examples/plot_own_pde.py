"""
Your own PDE, solved by a KAN
=============================

A problem written in your own script: -u'' = π² sin πx on [-1, 1] with u(±1) = 0, posed in the strong
form against `kinn.ops`, with its exact solution for scoring. Nothing in the installed package changes;
`kinn new my_pde` writes a file like this one to start from, and `kinn solve my_pde.py:my_pde` trains it.
"""
import os
from math import pi

import torch

import kinn
from kinn import Dirichlet, Interval, Problem, StrongForm, ops

FULL = os.environ.get("KINN_EXAMPLES_FULL") == "1"


def exact(x):  # x: (N, 1)
    return torch.sin(pi * x)


problem = Problem(
    name="poisson1d",
    domain=Interval(-1, 1),
    strong=StrongForm(lambda u, x: -ops.laplacian(u) - pi**2 * exact(x), bcs=[Dirichlet(0.0)]),
    exact=exact,
)

smoke = {} if FULL else dict(steps=300, lbfgs=50, n_interior=200, n_eval=500)
result = kinn.solve(problem, "kan", out="runs/examples", progress=FULL, model={"hidden": [5], "grid": 10},
                    dtype="float64", **smoke)
print(f"held-out relative L2 error of u: {result.errors['rel_l2/u']:.2e}")
