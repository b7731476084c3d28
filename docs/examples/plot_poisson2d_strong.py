"""
Poisson's equation in the strong form (MLP)
===========================================

-Δu = 2π² sin πx sin πy on the unit square, u = 0 on the boundary: the catalogue's `poisson2d`, trained
by an MLP on the squared residual at collocation points plus the weighted boundary misfit. The run
directory holds the fields, the history and two figures.

Command line: `kinn solve poisson2d --family mlp` (the recommended budget: 2,000 Adam steps then 1,000
L-BFGS iterations, about 45 s on 2 cores).
"""
import os

import kinn

FULL = os.environ.get("KINN_EXAMPLES_FULL") == "1"  # the problem's recommended budget, else a smoke run
smoke = {} if FULL else dict(steps=300, lbfgs=50, n_interior=500, n_boundary=100, n_eval=1000)

result = kinn.solve("poisson2d", "mlp", out="runs/examples", progress=FULL, **smoke)

print(f"held-out relative L2 error of u: {result.errors['rel_l2/u']:.2e}")
print(f"u(0.5, 0.5) = {result.predict([[0.5, 0.5]])['u'][0]:.4f} (exact 1)")
print("figures:", *sorted(p.name for p in (result.run_dir / "figures").iterdir()))
