"""A fused Triton kernel for tanh on a stacked derivative jet (`kinn.kernels.jets.Jet`, (N, S, W)) of any kind.

    value t = tanh v,   gradient t' g_p,   second row (a, b): t' h_ab + t'' g_a g_b,

with t' = 1 − t², t'' = −2 t t', t''' = −2 t'² − 2 t t''. In PyTorch this is some eight elementwise
kernels forward and a dozen backward, each a pass over the jet; here one pass each way. The backward
pass saves only the input jet and is not differentiable again: for networks whose jets are never
differentiated twice (a KAN with the fused layer kernels), as `kinn.kernels.jets.activation(..., fused=True)`.
The second rows' pairs (a, b) (`kinn.kernels.jets.pairs`) are unrolled at compile time.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kinn.kernels.jets import KINDS, coordinates

_BN, _BW = 32, 64  # points and units per program


def triton_tanh_jet(J: torch.Tensor, kind: str = "diag") -> torch.Tensor:
    """tanh through a stacked jet J (N, S, W) of the given kind, float32 or float64; differentiable once."""
    return _TanhJet.apply(J, kind)


class _TanhJet(torch.autograd.Function):
    @staticmethod
    def forward(ctx, J, kind):
        J = J.contiguous()
        n, sets, width = J.shape
        out = torch.empty_like(J)
        shape = dict(P=coordinates(sets, kind), KIND=KINDS.index(kind), BN=_BN, BW=_BW)
        _forward[(triton.cdiv(n, _BN), triton.cdiv(width, _BW))](J, out, n, width, sets, **shape)
        ctx.save_for_backward(J)
        ctx.shape = shape
        return out

    @staticmethod
    def backward(ctx, grad):
        (J,) = ctx.saved_tensors
        grad = grad.contiguous()
        n, sets, width = J.shape
        out = torch.empty_like(J)
        _backward[(triton.cdiv(n, _BN), triton.cdiv(width, _BW))](J, grad, out, n, width, sets, **ctx.shape)
        return out, None


@triton.jit
def _tanh(v):
    e = tl.exp(-2 * tl.abs(v))  # no overflow: tanh |v| = (1 − e) / (1 + e)
    t = (1 - e) / (1 + e)
    return tl.where(v < 0, -t, t)


@triton.jit
def _forward(J, out, N, W, S, P: tl.constexpr, KIND: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr):
    rn = tl.program_id(0) * BN + tl.arange(0, BN)
    rw = tl.program_id(1) * BW + tl.arange(0, BW)
    mask = (rn < N)[:, None] & (rw < W)[None, :]
    row = rn[:, None] * (S * W) + rw[None, :]  # (BN, BW): set 0 of every point and unit
    t = _tanh(tl.load(J + row, mask=mask, other=0.0))
    d1 = 1 - t * t
    d2 = -2 * t * d1
    tl.store(out + row, t, mask=mask)
    for p in tl.static_range(P):
        tl.store(out + row + (1 + p) * W, d1 * tl.load(J + row + (1 + p) * W, mask=mask, other=0.0), mask=mask)
    if KIND > 0:
        for a in tl.static_range(P):
            for b in tl.static_range(a, P):
                if KIND == 2 or a == b:  # "diag": m = a; "full": row-major over a <= b
                    m = a if KIND == 1 else a * P - a * (a - 1) // 2 + b - a
                    ga = tl.load(J + row + (1 + a) * W, mask=mask, other=0.0)
                    gb = tl.load(J + row + (1 + b) * W, mask=mask, other=0.0)
                    h = tl.load(J + row + (1 + P + m) * W, mask=mask, other=0.0)
                    tl.store(out + row + (1 + P + m) * W, d1 * h + d2 * ga * gb, mask=mask)


@triton.jit
def _backward(J, grad, out, N, W, S, P: tl.constexpr, KIND: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr):
    rn = tl.program_id(0) * BN + tl.arange(0, BN)
    rw = tl.program_id(1) * BW + tl.arange(0, BW)
    mask = (rn < N)[:, None] & (rw < W)[None, :]
    row = rn[:, None] * (S * W) + rw[None, :]
    t = _tanh(tl.load(J + row, mask=mask, other=0.0))
    d1 = 1 - t * t
    d2 = -2 * t * d1
    d3 = -2 * d1 * d1 - 2 * t * d2
    dv = tl.load(grad + row, mask=mask, other=0.0) * d1
    for p in tl.static_range(P):  # the gradient row p: from its own set, and from every second row it meets
        g = tl.load(J + row + (1 + p) * W, mask=mask, other=0.0)
        gg = tl.load(grad + row + (1 + p) * W, mask=mask, other=0.0)
        dv += gg * g * d2
        dg = gg * d1
        if KIND > 0:
            for a in tl.static_range(P):
                for b in tl.static_range(a, P):
                    if KIND == 2 or a == b:
                        m = a if KIND == 1 else a * P - a * (a - 1) // 2 + b - a
                        if a == p:  # ∂/∂g_a of t'' g_a g_b
                            gh = tl.load(grad + row + (1 + P + m) * W, mask=mask, other=0.0)
                            dg += gh * d2 * tl.load(J + row + (1 + b) * W, mask=mask, other=0.0)
                        if b == p:
                            gh = tl.load(grad + row + (1 + P + m) * W, mask=mask, other=0.0)
                            dg += gh * d2 * tl.load(J + row + (1 + a) * W, mask=mask, other=0.0)
        tl.store(out + row + (1 + p) * W, dg, mask=mask)
    if KIND > 0:
        for a in tl.static_range(P):
            for b in tl.static_range(a, P):
                if KIND == 2 or a == b:
                    m = a if KIND == 1 else a * P - a * (a - 1) // 2 + b - a
                    ga = tl.load(J + row + (1 + a) * W, mask=mask, other=0.0)
                    gb = tl.load(J + row + (1 + b) * W, mask=mask, other=0.0)
                    h = tl.load(J + row + (1 + P + m) * W, mask=mask, other=0.0)
                    gh = tl.load(grad + row + (1 + P + m) * W, mask=mask, other=0.0)
                    dv += gh * (h * d2 + ga * gb * d3)
                    tl.store(out + row + (1 + P + m) * W, gh * d1, mask=mask)
    tl.store(out + row, dv, mask=mask)
