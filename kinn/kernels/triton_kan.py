"""Fused Triton kernels for the jet of a KAN layer on a uniform B-spline grid.

The kernels evaluate the k + 1 active bases of each input and their derivatives from the polynomial table
of `uniform_bspline_polynomials` (Horner's rule in the local coordinate) and never write the dense
(N, in, G + k) bases to memory. They build them in registers instead, for a group of IB inputs at a time:
the dense derivative rows (rows, IB, DP), DP = max(16, next power of two >= D), hold the k + 1 active
bases of each input at their slots j .. j + k (off-grid ones dropped) and silu at slot G + k, so that
every contraction with the (in, D, out) weight is a matrix product on the tensor cores, without gathers:

- rows: each point once per coordinate p (BN points, PP = next power of two >= P rows each), so that
  feature set "gradient p" and "Hessian p" of a point are rows of two (BN PP, IB DP) matrices; the value
  set uses the same rows (its copies past p = 0 are computed but not stored, and carry no gradient);
- forward: the stacked jet (N, 1 + 2P, out) as three accumulated products, features (BN PP, IB DP) times
  the contiguous weight block (IB DP, BO) of the inputs, looping over groups of inputs;
- backward to the inputs x, gx, hx: the incoming gradient of each feature set (BN PP, BO) times the
  transposed weight block (BO, IB DP), then a row sum against the dense derivative rows picks the active
  entries;
- backward to the weight (the scaled coefficients and the base weight as one (in, D, out) tensor):
  each program one group of inputs, one block of outputs and one chunk of points, accumulating
  sum over sets of features^T (IB DP, BN PP) times incoming gradient (BN PP, BO) in registers, then
  writing it once; the chunks are summed by PyTorch (a two-stage reduction, deterministic, no atomics).

float32 and float64. float32 products run as "tf32x3" (three TF32 passes on the tensor cores, about
float32's accuracy), float64 ones in IEEE precision. Importing this module needs Triton, which kinn treats
as optional: `kinn.kernels.kan_jet` imports it only when it is to be used.
"""
from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl
from triton.runtime.errors import OutOfResources

from kinn.kernels.bspline import uniform_bspline_polynomials

# Block sizes and warps of each kernel: BN points per block (BN PP rows), IB inputs per group (IB DP
# columns), BO outputs per block (at most). Measured on an H100 (float32, one 64 x 64 layer, G = 10, k = 3,
# P = 2, 65,536 points; triton.testing.do_bench over BN 16/32/64, IB 2/4/8, 4/8 warps, 1/3 stages):
# forward 1.54 ms, input gradient 1.94 ms, weight gradient 1.99 ms. float64 halves BN; a configuration
# the GPU's shared memory cannot hold is shrunk at its first launch (`_launch`).
_CONFIG = {
    "forward": dict(BN=64, IB=4, BO=64, num_warps=8, num_stages=3),
    "inputs": dict(BN=32, IB=4, BO=64, num_warps=4, num_stages=3),
    "weight": dict(BN=32, IB=8, BO=64, num_warps=8, num_stages=3),
}
_PROGRAMS = 1024  # about how many weight-gradient programs to launch: enough to fill a GPU
_FITTED: dict = {}  # (kernel, shapes) -> the configuration that fitted this GPU's shared memory


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
        wt = weight.permute(1, 2, 0).contiguous()  # (I, D, O): an input's coefficient rows are one block
        table, locator = _tables(basis, x.dtype, x.device)
        jet = x.new_empty(n, 1 + 2 * p, fan_out)
        shape = _shape(basis, p, wt.shape[1], x.dtype)

        def launch(config):
            grid = (triton.cdiv(n, config["BN"]), triton.cdiv(fan_out, config["BO"]))
            _forward[grid](
                x, gx, hx, wt, table, locator, jet, n, fan_in, fan_out,
                *x.stride(), *gx.stride(), *hx.stride(), **shape, **config,
            )

        _launch("forward", shape, fan_in, fan_out, x, launch)
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
        shape = _shape(basis, p, width, x.dtype)
        grad_x = grad_gx = grad_hx = grad_weight = None
        if any(ctx.needs_input_grad[:3]):
            grad_x = torch.empty_like(x, memory_format=torch.contiguous_format)  # (N, I)
            grad_gx = x.new_empty(n, p, fan_in)  # (N, P, I)
            grad_hx = x.new_empty(n, p, fan_in)

            def launch(config):
                _backward_inputs[(triton.cdiv(n, config["BN"]),)](
                    x, gx, hx, wt, table, locator, grad, grad_x, grad_gx, grad_hx, n, fan_in, fan_out,
                    *x.stride(), *gx.stride(), *hx.stride(), **shape, **config,
                    ONE_BLOCK=fan_out <= config["BO"],
                )

            _launch("inputs", shape, fan_in, fan_out, x, launch)
        if ctx.needs_input_grad[3]:

            def launch(config):
                bn, ib, bo = config["BN"], config["IB"], config["BO"]
                programs = triton.cdiv(fan_in, ib) * triton.cdiv(fan_out, bo)
                chunks = max(1, min(triton.cdiv(n, bn), _PROGRAMS // programs))
                rows = triton.cdiv(triton.cdiv(n, chunks), bn) * bn
                chunks = triton.cdiv(n, rows)
                partial = x.new_empty(chunks, fan_in, width, fan_out)  # (C, I, D, O)
                _backward_weight[(triton.cdiv(fan_in, ib), triton.cdiv(fan_out, bo), chunks)](
                    x, gx, hx, table, locator, grad, partial, n, fan_in, fan_out, rows,
                    *x.stride(), *gx.stride(), *hx.stride(), **shape, **config,
                )
                return partial.sum(0).permute(2, 0, 1)  # (O, I, D)

            grad_weight = _launch("weight", shape, fan_in, fan_out, x, launch)
        return grad_x, grad_gx, grad_hx, grad_weight, None


def _pow2(n: int) -> int:
    return max(1, triton.next_power_of_2(n))


def _shape(basis, p, width, dtype) -> dict:
    """The shape constants of the kernels; float64 products in IEEE precision, float32 ones as tf32x3."""
    return dict(
        P=p, PP=_pow2(p), K=basis.order + 1, NB=basis.num_bases, D=width, DP=max(16, _pow2(width)),
        BASE=width > basis.num_bases, GRID=basis.grid, PREC="ieee" if dtype == torch.float64 else "tf32x3",
    )


def _launch(kernel: str, shape: dict, fan_in: int, fan_out: int, x: torch.Tensor, launch):
    """launch(config) with the kernel's configuration fitted to the shapes, or with smaller ones while the
    GPU's shared memory cannot hold it (float64 needs twice float32's; smaller GPUs have less). The
    configuration that ran is remembered, so that the search happens once per shapes."""
    key = (kernel, tuple(shape.items()), fan_in, fan_out, x.dtype, x.device)
    config = _FITTED.get(key)
    if config is None:
        config = dict(_CONFIG[kernel])
        least = triton.cdiv(16, shape["PP"])  # at least 16 rows: the smallest dot
        bn = config["BN"] // 2 if x.dtype == torch.float64 else config["BN"]
        config.update(BN=max(least, bn), IB=min(config["IB"], _pow2(fan_in)),
                      BO=min(config["BO"], max(16, _pow2(fan_out))))
    while True:
        try:
            result = launch(config)
        except OutOfResources:
            config = _smaller(config, shape)
            if config is None:
                raise
            continue
        _FITTED[key] = config
        return result


def _smaller(config: dict, shape: dict) -> dict | None:
    """The next smaller configuration: one pipeline stage, then half the points, inputs, outputs."""
    config = dict(config)
    if config["num_stages"] > 1:
        config["num_stages"] = 1
    elif config["BN"] * shape["PP"] > 16:
        config["BN"] //= 2
    elif config["IB"] > 1:
        config["IB"] //= 2
    elif config["BO"] > 16:
        config["BO"] //= 2
    else:
        return None
    return config


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
def _rows(n0, N, BN: tl.constexpr, PP: tl.constexpr, P: tl.constexpr):
    """Row r of a block: point n0 + r // PP, coordinate r % PP; their masks."""
    r = tl.arange(0, BN * PP)
    rn, rp = n0 + r // PP, r % PP
    return rn, rp, rn < N, rp < P


@triton.jit
def _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, mn, mp, ri, mi, sxn, sxi, sgn, sgp, sgi, shn, shp, shi):
    """x, gx_p and hx_p (rows, IB) of the inputs ri at every row's point and coordinate; zero where masked."""
    m = mn[:, None] & mi[None, :]
    x = tl.load(x_ptr + rn[:, None] * sxn + ri[None, :] * sxi, mask=m, other=0.0)
    m = m & mp[:, None]
    g = tl.load(gx_ptr + rn[:, None] * sgn + rp[:, None] * sgp + ri[None, :] * sgi, mask=m, other=0.0)
    h = tl.load(hx_ptr + rn[:, None] * shn + rp[:, None] * shp + ri[None, :] * shi, mask=m, other=0.0)
    return x, g, h


@triton.jit
def _slots(j, NB: tl.constexpr, DP: tl.constexpr):
    """(rows, IB, DP): which active basis (0 .. k) sits at each slot of the dense rows, -1 where none,
    off-grid bases dropped (an off-grid basis meets a zero weight, not a clamped one)."""
    rc = tl.arange(0, DP)[None, None, :]
    q = rc - j[:, :, None]
    return tl.where(rc < NB, q, -1)


@triton.jit
def _dense(table, n: tl.constexpr, x, u, q, K: tl.constexpr, NB: tl.constexpr, DP: tl.constexpr,
           BASE: tl.constexpr):
    """The n-th x-derivative of the dense feature rows (rows, IB, DP): the active bases at their slots,
    the n-th derivative of silu at slot NB when there is a base branch, zero elsewhere."""
    d = tl.where(q == 0, _basis(table, n, 0, u, K)[:, :, None], 0.0)
    for r in tl.static_range(1, K):
        d = tl.where(q == r, _basis(table, n, r, u, K)[:, :, None], d)
    if BASE:
        rc = tl.arange(0, DP)[None, None, :]
        d = tl.where(rc == NB, _silu(x, n)[:, :, None], d)
    return d


@triton.jit
def _features(table, x, g, h, u, q, K: tl.constexpr, NB: tl.constexpr, DP: tl.constexpr, BASE: tl.constexpr,
              BM: tl.constexpr, IB: tl.constexpr):
    """The three feature matrices (rows, IB DP) of every row: value, gradient p, Hessian p."""
    d0 = _dense(table, 0, x, u, q, K, NB, DP, BASE)
    d1 = _dense(table, 1, x, u, q, K, NB, DP, BASE)
    d2 = _dense(table, 2, x, u, q, K, NB, DP, BASE)
    f0 = tl.reshape(d0, (BM, IB * DP))
    fg = tl.reshape(d1 * g[:, :, None], (BM, IB * DP))
    fh = tl.reshape(d2 * (g * g)[:, :, None] + d1 * h[:, :, None], (BM, IB * DP))
    return f0, fg, fh


@triton.jit
def _load_grad(grad_ptr, rn, rp, mn, mp, ro, mo, O, P: tl.constexpr):
    """The incoming gradient (rows, BO) of the value (zero past p = 0: each point's value once), gradient p
    and Hessian p sets of every row."""
    S = 1 + 2 * P
    row = grad_ptr + rn[:, None] * (S * O) + ro[None, :]
    m = mn[:, None] & mo[None, :]
    g0 = tl.load(row, mask=m & (rp == 0)[:, None], other=0.0)
    m = m & mp[:, None]
    gg = tl.load(row + (1 + rp[:, None]) * O, mask=m, other=0.0)
    gh = tl.load(row + (1 + P + rp[:, None]) * O, mask=m, other=0.0)
    return g0, gg, gh


@triton.jit
def _weight_offsets(i0, I, D: tl.constexpr, DP: tl.constexpr, IB: tl.constexpr):
    """Row offsets (IB DP,) into the (I, D, O) weight of the dense columns of inputs i0 .. i0 + IB; mask."""
    rk = tl.arange(0, IB * DP)
    ki, kd = i0 + rk // DP, rk % DP
    return ki * D + kd, (ki < I) & (kd < D)


@triton.jit
def _forward(
    x_ptr, gx_ptr, hx_ptr, w_ptr, table, locator, out_ptr, N, I, O,
    sxn, sxi, sgn, sgp, sgi, shn, shp, shi,
    P: tl.constexpr, PP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr, D: tl.constexpr, DP: tl.constexpr,
    BASE: tl.constexpr, GRID: tl.constexpr, PREC: tl.constexpr, BN: tl.constexpr, IB: tl.constexpr,
    BO: tl.constexpr,
):
    BM: tl.constexpr = BN * PP
    rn, rp, mn, mp = _rows(tl.program_id(0) * BN, N, BN, PP, P)
    ro = tl.program_id(1) * BO + tl.arange(0, BO)
    mo = ro < O
    dtype = x_ptr.dtype.element_ty
    value = tl.zeros((BM, BO), dtype)
    grad = tl.zeros((BM, BO), dtype)
    hess = tl.zeros((BM, BO), dtype)
    for i0 in range(0, I, IB):
        ri = i0 + tl.arange(0, IB)
        x, g, h = _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, mn, mp, ri, ri < I,
                               sxn, sxi, sgn, sgp, sgi, shn, shp, shi)
        j, u = _locate(x, locator, K, GRID)
        f0, fg, fh = _features(table, x, g, h, u, _slots(j, NB, DP), K, NB, DP, BASE, BM, IB)
        rw, mw = _weight_offsets(i0, I, D, DP, IB)
        w = tl.load(w_ptr + rw[:, None] * O + ro[None, :], mask=mw[:, None] & mo[None, :], other=0.0)
        value = tl.dot(f0, w, value, input_precision=PREC, out_dtype=dtype)
        grad = tl.dot(fg, w, grad, input_precision=PREC, out_dtype=dtype)
        hess = tl.dot(fh, w, hess, input_precision=PREC, out_dtype=dtype)
    S = 1 + 2 * P
    row = out_ptr + rn[:, None] * (S * O) + ro[None, :]
    m = mn[:, None] & mo[None, :]
    tl.store(row, value, mask=m & (rp == 0)[:, None])
    m = m & mp[:, None]
    tl.store(row + (1 + rp[:, None]) * O, grad, mask=m)
    tl.store(row + (1 + P + rp[:, None]) * O, hess, mask=m)


@triton.jit
def _backward_inputs(
    x_ptr, gx_ptr, hx_ptr, w_ptr, table, locator, grad_ptr, gx_out, ggx_out, ghx_out, N, I, O,
    sxn, sxi, sgn, sgp, sgi, shn, shp, shi,
    P: tl.constexpr, PP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr, D: tl.constexpr, DP: tl.constexpr,
    BASE: tl.constexpr, GRID: tl.constexpr, PREC: tl.constexpr, BN: tl.constexpr, IB: tl.constexpr,
    BO: tl.constexpr, ONE_BLOCK: tl.constexpr,
):
    BM: tl.constexpr = BN * PP
    n0 = tl.program_id(0) * BN
    rn, rp, mn, mp = _rows(n0, N, BN, PP, P)
    dtype = x_ptr.dtype.element_ty
    if ONE_BLOCK:  # every output in one block: the incoming gradient stays in registers across the inputs
        ro = tl.arange(0, BO)
        mo = ro < O
        g0, gg, gh = _load_grad(grad_ptr, rn, rp, mn, mp, ro, mo, O, P)
    for i0 in range(0, I, IB):
        ri = i0 + tl.arange(0, IB)
        mi = ri < I
        rw, mw = _weight_offsets(i0, I, D, DP, IB)
        e0 = tl.zeros((BM, IB * DP), dtype)  # the incoming gradient of each dense feature
        eg = tl.zeros((BM, IB * DP), dtype)
        eh = tl.zeros((BM, IB * DP), dtype)
        if ONE_BLOCK:
            w = tl.load(w_ptr + rw[None, :] * O + ro[:, None], mask=mw[None, :] & mo[:, None], other=0.0)
            e0 = tl.dot(g0, w, e0, input_precision=PREC, out_dtype=dtype)
            eg = tl.dot(gg, w, eg, input_precision=PREC, out_dtype=dtype)
            eh = tl.dot(gh, w, eh, input_precision=PREC, out_dtype=dtype)
        else:
            for o0 in range(0, O, BO):
                ro = o0 + tl.arange(0, BO)
                mo = ro < O
                g0, gg, gh = _load_grad(grad_ptr, rn, rp, mn, mp, ro, mo, O, P)
                w = tl.load(w_ptr + rw[None, :] * O + ro[:, None], mask=mw[None, :] & mo[:, None], other=0.0)
                e0 = tl.dot(g0, w, e0, input_precision=PREC, out_dtype=dtype)
                eg = tl.dot(gg, w, eg, input_precision=PREC, out_dtype=dtype)
                eh = tl.dot(gh, w, eh, input_precision=PREC, out_dtype=dtype)
        x, g, h = _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, mn, mp, ri, mi,
                               sxn, sxi, sgn, sgp, sgi, shn, shp, shi)
        j, u = _locate(x, locator, K, GRID)
        q = _slots(j, NB, DP)
        d1 = _dense(table, 1, x, u, q, K, NB, DP, BASE)
        d2 = _dense(table, 2, x, u, q, K, NB, DP, BASE)
        d3 = _dense(table, 3, x, u, q, K, NB, DP, BASE)
        e0 = tl.reshape(e0, (BM, IB, DP))
        eg = tl.reshape(eg, (BM, IB, DP))
        eh = tl.reshape(eh, (BM, IB, DP))
        gd1, hd1, hd2 = tl.sum(eg * d1, 2), tl.sum(eh * d1, 2), tl.sum(eh * d2, 2)  # (BM, IB)
        dx = tl.sum(e0 * d1, 2) + tl.sum(eg * d2, 2) * g + hd2 * h + tl.sum(eh * d3, 2) * g * g
        dx = tl.sum(tl.reshape(dx, (BN, PP, IB)), 1)  # (BN, IB): over the coordinates
        rx = n0 + tl.arange(0, BN)
        tl.store(gx_out + rx[:, None] * I + ri[None, :], dx, mask=(rx < N)[:, None] & mi[None, :])
        m = (mn & mp)[:, None] & mi[None, :]
        out = (rn[:, None] * P + rp[:, None]) * I + ri[None, :]
        tl.store(ggx_out + out, gd1 + 2 * g * hd2, mask=m)
        tl.store(ghx_out + out, hd1, mask=m)


@triton.jit
def _backward_weight(
    x_ptr, gx_ptr, hx_ptr, table, locator, grad_ptr, out_ptr, N, I, O, ROWS,
    sxn, sxi, sgn, sgp, sgi, shn, shp, shi,
    P: tl.constexpr, PP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr, D: tl.constexpr, DP: tl.constexpr,
    BASE: tl.constexpr, GRID: tl.constexpr, PREC: tl.constexpr, BN: tl.constexpr, IB: tl.constexpr,
    BO: tl.constexpr,
):
    BM: tl.constexpr = BN * PP
    i0 = tl.program_id(0) * IB
    ro = tl.program_id(1) * BO + tl.arange(0, BO)
    chunk = tl.program_id(2)
    ri = i0 + tl.arange(0, IB)
    mi, mo = ri < I, ro < O
    dtype = x_ptr.dtype.element_ty
    acc = tl.zeros((IB * DP, BO), dtype)  # this chunk's gradient of the inputs' dense weight rows
    for n0 in range(chunk * ROWS, tl.minimum(chunk * ROWS + ROWS, N), BN):
        rn, rp, mn, mp = _rows(n0, N, BN, PP, P)
        x, g, h = _load_inputs(x_ptr, gx_ptr, hx_ptr, rn, rp, mn, mp, ri, mi,
                               sxn, sxi, sgn, sgp, sgi, shn, shp, shi)
        g0, gg, gh = _load_grad(grad_ptr, rn, rp, mn, mp, ro, mo, O, P)
        j, u = _locate(x, locator, K, GRID)
        f0, fg, fh = _features(table, x, g, h, u, _slots(j, NB, DP), K, NB, DP, BASE, BM, IB)
        acc = tl.dot(tl.trans(f0), g0, acc, input_precision=PREC, out_dtype=dtype)
        acc = tl.dot(tl.trans(fg), gg, acc, input_precision=PREC, out_dtype=dtype)
        acc = tl.dot(tl.trans(fh), gh, acc, input_precision=PREC, out_dtype=dtype)
    rw, mw = _weight_offsets(i0, I, D, DP, IB)
    out = out_ptr + (chunk * I * D + rw[:, None]) * O + ro[None, :]  # (IB DP, BO) of (C, I, D, O)
    tl.store(out, acc, mask=mw[:, None] & mo[None, :])
