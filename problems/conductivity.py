"""KINN example 8: an unknown conductivity field K(x, y) recovered from temperatures T.

    −∇·(K∇T) = 10 on [0, 1]², T = 0 on the boundary,
    K_true(x, y) = 1 + x/2 + ½ exp(−30 ((x − 0.6)² + (y − 0.4)²)).

T comes from a finite-volume solve on the 256 × 256 node grid (`scripts/make_conductivity_data.py`,
data/conductivity.h5); K is a second network (`UnknownField`, positive: K = exp(N)) trained with T's on
the residual and on 4,096 of the grid's temperatures. K is known on the boundary: without it the
data fix K only up to solutions of ∇·(K₀∇T) = 0, which are constant along the paths of ∇T from the
boundary (a well-posed inverse problem needs K there, or K somewhere on every path).
"""
import torch

from kinn.pde import ops
from kinn import BoundaryResidual, Dirichlet, InverseProblemForm, Observations, Problem, Rectangle, UnknownField

SOURCE = 10.0


def k_true(x):  # (N, 1); torch, and numpy through torch.as_tensor in the data script
    bump = torch.exp(-30 * ((x[:, :1] - 0.6) ** 2 + (x[:, 1:] - 0.4) ** 2))
    return 1 + x[:, :1] / 2 + bump / 2


conductivity_inverse = Problem(
    name="conductivity_inverse",
    description="−∇·(K∇T) = 10 on [0,1]², K(x, y) unknown, fitted to T on a 256² grid (KINN ex. 8)",
    domain=Rectangle([0, 0], [1, 1]),
    fields=("T",),
    strong=InverseProblemForm(
        lambda u, x, p: -ops.div(p["K"](x) * ops.grad(u), u) / SOURCE - 1,  # scaled by the source
        unknowns=[UnknownField("K", initial=1.0, positive=True, true=k_true)],
        observations=Observations(path="conductivity.h5", subset=4096),
        bcs=[Dirichlet(0.0, weight=10.0),
             BoundaryResidual(fn=lambda u, x, n, p: p["K"](x) - k_true(x), name="K_boundary")]),
    reference="conductivity.h5",
    # KINN: KAN [2, 15, 15, 1], G = 100 for this example
    defaults={"train": {"steps": 5000, "eval_every": 500},
              "points": {"n_interior": 4000, "n_boundary": 400},
              "model": {"kan": {"hidden": [15, 15], "grid": 20}}},
)
