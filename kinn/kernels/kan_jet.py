"""The jet of a KAN layer: its outputs' values, gradients and Hessian diagonals from those of its inputs.

A jet carries, for each of N points and each unit, the value, the gradient with respect to the P physical
coordinates and the diagonal of the Hessian (d²/dx_p², p = 1 .. P). Through one KAN layer, whose edge
functions are phi_ij(x) = w_ij silu(x) + s_ij sum_m c_ijm B_m(x),

    y_j   = sum_i phi_ij(x_i)
    gy_jp = sum_i phi'_ij(x_i) gx_ip
    hy_jp = sum_i phi''_ij(x_i) gx_ip² + phi'_ij(x_i) hx_ip.

Each line contracts the same weight (s c | w) with its own feature set: the bases and silu; their first
derivatives times gx_p; their second derivatives times gx_p² plus their first times hx_p. A residual built
from the jets needs only a first-order backward pass to the parameters, not nested autograd.

Backends, chosen by `set_backend` (or before start by the environment variable KINN_KERNELS):
- "reference": dense bases (Cox-de Boor and its derivative recursion for B-splines) for value, d1 and d2,
  the three feature sets contracted by F.linear, autograd for the backward pass. What the others are
  checked against.
- "fast": pure PyTorch, for the CPU. The 1 + 2P feature sets of every point are stacked along the batch,
  (N, 1 + 2P), and contracted in ONE matmul with the base branch as one more basis column. The active
  bases' derivatives are one small matmul of the powers of the local coordinate with their polynomial
  table. A hand-written backward pass scatters the dense features again for the weight gradient (only the
  compact ones are kept) and gathers the input gradients back onto the k + 1 active bases: no autograd
  graph over the features.
- "native": the same fusion for the CPU, in C (`kinn.kernels.native_kan`, compiled on first use by the
  system C compiler): the active bases' rows of the weight only, no feature tensors in memory.
- "triton": fused kernels (`kinn.kernels.triton_kan`) that never write the dense bases; uniform B-spline
  grids only (the Chebyshev basis runs "fast" instead).
- "auto" (the default): "triton" on CUDA tensors where Triton imports; on CPU tensors "native" where it
  builds, else "fast".
Per-feature quantile knots always run the reference, as does `use_reference(True)`.

The stacked layout (N, S, width) is `kinn.kernels.jets.Jet`'s, of three kinds (`kinn.kernels.jets.pairs`): "first"
(value and gradient, S = 1 + P), "diag" (and the Hessian's diagonal, S = 1 + 2P; what `kan_layer_jet`
takes and returns as y, gy, hy) and "full" (the whole Hessian, S = 1 + P + P(P + 1)/2). Every backend takes
every kind.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn.functional as F

import kinn.kernels.native_kan as native_kan
from kinn.kernels import backend
from kinn.kernels.bspline import cox_de_boor, uniform_bspline_polynomials
from kinn.kernels.chebyshev import chebyshev, chebyshev_derivatives
from kinn.kernels.jets import Jet, activation, coordinates, pair_index

class JetBasis(NamedTuple):
    """The edge basis of a KAN layer, as the jet kernels need it.

    name:      "bspline" or "chebyshev".
    order:     B-spline order k, or Chebyshev degree.
    num_bases: G + k, or degree + 1.
    grid, lo, hi: the uniform B-spline grid (G intervals on [lo, hi]).
    knots:     (in, G + 2k + 1) per-feature B-spline knots, read by the Cox-de Boor reference.
    uniform:   False for quantile knots, which only the reference handles.
    """

    name: str
    order: int
    num_bases: int
    grid: int = 0
    lo: float = -1.0
    hi: float = 1.0
    knots: torch.Tensor | None = None
    uniform: bool = True


def kan_layer_jet(
    x: torch.Tensor,
    gx: torch.Tensor,
    hx: torch.Tensor,
    spline_weight: torch.Tensor,
    spline_scaler: torch.Tensor,
    base_weight: torch.Tensor | None,
    basis: JetBasis,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The jet through one KAN layer: x (N, in), gx and hx (N, in, P) -> y (N, out), gy and hy (N, out, P).

    hx and hy are Hessian diagonals (a "diag" jet; `stacked_layer_jet` takes every kind). Weights as in
    `KANLinear`: spline_weight (out, in, num_bases), spline_scaler (out, in), base_weight (out, in) or None.
    Differentiable (first order) in the weights and in x, gx and hx. y, gy and hy are views of one stacked
    jet.
    """
    n, fan_in, p = gx.shape
    assert x.shape == (n, fan_in) and hx.shape == gx.shape, f"x {tuple(x.shape)}, gx {tuple(gx.shape)}"
    J = torch.cat([x.unsqueeze(1), gx.transpose(1, 2), hx.transpose(1, 2)], 1)
    jet = _layer_jet(J, spline_weight, spline_scaler, base_weight, basis, None, "diag")
    return jet[:, 0], jet[:, 1 : 1 + p].transpose(1, 2), jet[:, 1 + p :].transpose(1, 2)


def stacked_layer_jet(J: torch.Tensor, spline_weight, spline_scaler, base_weight, basis: JetBasis,
                      squash: tuple[float, float] | None = None, kind: str = "diag") -> torch.Tensor:
    """The jet through one KAN layer on the stacked layout of `kinn.kernels.jets.Jet`: J (N, S, in) -> (N, S, out).

    kind: which second derivatives the rows after the gradients are ("first": none, "diag": the Hessian's
    diagonal, "full": all of it; `kinn.kernels.jets.pairs`). Through the layer, row (a, b) becomes
    sum_i phi''_ij(x_i) g_ia g_ib + phi'_ij(x_i) h_iab. The kernels read and write this layout, so a network
    that keeps its jets stacked copies nothing between layers. squash = (a, b): the layer reads
    a + b tanh(J) instead of J (the activation between KAN layers, as a jet), which the C kernels apply on
    the fly and the other paths first, by `kinn.kernels.jets.activation`.
    """
    return _layer_jet(J, spline_weight, spline_scaler, base_weight, basis, squash, kind)


def _squashed(J: torch.Tensor, a: float, b: float, kind: str) -> torch.Tensor:

    J = activation(Jet(J, kind), "tanh", fused=True).J  # a KAN's jets are never differentiated twice
    if (a, b) == (0.0, 1.0):
        return J
    return torch.cat([a + b * J[:, :1], b * J[:, 1:]], 1)  # a + b tanh: only the values shift


def _layer_jet(J, spline_weight, spline_scaler, base_weight, basis: JetBasis, squash, kind) -> torch.Tensor:
    """The stacked jet J (N, S, I), any strides -> (N, S, O), by the chosen backend. squash: the C kernels
    apply it themselves; the other paths get the squashed jet."""

    n, rows, fan_in = J.shape
    p = coordinates(rows, kind)
    fan_out = spline_weight.shape[0]
    assert spline_weight.shape == (fan_out, fan_in, basis.num_bases), tuple(spline_weight.shape)
    path = _path(J, basis, p)
    if squash is not None and path != "native":
        J, squash = _squashed(J, *squash, kind), None
    if path == "reference":
        return reference_stacked_jet(J, spline_weight, spline_scaler, base_weight, basis, kind)
    weight = stacked_weight(spline_weight, spline_scaler, base_weight)  # (out, in, D)
    if path == "triton":
        from kinn.kernels.triton_kan import triton_stacked_jet

        jet = triton_stacked_jet(J, weight, basis, kind)
    elif path == "native":
        jet = native_kan.native_stacked_jet(J, weight, basis, squash, kind)
    else:
        jet = _StackedJet.apply(J, weight, basis, p, kind)
    assert jet.shape == (n, rows, fan_out)
    return jet


def stacked_weight(spline_weight, spline_scaler, base_weight) -> torch.Tensor:
    """(out, in, D): the scaled spline coefficients, then base_weight as basis D - 1 when there is one."""
    weight = spline_weight * spline_scaler.unsqueeze(-1)  # (out, in, bases)
    if base_weight is None:
        return weight
    return torch.cat([weight, base_weight.unsqueeze(-1)], -1)


def _path(x: torch.Tensor, basis: JetBasis, p: int) -> str:
    """The backend that runs: the chosen one where it can, "fast" for what the fused kernels do not take."""
    if backend.use_reference_rules() or not basis.uniform:
        return "reference"
    fused = basis.name == "bspline"  # the Triton and C kernels evaluate uniform B-splines only
    chosen = backend.get_backend()
    if fused and (chosen == "triton" or (chosen == "auto" and x.is_cuda and _triton_imports())):
        return "triton"
    if fused and (chosen == "native" or (chosen == "auto" and not x.is_cuda and native_kan.supports(basis, p)
                                         and native_kan.available())):
        return "native"
    return "fast"


def _triton_imports() -> bool:
    try:
        import kinn.kernels.triton_kan  # noqa: F401
    except ImportError:
        return False
    return True


# ---- the reference -------------------------------------------------------------------------------------


def reference_jet(x, gx, hx, spline_weight, spline_scaler, base_weight, basis: JetBasis):
    """The "diag" jet from dense bases, as `reference_stacked_jet`, on the parts x (N, in), gx and hx
    (N, in, P) -> y (N, out), gy and hy (N, out, P)."""
    p = gx.shape[-1]
    J = torch.cat([x.unsqueeze(1), gx.transpose(1, 2), hx.transpose(1, 2)], 1)
    jet = reference_stacked_jet(J, spline_weight, spline_scaler, base_weight, basis, "diag")
    return jet[:, 0], jet[:, 1 : 1 + p].transpose(1, 2), jet[:, 1 + p :].transpose(1, 2)


def reference_stacked_jet(J, spline_weight, spline_scaler, base_weight, basis: JetBasis, kind: str) -> torch.Tensor:
    """The stacked jet (N, S, in) -> (N, S, out) from dense bases, one feature set per row, and F.linear;
    autograd does the backward pass.

    B-splines by Cox-de Boor on `basis.knots` (uniform or not), the Chebyshev basis by its recurrence,
    silu' and silu'' in closed form. Row 0: the bases; row 1 + p: their first derivatives times g_p; second
    row (a, b): their second derivatives times g_a g_b plus their first times h_ab.
    """

    n, rows, fan_in = J.shape
    p = coordinates(rows, kind)
    a, b = pair_index(p, kind, J.device)
    x, g, h = J[:, 0], J[:, 1 : 1 + p], J[:, 1 + p :]  # (N, in), (N, P, in), (N, M, in)
    gg = J.index_select(1, a) * J.index_select(1, b)  # (N, M, in): g_a g_b
    b0, b1, b2 = _dense_bases(x, basis)  # (N, in, bases) each
    weight = (spline_weight * spline_scaler.unsqueeze(-1)).reshape(len(spline_weight), -1)  # (out, in * bases)
    features = [b0.unsqueeze(1), b1.unsqueeze(1) * g.unsqueeze(-1)]
    features.append(b2.unsqueeze(1) * gg.unsqueeze(-1) + b1.unsqueeze(1) * h.unsqueeze(-1))
    jet = F.linear(torch.cat(features, 1).reshape(n, rows, -1), weight)  # (N, S, out)
    if base_weight is not None:
        s0, s1, s2 = (s.unsqueeze(1) for s in silu_derivatives(x, 2))  # (N, 1, in) each
        jet = jet + F.linear(torch.cat([s0, s1 * g, s2 * gg + s1 * h], 1), base_weight)
    return jet


def _dense_bases(x, basis: JetBasis) -> list[torch.Tensor]:
    """Values, first and second x-derivatives of every basis, (N, in, bases) each."""
    if basis.name == "chebyshev":
        return list(chebyshev(x, basis.order, derivatives=2))
    return [cox_de_boor(x, basis.knots, basis.order, derivative=n) for n in range(3)]


def silu_derivatives(x: torch.Tensor, n: int) -> list[torch.Tensor]:
    """[silu(x), silu'(x), ..., silu^(n)(x)] for n = 0 .. 3, in closed form through sigmoid s(x).

    With s' = s(1 - s): silu = x s, silu' = s + x s', silu'' = s'(2 + x(1 - 2s)),
    silu''' = s'(3(1 - 2s) + x((1 - 2s)² - 2s')).
    """
    s = torch.sigmoid(x)
    s1 = s * (1 - s)
    c = 1 - 2 * s
    d = [x * s, s + x * s1, s1 * (2 + x * c), s1 * (3 * c + x * (c * c - 2 * s1))]
    return d[: n + 1]


# ---- the fast CPU path ---------------------------------------------------------------------------------


class _StackedJet(torch.autograd.Function):
    """J (N, S, I), weight (O, I, D) -> the stacked jet (N, S, O) in one matmul.

    Written for few, large operations: on a CPU each operation costs a thread synchronisation, which on a
    loaded machine outweighs the arithmetic of small ones. Kept for the backward pass: the compact active
    features' slots and derivatives (0 .. 2, one more where the inputs need gradients: for the x-gradient;
    one fewer for a "first" jet), J, and the weight where the inputs need gradients. The backward pass
    scatters the dense features (N, S, I, D) again for the one matmul of the weight gradient: about
    D / (k + 2) times less memory kept than the dense features, for one scatter more.
    """

    @staticmethod
    def forward(ctx, J, weight, basis, p, kind):
        n, sets, fan_out, width = len(J), J.shape[1], len(weight), weight.shape[-1]
        want_inputs = ctx.needs_input_grad[0]
        order = (1 if kind == "first" else 2) + want_inputs
        slots, d = _active(J[:, 0], basis, width, order)  # (N, I, K'), (N, I, order + 1, K')
        features = _dense(_feature_sets(d, J, p, kind), slots, width)  # (N, S, I, D)
        jet = features.view(n * sets, -1) @ weight.reshape(fan_out, -1).T  # (N S, O)
        ctx.save_for_backward(weight if want_inputs else None, slots, d, J)
        ctx.width, ctx.p, ctx.kind = width, p, kind
        return jet.view(n, sets, fan_out)

    @staticmethod
    def backward(ctx, grad):
        weight, slots, d, J = ctx.saved_tensors
        n, sets, fan_out = grad.shape
        width, p, kind = ctx.width, ctx.p, ctx.kind
        grad = grad.reshape(n * sets, fan_out)  # (N S, O)
        grad_J = grad_weight = None
        if ctx.needs_input_grad[1]:
            features = _dense(_feature_sets(d, J, p, kind), slots, width)  # (N, S, I, D), as in forward
            grad_weight = (grad.T @ features.view(n * sets, -1)).view(fan_out, -1, width)
            del features
        if ctx.needs_input_grad[0]:
            grad_features = (grad @ weight.reshape(fan_out, -1)).view(n, sets, -1, width)  # (N, S, I, D)
            if slots is not None:  # back to the active slots; the clamped off-grid ones meet zero bases
                grad_features = grad_features.gather(-1, slots.unsqueeze(1).expand(-1, sets, -1, -1))
            grad_J = _input_grads(grad_features, d, J, p, kind)
        return grad_J, grad_weight, None, None, None


def _active(x, basis: JetBasis, width: int, order: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The columns of the active features in rows of `width`, and their x-derivatives 0 .. order.

    Returns slots (N, I, K') into the dense row, or None where the row is dense (Chebyshev), and
    d (N, I, order + 1, K'): the k + 1 active B-splines (or all Chebyshev polynomials), then silu when
    `width` has room for the base branch. Plain tensors, no autograd graph.
    """
    x = x.detach()
    if basis.name == "chebyshev":
        slots, d = None, torch.stack(chebyshev_derivatives(x, basis.order, order), -2)
    else:
        slots, d = _uniform_bspline(x, basis, order)
    if width > basis.num_bases:  # the base branch: silu in the last column
        d = torch.cat([d, torch.stack(silu_derivatives(x, order), -1).unsqueeze(-1)], -1)
        if slots is not None:
            slots = torch.cat([slots, slots.new_full((*x.shape, 1), basis.num_bases)], -1)
    return slots, d


def _uniform_bspline(x, basis: JetBasis, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The active B-splines' columns (N, I, k + 1) and x-derivatives 0 .. order (N, I, order + 1, k + 1).

    The interval and local coordinate are located exactly as `uniform_bspline` locates them; the
    derivatives are then one small matmul of the powers of u with the polynomial table, instead of a
    Horner step per power and order.
    """
    k1 = basis.order + 1
    s = ((x - basis.lo) * (basis.grid / (basis.hi - basis.lo))).clamp_(-k1, basis.grid + k1 - 1)
    j = s.floor()
    powers = (s - j).unsqueeze(-1) ** torch.arange(k1, dtype=x.dtype, device=x.device)  # (N, I, k + 1)
    table = _polynomials(basis, order, x.dtype, x.device)  # (k + 1 powers, (order + 1) (k + 1))
    slots = j.long().unsqueeze(-1) + torch.arange(k1, device=x.device)  # (N, I, k + 1)
    on_grid = (slots >= 0) & (slots < basis.num_bases)
    d = (powers @ table).view(*x.shape, order + 1, k1) * on_grid.unsqueeze(-2)  # zero off the grid
    # Off-grid slots carry zero bases, so clamping them onto a valid column adds nothing.
    return slots.clamp_(0, basis.num_bases - 1), d


@functools.lru_cache(maxsize=64)
def _polynomial_table(grid, order, lo, hi, derivatives, dtype, device) -> torch.Tensor:
    table = uniform_bspline_polynomials(grid, order, lo, hi, derivatives, dtype, device)  # (n, p, r)
    return table.permute(1, 0, 2).reshape(order + 1, -1)  # (p, n r)


def _polynomials(basis: JetBasis, derivatives: int, dtype, device) -> torch.Tensor:
    return _polynomial_table(basis.grid, basis.order, basis.lo, basis.hi, derivatives, dtype, device)


def _feature_sets(d, J, p: int, kind: str) -> torch.Tensor:
    """The S compact feature sets (N, S, I, K') from derivatives d (N, I, 2+, K') and the jet J (N, S, I)."""

    d0, d1 = d[:, None, :, 0], d[:, None, :, 1]  # (N, 1, I, K')
    sets = [d0, d1 * J[:, 1 : 1 + p].unsqueeze(-1)]
    if kind != "first":
        a, b = pair_index(p, kind, J.device)
        gg = (J.index_select(1, a) * J.index_select(1, b)).unsqueeze(-1)  # (N, M, I, 1)
        sets.append(d[:, None, :, 2] * gg + d1 * J[:, 1 + p :].unsqueeze(-1))
    return torch.cat(sets, 1)


def _dense(compact: torch.Tensor, slots: torch.Tensor | None, width: int) -> torch.Tensor:
    """Scatter compact features (N, S, I, K') into their rows (N, S, I, width); dense ones pass through."""
    if slots is None:
        return compact
    index = slots.unsqueeze(1).expand_as(compact)  # (N, S, I, K')
    # Adding, not writing: clamped off-grid slots may share a column with an active one.
    return compact.new_zeros(*compact.shape[:-1], width).scatter_add_(-1, index, compact)


def _input_grads(grad_features, d, J, p: int, kind: str) -> torch.Tensor:
    """The gradient of the jet J (N, S, I) from those of the compact feature sets (N, S, I, K').

    Set 0 is d0, set 1 + p is d1 g_p, second set m = (a, b) is d2 g_a g_b + d1 h_m.
    """

    g = J[:, 1 : 1 + p]  # (N, P, I)
    g0, g1 = grad_features[:, 0], grad_features[:, 1 : 1 + p]
    d1, d2 = d[:, None, :, 1], d[:, None, :, 2]  # (N, 1, I, K')
    grad_g = (g1 * d1).sum(-1)  # (N, P, I)
    grad_x = (g0 * d[:, :, 1]).sum(-1) + ((g1 * d2).sum(-1) * g).sum(1)  # (N, I)
    if kind == "first":
        return torch.cat([grad_x.unsqueeze(1), grad_g], 1)
    a, b = pair_index(p, kind, J.device)
    h, ga, gb = J[:, 1 + p :], J.index_select(1, a), J.index_select(1, b)  # (N, M, I)
    g2 = grad_features[:, 1 + p :]  # (N, M, I, K')
    grad_h = (g2 * d1).sum(-1)  # (N, M, I)
    g2d2 = (g2 * d2).sum(-1)
    grad_g = grad_g.index_add(1, a - 1, g2d2 * gb).index_add(1, b - 1, g2d2 * ga)
    grad_x = grad_x + (g2d2 * h).sum(1) + ((g2 * d[:, None, :, 3]).sum(-1) * ga * gb).sum(1)
    return torch.cat([grad_x.unsqueeze(1), grad_g, grad_h], 1)
