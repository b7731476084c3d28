"""Darcy flow, the FNO benchmark: learn the map a ↦ u of −∇·(a∇u) = 1 on [0,1]², u = 0 on the boundary,
for coefficients a thresholded from a Gaussian random field (12 / 3), from 1,000 solved pairs."""
from kinn.pde import ops
from kinn import OperatorForm, Problem, Rectangle
from kinn.data.generators import make_darcy_dataset

darcy = Problem(
    name="darcy",
    description="operator a -> u of -div(a grad u) = 1 on [0,1]^2, u = 0 on the boundary (FNO benchmark)",
    domain=Rectangle([0, 0], [1, 1]),
    # data from scripts/make_darcy.py at 129 x 129 (generated on first use); the physics term −∇·(a∇u) − 1
    # in conservative form is off unless train.weights.pde > 0
    operator=OperatorForm(data="darcy.h5", inputs=("a",), make=make_darcy_dataset,
                          residual=lambda u, x, a: -ops.div(a * ops.grad(u), u) - 1),
    # train on every 2nd node (65 x 65), test there and at 129 x 129; Adam in batches of 20 with weight
    # decay 1e-4 as the FNO paper, but 40 epochs on a cosine schedule from 3e-3 instead of its 500 epochs,
    # to fit a CPU budget (README: scripts/fno_darcy.py, time and figures)
    defaults={"train": {"steps": 2000, "lr": 3e-3, "batch_size": 20, "weight_decay": 1e-4, "schedule": "cosine",
                        "eval_every": 250, "log_every": 50},
              "points": {"stride": 2},
              "model": {"fno": {"modes": 12, "width": 32, "depth": 4, "padding": 0.125}}},
)
