"""KINN example 2: a quarter plate with a hole under uniaxial tension (stress concentration).

[0, 20]² minus the disk of radius 5 at the origin, linear elasticity in plane stress, E = 1000, ν = 0.3,
traction σ_xx = 100 on x = 20, symmetry on x = 0 and y = 0, hole and top free. Reference: the
project's own P3 finite-element solution (scripts/make_plate_hole_reference.py, data/plate_hole.h5).
Inverse form (BINN, as KINN): the boundary integral equation with Kelvin's plane-stress kernels on
30 + 40 + 40 + 30 segments and 20 arc panels, mixed data (symmetry: u_n = 0 and t_s = 0; the load; free).
"""
import math

import torch

from kinn import (BoundaryIntegralForm, BoundaryResidual, Dirichlet, EnergyForm, EnergyInverseProblemForm, Flux,
                  InverseProblemForm, Observations, OutputTransform, Problem, Rectangle, StrongForm, Traction, Unknown,
                  Value, at, mechanics)
from kinn.boundary import Arc, Boundary, Kelvin, Loop, Segment
from kinn.pde.geometry import Disk

E, NU, LOAD, L, R = 1000.0, 0.3, 100.0, 20.0, 5.0


def sigma(u, young=E):  # in units of the load, so that residuals and conditions are O(1)
    return mechanics.stress(u, young, NU, "stress") / LOAD


def load(x):  # the prescribed traction on x = 20 in units of the load, (N, 2)
    return torch.stack([torch.ones_like(x[:, 0]), torch.zeros_like(x[:, 0])], 1)


def free(x):  # the hole and the top edge
    return (abs(x[:, 0] ** 2 + x[:, 1] ** 2 - R**2) < 1e-6) | (abs(x[:, 1] - L) < 1e-6)


def conditions(young=lambda p: E):
    """Symmetry (u·n = 0 and no shear on x = 0, y = 0), the load on x = 20, free hole and top; with
    Young's modulus young(p) of the unknowns p (the inverse problem) or the known E."""
    def t(u, n, p):
        return mechanics.traction(sigma(u, young(p)), n)

    return [
        Dirichlet(0.0, on=at(0, 0.0), component="ux", name="symmetry_x"),
        Dirichlet(0.0, on=at(1, 0.0), component="uy", name="symmetry_y"),
        BoundaryResidual(fn=lambda u, x, n, p=None: t(u, n, p)[:, 1:], on=at(0, 0.0), name="shear_x"),
        BoundaryResidual(fn=lambda u, x, n, p=None: t(u, n, p)[:, :1], on=at(1, 0.0), name="shear_y"),
        BoundaryResidual(fn=lambda u, x, n, p=None: t(u, n, p) - load(x), on=at(0, L), name="load"),
        BoundaryResidual(fn=lambda u, x, n, p=None: t(u, n, p), on=free, name="free"),
    ]


def boundary(scale: int = 1) -> Boundary:
    """KINN's panels (× scale): 30, 40, 40, 30 segments on y = 0, x = 20, y = 20, x = 0 and 20 arcs on the hole."""
    return Boundary([Loop(Segment((R, 0), (L, 0), "bottom").split(30 * scale)
                          + Segment((L, 0), (L, L), "right").split(40 * scale)
                          + Segment((L, L), (0, L), "top").split(40 * scale)
                          + Segment((0, L), (0, R), "left").split(30 * scale)
                          + Arc((0, 0), R, math.pi / 2, 0.0, "hole").split(20 * scale))])


def mises(value, s):  # plane-stress von Mises of the representation's stresses (P, 3): σ_xx, σ_yy, σ_xy
    sxx, syy, sxy = s.T
    return (sxx**2 - sxx * syy + syy**2 + 3 * sxy**2) ** 0.5


ENERGY_BCS = [OutputTransform(lambda x, raw: raw * x / L), Traction(LOAD, on=at(0, L), component="ux", name="load")]

binn = BoundaryIntegralForm(
    boundary(), Kelvin(E / (2 * (1 + NU)), NU, "stress"),
    flux=lambda u, n: mechanics.traction(mechanics.stress(u, E, NU, "stress"), n),
    given={"bottom": (Flux(0.0), Value(0.0)), "left": (Value(0.0), Flux(0.0)), "right": (Flux(LOAD), Flux(0.0)),
          "top": (Flux(0.0), Flux(0.0)), "hole": (Flux(0.0), Flux(0.0))},
    derived={"U": lambda value, s: (value**2).sum(1) ** 0.5, "mises": mises})

# settings plate_hole_inverse shares (its measured runs used them)
SHARED = {
    "train": {"steps": 5000, "lr": 1e-3, "eval_every": 500},
    "points": {"n_interior": 4000, "n_boundary": 400, "n_eval": 5000},
    "model": {"mlp": {"widths": [30, 30, 30]}, "kan": {"hidden": [8, 8, 8], "grid": 10}},
    # KINN's energy form: the centroid rule on a triangulation, KAN [2, 5, 5, 5, 2], G = 15. The
    # triangles are redrawn every step (points.jitter): on fixed centroids a KAN raises a spike
    # at the corner (20, 0), where the load's work sees it and no centroid sees its strain
    "energy": {"points": {"quadrature": "triangle1", "jitter": True},
               "model": {"kan": {"hidden": [5, 5, 5], "grid": 15}}},
    # BINN (KINN): KAN [2, 5, 5, 5, 2], G = 10 (1,050 parameters), MLP 2-30×4-2 with skips;
    # KINN trains 20,000 epochs (lr × 0.3 every 6,666); here 8,000 loss evaluations: 3,000 Adam steps
    # (lr 1e-2 decayed by a cosine) and at most 5,000 L-BFGS evaluations (lbfgs 4,000 × 5/4), float64
    "inverse": {"train": {"steps": 3000, "lbfgs": 4000, "lr": 1e-2, "schedule": "cosine", "dtype": "float64",
                          "eval_every": 1000},
                "model": {"kan": {"hidden": [5, 5, 5], "grid": 10}, "mlp": {"preset": "kinn"}}},
}

# plate_hole's own: the training recipes that reach KINN's figures in the strong and energy forms
RECOMMENDED = {
    **SHARED,
    # KINN's strong form: KAN [2, 8, 8, 8, 2], G = 10, 30,000 Adam epochs. Here 10,000 Adam steps (cosine)
    # and 2,000 L-BFGS iterations in float64, with quintic splines: the residual holds second
    # derivatives, and a cubic spline's second derivative has kinks in its knots, so the loss has
    # kinks in the parameters where Adam's iterates settle and L-BFGS's line search stalls (after 10,000
    # Adam steps it stopped after one iteration); order 5 keeps the residual smooth
    "strong": {"train": {"steps": 10000, "lbfgs": 2000, "schedule": "cosine", "dtype": "float64",
                         "eval_every": 1000},
               "model": {"kan": {"order": 5}}},
    # the energy form: Adam at lr 1e-2 decayed by a cosine to 0, in float64 (on jittered quadrature the
    # estimate of Π is noisy; the decay ends the run at rest). At lr 1e-3 and constant, the von Mises error
    # of three seeds was 8.1e-3 ± 2.3e-3
    "energy": {**SHARED["energy"],
               "train": {"lr": 1e-2, "schedule": "cosine", "dtype": "float64", "eval_every": 1000}},
}

plate_hole = Problem(
    name="plate_hole",
    description="quarter plate [0,20]² with a hole r=5, plane stress, σ_xx=100 on x=20 (KINN ex. 2)",
    domain=Rectangle([0, 0], [L, L]) - Disk([0, 0], R),
    fields=("ux", "uy"),
    # ∇·σ = 0; on x = 0 and y = 0 the normal displacement and the shear traction vanish (symmetry)
    strong=StrongForm(lambda u, x: R * mechanics.equilibrium(sigma(u), u), bcs=conditions()),
    # Π = ∫ ψ − ∫ t·u; symmetry exactly as KINN: u_x = x N_x, u_y = y N_y; free edges are natural
    energy=EnergyForm(lambda u, x: mechanics.elastic_energy(u, E, NU, "stress"), bcs=ENERGY_BCS),
    inverse=binn,
    reference="plate_hole.h5",
    # KINN scores the displacement magnitude and the von Mises stress
    derived={"U": lambda u, x: u.values.square().sum(1).sqrt(),
             "mises": lambda u, x: LOAD * mechanics.von_mises(sigma(u))},
    units={"x": "mm", "y": "mm", "ux": "mm", "uy": "mm", "U": "mm", "mises": "MPa"},  # KINN: E = 1000 MPa
    defaults=RECOMMENDED,
)


# KINN example 7: the same plate with E unknown (start 1,200, true 1,000), fitted to displacements at
# 300 points drawn inside the plate and valued by the FEM reference (not the evaluation points). KINN
# solves it in the strong form; the energy form fits the potential's first variation (Galerkin residual
# against Legendre test functions) and the data
YOUNG = Unknown("E", 1200.0, positive=True, true=E)
plate_hole_inverse = Problem(
    name="plate_hole_inverse",
    description="plate_hole with Young's modulus unknown (start 1200, true 1000), fitted to displacements (KINN ex. 7)",
    domain=plate_hole.domain,
    fields=("ux", "uy"),
    strong=InverseProblemForm(lambda u, x, p: R * mechanics.equilibrium(sigma(u, p["E"]), u),
                        unknowns=[YOUNG], observations=Observations(n=300), bcs=conditions(young=lambda p: p["E"])),
    energy=EnergyInverseProblemForm(lambda u, x, p: mechanics.elastic_energy(u, p["E"], NU, "stress"),
                                    unknowns=[YOUNG], observations=Observations(n=300), bcs=ENERGY_BCS),
    reference="plate_hole.h5",
    defaults=SHARED,
)
