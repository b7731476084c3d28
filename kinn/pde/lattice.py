"""Regular lattices of nodes: node sets, interpolation, and the lattice derivative backend that lattice
families (FNO, `kinn.models.lattice.LatticeModel`) answer `kinn.ops` with. ("grid" in kinn means a KAN's
spline grid; a regular set of nodes is a lattice.)

A lattice family's network maps whole lattices, (B, C_in, N_1, ..., N_d) -> (B, C_out, N_1, ..., N_d), instead
of single points. The residuals do not change: the values on the grid are flattened to the point shape
(N, C) that every `Field` has, and `LatticeBackend` answers `kinn.pde.ops` with derivatives along the grid
axes — spectral (FFT) on periodic axes, finite differences of second order elsewhere (central inside,
one-sided at the ends; a derivative of a derivative, such as the divergence of a flux a∇u, is first order
on the two nodes next to each end, where the two kinds of error meet). A batch of B lattices (operator learning) is
B * N_1 * ... * N_d points.

Node order is "ij": the first coordinate varies slowest, as `torch.meshgrid(..., indexing="ij")`.
Non-periodic axes include both ends (x_j = lo + j h, h = (hi - lo) / (N - 1)); periodic axes leave out
the right end (h = (hi - lo) / N).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.pde.fields import Backend


def axis(lo: float, hi: float, n: int, periodic: bool = False) -> np.ndarray:
    """The n node coordinates of one axis (float64)."""
    if n < (1 if periodic else 2):
        raise KinnError(f"a grid axis needs at least {1 if periodic else 2} nodes, got {n}")
    return lo + (hi - lo) * np.arange(n) / (n if periodic else n - 1)


def nodes(lo, hi, shape: Sequence[int], periodic: Sequence[bool] = ()) -> np.ndarray:
    """All nodes of the grid, shape (prod(shape), d), in "ij" order."""
    periodic = tuple(periodic) or (False,) * len(shape)
    axes = [axis(a, b, n, p) for a, b, n, p in zip(lo, hi, shape, periodic)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(shape))


def shape_for(n: int, dim: int) -> tuple[int, ...]:
    """The grid of about n nodes with the same count along each of `dim` axes (at least 3 each)."""
    return (max(3, round(n ** (1 / dim))),) * dim


def spacing(lo, hi, shape, periodic=()) -> list[float]:
    periodic = tuple(periodic) or (False,) * len(shape)
    return [(b - a) / (n if p else n - 1) for a, b, n, p in zip(lo, hi, shape, periodic)]


def match(x: torch.Tensor, lo, hi) -> tuple[int, ...] | None:
    """The shape of the grid x (N, d) is, when x holds exactly the nodes of a grid on [lo, hi] in "ij"
    order (non-periodic axes); None otherwise."""
    if x.ndim != 2 or x.shape[1] != len(lo):
        return None
    shape = tuple(int(torch.unique(x[:, k]).numel()) for k in range(x.shape[1]))
    if math.prod(shape) != x.shape[0] or min(shape) < 2:
        return None
    expect = torch.as_tensor(nodes(lo, hi, shape), dtype=x.dtype, device=x.device)
    tol = 1e-6 if x.dtype == torch.float32 else 1e-12
    return shape if torch.allclose(x, expect, rtol=0, atol=tol * float(np.max(np.abs(hi - lo)))) else None


# ---- derivatives along one axis of a tensor (..., N_axis, ...) -----------------------------------
def _spectral(u: torch.Tensor, dim: int, h: float, order: int) -> torch.Tensor:
    n = u.shape[dim]
    k = torch.fft.rfftfreq(n, d=h, dtype=u.dtype, device=u.device) * 2 * math.pi  # angular wavenumbers
    factor = (1j * k) ** order
    if order % 2 and n % 2 == 0:
        factor[-1] = 0  # the Nyquist mode of an odd derivative has no real counterpart
    shape = [1] * u.ndim
    shape[dim] = -1
    return torch.fft.irfft(torch.fft.rfft(u, dim=dim) * factor.reshape(shape), n=n, dim=dim)


def _first(u: torch.Tensor, dim: int, h: float) -> torch.Tensor:
    """First derivative: (u[i+1] - u[i-1]) / 2h inside; third-order one-sided at the ends, so a derivative
    of a derivative (a flux's divergence) stays second order next to the boundary."""
    n = u.shape[dim]
    if n < 4:
        raise KinnError(f"derivatives on a grid need at least 4 nodes along an axis, got {n}")
    s = lambda a, b: u.narrow(dim, a, b - a)  # noqa: E731  (slice along dim)
    inner = (s(2, n) - s(0, n - 2)) / 2
    first = (-11 * s(0, 1) + 18 * s(1, 2) - 9 * s(2, 3) + 2 * s(3, 4)) / 6
    last = (11 * s(n - 1, n) - 18 * s(n - 2, n - 1) + 9 * s(n - 3, n - 2) - 2 * s(n - 4, n - 3)) / 6
    return torch.cat([first, inner, last], dim) / h


def _second(u: torch.Tensor, dim: int, h: float) -> torch.Tensor:
    """Second derivative: (u[i+1] - 2u[i] + u[i-1]) / h² inside, 2nd-order one-sided at the ends."""
    n = u.shape[dim]
    if n < 4:
        raise KinnError(f"second derivatives on a grid need at least 4 nodes along an axis, got {n}")
    s = lambda a, b: u.narrow(dim, a, b - a)  # noqa: E731  (slice along dim)
    inner = s(2, n) - 2 * s(1, n - 1) + s(0, n - 2)
    first = 2 * s(0, 1) - 5 * s(1, 2) + 4 * s(2, 3) - s(3, 4)
    last = 2 * s(n - 1, n) - 5 * s(n - 2, n - 1) + 4 * s(n - 3, n - 2) - s(n - 4, n - 3)
    return torch.cat([first, inner, last], dim) / h**2


def diff(u: torch.Tensor, dim: int, h: float, order: int = 1, periodic: bool = False) -> torch.Tensor:
    """d^order u / dx^order along tensor axis `dim` with node spacing h: spectral when periodic,
    else finite differences of second order (central inside, one-sided at the two ends)."""
    if periodic:
        return _spectral(u, dim, h, order)
    if order == 1:
        return _first(u, dim, h)
    if order == 2:
        return _second(u, dim, h)
    raise KinnError(f"grid derivatives of order {order} are not implemented (1 or 2)")


class LatticeBackend(Backend):
    """Derivatives of values on a batch of grids, (B * N_1 * ... * N_d, C), along the grid axes.

    shape:    the grid (N_1, ..., N_d); batch: how many grids are stacked (B).
    h:        node spacing per axis; periodic: per axis, spectral there instead of finite differences.
    """

    def __init__(self, values: torch.Tensor, shape: Sequence[int], h: Sequence[float],
                 periodic: Sequence[bool] = (), batch: int = 1, x: torch.Tensor | None = None):
        self.values, self.shape, self.h, self.batch, self.x = values, tuple(shape), tuple(h), batch, x
        self.periodic = tuple(periodic) or (False,) * len(self.shape)
        self._cache: dict = {}

    def _grid(self, q: torch.Tensor) -> torch.Tensor:  # (N, ...) -> (B, N_1, ..., N_d, ...)
        return q.reshape(self.batch, *self.shape, *q.shape[1:])

    def derivative(self, q: torch.Tensor, i: int, order: int = 1) -> torch.Tensor:
        """d^order q / dx_i^order of any tensor q (N, k) given at the same nodes, shape (N, k)."""
        out = diff(self._grid(q), i + 1, self.h[i], order, self.periodic[i])
        return out.reshape(q.shape)

    def d(self, c, i):
        if ("d", c, i) not in self._cache:
            self._cache["d", c, i] = self.derivative(self.values[:, c : c + 1], i)
        return self._cache["d", c, i]

    def d2(self, c, i, j):
        if i == j:
            if ("dd", c, i) not in self._cache:
                self._cache["dd", c, i] = self.derivative(self.values[:, c : c + 1], i, 2)
            return self._cache["dd", c, i]
        a, b = sorted((i, j))
        return self.derivative(self.d(c, a), b)

    def interior(self) -> torch.Tensor:
        """Mask (N,) of the nodes off the ends of the non-periodic axes (where a PDE holds)."""
        inside = torch.ones(self.shape, dtype=torch.bool, device=self.values.device)
        for k, (n, p) in enumerate(zip(self.shape, self.periodic)):
            if not p:
                idx = [slice(None)] * len(self.shape)
                idx[k] = [0, n - 1]
                inside[tuple(idx)] = False
        return inside.expand(self.batch, *self.shape).reshape(-1)


def coordinate_channels(lo, hi, shape, dtype, device, batch: int = 1, periodic=()) -> torch.Tensor:
    """The node coordinates scaled to [-1, 1], as channels (B, d, N_1, ..., N_d)."""
    x = torch.as_tensor(nodes(lo, hi, shape, periodic), dtype=dtype, device=device)
    lo_t, hi_t = (torch.as_tensor(np.asarray(v, float), dtype=dtype, device=device) for v in (lo, hi))
    scaled = 2 * (x - lo_t) / (hi_t - lo_t) - 1
    return scaled.T.reshape(1, len(shape), *shape).expand(batch, -1, *shape)


def interpolate(values: torch.Tensor, lo, hi, x: torch.Tensor) -> torch.Tensor:
    """Values on one node lattice, (C, N_1[, N_2]), at points x (M, d): tensor-product cubic (Catmull-Rom)
    interpolation, third order up to the ends (a ghost node past each end is extrapolated at third order).
    Differentiable in the values."""
    d = values.ndim - 1
    if d not in (1, 2):
        raise KinnError(f"interpolation from a grid supports 1-D and 2-D grids, not {d}-D")
    lo_t, hi_t = (torch.as_tensor(np.asarray(v, float), dtype=x.dtype, device=x.device) for v in (lo, hi))
    idx, w = [], []
    for k in range(d):
        n = values.shape[k + 1]
        p = ((x[:, k] - lo_t[k]) / (hi_t[k] - lo_t[k]) * (n - 1)).clamp(0, n - 1)
        i = p.floor().clamp(max=n - 2)
        f = (p - i).unsqueeze(1)
        idx.append(i.long().unsqueeze(1) + torch.arange(4, device=x.device))  # ghosted indices of i-1 .. i+2
        w.append(torch.cat([(-f**3 + 2 * f**2 - f) / 2, (3 * f**3 - 5 * f**2 + 2) / 2,
                            (-3 * f**3 + 4 * f**2 + f) / 2, (f**3 - f**2) / 2], 1))
        values = _ghosts(values, k + 1)
    if d == 1:
        return torch.einsum("cma,ma->mc", values[:, idx[0]], w[0])
    return torch.einsum("cmab,ma,mb->mc", values[:, idx[0][:, :, None], idx[1][:, None, :]], w[0], w[1])


def _ghosts(v: torch.Tensor, dim: int) -> torch.Tensor:
    n = v.shape[dim]
    s = lambda i: v.narrow(dim, i % n, 1)  # noqa: E731
    return torch.cat([3 * s(0) - 3 * s(1) + s(2), v, 3 * s(-1) - 3 * s(-2) + s(-3)], dim)
