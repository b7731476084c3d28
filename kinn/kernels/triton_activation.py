"""A fused Triton kernel for tanh on a stacked derivative jet (`kinn.kernels.jets.Jet`, (N, 1 + 2P, W)).

    value t = tanh v,   gradient t' g_p,   Hessian diagonal t' h_p + t'' g_p²,

with t' = 1 − t², t'' = −2 t t', t''' = −2 t'² − 2 t t''. In PyTorch this is some eight elementwise
kernels forward and a dozen backward, each a pass over the jet; here one pass each way. The backward
pass saves only the input jet and is not differentiable again: for networks whose jets are never
differentiated twice (a KAN with the fused layer kernels), as `kinn.kernels.jets.activation(..., fused=True)`.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_BN, _BW = 32, 64  # points and units per program


def triton_tanh_jet(J: torch.Tensor) -> torch.Tensor:
    """tanh through a stacked jet J (N, 1 + 2P, W), float32 or float64; differentiable once."""
    return _TanhJet.apply(J)


class _TanhJet(torch.autograd.Function):
    @staticmethod
    def forward(ctx, J):
        J = J.contiguous()
        n, sets, width = J.shape
        out = torch.empty_like(J)
        _forward[(triton.cdiv(n, _BN), triton.cdiv(width, _BW))](J, out, n, width, P=(sets - 1) // 2, BN=_BN, BW=_BW)
        ctx.save_for_backward(J)
        return out

    @staticmethod
    def backward(ctx, grad):
        (J,) = ctx.saved_tensors
        grad = grad.contiguous()
        n, sets, width = J.shape
        out = torch.empty_like(J)
        _backward[(triton.cdiv(n, _BN), triton.cdiv(width, _BW))](J, grad, out, n, width, P=(sets - 1) // 2,
                                                                   BN=_BN, BW=_BW)
        return out


@triton.jit
def _tanh(v):
    e = tl.exp(-2 * tl.abs(v))  # no overflow: tanh |v| = (1 − e) / (1 + e)
    t = (1 - e) / (1 + e)
    return tl.where(v < 0, -t, t)


@triton.jit
def _forward(J, out, N, W, P: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr):
    rn = tl.program_id(0) * BN + tl.arange(0, BN)
    rw = tl.program_id(1) * BW + tl.arange(0, BW)
    mask = (rn < N)[:, None] & (rw < W)[None, :]
    row = rn[:, None] * ((1 + 2 * P) * W) + rw[None, :]  # (BN, BW): set 0 of every point and unit
    t = _tanh(tl.load(J + row, mask=mask, other=0.0))
    d1 = 1 - t * t
    d2 = -2 * t * d1
    tl.store(out + row, t, mask=mask)
    for p in tl.static_range(P):
        g = tl.load(J + row + (1 + p) * W, mask=mask, other=0.0)
        h = tl.load(J + row + (1 + P + p) * W, mask=mask, other=0.0)
        tl.store(out + row + (1 + p) * W, d1 * g, mask=mask)
        tl.store(out + row + (1 + P + p) * W, d1 * h + d2 * g * g, mask=mask)


@triton.jit
def _backward(J, grad, out, N, W, P: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr):
    rn = tl.program_id(0) * BN + tl.arange(0, BN)
    rw = tl.program_id(1) * BW + tl.arange(0, BW)
    mask = (rn < N)[:, None] & (rw < W)[None, :]
    row = rn[:, None] * ((1 + 2 * P) * W) + rw[None, :]
    t = _tanh(tl.load(J + row, mask=mask, other=0.0))
    d1 = 1 - t * t
    d2 = -2 * t * d1
    d3 = -2 * d1 * d1 - 2 * t * d2
    dv = tl.load(grad + row, mask=mask, other=0.0) * d1
    for p in tl.static_range(P):
        g = tl.load(J + row + (1 + p) * W, mask=mask, other=0.0)
        h = tl.load(J + row + (1 + P + p) * W, mask=mask, other=0.0)
        gg = tl.load(grad + row + (1 + p) * W, mask=mask, other=0.0)
        gh = tl.load(grad + row + (1 + P + p) * W, mask=mask, other=0.0)
        dv += gg * g * d2 + gh * (h * d2 + g * g * d3)
        tl.store(out + row + (1 + p) * W, gg * d1 + 2 * gh * d2 * g, mask=mask)
        tl.store(out + row + (1 + P + p) * W, gh * d1, mask=mask)
    tl.store(out + row, dv, mask=mask)
