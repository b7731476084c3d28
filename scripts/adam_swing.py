"""How much a constant-rate Adam run's held-out error swings near its end, kinn's MLP against the DeepXDE
row on the same network, points and weights: poisson2d, 2,000 Adam steps, evaluated every 10 steps; prints
each run's final error and the median and 10th-90th percentiles of its error over steps 1,000-2,000.

    python scripts/adam_swing.py [--seeds 1,2] [--schedule none]

With --schedule cosine (poisson2d's recommended setting) the swing ends as the rate decays.
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

import kinn
from kinn.comparison.deepxde_row import DeepXDE


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--schedule", default="none")
    a = p.parse_args()
    torch.set_num_threads(1)
    print("| family | seed | final rel. L2 | median, steps 1000-2000 | 10th-90th percentile |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for seed in map(int, a.seeds.split(",")):
            for name, family in (("mlp", "mlp"), ("deepxde", DeepXDE())):
                r = kinn.solve("poisson2d", family, steps=2000, lbfgs=0, seed=seed, schedule=a.schedule,
                               eval_every=10, log_every=10, progress=False, out=out)
                e = np.array([x["rel_l2/u"] for x in r.history.rows if "rel_l2/u" in x and x["step"] >= 1000])
                lo, hi = np.percentile(e, [10, 90])
                print(f"| {name} | {seed} | {r.errors['rel_l2/u']:.2e} | {np.median(e):.2e} | {lo:.1e} - {hi:.1e} |",
                      flush=True)


if __name__ == "__main__":
    main()
