"""The model seam: a family's network wrapped for a problem, which is what every form trains.

`Model` declares what forms, scorers and the trainer ask of a model, so none of them asks which model it
holds: the fields at points (`forward`), their derivative backend (`backend`), the parts of a problem with
subdomains (`part`, `pieces`), the family's hooks on its networks (`hooks`) and an inverse problem's
unknowns (`unknown_report`). Inputs are scaled from the domain's bounding box to [-1, 1]^D (`scale`),
where KAN grids and tanh layers do their best work.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from kinn.pde.fields import Backend


class Model(nn.Module, ABC):
    """Base of the model wrappers (`FieldModel`, `PiecewiseModel`, `LatticeModel`, `OperatorModel`).

    lattice:       the model lives on the nodes of a regular lattice (derivatives exist there only).
    derivatives:   "auto", "jet" or "autograd" (`kinn.models.field.DERIVATIVES`); jets_possible: whether
                   jets can serve this model's residuals (set False for good when they cannot).
    """

    lattice: ClassVar[bool] = False
    derivatives: str = "autograd"
    jets_possible: bool = False

    def __init__(self, lo, hi):
        super().__init__()
        self.register_buffer("lo", torch.as_tensor(np.asarray(lo, float)))
        self.register_buffer("hi", torch.as_tensor(np.asarray(hi, float)))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Physical points (N, D) -> the network's inputs in [-1, 1]^D."""
        return 2 * (x - self.lo) / (self.hi - self.lo) - 1

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fields at physical points x (N, D), shape (N, C)."""

    @abstractmethod
    def backend(self, x: torch.Tensor, create_graph: bool = True) -> Backend:
        """The derivative backend of the fields at x (`kinn.pde.fields`): what a residual's `ops` read."""

    def part(self, name: str) -> Model:
        """The model of subdomain `name`; a model of one piece stands for every part."""
        return self

    def pieces(self) -> list[Model]:
        """The models of the subdomains in order ([self] for a model of one piece)."""
        return [self]

    def hooks(self, family, options) -> dict:
        """{name: hook(step, x) -> bool}: the family's hooks on this model's networks, each fed the
        physical points x (N, D) (`Data.hook_points`); True when a hook replaced parameters."""
        return {}

    def unknown_report(self) -> dict[str, float]:
        """An inverse problem's unknowns: their estimates and errors ({} without unknowns)."""
        return {}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
