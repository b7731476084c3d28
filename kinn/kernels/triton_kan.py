"""Fused Triton kernels for the jet of a KAN layer on a uniform B-spline grid.

The kernels evaluate the k + 1 active bases of each input and their derivatives from the polynomial table
of `uniform_bspline_polynomials` (Horner's rule in the local coordinate) and never write the dense
(N, in, G + k) bases:

- forward: the stacked jet (N, 1 + 2P, out) of `kinn.kernels.kan_jet`, each program a block of points
  and outputs, looping over the inputs and gathering the k + 1 coefficient rows each point touches;
- backward to the inputs x, gx, hx: each program a block of points, looping over inputs, contracting the
  incoming gradient with the gathered coefficient rows;
- backward to the weight (the scaled coefficients and the base weight as one (in, D, out) tensor):
  each program one input, one block of outputs and one chunk of points, accumulating its (D, out-block)
  gradient in registers (one-hot rows times the row contributions, a small dot per block of points),
  then writing it once; the chunks are summed by PyTorch (a two-stage reduction, deterministic, no
  atomics).

float32 and float64; the dot products run in IEEE precision (no TF32). Importing this module needs
Triton, which kinn treats as optional: `kinn.kernels.kan_jet` imports it only when it is to be used.
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from .bspline import uniform_bspline_polynomials

_ROWS = 16  # points per program in the forward and input-gradient kernels (16 beat 32 and 64 on an H100)
_WEIGHT_ROWS = 16  # points per step of the weight-gradient kernel (the smallest dot)
_PROGRAMS = 1024  # about how many weight-gradient programs to launch: enough to fill a GPU
_WARPS = 4  # warps per program of every kernel


def triton_stacked_jet(x, gx, hx, weight, basis) -> torch.Tensor:
    """x (N, I), gx and hx (N, P, I) (any strides), weight (O, I, D) -> the stacked jet (N, 1 + 2P, O).

    `basis` is a uniform-grid B-spline `kinn.kernels.JetBasis`. Differentiable (first order) in x, gx, hx
    and weight.
    """
    if basis.name != "bspline" or not basis.uniform:
        raise ValueError("the Triton jet kernels handle B-splines on a uniform grid only")
    return _TritonJet.apply(x, gx, hx, weight, basis)


class _TritonJet(torch.autograd.Function):
    """The three kernels as one autograd node; only x, gx, hx and the (I, D, O) weight are kept for backward."""

    @staticmethod
    def forward(ctx, x, gx, hx, weight, basis):
        n, fan_in = x.shape
        p, fan_out = gx.shape[1], weight.shape[0]
        wt = weight.permute(1, 2, 0).contiguous()  # (I, D, O): a point's coefficient rows are contiguous
        table, locator = _tables(basis, x.dtype, x.device)
        jet = x.new_empty(n, 1 + 2 * p, fan_out)
        block_o = _block(fan_out)
        grid = (triton.cdiv(n, _ROWS), triton.cdiv(fan_out, block_o))
        _forward[grid](
            x, gx, hx, wt, table, locator, jet, n, fan_in, fan_out,
            *x.stride(), *gx.stride(), *hx.stride(),
            P=p, PP=_pow2(p), K=basis.order + 1, NB=basis.num_bases, D=wt.shape[1],
            BASE=wt.shape[1] > basis.num_bases, GRID=basis.grid, BN=_ROWS, BO=block_o, num_warps=_WARPS,
        )
        ctx.save_for_backward(x, gx, hx, wt)
        ctx.basis = basis
        return jet

    @staticmethod
    def backward(ctx, grad):
        x, gx, hx, wt = ctx.saved_tensors
        basis = ctx.basis
        n, fan_in = x.shape
        p, width, fan_out = gx.shape[1], wt.shape[1], wt.shape[2]
        grad = grad.contiguous()  # (N, S, O)
        table, locator = _tables(basis, x.dtype, x.device)
        shape = dict(P=p, PP=_pow2(p), K=basis.order + 1, NB=basis.num_bases, D=width,
                     BASE=width > basis.num_bases, GRID=basis.grid)
        grad_x = grad_gx = grad_hx = grad_weight = None
        if any(ctx.needs_input_grad[:3]):
            grad_x = torch.empty_like(x, memory_format=torch.contiguous_format)  # (N, I)
            grad_gx = x.new_empty(n, p, fan_in)  # (N, P, I)
            grad_hx = x.new_empty(n, p, fan_in)
            _backward_inputs[(triton.cdiv(n, _ROWS),)](
                x, gx, hx, wt, table, locator, grad, grad_x, grad_gx, grad_hx, n, fan_in, fan_out,
                *x.stride(), *gx.stride(), *hx.stride(), **shape,
                BN=_ROWS, BO=_block(fan_out), num_warps=_WARPS,
            )
        if ctx.needs_input_grad[3]:
            block_o = _block(fan_out)
            programs = fan_in * triton.cdiv(fan_out, block_o)
            chunks = max(1, min(triton.cdiv(n, _WEIGHT_ROWS), _PROGRAMS // programs))
            rows = triton.cdiv(triton.cdiv(n, chunks), _WEIGHT_ROWS) * _WEIGHT_ROWS
            chunks = triton.cdiv(n, rows)
            partial = x.new_empty(chunks, fan_in, width, fan_out)  # (C, I, D, O)
            _backward_weight[(fan_in, triton.cdiv(fan_out, block_o), chunks)](
                x, gx, hx, table, locator, grad, partial, n, fan_in, fan_out, rows,
                *x.stride(), *gx.stride(), *hx.stride(), **shape,
                DP=max(16, _pow2(width)), BN=_WEIGHT_ROWS, BO=block_o, num_warps=_WARPS,
            )
            grad_weight = partial.sum(0).permute(2, 0, 1)  # (O, I, D)
        return grad_x, grad_gx, grad_hx, grad_weight, None


def _pow2(n: int) -> int:
    return max(1, triton.next_power_of_2(n))


def _block(fan_out: int) -> int:
    """Outputs per program: all of them up to 64, at least 16 (the smallest dot)."""
    return min(64, max(16, _pow2(fan_out)))


def _tables(basis, dtype, device):
    """The polynomial table (4, k + 1, k + 1) and [lo, G / (hi - lo)] in the inputs' dtype, on their device.

    Rounded to the dtype exactly as `uniform_bspline` rounds them, so that both locate every point in the
    same interval, on knots too.
    """
    return _cached_tables(basis.grid, basis.order, basis.lo, basis.hi, dtype, device)


@functools.lru_cache(maxsize=64)
def _cached_tables(grid, order, lo, hi, dtype, device):
    # Cached: a host-to-device copy at every call would synchronise with the GPU.
    table = uniform_bspline_polynomials(grid, order, lo, hi, 3, dtype, device)
    locator = torch.tensor([lo, grid / (hi - lo)], dtype=dtype, device=device)
    return table, locator


@triton.jit
def _basis(table, n: tl.constexpr, r: tl.constexpr, u, K: tl.constexpr):
    """The n-th x-derivative of active basis r at local coordinates u, by Horner's rule."""
    value = tl.load(table + (n * K + K - 1) * K + r) + 0 * u
    for q in tl.static_range(1, K):
        value = value * u + tl.load(table + (n * K + K - 1 - q) * K + r)
    return value


@triton.jit
def _locate(x, locator, K: tl.constexpr, GRID: tl.constexpr):
    """The first active basis j (int32) and the local coordinate u of every x, as `uniform_bspline`."""
    s = (x - tl.load(locator)) * tl.load(locator + 1)
    s = tl.minimum(tl.maximum(s, -K), GRID + K - 1)  # keeps j in range; every basis is zero there anyway
    j = tl.floor(s)
    return j.to(tl.int32), s - j


@triton.jit
def _silu(x, n: tl.constexpr):
    """The n-th derivative of silu, n = 0 .. 3, in closed form (see `kan_jet.silu_derivatives`)."""
    s = 1 / (1 + tl.exp(-x))
    s1 = s * (1 - s)
    c = 1 - 2 * s
    if n == 0:
        out = x * s
    elif n == 1:
        out = s + x * s1
    elif n == 2:
        out = s1 * (2 + x * c)
    else:
        out = s1 * (3 * c + x * (c * c - 2 * s1))
    return out


@triton.jit
def _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, i, mn, mp, sxn, sxi, sgn, sgp, sgi, shn, shp, shi):
    """x (BN,), gx and hx (BN, PP) of input i for the rows rn; zero where masked."""
    x = tl.load(x_ptr + rn * sxn + i * sxi, mask=mn, other=0.0)
    m2 = mn[:, None] & mp[None, :]
    g = tl.load(gx_ptr + rn[:, None] * sgn + rp[None, :] * sgp + i * sgi, mask=m2, other=0.0)
    h = tl.load(hx_ptr + rn[:, None] * shn + rp[None, :] * shp + i * shi, mask=m2, other=0.0)
    return x, g, h


@triton.jit
def _coefficient_rows(w_ptr, i, slot, mn, ro, mo, O, NB: tl.constexpr, D: tl.constexpr):
    """The weight rows (BN, BO) of input i at basis `slot` of every point; zero for bases off the grid."""
    ok = mn & (slot >= 0) & (slot < NB)  # an off-grid basis meets a zero weight, not a clamped one
    return tl.load(w_ptr + (i * D + slot[:, None]) * O + ro[None, :], mask=ok[:, None] & mo[None, :], other=0.0)


@triton.jit
def _load_grad(grad_ptr, rn, rp, ro, mn, mp, mo, O, P: tl.constexpr):
    """The incoming gradient of the value (BN, BO), gradient and Hessian sets (BN, PP, BO) of rows rn."""
    S = 1 + 2 * P
    row = rn[:, None, None] * (S * O) + ro[None, None, :]  # (BN, 1, BO)
    m3 = mn[:, None, None] & mp[None, :, None] & mo[None, None, :]
    g0 = tl.load(grad_ptr + rn[:, None] * (S * O) + ro[None, :], mask=mn[:, None] & mo[None, :], other=0.0)
    gg = tl.load(grad_ptr + row + (1 + rp[None, :, None]) * O, mask=m3, other=0.0)
    gh = tl.load(grad_ptr + row + (1 + P + rp[None, :, None]) * O, mask=m3, other=0.0)
    return g0, gg, gh


@triton.jit
def _forward(
    x_ptr, gx_ptr, hx_ptr, w_ptr, table, locator, out_ptr, N, I, O,
    sxn, sxi, sgn, sgp, sgi, shn, shp, shi,
    P: tl.constexpr, PP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr, D: tl.constexpr,
    BASE: tl.constexpr, GRID: tl.constexpr, BN: tl.constexpr, BO: tl.constexpr,
):
    rn = tl.program_id(0) * BN + tl.arange(0, BN)
    ro = tl.program_id(1) * BO + tl.arange(0, BO)
    rp = tl.arange(0, PP)
    mn, mo, mp = rn < N, ro < O, rp < P
    dtype = x_ptr.dtype.element_ty
    value = tl.zeros((BN, BO), dtype)
    grad = tl.zeros((BN, PP, BO), dtype)
    hess = tl.zeros((BN, PP, BO), dtype)
    for i in range(0, I):
        x, g, h = _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, i, mn, mp, sxn, sxi, sgn, sgp, sgi, shn, shp, shi)
        j, u = _locate(x, locator, K, GRID)
        for r in tl.static_range(K):
            b0, b1, b2 = _basis(table, 0, r, u, K), _basis(table, 1, r, u, K), _basis(table, 2, r, u, K)
            w = _coefficient_rows(w_ptr, i, j + r, mn, ro, mo, O, NB, D)  # (BN, BO)
            value += b0[:, None] * w
            grad += (b1[:, None] * g)[:, :, None] * w[:, None, :]
            hess += (b2[:, None] * g * g + b1[:, None] * h)[:, :, None] * w[:, None, :]
        if BASE:
            s0, s1, s2 = _silu(x, 0), _silu(x, 1), _silu(x, 2)
            w = tl.load(w_ptr + (i * D + NB) * O + ro, mask=mo, other=0.0)[None, :]  # (1, BO)
            value += s0[:, None] * w
            grad += (s1[:, None] * g)[:, :, None] * w[:, None, :]
            hess += (s2[:, None] * g * g + s1[:, None] * h)[:, :, None] * w[:, None, :]
    S = 1 + 2 * P
    row = rn[:, None, None] * (S * O) + ro[None, None, :]  # (BN, 1, BO)
    m3 = mn[:, None, None] & mp[None, :, None] & mo[None, None, :]
    tl.store(out_ptr + rn[:, None] * (S * O) + ro[None, :], value, mask=mn[:, None] & mo[None, :])
    tl.store(out_ptr + row + (1 + rp[None, :, None]) * O, grad, mask=m3)
    tl.store(out_ptr + row + (1 + P + rp[None, :, None]) * O, hess, mask=m3)


@triton.jit
def _backward_inputs(
    x_ptr, gx_ptr, hx_ptr, w_ptr, table, locator, grad_ptr, gx_out, ggx_out, ghx_out, N, I, O,
    sxn, sxi, sgn, sgp, sgi, shn, shp, shi,
    P: tl.constexpr, PP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr, D: tl.constexpr,
    BASE: tl.constexpr, GRID: tl.constexpr, BN: tl.constexpr, BO: tl.constexpr,
):
    rn = tl.program_id(0) * BN + tl.arange(0, BN)
    rp = tl.arange(0, PP)
    mn, mp = rn < N, rp < P
    dtype = x_ptr.dtype.element_ty
    for i in range(0, I):
        x, g, h = _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, i, mn, mp, sxn, sxi, sgn, sgp, sgi, shn, shp, shi)
        j, u = _locate(x, locator, K, GRID)
        dx = tl.zeros((BN,), dtype)
        dg = tl.zeros((BN, PP), dtype)
        dh = tl.zeros((BN, PP), dtype)
        for o0 in range(0, O, BO):
            ro = o0 + tl.arange(0, BO)
            mo = ro < O
            # The block of the incoming gradient stays in L1 across the inputs of this program.
            g0, gg, gh = _load_grad(grad_ptr, rn, rp, ro, mn, mp, mo, O, P)
            for r in tl.static_range(K):
                w = _coefficient_rows(w_ptr, i, j + r, mn, ro, mo, O, NB, D)  # (BN, BO)
                b1, b2, b3 = _basis(table, 1, r, u, K), _basis(table, 2, r, u, K), _basis(table, 3, r, u, K)
                e0 = tl.sum(g0 * w, 1)  # (BN,): the gradient of feature set 0 at this basis
                e1 = tl.sum(gg * w[:, None, :], 2)  # (BN, PP): of sets 1 + p
                e2 = tl.sum(gh * w[:, None, :], 2)  # (BN, PP): of sets 1 + P + p
                dx += e0 * b1 + tl.sum(e1 * g + e2 * h, 1) * b2 + tl.sum(e2 * g * g, 1) * b3
                dg += e1 * b1[:, None] + 2 * g * e2 * b2[:, None]
                dh += e2 * b1[:, None]
            if BASE:
                w = tl.load(w_ptr + (i * D + NB) * O + ro, mask=mo, other=0.0)[None, :]  # (1, BO)
                s1, s2, s3 = _silu(x, 1), _silu(x, 2), _silu(x, 3)
                e0 = tl.sum(g0 * w, 1)
                e1 = tl.sum(gg * w[:, None, :], 2)
                e2 = tl.sum(gh * w[:, None, :], 2)
                dx += e0 * s1 + tl.sum(e1 * g + e2 * h, 1) * s2 + tl.sum(e2 * g * g, 1) * s3
                dg += e1 * s1[:, None] + 2 * g * e2 * s2[:, None]
                dh += e2 * s1[:, None]
        m2 = mn[:, None] & mp[None, :]
        tl.store(gx_out + rn * I + i, dx, mask=mn)
        tl.store(ggx_out + (rn[:, None] * P + rp[None, :]) * I + i, dg, mask=m2)
        tl.store(ghx_out + (rn[:, None] * P + rp[None, :]) * I + i, dh, mask=m2)


@triton.jit
def _backward_weight(
    x_ptr, gx_ptr, hx_ptr, table, locator, grad_ptr, out_ptr, N, I, O, ROWS,
    sxn, sxi, sgn, sgp, sgi, shn, shp, shi,
    P: tl.constexpr, PP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr, D: tl.constexpr,
    BASE: tl.constexpr, GRID: tl.constexpr, DP: tl.constexpr, BN: tl.constexpr, BO: tl.constexpr,
):
    i = tl.program_id(0)
    ro = tl.program_id(1) * BO + tl.arange(0, BO)
    chunk = tl.program_id(2)
    rp, rd = tl.arange(0, PP), tl.arange(0, DP)
    mo, mp = ro < O, rp < P
    dtype = x_ptr.dtype.element_ty
    acc = tl.zeros((DP, BO), dtype)  # this chunk's gradient of the coefficient rows (slot, output)
    base = tl.zeros((BO,), dtype)
    for n0 in range(chunk * ROWS, tl.minimum(chunk * ROWS + ROWS, N), BN):
        rn = n0 + tl.arange(0, BN)
        mn = rn < N
        x, g, h = _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, i, mn, mp, sxn, sxi, sgn, sgp, sgi, shn, shp, shi)
        g0, gg, gh = _load_grad(grad_ptr, rn, rp, ro, mn, mp, mo, O, P)
        j, u = _locate(x, locator, K, GRID)
        for r in tl.static_range(K):
            b0, b1, b2 = _basis(table, 0, r, u, K), _basis(table, 1, r, u, K), _basis(table, 2, r, u, K)
            c1 = b1[:, None] * g  # (BN, PP): feature sets 1 + p
            c2 = b2[:, None] * g * g + b1[:, None] * h  # sets 1 + P + p
            # (BN, BO): what each point adds to the gradient of coefficient row j + r
            rows = b0[:, None] * g0 + tl.sum(c1[:, :, None] * gg, 1) + tl.sum(c2[:, :, None] * gh, 1)
            slot = j + r
            ok = mn & (slot >= 0) & (slot < NB)
            onehot = tl.where((rd[None, :] == slot[:, None]) & ok[:, None], 1.0, 0.0).to(dtype)  # (BN, DP)
            acc = tl.dot(tl.trans(onehot), rows, acc, input_precision="ieee", out_dtype=dtype)  # a scatter-add
        if BASE:
            s0, s1, s2 = _silu(x, 0), _silu(x, 1), _silu(x, 2)
            c1 = s1[:, None] * g
            c2 = s2[:, None] * g * g + s1[:, None] * h
            rows = s0[:, None] * g0 + tl.sum(c1[:, :, None] * gg, 1) + tl.sum(c2[:, :, None] * gh, 1)
            base += tl.sum(rows, 0)
    out = out_ptr + ((chunk * I + i) * D + rd[:, None]) * O + ro[None, :]  # (DP, BO)
    tl.store(out, acc, mask=(rd[:, None] < NB) & mo[None, :])
    if BASE:
        tl.store(out_ptr + ((chunk * I + i) * D + NB) * O + ro, base, mask=mo)
