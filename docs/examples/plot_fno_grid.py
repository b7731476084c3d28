"""
A Fourier neural operator on a grid, physics-informed
=====================================================

The FNO family maps grids to grids. Given the coordinate grid as input and the strong form's residual,
evaluated by finite differences on the lattice, it solves one PDE instance, like the pointwise
families do; held-out points are scored by interpolating the grid output. (Operator learning proper,
`kinn solve darcy --family fno`, trains on a dataset of 1,000 coefficient fields: see the results.)

Command line: `kinn solve poisson2d --family fno --lbfgs 0` (64 × 64 lattice, 2,000 Adam steps).
"""
import os

import kinn

FULL = os.environ.get("KINN_EXAMPLES_FULL") == "1"
smoke = {} if FULL else dict(steps=100, n_interior=256, n_eval=500, model={"modes": 6, "width": 12, "depth": 2})

result = kinn.solve("poisson2d", "fno", out="runs/examples", progress=FULL, lbfgs=0, **smoke)
print(f"held-out relative L2 error of u: {result.errors['rel_l2/u']:.2e} ({result.n_params} parameters)")
