"""The problem file `kinn new NAME` writes: a small, working problem to edit into your own."""
from __future__ import annotations

from pathlib import Path

from kinn.errors import KinnError

TEMPLATE = '''"""{name}: a problem of your own, solved by any kinn family.

    kinn solve {file}:{name} [--family mlp|kan] [--steps N] [--lbfgs N]
    kinn score RUN_DIR --reference FILE        # errors against a solution you computed elsewhere

Edit the domain, the residual and the conditions. With neither `exact=` nor `reference=`, a run reports
the residual and the conditions' misfits on held-out points instead of errors.
"""
from kinn import Dirichlet, Disk, Problem, StrongForm, ops


def residual(u, x):
    """-Laplacian(u) - f, written with kinn.ops on the field handle u at the points x (N, 2)."""
    f = 1.0 + x[:, :1] ** 2                # a source term, any torch expression of x
    return -ops.laplacian(u) - f


{name} = Problem(
    name="{name}",
    domain=Disk([0.0, 0.0], 1.0),         # kinn.Interval, Rectangle, Polygon, GeometryXTime(...), ...
    fields=("u",),
    strong=StrongForm(residual, bcs=[Dirichlet(0.0)]),   # u = 0 on the whole boundary (soft, weight 1)
    # exact=lambda x: ...,                  # a torch function x (N, 2) -> (N, 1), if you know the solution
    # reference="my_solution.h5",           # or reference data, interpolated to the evaluation points
    # defaults={{"train": {{"steps": 2000, "lbfgs": 1000}}}},   # settings that work for this problem
    description="my problem: -Laplacian u = 1 + x^2 on the unit disk, u = 0 on its boundary",
)
'''


def write_template(name: str, out: str | None = None) -> Path:
    """Write the template for problem `name` to `out` (default NAME.py); never overwrite a file."""
    if not name.isidentifier():
        raise KinnError(f"problem name '{name}' must be a Python identifier (letters, digits, _; not first a digit)")
    path = Path(out or f"{name}.py")
    if path.suffix != ".py":
        raise KinnError(f"the problem file must end in .py, got {path}")
    if path.exists():
        raise KinnError(f"{path} exists; kinn new never overwrites a file: give another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(name=name, file=path))
    return path
