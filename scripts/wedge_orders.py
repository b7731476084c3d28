"""The wedge (KINN example 9, f'''' + 4f'' = 0) with KANs of several spline orders and an MLP, at equal
budgets and seeds: held-out relative L2 errors of f and of the stresses σ_r, σ_θ, σ_rθ.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/wedge_orders.py [--steps 1500] [--lbfgs 500] [--seeds 1]

Prints one row per run. A cubic-spline KAN (order 3) is accepted with the SiLU branch, which carries the
fourth derivative; orders 4 and 5 carry it in the splines as well.
"""
import argparse
import time

import kinn

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=1500)
ap.add_argument("--lbfgs", type=int, default=500)
ap.add_argument("--seeds", type=int, default=1)
ap.add_argument("--n-interior", type=int, default=1001)
ap.add_argument("--runs", default="kan3,kan4,kan5,mlp", help="kan<order> or mlp, comma-separated")
a = ap.parse_args()

print(f"wedge: {a.steps} Adam steps + {a.lbfgs} L-BFGS, {a.n_interior} points, float64")
for name in a.runs.split(","):
    family, model = ("mlp", {}) if name == "mlp" else ("kan", {"order": int(name[3:])})
    for seed in range(a.seeds):
        t0 = time.perf_counter()
        r = kinn.solve("wedge", family, model=model, steps=a.steps, lbfgs=a.lbfgs, seed=seed, write=False,
                       progress=False, n_interior=a.n_interior)
        e = {k.split("/")[1]: v for k, v in r.errors.items() if k.startswith("rel_l2/")}
        print(f"{name:<5} seed {seed} {r.n_params:>5} params  " + "  ".join(f"{k} {v:.2e}" for k, v in e.items())
              + f"  ({r.history.stop_reason}; {time.perf_counter() - t0:.0f} s)", flush=True)
