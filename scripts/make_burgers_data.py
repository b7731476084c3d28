#!/usr/bin/env python
"""Generate the Burgers operator dataset `data/burgers_operator.h5` (FNO paper, Li et al. 2021).

    u_t + (u^2 / 2)_x = nu u_xx on [0, 1) periodic; u0 ~ N(0, 625 (-Laplacian + 25 I)^(-2)); output u(., t_final).

Inputs "u0", outputs "u" on x_j = j / n, float32; Fourier pseudo-spectral / ETDRK4 solver and layout:
kinn.data.generators.make_burgers_dataset, data/README.md ("Operator datasets"). Prints the time taken and the
solver's error on an exact (Cole-Hopf) solution at this n, nu and t_final.

Usage:  python scripts/make_burgers_data.py [--out data/burgers_operator.h5] [--n 1024] [--n-train 1000]
                                           [--n-test 100] [--nu 0.1] [--t-final 1.0] [--seed 0]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from kinn.data.datasets import read_dataset
from kinn.errors import KinnError
from kinn.data.generators import burgers_check, make_burgers_dataset

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "data" / "burgers_operator.h5"), help="output HDF5 file")
    p.add_argument("--n", type=int, default=1024, help="grid points on [0, 1) (periodic)")
    p.add_argument("--n-train", type=int, default=1000, help="training samples")
    p.add_argument("--n-test", type=int, default=100, help="test samples")
    p.add_argument("--nu", type=float, default=0.1, help="viscosity")
    p.add_argument("--t-final", type=float, default=1.0, help="time of the output field")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial data")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    command = shlex.join(["python", "scripts/make_burgers_data.py", *(sys.argv[1:] if argv is None else argv)])
    start = time.perf_counter()
    try:
        out = make_burgers_dataset(a.out, n=a.n, n_train=a.n_train, n_test=a.n_test, nu=a.nu, t_final=a.t_final,
                                   seed=a.seed, progress=not a.quiet, created_by=command)
    except (ValueError, KinnError) as e:
        print(f"make_burgers_data: error: {e}", file=sys.stderr)
        return 2
    attrs = read_dataset(out).attrs
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): {a.n_train} + {a.n_test} samples on {a.n} points, "
          f"{attrs['n_steps']} ETDRK4 steps, in {time.perf_counter() - start:.1f} s")
    print(f"self-check: {attrs['accuracy']}")
    e16 = burgers_check(16, a.nu, a.t_final, attrs["n_steps"])
    print(f"  (for scale, the exact-solution error on 16 points: {e16:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
