"""KINN example 6: Laplace's equation in a level-2 Koch snowflake (complex geometry).

Δu = 0 inside, u = sin x sinh y + cos x cosh y (harmonic) on the boundary and as the reference. Strong
form with Dirichlet data imposed softly; energy form Π = ∫ ½|∇u|² with u = g + d·N, d the exact
distance to the polygon (smooth enough: it is differentiated once). Inverse form: the boundary integral
equation on the polygon's 48 edges (4 panels each), u given, the flux from the network.
"""
import numpy as np
import torch

from kinn.pde import ops
from kinn import BoundaryIntegralForm, Dirichlet, EnergyForm, Polygon, Problem, StrongForm, Value
from kinn.boundary import Laplace, polygon


def snowflake(level: int = 2) -> np.ndarray:
    """Vertices of the Koch snowflake of the given level on the unit-side triangle, counter-clockwise."""
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    for _ in range(level):
        new = []
        for p, q in zip(pts, np.roll(pts, -1, axis=0)):
            d = (q - p) / 3
            peak = p + 1.5 * d + np.array([d[1], -d[0]]) * np.sqrt(3) / 2  # outwards of a CCW polygon
            new += [p, p + d, peak, p + 2 * d]
        pts = np.array(new)
    return pts


VERTICES = snowflake(2)


def exact(x):
    return (torch.sin(x[:, :1]) * torch.sinh(x[:, 1:]) + torch.cos(x[:, :1]) * torch.cosh(x[:, 1:]))


def distance(x):  # exact distance to the boundary polygon, (N,)
    p = torch.as_tensor(VERTICES, dtype=x.dtype, device=x.device)
    q = torch.roll(p, -1, 0)
    e = q - p  # (M, 2)
    t = (((x[:, None, :] - p) * e).sum(-1) / (e * e).sum(-1)).clamp(0, 1)  # (N, M)
    return (x[:, None, :] - (p + t[..., None] * e)).norm(dim=-1).min(1).values


koch_snowflake = Problem(
    name="koch_snowflake",
    description="Δu = 0 in a level-2 Koch snowflake, u = sin x sinh y + cos x cosh y (KINN ex. 6)",
    domain=Polygon(VERTICES),
    strong=StrongForm(lambda u, x: ops.laplacian(u), bcs=[Dirichlet(exact, weight=100.0)]),
    # the lift equals the data on the boundary only (the exact solution plus d·(1 + xy)): with g = exact
    # the network's target would be N = 0, and the untrained net would already score well
    energy=EnergyForm(lambda u, x: 0.5 * ops.grad(u).square().sum(1),
                      bcs=[Dirichlet(lambda x: exact(x) + distance(x)[:, None] * (1 + x[:, :1] * x[:, 1:]),
                                     hard=True, distance=distance)]),
    inverse=BoundaryIntegralForm(polygon(VERTICES, per_edge=4, tags=["edge"] * len(VERTICES)), Laplace(),
                                 flux=lambda u, n: ops.normal(u, n), given={"edge": Value(exact)}),
    exact=exact,
    # energy: the centroid rule on a triangulation, redrawn every step (points.jitter). On fixed Monte Carlo
    # points a KAN lowers its potential between them (2.4e-2 over 3 seeds; fresh draws: 3.1e-4, seed 0)
    defaults={"train": {"steps": 3000, "eval_every": 500},
              "points": {"n_interior": 3000, "n_boundary": 1000},
              "energy": {"points": {"quadrature": "triangle1", "jitter": True}}},
)
