#!/usr/bin/env python
"""Generate the Darcy operator dataset `data/darcy.h5` (FNO paper, Li et al. 2021).

    -div(a grad u) = 1 on [0, 1]^2, u = 0 on the boundary; a = 12 | 3 thresholded from a Gaussian random field.

Inputs "a", outputs "u" on the n x n node grid (n odd: the FNO family trains on every 2nd node), float32;
finite-volume solver and layout: kinn.data.generators.make_darcy_dataset, data/README.md ("Operator datasets").
Prints the time taken and the solver's error on a manufactured solution at this n and at (n + 1) / 2.

Usage:  python scripts/make_darcy.py [--out data/darcy.h5] [--n 129] [--n-train 1000] [--n-test 100] [--seed 0]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from kinn.errors import KinnError
from kinn.data.generators import darcy_check, make_darcy_dataset

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "data" / "darcy.h5"), help="output HDF5 file")
    p.add_argument("--n", type=int, default=129, help="nodes per axis, odd (2m + 1)")
    p.add_argument("--n-train", type=int, default=1000, help="training samples")
    p.add_argument("--n-test", type=int, default=100, help="test samples")
    p.add_argument("--seed", type=int, default=0, help="seed of the random fields")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    command = shlex.join(["python", "scripts/make_darcy.py", *(sys.argv[1:] if argv is None else argv)])
    start = time.perf_counter()
    try:
        out = make_darcy_dataset(a.out, n=a.n, n_train=a.n_train, n_test=a.n_test, seed=a.seed,
                                 progress=not a.quiet, created_by=command)
    except (ValueError, KinnError) as e:
        print(f"make_darcy: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): {a.n_train} + {a.n_test} samples on {a.n} x {a.n} "
          f"nodes in {time.perf_counter() - start:.1f} s")
    coarse = (a.n + 1) // 2
    e, e2 = darcy_check(a.n), darcy_check(coarse) if coarse >= 3 else float("nan")
    print(f"self-check, manufactured u = sin(pi x) sin(pi y), smooth a: max error {e:.2e} at n = {a.n}, "
          f"{e2:.2e} at n = {coarse} (ratio {e2 / e:.2f}; 4 for second order)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
