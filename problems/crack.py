"""KINN example 3: the mode-III crack, a singular solution.

Δu = 0 on [−1, 1]² cut by the crack x ≤ 0, y = 0; exact u = √r sin(θ/2), θ ∈ (−π, π], which jumps by
2√r across the crack and has an unbounded gradient at its tip. Dirichlet data from the exact solution on
the outer boundary; the crack faces are traction-free (∂u/∂y = 0). Two subdomains, y ≥ 0 and y < 0,
each with its own network, joined across the ligament x > 0, y = 0:

- strong: Laplace residual in each half, soft Dirichlet data, ∂u/∂y = 0 on both crack faces, and
  continuity of value and normal flux across the ligament;
- energy: Π = ∫ ½|∇u|² over each half with its own rule (triangle or box rules never straddle the crack),
  the faces free (natural), u = P + d·N exactly on the outer boundary, and a value penalty across the
  ligament (flux continuity is natural). The lift P carries the boundary data in along rays from the
  tip (`radial`): it matches them on the outer boundary and knows nothing of the singularity inside;
- inverse (BINN, as KINN): the boundary integral equation on the upper half [−1, 1] × [0, 1] only, whose
  boundary data are all Dirichlet (u = √(−x) on the crack face, 0 on the ligament, the exact solution
  elsewhere): 4 × 20 panels (uniform; `upper_half` grades them toward the tip), the flux (1/√r at the
  tip) from the network, the loss weighed by panel length.
"""
import torch

from kinn.pde import ops
from kinn import (BoundaryIntegralForm, Dirichlet, EnergyForm, Interface, Problem, Rectangle, SegmentResidual,
                  StrongForm, Value)
from kinn.boundary import Laplace, polygon


def exact(x):  # (N, 1)
    r = x.norm(dim=1, keepdim=True)
    theta = torch.atan2(x[:, 1:], x[:, :1])
    return r.sqrt() * torch.sin(theta / 2)


def radial(f):
    """Boundary data f (a function of points (N, 2)) carried in from the boundary of [−1, 1]² along rays from
    the crack tip, scaled by the L∞ radius: P(x) = ‖x‖∞ f(x / ‖x‖∞). P equals f on the boundary, is
    continuous across the ligament and jumps across the crack (rays keep their side), and grows like r at
    the tip: it knows where the crack is, not the √r singularity."""

    def lift(x):
        rho = x.abs().amax(1, keepdim=True).clamp_min(1e-12)
        return rho * f(x / rho)

    return lift


def box_distance(x):  # zero on the outer boundary, positive inside
    return (1 - x[:, 0] ** 2) * (1 - x[:, 1] ** 2)


def laplace_energy(u, x):
    return 0.5 * ops.grad(u).square().sum(1)


LEFT, TIP, RIGHT = (-1.0, 0.0), (0.0, 0.0), (1.0, 0.0)


def upper_half(grading: float = 1.0):
    """The upper half's boundary for the inverse form: KINN's 4 × 20 panels, the crack face and the
    ligament (10 panels each) graded geometrically toward the tip, each panel `grading` times as long as
    the one before (1: uniform, as KINN)."""
    return polygon([LEFT, TIP, RIGHT, (1, 1), (-1, 1)], [10, 10, 20, 20, 20],
                   ["face", "ligament", "right", "top", "left"], ratio=[grading, 1 / grading, 1, 1, 1])


# Uniform panels, measured (scripts/binn_table.py, seeds 0-2): grading 0.5 lowers the direct BEM solution's
# error inside from 1.4e-5 to 1.4e-8, but the trained networks, which cannot follow the 1/√r flux on the
# tip's small panels, do worse on it (KAN 7.1e-4, MLP 9.8e-4 against 6.3e-4 and 8.2e-4 uniform). The loss
# weighs residuals by panel length (by_length; KAN 8.2e-4, MLP 8.5e-4 without)
UPPER = upper_half(1.0)

crack_mode3 = Problem(
    name="crack_mode3",
    description="Δu = 0 on [-1,1]² with a crack x ≤ 0, y = 0; u = √r sin(θ/2) (KINN ex. 3, singular)",
    domain=Rectangle([-1, -1], [1, 1]),
    subdomains={"upper": Rectangle([-1, 0], [1, 1]), "lower": Rectangle([-1, -1], [1, 0])},
    strong=StrongForm(lambda u, x: ops.laplacian(u), bcs=[
        Dirichlet(exact, weight=10.0),
        SegmentResidual(LEFT, TIP, fn=lambda u, x, n: ops.normal(u, n), part="upper", name="face+"),
        SegmentResidual(LEFT, TIP, fn=lambda u, x, n: ops.normal(u, n), part="lower", name="face-"),
        Interface(TIP, RIGHT, a="upper", b="lower", weight=10.0, name="ligament"),
    ]),
    energy=EnergyForm(laplace_energy, bcs=[
        Dirichlet(radial(exact), hard=True, distance=box_distance),
        Interface(TIP, RIGHT, a="upper", b="lower", flux=False, weight=100.0, name="ligament"),
    ]),
    inverse=BoundaryIntegralForm(UPPER, Laplace(), flux=lambda u, n: ops.normal(u, n),
                                 given={tag: Value(exact) for tag in UPPER.tags}, by_length=True),
    exact=exact,
    # KINN: KAN 2 x [2, 5, 5, 1], G = 10 (strong) and [2, 5, 5, 1], G = 10 (energy, 2,500 epochs). In the
    # energy form the KAN needs a smaller step: lr 1e-3 gave 5.6e-2, 3e-4 5.6e-3 (3,000 steps, seed 0)
    defaults={"train": {"steps": 3000, "eval_every": 500},
              "points": {"n_interior": 4000, "n_boundary": 400},
              "model": {"kan": {"hidden": [5, 5], "grid": 10}},
              "energy": {"points": {"quadrature": "triangle1"}, "kan": {"train": {"lr": 3e-4}}},
              # BINN (KINN): KAN [2, 5, 5, 5, 1], G = 10 (975 parameters), MLP 2-30×4-1, 2,500 epochs, lr 1e-3
              "inverse": {"train": {"steps": 2500, "eval_every": 500},
                          "model": {"kan": {"hidden": [5, 5, 5], "grid": 10}, "mlp": {"widths": [30, 30, 30, 30]}}}},
)
