"""KINN example 4: a Neo-Hookean cantilever (finite strain), by the Deep Energy Method.

Beam [0, 4] × [0, 1] in plane strain, compressible Neo-Hookean ψ = λ/2 (ln J)² − μ ln J + μ/2 (tr C − 2),
E = 1000, ν = 0.3; clamped at x = 0 (u = x/4 · N, exact), traction (0, −5) on x = 4. Π = ∫ψ − ∫ t·u.
Reference: the project's own P2 finite-element solution by Newton's method (scripts/
make_neo_hookean_reference.py, data/neo_hookean_beam.h5). KINN compares Monte Carlo, trapezoid and
Simpson rules on a 200 × 50 grid and trains with L-BFGS; here the Simpson rule's cells are redrawn
at random every step (`points.jitter`), which a KAN needs.
"""
import torch

from kinn.pde import mechanics
from kinn import EnergyForm, OutputTransform, Problem, Rectangle, Traction, at

E, NU, LENGTH, LOAD = 1000.0, 0.3, 4.0, -5.0

neo_hookean_beam = Problem(
    name="neo_hookean_beam",
    description="Neo-Hookean cantilever [0,4]×[0,1], clamped at x=0, traction (0,-5) at x=4 (KINN ex. 4)",
    domain=Rectangle([0, 0], [LENGTH, 1]),
    fields=("ux", "uy"),
    energy=EnergyForm(lambda u, x: mechanics.neo_hookean_energy(u, E, NU), bcs=[
        # clamped exactly; the factor 1/4 keeps a random initial network's J = det F > 0 (ln J is
        # undefined otherwise), the tip deflection ~1.1 then needs raw outputs ~4.5
        OutputTransform(lambda x, raw: 0.25 * raw * x[:, :1] / LENGTH),
        Traction(lambda x: torch.stack([torch.zeros_like(x[:, 0]), torch.full_like(x[:, 0], LOAD)], 1),
                 on=at(0, LENGTH), name="load"),
    ]),
    reference="neo_hookean_beam.h5",
    derived={"mises": lambda u, x: mechanics.neo_hookean_von_mises(u, E, NU)},
    # jitter: a fresh stratified draw of the rule's cells every step. On the fixed Simpson grid a KAN folds
    # the beam between the nodes (J <= 0 where no node looks) and its potential falls far below the true one
    defaults={"train": {"steps": 1000, "lbfgs": 1000, "dtype": "float64", "eval_every": 250},
              "points": {"n_interior": 10000, "n_boundary": 100, "quadrature": "simpson", "jitter": True,
                         "n_eval": 5000},
              "model": {"mlp": {"widths": [30, 30, 30]}, "kan": {"hidden": [5, 5, 5], "grid": 15}}},
)
