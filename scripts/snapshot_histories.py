"""Record the histories of a handful of short seeded runs, to prove a refactor changes no behaviour.

    python scripts/snapshot_histories.py --out before.json     # on the old code
    python scripts/snapshot_histories.py --out after.json      # on the new code
    python scripts/snapshot_histories.py --compare before.json after.json

Each run's history rows (loss terms, learning rates, held-out errors; wall-clock times left out), its step
counts, stop reason and final errors are kept to the last bit (floats as their hex form). The runs cover
the MLP and the KAN in the strong form, the KAN energy form with jittered quadrature, an inverse problem
with an unknown scalar and one with an unknown field, the subdomain crack, a tiny FNO operator run and a
comparison with the DeepXDE row. CPU, one thread, so the figures are bit-identical between two runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

TIMES = ("time", "train_time", "wall_time", "time_per_step")

RUNS = {
    "mlp_strong": ("poisson2d", "mlp", None, dict(steps=60, lbfgs=12, eval_every=20, log_every=5, n_interior=300)),
    "kan_strong": ("poisson2d", "kan", None, dict(steps=40, eval_every=20, log_every=5, n_interior=300)),
    "kan_energy_jitter": ("plate_hole", "kan", "energy", dict(steps=15, lbfgs=4, eval_every=5, log_every=5,
                                                              n_interior=600, n_boundary=60, n_eval=500)),
    "inverse_scalar": ("plate_hole_inverse", "mlp", None, dict(steps=20, eval_every=10, log_every=5,
                                                               n_interior=300, n_boundary=60, n_eval=500)),
    "inverse_field": ("conductivity_inverse", "kan", None, dict(steps=10, eval_every=5, log_every=5,
                                                                n_interior=300, n_boundary=60, n_eval=500)),
    "subdomain_crack": ("crack_mode3", "kan", None, dict(steps=20, eval_every=10, log_every=5, n_interior=300,
                                                         n_boundary=60, n_eval=500)),
    "fno_operator": ("darcy", "fno", None, dict(steps=12, eval_every=4, log_every=2, batch_size=10, lr=3e-3,
                                                model={"modes": 4, "width": 8, "depth": 2, "projection": 16,
                                                       "padding": 0.125})),
}


def _exact(value):
    """Floats as hex strings (bit-exact comparison), recursively."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, (list, tuple)):
        return [_exact(v) for v in value]
    return value


def _history(result) -> dict:
    h = result.history
    return _exact({"rows": h.rows, "stop_reason": h.stop_reason, "adam_steps": h.adam_steps,
                   "lbfgs_iters": h.lbfgs_iters, "errors": result.errors})


def snapshot() -> dict:
    import torch

    import kinn

    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as data:
        from kinn.data.generators import make_darcy_dataset

        make_darcy_dataset(Path(data) / "darcy.h5", n=17, n_train=40, n_test=8, progress=False)
        for key, (problem, solver, form, opts) in RUNS.items():
            env = {"KINN_DATA": data} if solver == "fno" else {}
            os.environ.update(env)
            try:
                result = kinn.solve(problem, solver, form, write=False, progress=False, **opts)
            finally:
                for k in env:
                    os.environ.pop(k)
            out[key] = _history(result)
            print(f"{key}: {result.errors}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as folder:
            c = kinn.compare("poisson2d", ("mlp", "deepxde"), seeds=1, budget_steps=30, lbfgs=6, out=folder,
                             progress=False, config={"train": {"eval_every": 10}, "points": {"n_interior": 300}})
            out["compare_deepxde"] = {f"{fam}-{seed}": _history(r) for (fam, seed), r in c.results.items()}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="write the snapshot here (JSON)")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two snapshots")
    a = p.parse_args()
    if a.compare:
        before, after = (json.loads(Path(f).read_text()) for f in a.compare)
        bad = [k for k in before if before[k] != after.get(k)]
        for k in before:
            print(f"{k:<20} {'identical' if k not in bad else 'DIFFERENT'}")
        return 1 if bad else 0
    text = json.dumps(snapshot(), indent=1, sort_keys=True)
    if a.out:
        fd, tmp = tempfile.mkstemp(dir=Path(a.out).resolve().parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, a.out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
