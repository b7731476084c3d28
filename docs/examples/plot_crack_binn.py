"""
A crack in the inverse form (boundary integral equations, BINN)
===============================================================

KINN's example 3 in its *inverse* form: Laplace's equation on the upper half of a cracked square with
u = √r sin(θ/2) given on the boundary. The network is read on the boundary only; the boundary integral
equation's residual, assembled once in float64, is the loss, and the interior follows from the
representation formula.

Command line: `kinn solve crack_mode3 --family kan --form inverse`.
"""
import os

import kinn

FULL = os.environ.get("KINN_EXAMPLES_FULL") == "1"
smoke = {} if FULL else dict(steps=300, n_eval=500)

result = kinn.solve("crack_mode3", "mlp", "inverse", out="runs/examples", progress=FULL, **smoke)

print(f"held-out relative L2 error of u: {result.errors['rel_l2/u']:.2e}")
print("the panels and their data are drawn in", result.run_dir / "figures" / "boundary.png")
