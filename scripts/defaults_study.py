"""Which defaults work on a problem nobody tuned? Catalogue problems run with their recommended settings
switched off (`kinn.solve(..., tuned=False)`), under today's defaults and under candidate budgets; prints
a markdown table of held-out relative L2 error and wall time per run, and the median ratios against the
first candidate (the old defaults unless --candidates says otherwise). The candidates are built up one
change at a time, so each change is measured.

    PYTHONPATH=$PWD python scripts/defaults_study.py [--scale 0.4] [--problems a,b] [--family mlp]

--scale multiplies every Adam and L-BFGS budget (the old defaults' 5,000 Adam steps included), for a
short study on a slow machine; the table says which scale it ran at. Times are the process's CPU time on
one thread (torch.set_num_threads(1)), which a machine shared with other jobs does not distort as it does
wall time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import kinn
from kinn.run import defaults

PROBLEMS = ("poisson2d", "helmholtz2d", "burgers1d", "poisson1d_multiscale", "koch_snowflake")
OLD_POINTS = {"n_interior": 2000, "n_boundary": 400, "n_initial": 400}  # PointsConfig before #17
OLD = {"steps": 5000, "lbfgs": 0, "dtype": "float32", "schedule": "none"}  # TrainConfig before #17
CANDIDATES = {  # each adds one change to the one before; "new" is kinn.run.defaults as it stands
    "old": {**OLD, "points": OLD_POINTS},
    "+lbfgs": {**OLD, "steps": 2000, "lbfgs": 1000, "points": OLD_POINTS},
    "+float64": {**OLD, "steps": 2000, "lbfgs": 1000, "dtype": "float64", "points": OLD_POINTS},
    "lbfgs-heavy": {"steps": 500, "lbfgs": 4000, "dtype": "float64", "schedule": "cosine"},
    "new": {},
    # the default network, by measurement: new budget, other MLP shapes than 3 x 64
    "mlp-4x50": {"model": {"widths": [50, 50, 50, 50]}},
    "mlp-3x100": {"model": {"widths": [100, 100, 100]}},
    "kan-5x5": {"model": {"hidden": [5, 5]}},  # --family kan: the KAN family's own default, before "new"'s
}


def run(problem: str, family: str, settings: dict, scale: float, out: str, cache: dict) -> tuple[float, float]:
    kw = {k: v for k, v in settings.items()}
    for key in ("steps", "lbfgs"):
        kw[key] = max(int(round(kw.get(key, defaults.BUDGET[key]) * scale)), 0)
    # a cached run is one of these exact settings, under these exact defaults
    key = json.dumps([problem, family, kw, defaults.BUDGET, defaults.INTERIOR], sort_keys=True)
    if key in cache:
        return tuple(cache[key])
    start = time.process_time()
    r = kinn.solve(problem, family, tuned=False, out=out, progress=False, seed=0, **kw)
    errs = [v for k, v in r.errors.items() if k.startswith("rel_l2/")]
    cache[key] = (max(errs), time.process_time() - start)
    return tuple(cache[key])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--problems", default=",".join(PROBLEMS))
    p.add_argument("--family", default="mlp")
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--cache", help="a JSON file of finished runs: reused when problem, settings and defaults match")
    a = p.parse_args()
    cache = json.loads(Path(a.cache).read_text()) if a.cache and Path(a.cache).exists() else {}
    torch.set_num_threads(1)
    names, cands = a.problems.split(","), a.candidates.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as out:
        for name in names:
            for c in cands:
                results[name, c] = run(name, a.family, CANDIDATES[c], a.scale, out, cache)
                if a.cache:
                    Path(a.cache).write_text(json.dumps(cache, indent=1))
                print(f"# {name} {c}: rel L2 {results[name, c][0]:.2e}, {results[name, c][1]:.1f} s CPU", flush=True)
    print(f"\nfamily {a.family}, recommended settings off, budgets x{a.scale:g}; "
          f"new = {defaults.BUDGET}, interior points by dimension {defaults.INTERIOR}\n")
    print("| problem | " + " | ".join(f"{c} error | {c} CPU [s]" for c in cands) + " |")
    print("|---|" + "---|---|" * len(cands))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{results[name, c][0]:.2e} | {results[name, c][1]:.1f}" for c in cands) + " |")
    base = cands[0]  # "old" by default: every other candidate against it
    for c in cands[1:]:
        gain = statistics.median(results[n, base][0] / results[n, c][0] for n in names)
        cost = statistics.median(results[n, c][1] / results[n, base][1] for n in names)
        print(f"median over problems, {c} against {base}: error {gain:.1f}x lower, time {cost:.2f}x")


if __name__ == "__main__":
    main()
