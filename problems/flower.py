"""KINN's five-petal flower (BINN example): Laplace's equation in a regular pentagon of side 2 with an
outward half-disc of radius 1 on each edge (centres at the apothem 1/tan 36° = 1.37638, angles 90° + 72° i);
the petals meet at the pentagon's vertices in re-entrant corners of 288°.

Δu = 0, u = sin x sinh y + cos x cosh y (harmonic) on Γ and as the reference. Strong form: soft Dirichlet
data; energy form: Π = ∫ ½|∇u|² with u = g + d·N, d the exact distance to Γ; inverse form: the boundary
integral equation on 5 × 20 arc panels (9° each, as KINN), u given everywhere, the flux from the network.
"""
import math

import numpy as np
import torch

from kinn import BoundaryIntegralForm, Dirichlet, EnergyForm, Problem, StrongForm, Value, ops
from kinn.boundary import Arc, Boundary, Laplace, Loop
from kinn.pde.geometry import Disk, Polygon

APOTHEM = 1.0 / math.tan(math.pi / 5)
ANGLES = [math.pi / 2 + 2 * math.pi / 5 * i for i in range(5)]
CENTRES = np.array([[APOTHEM * math.cos(a), APOTHEM * math.sin(a)] for a in ANGLES])


def boundary(per_arc: int = 20) -> Boundary:
    """Γ as five counter-clockwise half-circle arcs of per_arc panels each, tagged "petal"."""
    arcs = [q for a, c in zip(ANGLES, CENTRES) for q in Arc(c, 1.0, a - math.pi / 2, a + math.pi / 2, "petal").split(per_arc)]
    return Boundary([Loop(arcs)])


def exact(x):
    return torch.sin(x[:, :1]) * torch.sinh(x[:, 1:]) + torch.cos(x[:, :1]) * torch.cosh(x[:, 1:])


def distance(x):
    """The exact distance to Γ, (N,): to each petal's half circle, or to its ends where the point's
    direction from the centre falls outside the half circle."""
    c = torch.as_tensor(CENTRES, dtype=x.dtype, device=x.device)                       # (5, 2)
    d = torch.as_tensor([[math.cos(a), math.sin(a)] for a in ANGLES], dtype=x.dtype, device=x.device)
    rel = x[:, None, :] - c                                                              # (N, 5, 2)
    on_arc = ((rel * d).sum(-1) >= 0)
    radial = (rel.norm(dim=-1) - 1).abs()
    perp = torch.stack([-d[:, 1], d[:, 0]], 1)
    ends = torch.minimum((rel - perp).norm(dim=-1), (rel + perp).norm(dim=-1))
    return torch.where(on_arc, radial, ends).min(1).values


pentagon = Polygon([(APOTHEM * math.cos(a) - math.cos(a - math.pi / 2), APOTHEM * math.sin(a) - math.sin(a - math.pi / 2))
                    for a in ANGLES])
domain = pentagon
for centre in CENTRES:
    domain = domain | Disk(centre, 1.0)

flower = Problem(
    name="flower",
    description="Δu = 0 in KINN's five-petal flower, u = sin x sinh y + cos x cosh y (KINN's BINN example)",
    domain=domain,
    strong=StrongForm(lambda u, x: ops.laplacian(u), bcs=[Dirichlet(exact, weight=100.0)]),
    # the lift equals the data on Γ only (as for the snowflake: with g = exact the target would be N = 0)
    energy=EnergyForm(lambda u, x: 0.5 * ops.grad(u).square().sum(1),
                      bcs=[Dirichlet(lambda x: exact(x) + distance(x)[:, None] * (1 + x[:, :1] * x[:, 1:]),
                                     hard=True, distance=distance)]),
    inverse=BoundaryIntegralForm(boundary(20), Laplace(), flux=lambda u, n: ops.normal(u, n),
                                 given={"petal": Value(exact)}),
    exact=exact,
    # KINN: KAN [2, 5, 5, 5, 1], G = 10 (975 parameters), MLP 2-30×4-1 tanh; inputs scaled to the grid here
    defaults={"train": {"steps": 3000, "eval_every": 500},
              "points": {"n_interior": 3000, "n_boundary": 1000},
              "model": {"kan": {"hidden": [5, 5, 5], "grid": 10}, "mlp": {"widths": [30, 30, 30, 30]}},
              "energy": {"points": {"quadrature": "triangle1", "jitter": True}},
              # KINN's KAN budget, 10,000 loss evaluations: 8,000 Adam steps (lr 1e-2 decayed by a cosine) and
              # at most 2,000 L-BFGS evaluations (lbfgs 1,600 × 5/4), in float64; the MLP at the same budget
              "inverse": {"train": {"steps": 8000, "lbfgs": 1600, "lr": 1e-2, "schedule": "cosine", "dtype": "float64",
                                    "eval_every": 1000}}},
)
