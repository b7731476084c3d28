"""The FNO solver family: Fourier neural operators on 1-D and 2-D regular grids (Li et al. 2021).

A Fourier neural operator maps functions sampled on a grid to functions on the same grid:

    v_0 = P(a),    v_(l+1) = act( K_l v_l + W_l v_l ),    u = Q(v_L)

P lifts the input channels to `width` pointwise, K_l is a spectral convolution (FFT, multiply the lowest
`modes` frequencies by learned complex weights, drop the rest, inverse FFT), W_l a pointwise linear skip,
and Q projects back pointwise (width -> projection -> out, the activation between). The last block has no
activation, as in the reference code. Since K_l acts on Fourier coefficients and W_l on single nodes, the
same weights apply on any grid: train on 64 nodes, evaluate on 256.

Reference: Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart, A. Anandkumar,
"Fourier Neural Operator for Parametric Partial Differential Equations", ICLR 2021 (arXiv:2010.08895).

Unlike the mlp and kan families, an FNO does not map points (N, d) -> (N, C) but grids
(B, C_in, *grid) -> (B, C_out, *grid); the family's `lattice = True` tells the core so. Coordinate
channels, scaled to [-1, 1], are supplied by the caller as ordinary input channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kinn.errors import KinnError
from kinn.models.family import Family

ACTIVATIONS = {"gelu": F.gelu, "tanh": torch.tanh, "relu": F.relu, "silu": F.silu}
DIMS = (1, 2)


def _activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _pointwise(dim: int, a: int, b: int) -> nn.Module:
    """A linear map over channels at every node: a 1x1 convolution."""
    return (nn.Conv1d, nn.Conv2d)[dim - 1](a, b, kernel_size=1)


def _padded(n: int, fraction: float) -> int:
    """The padded length of an axis of n nodes: at least n + fraction (n - 1), rounded up to a length
    whose FFT is fast (factors 2, 3, 5: 65 + 8 = 73 is prime and costs 1.3x the 75 taken instead)."""
    import scipy.fft

    return scipy.fft.next_fast_len(n + round(fraction * (n - 1)), real=True)


class SpectralConv(nn.Module):
    """Spectral convolution on a periodic 1-D or 2-D grid: (B, C_in, N_1[, N_2]) -> (B, C_out, N_1[, N_2]).

    y = irfftn( R · rfftn(x) ), where R multiplies each retained frequency k by a learned complex matrix
    R_k (C_in x C_out) and sets every other frequency to zero. The FFTs use norm="backward" (the forward
    transform unnormalised, the inverse divided by the number of nodes; "ortho" would give the same y),
    so R_k acts on Fourier coefficients of the function, not of the grid, and a band-limited input gives
    the same output function on any grid fine enough to hold its modes.

    Retained frequencies, `modes` = (m,) or (m_1, m_2):
    - 1-D: k = 0 .. m - 1 of the rfft half-spectrum; weight `weight` (C_in, C_out, m, 2).
    - 2-D: along the rfft (last) axis k_2 = 0 .. m_2 - 1; along the first axis both the lowest positive
      k_1 = 0 .. m_1 - 1 (`weight`) and the lowest negative k_1 = -m_1 .. -1 (`weight_neg`), two blocks
      of shape (C_in, C_out, m_1, m_2, 2), as in Li et al.'s FNO2d.
    A grid too coarse for `modes` keeps the frequencies it has, each with its own weights (frequency k
    always meets the same R_k): ceil(N_1/2) positive and floor(N_1/2) negative ones along the first axis,
    N//2 + 1 along the rfft axis.

    Weights are real tensors with a trailing dimension 2 (real, imaginary), viewed as complex in the
    forward pass, so `.to(torch.float64)` gives complex128 arithmetic. Init: 1/(C_in C_out) * U[0, 1) for
    both parts, as the reference FNO.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int]):
        super().__init__()
        modes = tuple(int(m) for m in modes)
        if len(modes) not in DIMS or any(m < 1 for m in modes):
            raise ValueError(f"modes must be 1 or 2 positive integers (one per grid axis), got {modes}")
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, modes
        shape = (in_channels, out_channels, *modes, 2)
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(shape))
        self.weight_neg = nn.Parameter(scale * torch.rand(shape)) if len(modes) == 2 else None

    @property
    def dim(self) -> int:
        return len(self.modes)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dim
        assert x.dim() == d + 2 and x.shape[1] == self.in_channels, (
            f"expected (B, {self.in_channels}, {d} grid axes), got {tuple(x.shape)}")
        size = x.shape[-d:]
        m_last = min(self.modes[-1], size[-1] // 2 + 1)
        w = torch.view_as_complex(self.weight)  # (C_in, C_out, *modes)
        # Factorised transforms: the rfft along the last axis first, then (2-D) the fft along the first
        # axis only for the m_last retained columns, not all N_2 // 2 + 1 (about 3x less work there).
        x_ft = torch.fft.rfft(x, dim=-1)[..., :m_last]
        if d == 1:
            out = torch.einsum("bix,iox->box", x_ft, w[..., :m_last])
            return torch.fft.irfft(out, n=size[-1], dim=-1)  # the dropped modes are zero-filled
        x_ft = torch.fft.fft(x_ft, dim=-2)  # (B, C_in, N_1, m_last)
        out = x_ft.new_zeros(x.shape[0], self.out_channels, size[0], m_last)
        m1 = self.modes[0]
        pos, neg = min(m1, (size[0] + 1) // 2), min(m1, size[0] // 2)
        out[..., :pos, :] = torch.einsum("bixy,ioxy->boxy", x_ft[..., :pos, :], w[..., :pos, :m_last])
        if neg:
            w_neg = torch.view_as_complex(self.weight_neg)[..., m1 - neg:, :m_last]  # k_1 = -neg .. -1
            out[..., size[0] - neg:, :] = torch.einsum("bixy,ioxy->boxy", x_ft[..., size[0] - neg:, :], w_neg)
        return torch.fft.irfft(torch.fft.ifft(out, dim=-2), n=size[-1], dim=-1)


class FNO(nn.Module):
    """A Fourier neural operator on a 1-D or 2-D grid: (B, in_channels, *grid) -> (B, out_channels, *grid).

    in_channels:  input channels per node (coordinate channels, scaled to [-1, 1], count as inputs: the
                  caller appends them; the network adds nothing).
    dim:          grid axes, 1 or 2.
    modes:        retained Fourier modes per axis (an int for every axis, or one per axis); see
                  `SpectralConv`. Grids with fewer modes use those they have.
    width:        channels of the Fourier layers.
    depth:        Fourier layers, each act(SpectralConv(v) + W v); no activation after the last.
    activation:   gelu | tanh | relu | silu.
    padding:      zeros appended at the end of every axis after lifting and cropped before projection,
                  for non-periodic data (as the FNO Darcy code), as a fraction of the axis: about
                  padding * (N - 1) nodes (rounded up to a fast FFT length), so the padded domain, and
                  with it each Fourier mode's physical frequency, is nearly the same at every
                  resolution; 0 keeps the grid periodic.
    projection:   hidden channels of the pointwise projection width -> projection -> out_channels.

    Works at any resolution: the weights do not depend on the grid size.
    """


    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dim: int,
        modes: int | Sequence[int] = 12,
        width: int = 32,
        depth: int = 4,
        activation: str = "gelu",
        padding: float = 0.0,
        projection: int = 128,
    ):
        super().__init__()
        if dim not in DIMS:
            raise ValueError(f"the FNO supports 1-D and 2-D grids, got dim={dim}")
        modes = (modes,) * dim if isinstance(modes, int) else tuple(modes)
        if len(modes) != dim:
            raise ValueError(f"modes needs one entry per grid axis ({dim}), got {modes}")
        self.in_channels, self.out_channels, self.dim = in_channels, out_channels, dim
        self.padding, self.activation_name = float(padding), activation
        self.act = _activation(activation)
        self.lift = _pointwise(dim, in_channels, width)
        self.spectral = nn.ModuleList(SpectralConv(width, width, modes) for _ in range(depth))
        self.skip = nn.ModuleList(_pointwise(dim, width, width) for _ in range(depth))
        self.project = _pointwise(dim, width, projection)
        self.out = _pointwise(dim, projection, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dim
        assert x.dim() == d + 2 and x.shape[1] == self.in_channels, (
            f"expected (B, {self.in_channels}, {d} grid axes), got {tuple(x.shape)}")
        size = x.shape[2:]
        v = self.lift(x)
        if self.padding:  # F.pad lists the last axis first
            v = F.pad(v, [p for n in reversed(size) for p in (0, _padded(n, self.padding) - n)])
        for i, (spectral, skip) in enumerate(zip(self.spectral, self.skip)):
            v = spectral(v) + skip(v)
            if i < len(self.spectral) - 1:
                v = self.act(v)
        if self.padding:
            v = v[(..., *(slice(0, n) for n in size))]
        return self.out(self.act(self.project(v)))


@dataclass
class FNOConfig:
    """modes: Fourier modes kept per axis. width: channels of the Fourier layers. depth: Fourier layers.
    activation: gelu | tanh | relu | silu. padding: zeros appended per axis for non-periodic data, as a
    fraction of the axis (0: periodic). projection: hidden channels of the output projection."""

    modes: int = 12
    width: int = 32
    depth: int = 4
    activation: str = "gelu"
    padding: float = 0.0
    projection: int = 128

    def __post_init__(self):
        for name in ("modes", "width", "depth", "projection"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
        if isinstance(self.padding, bool) or not isinstance(self.padding, (int, float)) or not 0 <= self.padding <= 1:
            raise ValueError(f"model.padding must be a fraction of the grid between 0 and 1, got {self.padding!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"model.activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")


class FNOFamily(Family):
    """Fourier neural operators (Li et al. 2021) on 1-D and 2-D box domains. Options: see `FNOConfig`.

    The network maps lattices, not points (`lattice`): a problem's D coordinates become D input channels
    on a D-dimensional regular grid over the domain's bounding box, so only boxes (intervals, rectangles,
    an interval in space and time) are supported.
    """

    name = "fno"
    Config = FNOConfig
    forms = frozenset({"strong", "operator"})
    # strong form: residuals by the grid backend on a regular grid of about 64 x 64 nodes (kinn.models.lattice)
    lattice = True
    defaults = {"points": {"sampler": "lattice", "n_interior": 4096}}

    def check(self, problem, form: str, config: FNOConfig | None = None, train=None) -> None:
        """Refuse forms other than strong and operator, domains that are not boxes, and more than 2 axes."""
        super().check(problem, form, config)
        from kinn.pde import geometry

        g = geometry.space(problem.domain)
        boxes = (geometry.Interval, geometry.TimeDomain, geometry.Rectangle, geometry.Hypercube,
                 geometry.Cuboid)
        if type(g) not in boxes:  # exact types: a subclass need not be a box
            raise KinnError(
                f"problem '{problem.name}' is on a {type(g).__name__} domain, which is not a box: not "
                "supported by the FNO family (it needs a regular grid); use mlp or kan"
            )
        if problem.dim not in DIMS:
            raise KinnError(
                f"the FNO family supports 1-D and 2-D grids; problem '{problem.name}' has {problem.dim} "
                f"coordinates ({', '.join(problem.coords)}); use mlp or kan"
            )
        from kinn.pde.conditions import BoundaryResidual, Neumann

        posed = problem.forms.get(form)
        needs = [c for c in (posed.conditions() if posed else ()) if isinstance(c, (Neumann, BoundaryResidual))]
        if form == "strong" and needs:  # derivatives exist at the lattice's nodes, read as a whole lattice
            raise KinnError(
                f"the FNO family takes derivatives on its whole lattice only; problem '{problem.name}' has "
                f"{needs[0].describe()}, which needs them at boundary points alone; use mlp or kan"
            )

    def build(self, in_dim: int, out_dim: int, config: FNOConfig, dim: int | None = None) -> FNO:
        """An FNO with in_dim input channels and out_dim output channels on a grid of `dim` axes.

        dim defaults to in_dim: a pointwise PDE problem's inputs are its D coordinates on a D-D grid.
        """
        return FNO(
            in_dim, out_dim, in_dim if dim is None else dim, config.modes, config.width, config.depth,
            config.activation, config.padding, config.projection,
        )
