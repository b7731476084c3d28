"""The KAN solver family: Kolmogorov-Arnold layers and networks, their grid refits, and the Family seam.

A KAN layer (efficient-kan style, as in KINN) maps x (N, in) to

    y_j = sum_i [ w_ij * silu(x_i) + s_ij * sum_m c_ijm * B_m(x_i) ],

the bases B_m evaluated once for every input and contracted with all coefficients in one matmul.

Inputs outside the grid range: the B-spline part tapers off over the k extension intervals each side and
is exactly zero beyond them; nothing is clamped or extrapolated, so far outside the grid only the base
branch w * silu(x) carries the input. The network keeps hidden inputs inside the grid by what it applies
between layers (`between`); the family's own inputs are scaled to [-1, 1], the default grid range.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kinn.errors import KinnError, unknown
from kinn.kernels.jets import Demand, Jet, JetNetwork
from kinn.models.family import Family
from kinn.kernels import (
    JetBasis,
    chebyshev,
    cox_de_boor,
    get_backend,
    kan_layer_jet,
    native_kan,
    reference_enabled,
    stacked_layer_jet,
    to_dense,
    uniform_bspline,
    uniform_knots,
)

BASES = ("bspline", "chebyshev")
BASE_ACTIVATIONS = ("silu", "none")
BETWEEN = ("tanh", "rescale", "none")
MAX_ORDER = 5  # the highest B-spline order whose closed form is tested against Cox-de Boor
UPDATE_MODES = ("range", "quantile")

_NOISE = 0.1  # efficient-kan's scale_noise: initial spline coefficients are this small over the grid
_ADAPTIVE = 0.98  # quantile knots are blended with 2% uniform ones so repeated data never repeats a knot


class KANLinear(nn.Module):
    """One KAN layer: (..., in_features) -> (..., out_features).

    grid:       G, the number of B-spline intervals on grid_range (unused by the Chebyshev basis).
    order:      k, the B-spline order 1 .. 5 (G + k bases per edge), or the Chebyshev degree >= 1
                (k + 1 bases per edge).
    grid_range: (lo, hi), where the B-splines sum to one.
    base:       "silu" adds the base branch w * silu(x) (None or "none" drops it).
    basis:      "bspline" or "chebyshev" (T_0 .. T_k of tanh x).

    Parameters: `spline_weight` (out, in, bases), `spline_scaler` (out, in) and, with a base,
    `base_weight` (out, in): in * out * (bases + 2) in all, no biases. The buffer `edge_mask` (out, in),
    None until `kinn.analysis.edges.prune` sets it, removes the edges where it is False from the forward
    pass and the jets alike, so a pruned edge stays exactly zero however the parameters train. The uniform grid runs the closed
    form of `kinn.kernels.uniform_bspline`; a grid fitted to quantiles (`update_grid`), or
    `kinn.kernels.use_reference(True)`, runs the Cox-de Boor reference.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid: int = 5,
        order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        base: str | None = "silu",
        basis: str = "bspline",
    ):
        super().__init__()
        base = "none" if base is None else base
        check_layer_options(grid, order, grid_range, base, basis)
        self.in_features, self.out_features = in_features, out_features
        self.grid, self.order, self.basis = grid, order, basis
        self.lo, self.hi = float(grid_range[0]), float(grid_range[1])
        self.uniform = True  # False once `update_grid` fitted the knots to quantiles
        knots = uniform_knots(grid, order, self.lo, self.hi) if basis == "bspline" else None
        # One knot vector per input feature, so that quantile knots can follow each feature's data.
        self.register_buffer("knots", None if knots is None else knots.expand(in_features, -1).clone())
        shape = (out_features, in_features)
        self.base_weight = nn.Parameter(torch.empty(shape)) if base == "silu" else None
        self.spline_weight = nn.Parameter(torch.empty(*shape, self.num_bases))
        self.spline_scaler = nn.Parameter(torch.empty(shape))
        self.register_buffer("edge_mask", None)  # (out, in) bool once pruned
        self.reset_parameters()

    @property
    def num_bases(self) -> int:
        """Basis functions per edge: G + k for B-splines, k + 1 for Chebyshev."""
        return self.grid + self.order if self.basis == "bspline" else self.order + 1

    def reset_parameters(self) -> None:
        """efficient-kan's: kaiming-uniform base weight and scaler, small random spline coefficients."""
        if self.base_weight is not None:
            nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5))
        bound = _NOISE / 2 / self.num_bases
        nn.init.uniform_(self.spline_weight, -bound, bound)

    def bases(self, x: torch.Tensor) -> torch.Tensor:
        """The dense bases of every input: (N, in) -> (N, in, num_bases)."""
        if self.basis == "chebyshev":
            return chebyshev(x, self.order).values
        if self.uniform and not reference_enabled():
            compact = uniform_bspline(x, self.grid, self.order, self.lo, self.hi)
            return to_dense(compact.index, compact.values, self.num_bases)
        return cox_de_boor(x, self.knots, self.order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] == self.in_features, f"expected (..., {self.in_features}), got {tuple(x.shape)}"
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_features)  # (N, in)
        bases = self.bases(x)  # (N, in, bases)
        scaler, base_weight = self.masked()
        weight = self.spline_weight * scaler.unsqueeze(-1)  # (out, in, bases)
        y = F.linear(bases.reshape(len(x), -1), weight.reshape(self.out_features, -1))  # (N, out)
        if base_weight is not None:
            y = y + F.linear(F.silu(x), base_weight)
        assert y.shape == (len(x), self.out_features)
        return y.reshape(*lead, self.out_features)

    def jet(self, x: torch.Tensor, gx: torch.Tensor, hx: torch.Tensor):
        """The layer's jet: x (N, in), gx and hx (N, in, P) -> y (N, out), gy and hy (N, out, P).

        gx and hx are the gradients and Hessian diagonals of the inputs with respect to P coordinates; gy and
        hy are those of the outputs, carried through the edge functions analytically in one forward pass.
        y equals `self(x)`. Differentiable (first order) in the parameters and in x, gx and hx. The backend
        (reference, fast PyTorch, C, Triton) is `kinn.kernels.set_backend`'s; see `kinn.kernels.kan_layer_jet`.
        """
        scaler, base_weight = self.masked()
        return kan_layer_jet(x, gx, hx, self.spline_weight, scaler, base_weight, self._jet_basis())

    def stacked_jet(self, J: torch.Tensor, squash: tuple[float, float] | None = None,
                    kind: str = "diag") -> torch.Tensor:
        """The jet on the stacked layout of `kinn.kernels.jets.Jet`: J (N, S, in) -> (N, S, out) of the given kind
        ("first", "diag", "full"), no copies; with squash = (a, b), of a + b tanh(J) (see
        `kinn.kernels.stacked_layer_jet`)."""
        scaler, base_weight = self.masked()
        return stacked_layer_jet(J, self.spline_weight, scaler, base_weight, self._jet_basis(), squash, kind)

    def masked(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The spline scaler and base weight with the pruned edges (`edge_mask` False) zeroed: a pruned
        edge's function is 0 and its parameters get no gradient. Without a mask, the parameters as they are."""
        if self.edge_mask is None:
            return self.spline_scaler, self.base_weight
        keep = self.edge_mask.to(self.spline_scaler.dtype)
        return self.spline_scaler * keep, None if self.base_weight is None else self.base_weight * keep

    def _jet_basis(self) -> JetBasis:
        return JetBasis(self.basis, self.order, self.num_bases, self.grid, self.lo, self.hi, self.knots, self.uniform)

    def get_extra_state(self) -> dict:
        """The grid the coefficients belong to, saved beside them, since grid refits change it."""
        return {"grid": self.grid, "lo": self.lo, "hi": self.hi, "uniform": self.uniform}

    def set_extra_state(self, state: dict) -> None:
        self.grid, self.lo, self.hi, self.uniform = state["grid"], state["lo"], state["hi"], state["uniform"]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A layer built from the config takes a refitted grid's shapes before loading into them.
        if self.edge_mask is None and prefix + "edge_mask" in state_dict:  # a pruned network's mask
            self.edge_mask = torch.ones_like(state_dict[prefix + "edge_mask"], dtype=torch.bool)
        for name in ("spline_weight", "knots"):
            saved, current = state_dict.get(prefix + name), getattr(self, name)
            if saved is not None and current is not None and saved.shape != current.shape:
                empty = current.new_empty(saved.shape)
                setattr(self, name, nn.Parameter(empty) if name == "spline_weight" else empty)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        grid = f"grid={self.grid}, range=({self.lo:g}, {self.hi:g}), " if self.basis == "bspline" else ""
        return (
            f"{self.in_features} -> {self.out_features}, basis={self.basis}, {grid}order={self.order}, "
            f"base={'silu' if self.base_weight is not None else 'none'}"
            + ("" if self.uniform else ", quantile knots")
            + ("" if self.edge_mask is None else f", {int((~self.edge_mask).sum())} edges pruned")
        )


def check_layer_options(grid, order, grid_range, base, basis) -> None:
    """Raise `KinnError` naming the bad value and what is allowed; the checks of `KANLinear`."""
    if basis not in BASES:
        raise unknown("basis", basis, BASES)
    if base not in BASE_ACTIVATIONS:
        raise unknown("base", base, BASE_ACTIVATIONS)
    if not _is_int(grid) or grid < 1:
        raise KinnError(f"grid must be an integer >= 1 (the number of spline intervals), not {grid!r}")
    if basis == "bspline" and not (_is_int(order) and 1 <= order <= MAX_ORDER):
        raise KinnError(f"order must be an integer in 1 .. {MAX_ORDER} for basis bspline, not {order!r}")
    if basis == "chebyshev" and not (_is_int(order) and order >= 1):
        raise KinnError(f"order (the degree) must be an integer >= 1 for basis chebyshev, not {order!r}")
    if len(grid_range) != 2 or not float(grid_range[0]) < float(grid_range[1]):
        raise KinnError(f"grid_range must be [lo, hi] with lo < hi, not {list(grid_range)}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def update_grid(layer: KANLinear, x: torch.Tensor, margin: float = 0.01, mode: str = "range") -> None:
    """Move the layer's G intervals to where its inputs x (N, in) lie, refitting the coefficients.

    mode "range":    one uniform grid over the inputs' range, widened by `margin` times that range each
                     side; the layer keeps the fast closed form.
    mode "quantile": per-feature knots at the inputs' quantiles (blended 2% towards uniform, so they stay
                     distinct); the layer then runs Cox-de Boor.

    The new coefficients are the float64 least-squares fit of the old spline branch, sampled at x and
    uniformly over the new range. A spline on new knots reproduces the old one exactly only where the old
    knots are among the new ones, which moving the grid does not give: the output changes by the fit
    error, not by rounding (see tests/test_kan.py for the sizes). `extend_grid` is the exact refit.
    """
    _require_bspline(layer, "update_grid")
    if mode not in UPDATE_MODES:
        raise unknown("grid update mode", mode, UPDATE_MODES)
    x = x.detach().reshape(-1, layer.in_features).to(torch.float64)
    per_feature = mode == "quantile"
    lo, hi = (x.amin(0), x.amax(0)) if per_feature else (x.min(), x.max())
    lo, hi = lo - margin * (hi - lo), hi + margin * (hi - lo)
    if not bool((hi > lo).all()):
        raise KinnError("update_grid needs inputs that are not all equal: their range is empty")
    G, k = layer.grid, layer.order
    if per_feature:
        knots = _quantile_knots(x, lo, hi, G, k)
    else:
        knots = uniform_knots(G, k, lo.item(), hi.item(), torch.float64, x.device)
        knots = knots.expand(layer.in_features, -1)
    points = torch.cat([x, _samples(lo, hi, G, k, layer.in_features, x.device)])
    # A quantile layer keeps lo and hi only to say where its knots lie: Cox-de Boor reads the knots.
    _refit(layer, points, G, knots, (lo.min().item(), hi.max().item()), uniform=not per_feature)


def extend_grid(layer: KANLinear, x: torch.Tensor, new_grid: int) -> None:
    """Re-grid the layer to `new_grid` uniform intervals on the same range, refitting the coefficients.

    When new_grid is a multiple of the current G, the old knots are among the new ones (knot insertion),
    so the old spline is exactly representable on [lo, hi] and the float64 least-squares refit, on x and
    on uniform samples of [lo, hi], reproduces the output there to rounding. Inputs outside [lo, hi]
    (possible only with between="none" or a grid_range narrower than tanh's) are fitted in the least-squares
    sense and spoil exactness. Other values of new_grid give the least-squares fit.
    """
    _require_bspline(layer, "extend_grid")
    if not layer.uniform:
        raise KinnError("extend_grid refines a uniform grid; this layer's knots follow quantiles")
    if not _is_int(new_grid) or new_grid < 1:
        raise KinnError(f"the new grid must be an integer >= 1, not {new_grid!r}")
    x = x.detach().reshape(-1, layer.in_features).to(torch.float64)
    knots = uniform_knots(new_grid, layer.order, layer.lo, layer.hi, torch.float64, x.device)
    samples = _samples(layer.lo, layer.hi, new_grid, layer.order, layer.in_features, x.device)
    points = torch.cat([x, samples])
    _refit(layer, points, new_grid, knots.expand(layer.in_features, -1), (layer.lo, layer.hi), uniform=True)


def _require_bspline(layer: KANLinear, what: str) -> None:
    if layer.basis != "bspline":
        raise KinnError(f"{what} needs the bspline basis; this layer uses {layer.basis}, which has no grid")


def _quantile_knots(x, lo, hi, grid, order):
    """Per-feature knots (in, G + 2k + 1): quantiles of x inside [lo, hi], extended by k uniform steps."""
    levels = torch.linspace(0, 1, grid + 1, dtype=x.dtype, device=x.device)
    adaptive = torch.quantile(x, levels, dim=0).T  # (in, G + 1)
    adaptive[:, 0], adaptive[:, -1] = lo, hi
    step = ((hi - lo) / grid).unsqueeze(-1)  # (in, 1)
    inner = _ADAPTIVE * adaptive + (1 - _ADAPTIVE) * (lo.unsqueeze(-1) + step * levels * grid)
    ends = torch.arange(1, order + 1, dtype=x.dtype, device=x.device) * step
    return torch.cat([lo.unsqueeze(-1) - ends.flip(-1), inner, hi.unsqueeze(-1) + ends], -1)


def _samples(lo, hi, grid, order, in_features, device):
    """2(k + 1) points per interval of [lo, hi], (S, in): they pin every basis down, inputs or none."""
    levels = torch.linspace(0, 1, 2 * (order + 1) * grid + 1, dtype=torch.float64, device=device)
    lo, hi = torch.as_tensor(lo, dtype=torch.float64), torch.as_tensor(hi, dtype=torch.float64)
    return (lo + (hi - lo) * levels.unsqueeze(-1)).expand(-1, in_features)


@torch.no_grad()
def _refit(layer: KANLinear, points, grid, knots, grid_range, uniform) -> None:
    """Swap the layer's grid for `knots` and least-squares refit its spline branch at points (P, in)."""
    old = _edge_splines(layer, points)  # (in, P, out)
    layer.grid, (layer.lo, layer.hi), layer.uniform = grid, grid_range, uniform
    layer.knots = knots.to(layer.spline_weight.dtype).contiguous()
    bases = layer.bases(points).transpose(0, 1)  # (in, P, G + k)
    coef = torch.linalg.lstsq(bases, old).solution  # (in, G + k, out)
    scaler = layer.spline_scaler.to(torch.float64).unsqueeze(-1)  # (out, in, 1)
    weight = coef.permute(2, 0, 1) / scaler  # the scaler stays, so divide it out of the coefficients
    # Contiguous, because L-BFGS flattens gradients with .view, and a gradient takes its parameter's strides.
    layer.spline_weight = nn.Parameter(weight.to(layer.spline_weight.dtype).contiguous())


def _edge_splines(layer: KANLinear, points) -> torch.Tensor:
    """s_ij sum_m c_ijm B_m(x_i) for every edge, in float64: (in, P, out)."""
    weight = layer.spline_weight * layer.masked()[0].unsqueeze(-1)
    return torch.einsum("pim,oim->ipo", layer.bases(points), weight.to(torch.float64))


class KAN(nn.Module, JetNetwork):
    """KAN layers of the given widths, with `between` applied between consecutive layers.

    between "tanh":    plain tanh, as KINN did; hidden inputs lie in (-1, 1), inside the default grid.
            "rescale": tanh mapped affinely onto grid_range (fixed at construction), so hidden inputs land
                       inside the grid whatever its range; the same as "tanh" on the default (-1, 1).
            "none":    nothing; hidden inputs may leave the grid, where the spline part fades to zero
                       and only the base branch carries them.
    The other arguments are those of `KANLinear`, shared by every layer.
    """

    def __init__(
        self,
        widths: Sequence[int],
        grid: int = 10,
        order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        base: str | None = "silu",
        basis: str = "bspline",
        between: str = "tanh",
    ):
        super().__init__()
        check_network_options(widths, between)
        self.between = between
        lo, hi = float(grid_range[0]), float(grid_range[1])
        self._centre, self._half = (lo + hi) / 2, (hi - lo) / 2  # the fixed map of "rescale"
        self.layers = nn.ModuleList(
            KANLinear(a, b, grid, order, grid_range, base, basis) for a, b in zip(widths[:-1], widths[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(self._squash(x) if i else x)
        return x

    # The jet kernels' backward (fast PyTorch, C and Triton) is not differentiable again: the jets carry
    # what residuals ask for instead (the whole Hessian for mixed derivatives and flux divergences), and
    # `kinn.pde.fields.JetBackend` takes derivatives of fluxes by the chain rule over the carried rows.
    jets_nest = False

    @property
    def prefers_jets(self) -> bool:
        """Jets where fused kernels run them: Triton on CUDA, the C kernels on CPU (uniform B-spline grids).

        Time per Adam step on CPU, one thread, each problem's default KAN (`scripts/bench_derivatives.py`,
        setup and scoring included), nested autograd over the closed-form bases against the C jets:
        heat_multiscale 77 -> 29 ms, poisson2d 23 -> 11, koch_snowflake 29 -> 15, crack_mode3 64 -> 38. The
        fast PyTorch jets are slower than autograd (147 against 47 ms for the heat net at G = 100, whose
        dense features are 96% zeros), so without the C kernels (no compiler, Chebyshev bases, quantile
        knots) autograd stays."""
        p = next(self.parameters())
        if p.is_cuda:
            return get_backend() in ("auto", "triton")
        fused = all(layer.basis == "bspline" and layer.uniform for layer in self.layers)
        return fused and get_backend() in ("auto", "native") and native_kan.available()

    def jet(self, j: Jet) -> Jet:
        """The forward pass on derivative jets (`kinn.kernels.jets`): each layer's `KANLinear.stacked_jet`, and the
        chain rule through what sits between layers, on jets of j's kind.

        A seed whose kind is left open (`Jet.seed(z, dz)`, as `kinn.models.field.FieldModel.jet` makes it) gets the
        kind the network's residuals asked for so far (`self.demand`; "diag", the layout of `Jet(J)`, before
        any request), and the
        jet returned can compute itself again with more (`Jet.rerun`), which `kinn.pde.fields.JetBackend` does
        when a residual asks for more than it carries. A seed's jet carries no autograd graph to the
        points: its rows are the derivatives in them (the kernels' backward is not differentiable again).
        """
        seed = j
        if j.affine:
            seed = j.detached()
            if j.open:
                seed = seed.as_kind(self.demand.kind or "diag")
        squash = {"tanh": (0.0, 1.0), "rescale": (self._centre, self._half)}.get(self.between)
        J = seed.J
        for i, layer in enumerate(self.layers):
            J = layer.stacked_jet(J, squash if i else None, seed.kind)
        out = Jet(J, seed.kind, seed.P)
        if j.open:
            out.demand = self.demand
            out.rerun = lambda kind: self.jet(seed.as_kind(kind))
        return out

    @property
    def demand(self) -> Demand:
        """What residuals asked of this network's jets (`kinn.kernels.jets.Demand`): the kind its seeds get."""
        if "_demand" not in self.__dict__:
            self.__dict__["_demand"] = Demand()
        return self.__dict__["_demand"]

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        if self.between == "tanh":
            return torch.tanh(x)
        if self.between == "rescale":
            return self._centre + self._half * torch.tanh(x)
        return x

    def update_grid(self, x: torch.Tensor, margin: float = 0.01, mode: str = "range") -> None:
        """`update_grid` each layer in turn, on its inputs as the refitted layers before it produce them."""
        self._regrid(x, lambda layer, h: update_grid(layer, h, margin, mode))

    def extend_grid(self, x: torch.Tensor, new_grid: int) -> None:
        """`extend_grid` every layer to `new_grid` intervals, each on its inputs for the network input x."""
        self._regrid(x, lambda layer, h: extend_grid(layer, h, new_grid))

    @torch.no_grad()
    def _regrid(self, x, refit) -> None:
        x = x.detach()
        for i, layer in enumerate(self.layers):
            h = self._squash(x) if i else x
            refit(layer, h)
            x = layer(h)


def check_network_options(widths, between) -> None:
    """Raise `KinnError` for widths that are not >= 2 positive integers, or an unknown `between`."""
    if len(widths) < 2 or not all(_is_int(w) and w >= 1 for w in widths):
        raise KinnError(f"widths must be two or more positive integers, not {list(widths)}")
    if between not in BETWEEN:
        raise unknown("between", between, BETWEEN)


@dataclasses.dataclass
class KANConfig:
    """Options of the KAN family (KINN's layer: cubic B-splines, SiLU base branch, tanh between layers).

    hidden:            hidden-layer widths; the network is [in_dim, *hidden, out_dim].
    grid:              G, B-spline intervals on grid_range (KINN used 10 to 100).
    order:             k, the B-spline order 1 .. 5 (strong forms need >= 2), or the Chebyshev degree.
    grid_range:        [lo, hi] of the spline grid; the inputs are scaled to [-1, 1].
    base:              "silu" adds w * silu(x) to every edge; "none" leaves the spline alone.
    basis:             "bspline", or "chebyshev" (T_0 .. T_order of tanh x; grid and grid_range unused).
    between:           "tanh" (KINN), "rescale" (tanh mapped onto grid_range) or "none".
    grid_schedule:     [[step, G], ...]: at each step, refine every layer to G intervals; exact when G is a
                       multiple of the current grid.
    grid_update_every: every this many steps, move each layer's grid to its inputs' range and refit
                       (least squares, not exact); 0 never does.
    """

    hidden: list[int] = dataclasses.field(default_factory=lambda: [5, 5])
    grid: int = 10
    order: int = 3
    grid_range: list[float] = dataclasses.field(default_factory=lambda: [-1.0, 1.0])
    base: str = "silu"
    basis: str = "bspline"
    between: str = "tanh"
    grid_schedule: list[list[int]] = dataclasses.field(default_factory=list)
    grid_update_every: int = 0

    def __post_init__(self):
        check_layer_options(self.grid, self.order, self.grid_range, self.base, self.basis)
        if not isinstance(self.hidden, list):  # a string would be taken apart into its characters
            raise KinnError(f"hidden must be a list of hidden-layer widths (e.g. [5, 5]), not {self.hidden!r}")
        check_network_options([1, *self.hidden, 1], self.between)
        for entry in self.grid_schedule:
            if len(entry) != 2 or not all(_is_int(v) for v in entry) or entry[0] < 0 or entry[1] < 1:
                raise KinnError(f"grid_schedule entries must be [step >= 0, grid >= 1], not {entry!r}")
        if not _is_int(self.grid_update_every) or self.grid_update_every < 0:
            raise KinnError(f"grid_update_every must be an integer >= 0, not {self.grid_update_every!r}")
        if self.basis != "bspline" and (self.grid_schedule or self.grid_update_every):
            raise KinnError("grid_schedule and grid_update_every need basis bspline; chebyshev has no grid")


class KANFamily(Family):
    """Kolmogorov-Arnold networks: KINN's solver family. Options: see `KANConfig`."""

    name = "kan"
    Config = KANConfig

    def check(self, problem, form: str, config: KANConfig | None = None, train=None) -> None:
        """Refuse a B-spline order too low for the derivatives the form takes, before any training.

        A B-spline of order k is k - 1 times continuously differentiable, its k-th derivative piecewise
        constant and its higher ones zero. Accepted: order >= the order needed; or, with the SiLU base
        branch, order = needed - 1 >= 2, where w silu(x) carries the top derivative (KINN's example 9, the
        wedge: cubic splines with the SiLU branch train a fourth-order residual, spline-only ones cannot).
        Refused: spline-only (base = "none") KANs of order below the needed one, and piecewise-linear
        splines (order 1) for any second-order form.

        The order needed is `problem.needs_order(form)`: the problem's `order` where it states one, else the
        form's (2 for the strong form, 1 for the energy form). Without a config, the defaults are checked.
        """
        super().check(problem, form, config)
        config = config or self.Config()
        needed = problem.needs_order(form)
        if config.basis != "bspline" or config.order >= needed:
            return  # Chebyshev bases are smooth; a spline of order k has a non-zero k-th derivative
        k, silu = config.order, config.base == "silu"
        if silu and k >= 2 and k == needed - 1:
            return  # the SiLU branch carries the top derivative (KINN's wedge: cubic splines, order 4)
        why = (f"their derivatives beyond order {k} vanish and this form takes derivatives of order {needed}")
        if not silu:
            why += " (base = 'none': a spline-only KAN has nothing else to carry them)"
        elif k == 1:
            why += " (piecewise-linear splines have kinks no collocation point sees)"
        fix = f"use order >= {needed}" + (f", or order {needed - 1} with base = 'silu'" if needed > 2 else "")
        raise KinnError(f"family 'kan' cannot train the {form} form with B-splines of order {k}: {why}; "
                        f"{fix} (3 is usual)")

    def build(self, in_dim: int, out_dim: int, config: KANConfig) -> KAN:
        return KAN(
            [in_dim, *config.hidden, out_dim],
            config.grid,
            config.order,
            config.grid_range,
            config.base,
            config.basis,
            config.between,
        )

    def hooks(self, net: KAN, config: KANConfig) -> dict:
        """{"grid": hook} when a grid schedule or grid updates are configured, else {}.

        hook(step, x) extends every layer to the scheduled G at a scheduled step, or moves the grids to
        the data's range every `grid_update_every` steps (from step 1 on), and returns True exactly when
        it replaced parameters.
        """
        schedule = {step: grid for step, grid in config.grid_schedule}
        every = config.grid_update_every
        if not schedule and not every:
            return {}

        def grid(step: int, x: torch.Tensor) -> bool:
            if step in schedule and any(layer.grid != schedule[step] for layer in net.layers):
                net.extend_grid(x, schedule[step])
                return True
            if every and step > 0 and step % every == 0:
                net.update_grid(x)
                return True
            return False

        return {"grid": grid}
