"""
Comparing families: MLP against KAN at equal parameters
=======================================================

`kinn.compare` trains each family on the same points, seeds and budget, sizes the KAN's widths to the
MLP's parameter count, and writes a table (markdown, CSV, JSON), `error_vs_time.png` (held-out error
against training time, evaluated at about 25 points of every run) and `fields.png` (every family's
prediction on the reference's colour scale, and its error).

Command line: `kinn compare poisson2d --families mlp,kan,deepxde --seeds 3`.
"""
import os

import kinn

FULL = os.environ.get("KINN_EXAMPLES_FULL") == "1"
smoke = {} if FULL else dict(budget_steps=150, n_interior=400, n_boundary=80, n_eval=800)

c = kinn.compare("poisson2d", families=("mlp", "kan"), seeds=3 if FULL else 1, out="runs/examples/compare",
                 progress=FULL, **smoke)
print(c.table())
