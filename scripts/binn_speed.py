#!/usr/bin/env python
"""Speed of the inverse (BINN) form against the strong and energy forms: time per Adam step, set-up and
scoring time, and the time to reach KINN's published error, for the KAN and the MLP on the same seed.

    PYTHONPATH=$PWD python scripts/binn_speed.py            # ≤ 10 min on one core
    PYTHONPATH=$PWD python scripts/binn_speed.py --quick    # ≤ 2 min: shorter time limits, fewer points

Each run takes the problem's recommended settings for its form (KINN's sizes), float32, one thread, seed 0,
and stops at KINN's published error (train.target_error, checked every --eval-every steps on the held-out
set) or at the time limit. The target is checked against the largest held-out relative L2 error of the
fields kinn scores while training (u; for the plate u_x and u_y, stricter than KINN's |U|). "-" in the
last column: not reached within the limit (the last held-out error is printed). Set-up: building the form
(the inverse form assembles its BIE and the representation's matrices there) and the final scoring.
"""
import argparse
import time

import torch

import kinn

# KINN's published errors (BINN.md §4 for the inverse form; the KINN paper's tables, as in README.md)
KINN = {
    ("crack_mode3", "inverse"): {"mlp": 8.73e-4, "kan": 8.51e-4},
    ("crack_mode3", "strong"): {"mlp": 6.25e-2, "kan": 2.99e-2},
    ("crack_mode3", "energy"): {"mlp": 1.94e-2, "kan": 6.55e-3},
    ("plate_hole", "inverse"): {"mlp": 5.45e-4, "kan": 2.26e-4},
    ("plate_hole", "strong"): {"mlp": 1.23e-2, "kan": 6.30e-3},
    ("plate_hole", "energy"): {"mlp": 1.54e-3, "kan": 9.19e-4},
}


def run(problem: str, form: str, family: str, a) -> dict:
    target = KINN[problem, form][family]
    t = time.time()
    r = kinn.solve(problem, family, form, seed=0, dtype="float32", steps=100_000, lbfgs=0, time_limit=a.time_limit,
                   target_error=target, eval_every=a.eval_every, n_eval=a.n_eval, write=False, progress=False)
    wall = time.time() - t
    h = r.history
    rows = [row for row in h.rows if any(k.startswith("rel_l2/") for k in row)]
    last = max(v for k, v in rows[-1].items() if k.startswith("rel_l2/")) if rows else float("nan")
    reached = "target" in (h.stop_reason or "")
    return {"ms": 1e3 * h.train_time / max(h.steps, 1), "steps": h.steps, "setup": wall - h.train_time,
            "to_target": h.train_time if reached else None, "last": last, "target": target}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="≤ 2 minutes: 3 s a run, 300 held-out points")
    ap.add_argument("--problems", nargs="+", default=["plate_hole", "crack_mode3"])
    ap.add_argument("--families", nargs="+", default=["kan", "mlp"])
    ap.add_argument("--forms", nargs="+", default=["inverse", "strong", "energy"])
    ap.add_argument("--time-limit", type=float, default=None, help="seconds of training a run (default 30; quick 3)")
    a = ap.parse_args()
    a.time_limit = a.time_limit or (3.0 if a.quick else 30.0)
    a.n_eval, a.eval_every = (300, 50) if a.quick else (1000, 100)
    torch.set_num_threads(1)
    print(f"one thread, float32, seed 0; each run stops at KINN's error or after {a.time_limit:g} s of training")
    print(f"{'problem':<12} {'form':<8} {'family':<6} {'ms/step':>8} {'steps':>6} {'set-up+score s':>14} "
          f"{'KINN error':>10} {'last error':>10} {'s to KINN':>9}")
    for problem in a.problems:
        for form in a.forms:
            for family in a.families:
                s = run(problem, form, family, a)
                reach = f"{s['to_target']:.1f}" if s["to_target"] is not None else "-"
                print(f"{problem:<12} {form:<8} {family:<6} {s['ms']:8.1f} {s['steps']:6d} {s['setup']:14.1f} "
                      f"{s['target']:10.2e} {s['last']:10.2e} {reach:>9}", flush=True)


if __name__ == "__main__":
    main()
