"""`FieldModel`: a family's network wrapped with input scaling and hard-constraint transforms.

Every family's network sees inputs scaled from the domain's bounding box to [-1, 1]^D (where KAN grids
and tanh layers do their best work); the transform then imposes hard conditions in physical coordinates.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn


class FieldModel(nn.Module):
    def __init__(self, net: nn.Module, lo: np.ndarray, hi: np.ndarray, transform: Callable | None = None):
        super().__init__()
        self.net, self.transform = net, transform
        self.register_buffer("lo", torch.as_tensor(np.asarray(lo, float)))
        self.register_buffer("hi", torch.as_tensor(np.asarray(hi, float)))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Physical points (N, D) -> the network's inputs in [-1, 1]^D."""
        return 2 * (x - self.lo) / (self.hi - self.lo) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, C)
        out = self.net(self.scale(x))
        return out if self.transform is None else self.transform(x, out)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
