"""The settings a problem nobody tuned starts from: a training budget and point counts by dimension,
chosen by measurement (`scripts/defaults_study.py`, table in docs/guide/own-pde.md).

They sit under everything else (`kinn.run.pipeline._recommended`): a family's own needs, the problem's
recommended `defaults`, a config file and flags all win, so a catalogue problem that sets a value keeps it.
Operator runs (grid families on datasets) keep the config dataclasses' defaults: the budget below was
measured on pointwise forms only.
"""
from __future__ import annotations

POINTWISE = ("strong", "energy", "inverse")

# Adam with a cosine decay of the rate, then L-BFGS, in float64: on a 2-core CPU float64 costs ~1.3x per
# step, and L-BFGS only pays once the loss is resolved below float32's rounding
BUDGET = {"steps": 2000, "lbfgs": 1000, "dtype": "float64", "schedule": "cosine", "eval_every": 500}

# collocation points per dimension of the domain (space + time): more axes need more points
INTERIOR = {1: 1000, 2: 2000, 3: 4000}
BOUNDARY_SHARE = 0.2  # boundary and initial points, a share of the interior ones

# a network per family where its own default is not the one to start from: the KAN [10, 10] beat [5, 5]
# on poisson2d, helmholtz2d and the Koch snowflake at this budget, at <= 1.45x its CPU time; the MLP's own
# 3 x 64 beat 4 x 50, and 3 x 100 costs 1.8x its time (scripts/defaults_study.py, docs/guide/own-pde.md)
NETWORK = {"kan": {"hidden": [10, 10]}}


def for_problem(problem, form: str, family: str = "") -> dict:
    """{"train": {...}, "points": {...}, "model": {...}} for a problem of this dimension in `form` and a
    family of this name (or the family it takes its settings from); {} for operator runs."""
    if form not in POINTWISE:
        return {}
    n = INTERIOR[min(max(problem.dim, 1), 3)]
    edge = max(int(BOUNDARY_SHARE * n), 2)
    return {"train": dict(BUDGET), "points": {"n_interior": n, "n_boundary": edge, "n_initial": edge},
            "model": dict(NETWORK.get(family, {}))}
