"""KINN example 9: the highest derivative order in the catalogue, a wedge under uniform pressure.

The half-plane wedge 0 ≤ θ ≤ α = π (the plane y ≥ 0 with its surface y = 0 as the faces θ = 0 and θ = π)
carries a uniform pressure q on the face θ = 0 (x > 0); the face θ = π is free. Airy's stress function
φ = r² f(θ) satisfies the biharmonic equation exactly when

    f'''' + 4 f'' = 0   on 0 < θ < α,

a fourth-order ODE in θ alone, and the stresses are independent of r:

    σ_r = 2f + f'',   σ_θ = 2f,   σ_rθ = −f'.

The faces' tractions fix f(0) = −q/2, f'(0) = 0, f(α) = 0, f'(α) = 0, imposed exactly as in KINN by a
cubic that meets them plus a network times the square of θ(α − θ) (normalised to at most 1 here).

At α = π these four conditions do not fix f: f + A(cos 2θ − 1) meets them and the ODE for every A, the
stress −4A along the surface (σ_xx = −4A everywhere, which loads no face). The solution of a load on half
the surface, as the limit of finite loads, has no stress along the free surface far from the load: σ_r = 0
on θ = π, i.e. f''(π) = 0, here a soft condition. Then (Barber, Elasticity, the half-plane problems)

    f(θ) = −q/(4π) (2π − 2θ + sin 2θ),
    σ_r = −q/(2π) (2π − 2θ − sin 2θ),  σ_θ = −q/(2π) (2π − 2θ + sin 2θ),  σ_rθ = −q/(2π) (1 − cos 2θ).

A KAN of cubic B-splines has no fourth derivative of its own: the KAN family refuses a spline-only one
(base = "none") up front, and accepts the SiLU base branch, which carries it (`Problem(order=4)`). It
trains, but poorly: the splines' third derivative jumps at the first layer's knots, and a pointwise
residual cannot see the jumps, so the network may glue pieces of different solutions there. Measured by
`scripts/wedge_orders.py --n-interior 300` (1,500 Adam + 500 L-BFGS, seed 0): σ_r to 3.8e-2 with cubic
splines and SiLU, 3.9e-4 with order 4 (whose third derivative is continuous), 9.7e-6 with order 5; an
MLP 1.4e-5. The recommended KAN is therefore order 5.
"""
from math import pi

import torch

from kinn import BoundaryResidual, Interval, OutputTransform, Problem, StrongForm
from kinn.pde import geometry, ops

Q = 5.0  # the pressure on the face θ = 0
ALPHA = pi  # the wedge's angle: a half-plane


def exact(theta):  # (N, 1) -> (N, 1)
    return -Q / (4 * pi) * (2 * pi - 2 * theta + torch.sin(2 * theta))


def faces(theta, raw):
    """f = P(θ) + (4 θ(α − θ) / α²)² N(θ): P is the cubic with f(0) = −q/2, f'(0) = f(α) = f'(α) = 0."""
    t = theta / ALPHA
    cubic = -Q / 2 * (2 * t**3 - 3 * t**2 + 1)
    return cubic + (4 * t * (1 - t)) ** 2 * raw


def residual(u, theta):
    """f'''' + 4 f'': the third and fourth derivatives as derivatives of the second (`ops.div(q, u)`)."""
    f2 = ops.laplacian(u)
    f4 = ops.div(ops.div(f2, u), u)
    return f4 + 4 * f2


def sigma_r(u, theta):
    return 2 * u[:, 0] + ops.laplacian(u)[:, 0]


def sigma_theta(u, theta):
    return 2 * u[:, 0]


def sigma_rtheta(u, theta):
    return -ops.grad(u)[:, 0]


wedge = Problem(
    name="wedge",
    description="Airy stress function r² f(θ) of a half-plane under pressure on half its surface: "
                "f'''' + 4f'' = 0 (KINN ex. 9, fourth order)",
    domain=Interval(0, ALPHA),
    coords=("theta",),
    fields=("f",),
    strong=StrongForm(residual, bcs=[
        OutputTransform(faces),
        # σ_r = 2f + f'' = 0 on the free face θ = α, where f = 0: the condition that fixes the stress along
        # the surface (see the module docstring)
        BoundaryResidual(fn=lambda u, x, n: ops.laplacian(u), on=geometry.at(0, ALPHA), name="free_face"),
    ]),
    exact=exact,
    order=4,
    derived={"sigma_r": sigma_r, "sigma_theta": sigma_theta, "sigma_rtheta": sigma_rtheta},
    # KINN: 1,001 points resampled every 10 epochs, Adam 1e-3 decayed ×0.1 every 1,000, 1,500 epochs
    defaults={"train": {"steps": 1500, "lr": 1e-3, "schedule": "step", "gamma": 0.1, "step_size": 1000,
                        "resample_every": 10, "dtype": "float64", "eval_every": 250},
              "points": {"n_interior": 1001, "n_boundary": 2, "n_eval": 2000},
              "model": {"kan": {"hidden": [5, 5], "grid": 5, "order": 5}, "mlp": {"widths": [30, 30, 30]}}},
)
