#!/usr/bin/env python
"""Make `data/conductivity.h5`, the temperatures of the conductivity inverse problem (KINN example 8).

    −∇·(K∇T) = 10 on [0, 1]², T = 0 on the boundary, K = k_true of `kinn/problems/conductivity.py`,

by the conservative finite-volume scheme of `kinn.data.generators.darcy_fd` (second order for smooth K) on the
n × n node grid. Written in the reference `points` layout (data/README.md): every node, fields/T, and
derived/K (the true field, for plots; the inverse form never reads it). Prints the scheme's error at
n and n/2 against Richardson's estimate from n and 2n − 1, i.e. how far the data are from the continuum.

Usage:  python scripts/make_conductivity_data.py [--out data/conductivity.h5] [--n 256]
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from kinn.data.generators import darcy_fd
from kinn.metrics import relative_l2
from kinn.problems.conductivity import SOURCE, k_true
from kinn.data.reference import write_points

ROOT = Path(__file__).resolve().parent.parent


def solve(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (n², 2) in (i, j) order, T and K at them (n²,)."""
    t = np.linspace(0.0, 1.0, n)
    nodes = np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    k = k_true(torch.as_tensor(nodes)).numpy().reshape(n, n)
    return nodes, darcy_fd(k, SOURCE).reshape(-1), k.reshape(-1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "data" / "conductivity.h5"))
    p.add_argument("--n", type=int, default=256, help="nodes per axis")
    a = p.parse_args(argv)
    nodes, T, K = solve(a.n)
    # the error of this grid and of one twice as coarse, against the solution on a grid twice as fine
    # (nodes 2i of the fine grid are nodes i of this one; second order: Richardson factor 4/3)
    fine = solve(2 * a.n - 1)[1].reshape(2 * a.n - 1, 2 * a.n - 1)[::2, ::2].reshape(-1)
    err = relative_l2(T, fine) * 4 / 3
    coarse = solve((a.n + 1) // 2)[1] if a.n % 2 else None
    line = f"n = {a.n}: relative L2 error of T about {err:.2e}"
    if coarse is not None:
        c_err = np.linalg.norm(coarse - T.reshape(a.n, a.n)[::2, ::2].reshape(-1)) / np.linalg.norm(T) * 4 / 3
        line += f"; n = {(a.n + 1) // 2}: {c_err:.2e}"
    command = shlex.join(["python", "scripts/make_conductivity_data.py", *(sys.argv[1:] if argv is None else argv)])
    write_points(a.out, nodes, {"T": T}, {
        "problem": "conductivity_inverse", "created_by": command,
        "method": f"conservative finite volumes (kinn.data.generators.darcy_fd), harmonic face means, {a.n}^2 nodes",
        "equation": f"-div(K grad T) = {SOURCE} on [0,1]^2, T = 0 on the boundary",
        "k_true": "1 + x/2 + exp(-30((x-0.6)^2 + (y-0.4)^2))/2",
        "accuracy": line,
    }, derived={"K": K})
    print(line)
    print(f"wrote {a.out}: {len(nodes)} nodes, max T = {T.max():.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
