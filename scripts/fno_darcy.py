#!/usr/bin/env python
"""FNO on the Darcy benchmark: train on 1,000 samples at 65 x 65, print the test error at 65 x 65 and at
129 x 129 (twice the training resolution) next to the FNO paper's figure.

    python scripts/fno_darcy.py [--steps N] [--seed S] [--device cpu|cuda] [--out runs]

The dataset (data/darcy.h5, 1,000 + 100 samples at 129 x 129) is generated on first use by
scripts/make_darcy.py's generator (about 45 s). Settings are the problem's defaults (problems/darcy.py);
--steps changes the budget (50 steps = one epoch).
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

import kinn

PAPER = 0.0108  # Li et al. (2021), FNO-2D on Darcy at s = 85, 1,000 training samples, 500 epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="Adam steps (default: the problem's, 2,000 = 40 epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="runs")
    a = p.parse_args()
    t = time.perf_counter()
    r = kinn.solve("darcy", "fno", steps=a.steps, seed=a.seed, device=a.device, out=a.out, progress=False)
    wall = time.perf_counter() - t
    cfg = r.config
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {cfg.train.device}")
    print(f"FNO {cfg.model}, {r.n_params:,} parameters; {r.history.adam_steps} Adam steps in batches of "
          f"{cfg.train.batch_size} ({r.history.adam_steps * cfg.train.batch_size / 1000:g} epochs), "
          f"training {r.history.train_time:.0f} s, total {wall:.0f} s")
    print("| test set (100 samples)        | relative L2 | FNO paper |")
    print("|-------------------------------|-------------|-----------|")
    print(f"| 65 x 65 (training resolution) | {r.errors['rel_l2/u']:.2%}      | {PAPER:.2%} at 85 x 85 |")
    print(f"| 129 x 129 (twice)             | {r.errors['rel_l2@129x129/u']:.2%}      |           |")
    print(f"run directory: {r.run_dir}")


if __name__ == "__main__":
    main()
