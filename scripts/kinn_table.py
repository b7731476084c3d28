#!/usr/bin/env python
"""Reproduce the KINN table: for every example and form in the catalogue, KAN and MLP at equal parameter
counts and equal Adam steps over seeds, held-out errors next to the published ones (../shared/KINN.md).

    python scripts/kinn_table.py [--seeds 3] [--budget-steps N] [--only plate_hole,composite] [--out DIR]

Each row runs `kinn.compare(problem, ("kan", "mlp"), form, match="params")`: the KAN takes KINN's
network for that example, the MLP the width that gives it the same parameter count; both get the
problem's recommended points and the same steps (the problem's default, or --budget-steps). Errors are
relative L2 on held-out points (the reference's own nodes, or fresh points for exact solutions), as
mean ± std over seeds; published figures are at the authors' last epoch on their training points.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

import kinn

# (problem, form, run settings, KINN's KAN, {metric: (published MLP, published KAN)})
EXAMPLES = [
    ("heat_multiscale", "strong", {}, {"hidden": [5, 5], "grid": 100}, {"u": (None, None)}),
    ("plate_hole", "strong", {}, {"hidden": [8, 8, 8], "grid": 10},
     {"U": (1.23e-2, 6.30e-3), "mises": (9.19e-3, 4.81e-3)}),
    ("plate_hole", "energy", {"points": {"quadrature": "triangle1"}}, {"hidden": [5, 5, 5], "grid": 15},
     {"U": (1.54e-3, 9.19e-4), "mises": (1.15e-2, 5.17e-3)}),
    ("neo_hookean_beam", "energy", {}, {"hidden": [5, 5, 5], "grid": 15},
     {"uy": (1.8e-2, 2.2e-3)}),  # Simpson rule (the problem's default); KINN: MC 4.8e-2 / 3.3e-2, trapezoid 1.5e-2 / 2.5e-3
    ("composite", "energy", {}, {"hidden": [5, 5], "grid": 20}, {"u": (1.52e-1, 1.13e-2)}),
    ("koch_snowflake", "strong", {}, {"hidden": [5, 5], "grid": 10}, {"u": (1.94e-2, 1.19e-2)}),
    ("koch_snowflake", "energy", {}, {"hidden": [5, 5], "grid": 10}, {"u": (1.28e-2, 1.56e-2)}),
    ("plate_hole_inverse", "inverse", {}, {"hidden": [8, 8, 8], "grid": 10}, {"E": (None, None)}),
    # a network per half, KINN's 2 x [2, 5, 5, 1]; energy with the centroid rule on each half's triangulation
    ("crack_mode3", "strong", {}, {"hidden": [5, 5], "grid": 10}, {"u": (6.25e-2, 2.99e-2)}),
    ("crack_mode3", "energy", {"points": {"quadrature": "triangle1"}}, {"hidden": [5, 5], "grid": 10},
     {"u": (1.94e-2, 6.55e-3)}),
    ("conductivity_inverse", "inverse", {}, {"hidden": [15, 15], "grid": 20}, {"K": (None, None)}),
]


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):.2e} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.1e}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget-steps", type=int, default=None, help="Adam steps for both (default: the problem's)")
    p.add_argument("--only", default="", help="comma-separated problem names")
    p.add_argument("--out", default=None, help="parent folder of the comparisons (default runs/)")
    a = p.parse_args()
    only = {n.strip() for n in a.only.split(",") if n.strip()}
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"{a.seeds} seeds; steps: {a.budget_steps or 'each problem’s default'}")
    lines = ["| example | form | metric | MLP (ours) | MLP (KINN) | KAN (ours) | KAN (KINN) | params | time/step KAN/MLP |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, form, settings, kan, published in EXAMPLES:
        if only and name not in only:
            continue
        t = time.perf_counter()
        out = f"{a.out}/{name}-{form}" if a.out else None
        c = kinn.compare(name, ("kan", "mlp"), form, seeds=a.seeds, budget_steps=a.budget_steps, match="params",
                         models={"kan": kan}, out=out, config={k: v for k, v in settings.items()}, progress=False)
        rows = {r.family: r for r in c.rows}
        ratio = rows["kan"].time_per_step / rows["mlp"].time_per_step
        for metric, (mlp_pub, kan_pub) in published.items():
            key = f"rel_error/{metric}" if name.endswith("inverse") else f"rel_l2/{metric}"
            ours = {fam: [c.results[fam, s].errors[key] for s in c.seeds] for fam in ("mlp", "kan")}
            pub = [f"{v:.2e}" if v is not None else "n/p" for v in (mlp_pub, kan_pub)]
            lines.append(f"| {name} | {form} | {metric} | {_cell(ours['mlp'])} | {pub[0]} | {_cell(ours['kan'])} | "
                         f"{pub[1]} | {rows['kan'].params} / {rows['mlp'].params} | {ratio:.1f} |")
        print(f"{name} {form}: {time.perf_counter() - t:.0f} s", flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
