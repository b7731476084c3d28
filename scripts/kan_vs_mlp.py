"""KAN against MLP at equal parameter count and equal steps, three seeds (the KAN family's benchmark).

    python scripts/kan_vs_mlp.py [--problems heat_multiscale poisson1d_multiscale] [--seeds 3]
                                 [--steps 1000] [--out runs/kan_vs_mlp]

A thin driver over `kinn.compare`: the KAN keeps each problem's recommended settings, the MLP (three equal
hidden layers) is sized to the KAN's parameter count, both get the same Adam steps (no L-BFGS), the same
points and the same seeds. Prints each problem's table (parameters, steps, wall time, held-out relative L2
as mean ± std); the tables and figures are also written under --out. Asserts nothing.
"""
from __future__ import annotations

import argparse

import kinn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["heat_multiscale", "poisson1d_multiscale"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000, help="Adam steps for every run")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--out", default="runs/kan_vs_mlp")
    a = ap.parse_args()
    for name in a.problems:
        c = kinn.compare(name, ("kan", "mlp"), seeds=a.seeds, budget_steps=a.steps, match="params",
                         dtype=a.dtype, out=f"{a.out}/{name}", progress=False)
        print(f"\n## {name}: {a.steps} Adam steps, {a.seeds} seeds, {a.dtype}\n\n{c.table()}\n", flush=True)


if __name__ == "__main__":
    main()
