"""Periodic Burgers as an operator: learn u0 ↦ u(·, 1) of u_t + u u_x = 0.1 u_xx on [0, 1) (FNO benchmark)."""
from kinn import Interval, OperatorForm, Problem
from kinn.data.generators import make_burgers_dataset

burgers_operator = Problem(
    name="burgers_operator",
    description="operator u0 -> u(., 1) of periodic Burgers u_t + u u_x = 0.1 u_xx on [0,1) (FNO benchmark)",
    domain=Interval(0, 1),
    operator=OperatorForm(data="burgers_operator.h5", inputs=("u0",), make=make_burgers_dataset),
    # data at 1024 nodes (scripts/make_burgers_data.py); train on every 4th (256), test there and at 1024
    defaults={"train": {"steps": 2500, "lr": 1e-3, "batch_size": 20, "weight_decay": 1e-4, "schedule": "step",
                        "step_size": 500, "gamma": 0.5, "eval_every": 500},
              "points": {"stride": 4},
              "model": {"fno": {"modes": 16, "width": 64, "depth": 4}}},
)
