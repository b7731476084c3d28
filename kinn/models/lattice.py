"""`LatticeModel`: a lattice family's network (FNO) as a model of the points, read at the nodes of a regular
lattice over the domain's box (`kinn.pde.lattice`)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from kinn.errors import KinnError
from kinn.models.base import Model
from kinn.pde.lattice import LatticeBackend, coordinate_channels, interpolate, match, nodes, spacing


class LatticeModel(Model):
    """A lattice network (a family with `lattice = True`) as a field model: points in, fields out.

    On the nodes of a lattice over the domain's box (any resolution, see `match`) the network runs on that
    lattice; at any other points it runs on its own lattice `shape` and the result is interpolated (cubic).
    Inputs are the coordinates scaled to [-1, 1] as channels; `transform(x, out)` imposes hard
    conditions in physical coordinates, as for `FieldModel`.
    """

    lattice = True

    def __init__(self, net: nn.Module, lo, hi, shape: Sequence[int], transform: Callable | None = None):
        super().__init__(lo, hi)
        self.net, self.transform, self.shape = net, transform, tuple(int(n) for n in shape)

    def _bounds(self):
        return self.lo.cpu().numpy(), self.hi.cpu().numpy()

    def nodes(self, shape: Sequence[int] | None = None) -> torch.Tensor:
        """The nodes of its lattice (or of `shape`) as points (N, d) in the model's dtype and device."""
        return torch.as_tensor(nodes(*self._bounds(), shape or self.shape), dtype=self.lo.dtype, device=self.lo.device)

    def on_lattice(self, shape: Sequence[int]) -> torch.Tensor:
        """The raw network output on the lattice `shape`, as points (N, C) in "ij" order."""
        coords = coordinate_channels(*self._bounds(), shape, self.lo.dtype, self.lo.device)
        out = self.net(coords)  # (1, C, *shape)
        return out.reshape(out.shape[1], -1).T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = match(x, *self._bounds())
        if shape is not None:
            out = self.on_lattice(shape)
        else:
            full = self.on_lattice(self.shape)
            out = interpolate(full.T.reshape(-1, *self.shape), *self._bounds(), x)
        return out if self.transform is None else self.transform(x, out)

    def backend(self, x: torch.Tensor, create_graph: bool = True) -> LatticeBackend:
        """The lattice backend for the points x, which must be the nodes of a lattice over the domain's box."""
        x = x.detach()
        lo, hi = self._bounds()
        shape = match(x, lo, hi)
        if shape is None:
            raise KinnError("a lattice family evaluates residuals on the nodes of a regular lattice; the points "
                            "given are not one (use points.sampler = 'lattice')")
        return LatticeBackend(self(x), shape, spacing(lo, hi, shape), x=x)
