"""KINN example 2: a quarter plate with a hole under uniaxial tension (stress concentration).

[0, 20]² minus the disk of radius 5 at the origin, linear elasticity in plane stress, E = 1000, ν = 0.3,
traction σ_xx = 100 on x = 20, symmetry on x = 0 and y = 0, hole and top free. Reference: the
project's own P3 finite-element solution (scripts/make_plate_hole_reference.py, data/plate_hole.h5).
"""
import torch

from kinn import (BoundaryResidual, Dirichlet, EnergyForm, OutputTransform, Problem, Rectangle, StrongForm, Traction,
                  at, mechanics)
from kinn.geometry import Disk

E, NU, LOAD, L, R = 1000.0, 0.3, 100.0, 20.0, 5.0


def sigma(u):  # in units of the load, so that residuals and conditions are O(1)
    return mechanics.stress(u, E, NU, "stress") / LOAD


def load(x):  # the prescribed traction on x = 20 in units of the load, (N, 2)
    return torch.stack([torch.ones_like(x[:, 0]), torch.zeros_like(x[:, 0])], 1)


def free(x):  # the hole and the top edge
    return (abs(x[:, 0] ** 2 + x[:, 1] ** 2 - R**2) < 1e-6) | (abs(x[:, 1] - L) < 1e-6)


plate_hole = Problem(
    name="plate_hole",
    description="quarter plate [0,20]² with a hole r=5, plane stress, σ_xx=100 on x=20 (KINN ex. 2)",
    domain=Rectangle([0, 0], [L, L]) - Disk([0, 0], R),
    fields=("ux", "uy"),
    # ∇·σ = 0; on x = 0 and y = 0 the normal displacement and the shear traction vanish (symmetry)
    strong=StrongForm(lambda u, x: R * mechanics.equilibrium(sigma(u), u), bcs=[
        Dirichlet(0.0, on=at(0, 0.0), component="ux", name="symmetry_x"),
        Dirichlet(0.0, on=at(1, 0.0), component="uy", name="symmetry_y"),
        BoundaryResidual(fn=lambda u, x, n: mechanics.traction(sigma(u), n)[:, 1:], on=at(0, 0.0), name="shear_x"),
        BoundaryResidual(fn=lambda u, x, n: mechanics.traction(sigma(u), n)[:, :1], on=at(1, 0.0), name="shear_y"),
        BoundaryResidual(fn=lambda u, x, n: mechanics.traction(sigma(u), n) - load(x), on=at(0, L), name="load"),
        BoundaryResidual(fn=lambda u, x, n: mechanics.traction(sigma(u), n), on=free, name="free"),
    ]),
    # Π = ∫ ψ − ∫ t·u; symmetry exactly as KINN: u_x = x N_x, u_y = y N_y; free edges are natural
    energy=EnergyForm(lambda u, x: mechanics.elastic_energy(u, E, NU, "stress"), bcs=[
        OutputTransform(lambda x, raw: raw * x / L),
        Traction(LOAD, on=at(0, L), component="ux", name="load"),
    ]),
    reference="plate_hole.h5",
    # KINN scores the displacement magnitude and the von Mises stress
    derived={"U": lambda u, x: u.values.square().sum(1).sqrt(),
             "mises": lambda u, x: LOAD * mechanics.von_mises(sigma(u))},
    defaults={"train": {"steps": 5000, "lr": 1e-3, "eval_every": 500},
              "points": {"n_interior": 4000, "n_boundary": 400, "n_eval": 5000},
              "model": {"mlp": {"widths": [30, 30, 30]}, "kan": {"hidden": [8, 8, 8], "grid": 10}}},
)
