"""Fused Triton kernels for the jet of a KAN layer on a uniform B-spline grid.

The kernels evaluate the k + 1 active bases of each input and their derivatives from the polynomial table
of `uniform_bspline_polynomials` (Horner's rule in the local coordinate) and never write the dense
(N, in, G + k) bases to memory. They build them in registers instead, for a group of IB inputs at a time:
the dense derivative rows (rows, IB, DP), DP = max(16, next power of two >= D), hold the k + 1 active
bases of each input at their slots j .. j + k (off-grid ones dropped) and silu at slot G + k, so that
every contraction with the (in, D, out) weight is a matrix product on the tensor cores, without gathers:

- rows: each point RP times (BN points, RP = next power of two >= max(P, M) rows each, M the jet's second
  rows: 0 for a "first" jet, P for "diag", P(P + 1)/2 for "full"; `kinn.kernels.jets.pairs`), so that
  feature set "gradient r" (r < P) and "second r" (r < M, the pair (a, b) of `pairs`: d2 g_a g_b + d1 h_ab)
  of a point are row r of two (BN RP, IB DP) matrices; the value set uses the same rows (its copies past
  r = 0 are computed but not stored, and carry no gradient). A "first" jet has no second set at all;
- forward: the stacked jet (N, 1 + P + M, out) as two or three accumulated products, features
  (BN RP, IB DP) times the contiguous weight block (IB DP, BO) of the inputs, looping over groups of inputs;
- backward to the input jet: the incoming gradient of each feature set (BN RP, BO) times the
  transposed weight block (BO, IB DP), then a row sum against the dense derivative rows picks the active
  entries; the gradient of g_a from second row (a, b) lands on row a of the same point (a sum over the
  point's rows per coordinate, in registers), on row r itself for the diagonal;
- backward to the weight (the scaled coefficients and the base weight as one (in, D, out) tensor):
  each program one group of inputs, one block of outputs and one chunk of points, accumulating
  sum over sets of features^T (IB DP, BN RP) times incoming gradient (BN RP, BO) in registers, then
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
from kinn.kernels.jets import KINDS, coordinates, pairs

# Block sizes and warps of each kernel: BN points per block (BN RP rows), IB inputs per group (IB DP
# columns), BO outputs per block (at most). Measured on an H100 (float32, one 64 x 64 layer, G = 10, k = 3,
# P = 2, 65,536 points, a "diag" jet; triton.testing.do_bench over BN 16/32/64, IB 2/4/8, 4/8 warps, 1/3
# stages): forward 1.54 ms, input gradient 1.94 ms, weight gradient 1.99 ms. float64 halves BN, and so
# does each doubling of the rows per point beyond a "diag" jet's (a "full" jet's, not measured), so that
# a block holds as many rows; a configuration the GPU's shared memory cannot hold is shrunk at its first
# launch (`_launch`).
_CONFIG = {
    "forward": dict(BN=64, IB=4, BO=64, num_warps=8, num_stages=3),
    "inputs": dict(BN=32, IB=4, BO=64, num_warps=4, num_stages=3),
    "weight": dict(BN=32, IB=8, BO=64, num_warps=8, num_stages=3),
}
_PROGRAMS = 1024  # about how many weight-gradient programs to launch: enough to fill a GPU
_FITTED: dict = {}  # (kernel, shapes) -> the configuration that fitted this GPU's shared memory


def triton_stacked_jet(J, weight, basis, kind: str = "diag") -> torch.Tensor:
    """The stacked jet J (N, S, I) of the given kind (`kinn.kernels.jets`; any strides), weight (O, I, D)
    -> the jet (N, S, O).

    As `kinn.kernels.native_kan.native_stacked_jet` without the squash: `basis` is a uniform-grid B-spline
    `kinn.kernels.JetBasis`; float32 or float64; differentiable (first order) in J and weight.
    """
    if basis.name != "bspline" or not basis.uniform:
        raise ValueError("the Triton jet kernels handle B-splines on a uniform grid only")
    return _TritonJet.apply(J, weight, basis, kind)


class _TritonJet(torch.autograd.Function):
    """The three kernels as one autograd node; only J and the (I, D, O) weight are kept for backward."""

    @staticmethod
    def forward(ctx, J, weight, basis, kind):
        n, rows, fan_in = J.shape
        fan_out = weight.shape[0]
        wt = weight.permute(1, 2, 0).contiguous()  # (I, D, O): an input's coefficient rows are one block
        table, locator = _tables(basis, J.dtype, J.device)
        jet = J.new_empty(n, rows, fan_out)
        shape = shape_constants(basis, coordinates(rows, kind), kind, wt.shape[1], J.dtype)

        def launch(config):
            grid = (triton.cdiv(n, config["BN"]), triton.cdiv(fan_out, config["BO"]))
            _forward[grid](J, wt, table, locator, jet, n, fan_in, fan_out, *J.stride(), **shape, **config)

        _launch("forward", shape, fan_in, fan_out, J, launch)
        ctx.save_for_backward(J, wt)
        ctx.basis, ctx.kind = basis, kind
        return jet

    @staticmethod
    def backward(ctx, grad):
        J, wt = ctx.saved_tensors
        n, rows, fan_in = J.shape
        width, fan_out = wt.shape[1], wt.shape[2]
        grad = grad.contiguous()  # (N, S, O)
        table, locator = _tables(ctx.basis, J.dtype, J.device)
        shape = shape_constants(ctx.basis, coordinates(rows, ctx.kind), ctx.kind, width, J.dtype)
        grad_J = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_J = J.new_empty(n, rows, fan_in)  # (N, S, I), contiguous

            def launch(config):
                _backward_inputs[(triton.cdiv(n, config["BN"]),)](
                    J, wt, table, locator, grad, grad_J, n, fan_in, fan_out, *J.stride(), **shape, **config,
                    ONE_BLOCK=fan_out <= config["BO"],
                )

            _launch("inputs", shape, fan_in, fan_out, J, launch)
        if ctx.needs_input_grad[1]:

            def launch(config):
                bn, ib, bo = config["BN"], config["IB"], config["BO"]
                programs = triton.cdiv(fan_in, ib) * triton.cdiv(fan_out, bo)
                chunks = max(1, min(triton.cdiv(n, bn), _PROGRAMS // programs))
                points = triton.cdiv(triton.cdiv(n, chunks), bn) * bn
                chunks = triton.cdiv(n, points)
                partial = J.new_empty(chunks, fan_in, width, fan_out)  # (C, I, D, O)
                _backward_weight[(triton.cdiv(fan_in, ib), triton.cdiv(fan_out, bo), chunks)](
                    J, table, locator, grad, partial, n, fan_in, fan_out, points, *J.stride(), **shape, **config,
                )
                return partial.sum(0).permute(2, 0, 1)  # (O, I, D)

            grad_weight = _launch("weight", shape, fan_in, fan_out, J, launch)
        return grad_J, grad_weight, None, None


def _pow2(n: int) -> int:
    return max(1, triton.next_power_of_2(n))


def shape_constants(basis, p, kind, width, dtype) -> dict:
    """The shape constants of the kernels; float64 products in IEEE precision, float32 ones as tf32x3.

    M second rows of the kind (KIND its index in `kinn.kernels.jets.KINDS`), RP rows per point."""
    m = len(pairs(p, kind))
    return dict(
        P=p, M=m, KIND=KINDS.index(kind), RP=_pow2(max(p, m)), K=basis.order + 1, NB=basis.num_bases, D=width,
        DP=max(16, _pow2(width)), BASE=width > basis.num_bases, GRID=basis.grid,
        PREC="ieee" if dtype == torch.float64 else "tf32x3",
    )


def _launch(kernel: str, shape: dict, fan_in: int, fan_out: int, x: torch.Tensor, launch):
    """launch(config) with the kernel's configuration fitted to the shapes, or with smaller ones while the
    GPU's shared memory cannot hold it (float64 needs twice float32's; smaller GPUs have less). The
    configuration that ran is remembered, so that the search happens once per shapes."""
    key = (kernel, tuple(shape.items()), fan_in, fan_out, x.dtype, x.device)
    config = _FITTED.get(key) or first_config(kernel, shape, fan_in, fan_out, x.dtype)
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


def first_config(kernel: str, shape: dict, fan_in: int, fan_out: int, dtype) -> dict:
    """The configuration a kernel ("forward", "inputs", "weight") first launches with on these shapes."""
    config = dict(_CONFIG[kernel])
    least = triton.cdiv(16, shape["RP"])  # at least 16 rows: the smallest dot
    bn = config["BN"] // 2 if dtype == torch.float64 else config["BN"]
    bn = bn * _pow2(shape["P"]) // shape["RP"]  # as many rows per block as a "diag" jet's
    config.update(BN=max(least, bn), IB=min(config["IB"], _pow2(fan_in)), BO=min(config["BO"], max(16, _pow2(fan_out))))
    return config


def _smaller(config: dict, shape: dict) -> dict | None:
    """The next smaller configuration: one pipeline stage, then half the points, inputs, outputs."""
    config = dict(config)
    if config["num_stages"] > 1:
        config["num_stages"] = 1
    elif config["BN"] * shape["RP"] > 16:
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
def _rows(n0, N, BN: tl.constexpr, RP: tl.constexpr, P: tl.constexpr, M: tl.constexpr):
    """Row r of a block: point n0 + r // RP, slot r % RP; their masks: a point, a gradient, a second row."""
    r = tl.arange(0, BN * RP)
    rn, rp = n0 + r // RP, r % RP
    return rn, rp, rn < N, rp < P, rp < M


@triton.jit
def _pair(r, P: tl.constexpr):
    """(a, b) of the second rows r of a "full" jet over P coordinates: a <= b, row-major (`jets.pairs`).
    Row (a, b) is a P - a (a - 1) / 2 + b - a: a counts the rows that start before r."""
    a = r * 0
    for q in tl.static_range(1, P):
        a += (r >= q * P - q * (q - 1) // 2).to(tl.int32)
    return a, a + r - (a * P - a * (a - 1) // 2)


@triton.jit
def _load_inputs(J, rn, rp, mn, mp, mm, ri, mi, sjn, sjs, sji, P: tl.constexpr, M: tl.constexpr,
                 KIND: tl.constexpr):
    """x, g_r, h_r, g_a, g_b (rows, IB) of the inputs ri at every row's point and slot r, second row r
    = (a, b) (g_a = g_b = g_r for the diagonal; h, g_a, g_b are g for a "first" jet, never used); zero
    where masked."""
    m = mn[:, None] & mi[None, :]
    at = J + rn[:, None] * sjn + ri[None, :] * sji
    x = tl.load(at, mask=m, other=0.0)
    g = tl.load(at + (1 + rp[:, None]) * sjs, mask=m & mp[:, None], other=0.0)
    if M > 0:
        h = tl.load(at + (1 + P + rp[:, None]) * sjs, mask=m & mm[:, None], other=0.0)
    else:
        h = g
    if KIND == 2:
        a, b = _pair(rp, P)
        ga = tl.load(at + (1 + a[:, None]) * sjs, mask=m & mm[:, None], other=0.0)
        gb = tl.load(at + (1 + b[:, None]) * sjs, mask=m & mm[:, None], other=0.0)
    else:
        ga, gb = g, g
    return x, g, h, ga, gb


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
def _features(table, x, g, h, ga, gb, u, q, K: tl.constexpr, NB: tl.constexpr, DP: tl.constexpr,
              BASE: tl.constexpr, BM: tl.constexpr, IB: tl.constexpr, M: tl.constexpr):
    """The feature matrices (rows, IB DP) of every row: value, gradient r, second r (d2 g_a g_b + d1 h_r;
    the gradient's again for a "first" jet, which has none)."""
    d0 = _dense(table, 0, x, u, q, K, NB, DP, BASE)
    d1 = _dense(table, 1, x, u, q, K, NB, DP, BASE)
    f0 = tl.reshape(d0, (BM, IB * DP))
    fg = tl.reshape(d1 * g[:, :, None], (BM, IB * DP))
    if M > 0:
        d2 = _dense(table, 2, x, u, q, K, NB, DP, BASE)
        fh = tl.reshape(d2 * (ga * gb)[:, :, None] + d1 * h[:, :, None], (BM, IB * DP))
    else:
        fh = fg
    return f0, fg, fh


@triton.jit
def _load_grad(grad_ptr, rn, rp, mn, mp, mm, ro, mo, O, P: tl.constexpr, M: tl.constexpr):
    """The incoming gradient (rows, BO) of the value (zero past r = 0: each point's value once), gradient r
    and second r sets of every row (the gradient's again for a "first" jet)."""
    S = 1 + P + M
    row = grad_ptr + rn[:, None] * (S * O) + ro[None, :]
    m = mn[:, None] & mo[None, :]
    g0 = tl.load(row, mask=m & (rp == 0)[:, None], other=0.0)
    gg = tl.load(row + (1 + rp[:, None]) * O, mask=m & mp[:, None], other=0.0)
    if M > 0:
        gh = tl.load(row + (1 + P + rp[:, None]) * O, mask=m & mm[:, None], other=0.0)
    else:
        gh = gg
    return g0, gg, gh


@triton.jit
def _weight_offsets(i0, I, D: tl.constexpr, DP: tl.constexpr, IB: tl.constexpr):
    """Row offsets (IB DP,) into the (I, D, O) weight of the dense columns of inputs i0 .. i0 + IB; mask."""
    rk = tl.arange(0, IB * DP)
    ki, kd = i0 + rk // DP, rk % DP
    return ki * D + kd, (ki < I) & (kd < D)


@triton.jit
def _forward(
    J, w_ptr, table, locator, out_ptr, N, I, O, sjn, sjs, sji,
    P: tl.constexpr, M: tl.constexpr, KIND: tl.constexpr, RP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr,
    D: tl.constexpr, DP: tl.constexpr, BASE: tl.constexpr, GRID: tl.constexpr, PREC: tl.constexpr,
    BN: tl.constexpr, IB: tl.constexpr, BO: tl.constexpr,
):
    BM: tl.constexpr = BN * RP
    rn, rp, mn, mp, mm = _rows(tl.program_id(0) * BN, N, BN, RP, P, M)
    ro = tl.program_id(1) * BO + tl.arange(0, BO)
    mo = ro < O
    dtype = J.dtype.element_ty
    value = tl.zeros((BM, BO), dtype)
    grad = tl.zeros((BM, BO), dtype)
    second = tl.zeros((BM, BO), dtype)
    for i0 in range(0, I, IB):
        ri = i0 + tl.arange(0, IB)
        x, g, h, ga, gb = _load_inputs(J, rn, rp, mn, mp, mm, ri, ri < I, sjn, sjs, sji, P, M, KIND)
        j, u = _locate(x, locator, K, GRID)
        f0, fg, fh = _features(table, x, g, h, ga, gb, u, _slots(j, NB, DP), K, NB, DP, BASE, BM, IB, M)
        rw, mw = _weight_offsets(i0, I, D, DP, IB)
        w = tl.load(w_ptr + rw[:, None] * O + ro[None, :], mask=mw[:, None] & mo[None, :], other=0.0)
        value = tl.dot(f0, w, value, input_precision=PREC, out_dtype=dtype)
        grad = tl.dot(fg, w, grad, input_precision=PREC, out_dtype=dtype)
        if M > 0:
            second = tl.dot(fh, w, second, input_precision=PREC, out_dtype=dtype)
    S = 1 + P + M
    row = out_ptr + rn[:, None] * (S * O) + ro[None, :]
    m = mn[:, None] & mo[None, :]
    tl.store(row, value, mask=m & (rp == 0)[:, None])
    tl.store(row + (1 + rp[:, None]) * O, grad, mask=m & mp[:, None])
    if M > 0:
        tl.store(row + (1 + P + rp[:, None]) * O, second, mask=m & mm[:, None])


@triton.jit
def _to_coordinates(ca, cb, rp, P: tl.constexpr, BN: tl.constexpr, RP: tl.constexpr, IB: tl.constexpr):
    """(rows, IB): at row c < P of each point, the sum over its second rows r = (a, b) of ca_r where a = c
    and cb_r where b = c; zero at the other rows."""
    a, b = _pair(rp, P)
    out = tl.zeros_like(ca)
    for c in tl.static_range(P):
        s = tl.where((a == c)[:, None], ca, 0.0) + tl.where((b == c)[:, None], cb, 0.0)
        s = tl.sum(tl.reshape(s, (BN, RP, IB)), 1)  # (BN, IB): over the point's rows
        s = tl.reshape(tl.broadcast_to(s[:, None, :], (BN, RP, IB)), (BN * RP, IB))
        out = tl.where((rp == c)[:, None], s, out)
    return out


@triton.jit
def _backward_inputs(
    J, w_ptr, table, locator, grad_ptr, out_ptr, N, I, O, sjn, sjs, sji,
    P: tl.constexpr, M: tl.constexpr, KIND: tl.constexpr, RP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr,
    D: tl.constexpr, DP: tl.constexpr, BASE: tl.constexpr, GRID: tl.constexpr, PREC: tl.constexpr,
    BN: tl.constexpr, IB: tl.constexpr, BO: tl.constexpr, ONE_BLOCK: tl.constexpr,
):
    BM: tl.constexpr = BN * RP
    n0 = tl.program_id(0) * BN
    rn, rp, mn, mp, mm = _rows(n0, N, BN, RP, P, M)
    dtype = J.dtype.element_ty
    if ONE_BLOCK:  # every output in one block: the incoming gradient stays in registers across the inputs
        ro = tl.arange(0, BO)
        mo = ro < O
        g0, gg, gh = _load_grad(grad_ptr, rn, rp, mn, mp, mm, ro, mo, O, P, M)
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
            if M > 0:
                eh = tl.dot(gh, w, eh, input_precision=PREC, out_dtype=dtype)
        else:
            for o0 in range(0, O, BO):
                ro = o0 + tl.arange(0, BO)
                mo = ro < O
                g0, gg, gh = _load_grad(grad_ptr, rn, rp, mn, mp, mm, ro, mo, O, P, M)
                w = tl.load(w_ptr + rw[None, :] * O + ro[:, None], mask=mw[None, :] & mo[:, None], other=0.0)
                e0 = tl.dot(g0, w, e0, input_precision=PREC, out_dtype=dtype)
                eg = tl.dot(gg, w, eg, input_precision=PREC, out_dtype=dtype)
                if M > 0:
                    eh = tl.dot(gh, w, eh, input_precision=PREC, out_dtype=dtype)
        x, g, h, ga, gb = _load_inputs(J, rn, rp, mn, mp, mm, ri, mi, sjn, sjs, sji, P, M, KIND)
        j, u = _locate(x, locator, K, GRID)
        q = _slots(j, NB, DP)
        d1 = _dense(table, 1, x, u, q, K, NB, DP, BASE)
        d2 = _dense(table, 2, x, u, q, K, NB, DP, BASE)
        e0 = tl.reshape(e0, (BM, IB, DP))
        eg = tl.reshape(eg, (BM, IB, DP))
        dg = tl.sum(eg * d1, 2)  # (BM, IB)
        dx = tl.sum(e0 * d1, 2) + tl.sum(eg * d2, 2) * g
        S = 1 + P + M
        out = out_ptr + (rn[:, None] * S + 1 + rp[:, None]) * I + ri[None, :]  # gradient row r of (N, S, I)
        m = mn[:, None] & mi[None, :]
        if M > 0:
            d3 = _dense(table, 3, x, u, q, K, NB, DP, BASE)
            eh = tl.reshape(eh, (BM, IB, DP))
            hd2 = tl.sum(eh * d2, 2)
            dx += hd2 * h + tl.sum(eh * d3, 2) * ga * gb
            if KIND == 1:  # second row r = (r, r): its g_r g_r is this row's
                dg += 2 * g * hd2
            else:
                dg += _to_coordinates(hd2 * gb, hd2 * ga, rp, P, BN, RP, IB)
            tl.store(out + P * I, tl.sum(eh * d1, 2), mask=m & mm[:, None])
        tl.store(out, dg, mask=m & mp[:, None])
        dx = tl.sum(tl.reshape(dx, (BN, RP, IB)), 1)  # (BN, IB): over the point's rows
        rx = n0 + tl.arange(0, BN)
        tl.store(out_ptr + rx[:, None] * (S * I) + ri[None, :], dx, mask=(rx < N)[:, None] & mi[None, :])


@triton.jit
def _backward_weight(
    J, table, locator, grad_ptr, out_ptr, N, I, O, ROWS, sjn, sjs, sji,
    P: tl.constexpr, M: tl.constexpr, KIND: tl.constexpr, RP: tl.constexpr, K: tl.constexpr, NB: tl.constexpr,
    D: tl.constexpr, DP: tl.constexpr, BASE: tl.constexpr, GRID: tl.constexpr, PREC: tl.constexpr,
    BN: tl.constexpr, IB: tl.constexpr, BO: tl.constexpr,
):
    BM: tl.constexpr = BN * RP
    i0 = tl.program_id(0) * IB
    ro = tl.program_id(1) * BO + tl.arange(0, BO)
    chunk = tl.program_id(2)
    ri = i0 + tl.arange(0, IB)
    mi, mo = ri < I, ro < O
    dtype = J.dtype.element_ty
    acc = tl.zeros((IB * DP, BO), dtype)  # this chunk's gradient of the inputs' dense weight rows
    for n0 in range(chunk * ROWS, tl.minimum(chunk * ROWS + ROWS, N), BN):
        rn, rp, mn, mp, mm = _rows(n0, N, BN, RP, P, M)
        x, g, h, ga, gb = _load_inputs(J, rn, rp, mn, mp, mm, ri, mi, sjn, sjs, sji, P, M, KIND)
        g0, gg, gh = _load_grad(grad_ptr, rn, rp, mn, mp, mm, ro, mo, O, P, M)
        j, u = _locate(x, locator, K, GRID)
        f0, fg, fh = _features(table, x, g, h, ga, gb, u, _slots(j, NB, DP), K, NB, DP, BASE, BM, IB, M)
        acc = tl.dot(tl.trans(f0), g0, acc, input_precision=PREC, out_dtype=dtype)
        acc = tl.dot(tl.trans(fg), gg, acc, input_precision=PREC, out_dtype=dtype)
        if M > 0:
            acc = tl.dot(tl.trans(fh), gh, acc, input_precision=PREC, out_dtype=dtype)
    rw, mw = _weight_offsets(i0, I, D, DP, IB)
    out = out_ptr + (chunk * I * D + rw[:, None]) * O + ro[None, :]  # (IB DP, BO) of (C, I, D, O)
    tl.store(out, acc, mask=mw[:, None] & mo[None, :])
