"""Bring your own PDE, end to end with a real budget: the Allen–Cahn problem of a user's own file
(tests/allen_cahn_user.py: exact initial and boundary conditions, no reference) solved from the command
line by `kinn solve FILE.py:allen_cahn` with the MLP and the KAN and kinn's defaults for an untuned problem,
then scored by `kinn score` against the spectral reference (Chebyshev n = 512 + BDF, tests/allen_cahn_spectral.py).
Prints each run's held-out relative L2 error, residual RMS and time.

    PYTHONPATH=$PWD python scripts/allen_cahn_byo.py [--families mlp,kan] [--steps N] [--lbfgs N] [--out DIR]

Without --steps/--lbfgs the runs use kinn's defaults (kinn.run.defaults).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def spectral_reference(path: Path) -> None:
    spec = importlib.util.spec_from_file_location("allen_cahn_spectral", ROOT / "tests" / "allen_cahn_spectral.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x, t, u = module.solve_allen_cahn(512, 401, 101)
    np.savez(path, x=x, t=t, u=u)


def kinn(*argv) -> dict:
    done = subprocess.run([sys.executable, "-m", "kinn", *map(str, argv), "--json"], capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default="mlp,kan")
    p.add_argument("--steps", type=int)
    p.add_argument("--lbfgs", type=int)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="allen_cahn_"))
    out.mkdir(parents=True, exist_ok=True)
    user_file = out / "my_pde.py"
    shutil.copy(ROOT / "tests" / "allen_cahn_user.py", user_file)
    reference = out / "allen_cahn_reference.npz"
    spectral_reference(reference)
    budget = [*(["--steps", a.steps] if a.steps is not None else []), *(["--lbfgs", a.lbfgs] if a.lbfgs is not None else [])]
    print("| family | params | steps (Adam + L-BFGS) | dtype | wall time [s] | residual RMS | rel. L2 u vs spectral |")
    print("|---|---|---|---|---|---|---|")
    for family in a.families.split(","):
        s = kinn("solve", f"{user_file}:allen_cahn", "--family", family, "--out", out / "runs", *budget)
        scored = kinn("score", s["run_dir"], "--reference", reference)
        print(f"| {family} | {s['params']} | {s['adam_steps']} + {s['lbfgs_iters']} | {s['dtype']} | "
              f"{s['wall_time']:.0f} | {s['residual_rms']:.2e} | {scored['errors']['u']['rel_l2']:.2e} |", flush=True)


if __name__ == "__main__":
    main()
