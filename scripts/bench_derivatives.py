"""Time a KAN's Adam steps on real problems with derivatives by nested autograd and by jets.

    python scripts/bench_derivatives.py [--problems heat_multiscale,poisson2d,koch_snowflake,crack_mode3,
                                                    plate_hole,plate_hole:energy] [--steps 60] [--threads 1]
                                        [--solver kan]

For each problem (the strong form, or the form named after a colon, with its default KAN and points),
`kinn.solve` runs --steps Adam steps twice from the same seed, with `derivatives` = "autograd" and "jet"
(on CPU the jets run the C kernels, `kinn.kernels.native_kan`, where they build), and prints the wall and
CPU time per step of each (setup and the final scoring included, the same for both), their ratio, and
the held-out error each reached and their relative difference: the two paths compute the same residuals
(to rounding), so after the same steps from the same seed the errors agree. Where jets cannot run the jet
columns say why. plate_hole's strong form (elasticity) ran by autograd before the jets carried the whole
Hessian (`auto` fell back to it), its energy form before output transforms went through jets: the
autograd column is that old path. The issue's check of the same error after 1,000 steps:

    python scripts/bench_derivatives.py --problems plate_hole --steps 1000
"""
from __future__ import annotations

import argparse
import time

import torch

import kinn
from kinn import kernels
from kinn.errors import KinnError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", default="heat_multiscale,poisson2d,koch_snowflake,crack_mode3,plate_hole,"
                                          "plate_hole:energy")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--solver", default="kan")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{a.solver}, {a.steps} Adam steps, {a.threads} thread(s), torch {torch.__version__}, jet backend "
          f"{kernels.get_backend()} (C kernels built: {kernels.native_kan.available()})")
    print(f"{'problem':18s} {'autograd ms/step':>17s} {'jet ms/step':>12s} {'speed-up':>9s} {'CPU speed-up':>13s}  "
          "error (autograd / jet, relative difference)")
    def solve(name, form, derivatives, steps):
        return kinn.solve(name, a.solver, form, write=False, steps=steps, lbfgs=0, eval_every=10**9,
                          config={"problem": name, "derivatives": derivatives})

    for entry in a.problems.split(","):
        name, _, form = entry.partition(":")
        form = form or "strong"
        runs, why = {}, ""
        for derivatives in ("autograd", "jet"):
            try:
                solve(name, form, derivatives, 1)  # untimed: first-call costs (imports, reference data, the C build)
            except KinnError as e:
                why = str(e)
        for derivatives in ("autograd",) if why else ("autograd", "jet"):
            wall, cpu = time.perf_counter(), time.process_time()
            r = solve(name, form, derivatives, a.steps)
            runs[derivatives] = ((time.perf_counter() - wall) / a.steps, (time.process_time() - cpu) / a.steps,
                                 r.errors[f"rel_l2/{r.problem.fields[0]}"])
        label = name if form == "strong" else f"{name}:{form}"
        wa, ca, ea = runs["autograd"]
        if why:
            print(f"{label:18s} {wa * 1e3:17.1f} {'-':>12s} {'-':>9s} {'-':>13s}  {ea:.3g} / -  (jets: {why})",
                  flush=True)
            continue
        wj, cj, ej = runs["jet"]
        print(f"{label:18s} {wa * 1e3:17.1f} {wj * 1e3:12.1f} {wa / wj:8.1f}x {ca / cj:12.1f}x  {ea:.5g} / {ej:.5g}, "
              f"{abs(ea - ej) / ea:.1e}", flush=True)


if __name__ == "__main__":
    main()
