"""`FitForm`: fit a network to a known function at points, no PDE — KINN's example 10, the spectral-bias
study, where a KAN and an MLP fit sin 2πx + 0.1 sin 50πx by mean squares.

It is the smallest pointwise form, and shows the form seam: this module and one line in
`kinn.registry.FORMS`. Point sets, scoring and prediction are `PointForm`'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.forms.points import PointForm
from kinn.pde import geometry
from kinn.run.config import PointsConfig


@dataclass(frozen=True)
class FitForm(PointForm):
    """Mean squared misfit (N, C) of the model to `target` at `points.n_interior` points of the domain
    (drawn by `points.sampler`; "lattice" gives uniform nodes), redrawn with train.resample_every.

    target: a torch function x (N, D) -> (N, C); None: the problem's exact solution.
    """

    target: Callable | None = None
    kind: ClassVar[str] = "fit"
    order: ClassVar[int] = 0  # values only: any network can be fitted

    def function(self, problem) -> Callable:
        """The function fitted: `target`, else the problem's exact solution."""
        fn = self.target or problem.exact
        if fn is None:
            raise KinnError(f"problem '{problem.name}': the fit form needs a target function or an exact solution")
        return fn

    def sample(self, problem, points: PointsConfig) -> dict[str, np.ndarray]:
        # "pde" is every pointwise form's interior set, the points a family's hooks adapt to
        return {"pde": geometry.interior(problem.domain, points.n_interior, points.sampler)}

    def residuals(self, model, problem, x: torch.Tensor, create_graph: bool = True) -> None:
        return None  # no PDE: the held-out errors are the whole score

    def loss(self, model, problem, pts: dict[str, torch.Tensor], weights=None) -> dict[str, torch.Tensor]:
        x = pts["pde"]
        target = self.function(problem)(x).reshape(len(x), -1)
        return {"data": (model(x) - target).square().mean()}

    def weights(self) -> dict[str, float]:
        return {}
