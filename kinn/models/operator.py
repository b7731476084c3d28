"""`OperatorModel`: a lattice network (FNO) with a dataset's normalisation and coordinate channels, the model
an operator form (`kinn.forms.operator`) trains."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kinn.errors import KinnError
from kinn.models.base import Model
from kinn.pde.lattice import LatticeBackend, coordinate_channels, spacing


class OperatorModel(Model):
    """A lattice network with the dataset's normalisation and coordinate channels: inputs (B, C_in, *grid)
    in physical units -> outputs (B, C_out, *grid). Works on any resolution of the same domain.

    Inputs are standardised per channel with the training set's mean and standard deviation, the node
    coordinates scaled to [-1, 1] are appended as channels, and the outputs are rescaled the same way.
    """

    lattice = True

    def __init__(self, net: nn.Module, lo, hi, n_in: int, n_out: int, periodic=()):
        super().__init__(lo, hi)
        self.net = net
        d = len(lo)
        self.register_buffer("periodic_axes", torch.as_tensor(list(periodic) or [False] * d, dtype=torch.bool))
        for name, n, value in (("in_mean", n_in, 0.0), ("in_std", n_in, 1.0), ("out_mean", n_out, 0.0),
                               ("out_std", n_out, 1.0)):
            self.register_buffer(name, torch.full((n,), value, dtype=torch.float64))

    @property
    def periodic(self) -> tuple[bool, ...]:
        return tuple(bool(p) for p in self.periodic_axes)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo.cpu().numpy(), self.hi.cpu().numpy()

    def normalise(self, inputs: np.ndarray, outputs: np.ndarray) -> None:
        """Set the standardisation from training data (S, C, *grid)."""
        for name, data in (("in", inputs), ("out", outputs)):
            axes = (0, *range(2, data.ndim))
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(data.mean(axes, dtype=np.float64)))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(data.std(axes, dtype=np.float64)).clamp_min(1e-12))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch, _, *shape = inputs.shape
        view = (1, -1) + (1,) * len(shape)
        z = (inputs - self.in_mean.view(view)) / self.in_std.view(view)
        coords = coordinate_channels(*self.bounds(), shape, inputs.dtype, inputs.device, batch, self.periodic)
        return self.net(torch.cat([z, coords], 1)) * self.out_std.view(view) + self.out_mean.view(view)

    def backend(self, x: torch.Tensor, create_graph: bool = True):
        raise KinnError("an operator model maps input functions on a lattice, not points")

    def lattice_backend(self, values: torch.Tensor, shape, batch: int) -> LatticeBackend:
        """The lattice backend for values (B * prod(shape), C) on `batch` lattices of `shape`."""
        return LatticeBackend(values, shape, spacing(*self.bounds(), shape, self.periodic), self.periodic, batch)
