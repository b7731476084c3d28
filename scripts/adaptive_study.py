"""Before/after rows for the adaptive training strategies (issue 19): each strategy off and on, at the same
budget (Adam steps, then L-BFGS), float64, over a few seeds, on a small problem where it should help.

    PYTHONPATH=$PWD python scripts/adaptive_study.py            # 1,250 s of training, one thread
    PYTHONPATH=$PWD python scripts/adaptive_study.py --seeds 1  # a third of that

Prints one markdown row per strategy: the held-out relative L2 error off and on (median and each seed), and
the training time. A run "off" shared by two rows (the same settings) is run once.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

import kinn

BURGERS = dict(steps=3000, lbfgs=500, lr=1e-3, schedule="none", eval_every=3000, weights={},
               model={"widths": [20, 20, 20, 20]}, points={"n_boundary": 100, "n_initial": 200, "n_eval": 5000})
UNIFORM = dict(BURGERS, points=dict(BURGERS["points"], n_interior=1050))
# RAR and RAR-D end with as many points as their uniform baseline: 500 + 11 rounds x 50 = 1050, added with
# Wu et al.'s sharp-front density (k = 2, c = 0); RAD redraws its 1050 points every 250 steps with their
# default density (k = 1, c = 1: with c = 0 every point goes to the shock and the rest of the domain is lost)
GROW = dict(n_interior=500, adapt_every=250, adapt_points=50, adapt_k=2.0, adapt_c=0.0)
STUDIES = [
    ("rar", "burgers1d", UNIFORM, dict(points=dict(BURGERS["points"], adaptive="rar", **GROW))),
    ("rar-d", "burgers1d", UNIFORM, dict(points=dict(BURGERS["points"], adaptive="rar-d", **GROW))),
    ("rad", "burgers1d", UNIFORM, dict(points=dict(BURGERS["points"], n_interior=1050, adaptive="rad", adapt_every=250,
                                                   adapt_k=1.0, adapt_c=1.0))),
    ("causal", "burgers1d", UNIFORM, dict(causal=1.0, causal_slices=16)),
    ("gradnorm", "poisson2d", dict(steps=2000, lbfgs=500, lr=1e-3, schedule="none", eval_every=2000, weights={},
                                   model={"widths": [32, 32, 32]},
                                   points={"n_interior": 1000, "n_boundary": 200, "n_eval": 5000}),
     dict(weighting="gradnorm")),
    ("rba", "helmholtz2d", dict(steps=3000, lbfgs=500, lr=1e-3, schedule="none", eval_every=3000, weights={},
                                model={"widths": [32, 32, 32]},
                                points={"n_interior": 1000, "n_boundary": 400, "n_eval": 5000}),
     dict(weighting="rba")),
]


def run(problem: str, settings: dict, seed: int) -> tuple[float, float]:
    """(held-out relative L2 error of u, training seconds) of one run."""
    r = kinn.solve(problem, "mlp", write=False, progress=False, dtype="float64", seed=seed, **settings)
    return r.errors["rel_l2/u"], r.history.train_time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", help="comma-separated strategies (default: all)")
    ap.add_argument("--json", help="also write the measurements to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # one core: the timings are comparable between rows
    done: dict[str, tuple[float, float]] = {}
    rows, t0 = [], time.perf_counter()
    print("| strategy | problem | rel. L2 off: median (seeds) | rel. L2 on: median (seeds) | on/off | train s off / on |")
    print("|---|---|---|---|---|---|")
    for name, problem, base, change in STUDIES:
        if args.only and name not in args.only.split(","):
            continue
        out = {}
        for label, settings in (("off", base), ("on", {**base, **change})):
            res = []
            for seed in range(args.seeds):
                key = json.dumps([problem, settings, seed], sort_keys=True)
                if key not in done:
                    done[key] = run(problem, settings, seed)
                res.append(done[key])
            out[label] = res
        err = {k: [e for e, _ in v] for k, v in out.items()}
        sec = {k: statistics.median(t for _, t in v) for k, v in out.items()}
        med = {k: statistics.median(v) for k, v in err.items()}
        cells = {k: f"{med[k]:.2e} ({', '.join(f'{e:.1e}' for e in err[k])})" for k in err}
        print(f"| {name} | {problem} | {cells['off']} | {cells['on']} | {med['on'] / med['off']:.2f} | "
              f"{sec['off']:.0f} / {sec['on']:.0f} |", flush=True)
        rows.append({"strategy": name, "problem": problem, "off": out["off"], "on": out["on"], "change": change})
    print(f"\n{args.seeds} seed(s), float64, one thread; total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
