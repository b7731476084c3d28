"""Forward-mode derivative jets: value, gradient and Hessian diagonal carried through a network at once.

A `Jet` holds, for N points and W units, one tensor J of shape (N, 1 + 2P, W): row 0 the values, rows
1..P the derivatives with respect to the P input coordinates, rows P+1..2P the second derivatives
∂²/∂x_p². A residual then needs only a first-order backward to the parameters instead of nested
autograd. Mixed second derivatives are not carried; the jet field backend gets them by one autograd pass
over the carried gradient.

Networks that support jets implement `net.jet(j: Jet) -> Jet` with the helpers below; KAN layers
implement `layer.jet(x, gx, hx)` in their kernels.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F


class Jet:
    def __init__(self, J: torch.Tensor):
        self.J = J  # (N, 1 + 2P, W)

    @classmethod
    def from_parts(cls, v, g, h) -> "Jet":
        """v (N, W), g (N, W, P), h (N, W, P)."""
        return cls(torch.cat([v.unsqueeze(1), g.transpose(1, 2), h.transpose(1, 2)], 1))

    @classmethod
    def seed(cls, z: torch.Tensor, dz: torch.Tensor) -> "Jet":
        """The jet of inputs z = a·x + b (an affine map of the coordinates): dz (D,) = a, no curvature."""
        n, d = z.shape
        g = torch.diag_embed(dz.to(z.dtype)).expand(n, d, d)  # (N, D, P=D)
        return cls.from_parts(z, g, torch.zeros_like(g))

    @property
    def P(self) -> int:
        return (self.J.shape[1] - 1) // 2

    @property
    def v(self) -> torch.Tensor:  # (N, W)
        return self.J[:, 0]

    @property
    def g(self) -> torch.Tensor:  # (N, W, P)
        return self.J[:, 1 : 1 + self.P].transpose(1, 2)

    @property
    def h(self) -> torch.Tensor:  # (N, W, P)
        return self.J[:, 1 + self.P :].transpose(1, 2)

    def __add__(self, other: "Jet") -> "Jet":
        return Jet(self.J + other.J)


class JetNetwork(ABC):
    """A network that carries jets (mixed into its `nn.Module`): `jet(j)` is its forward pass on a jet.

    supports_jets: whether its options have jet rules (an MLP's activation, say).
    prefers_jets:  whether "auto" derivatives take jets (where they are faster than nested autograd).
    jets_nest:     whether its jet's backward can be differentiated again (the fused KAN kernels' cannot,
                   so mixed second derivatives fall back to autograd).
    """

    supports_jets: bool = True
    prefers_jets: bool = True
    jets_nest: bool = True

    @abstractmethod
    def jet(self, j: Jet) -> Jet:
        """The network's forward pass on a jet of its inputs."""


def linear(j: Jet, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Jet:
    """y = W x + b: every row of the jet goes through the same matmul; only values get the bias."""
    J = F.linear(j.J, weight)  # (N, 1 + 2P, out)
    if bias is not None:
        J = torch.cat([J[:, :1] + bias, J[:, 1:]], 1)
    return Jet(J)


def _derivatives(name: str, v: torch.Tensor):
    """σ(v), σ'(v), σ''(v) in closed form."""
    if name == "tanh":
        t = torch.tanh(v)
        d1 = 1 - t * t
        return t, d1, -2 * t * d1
    if name == "sin":
        s, c = torch.sin(v), torch.cos(v)
        return s, c, -s
    if name == "silu":
        s = torch.sigmoid(v)
        d1 = s * (1 + v * (1 - s))
        return v * s, d1, s * (1 - s) * (2 + v * (1 - 2 * s))
    raise ValueError(f"no jet rule for activation '{name}'; rules exist for {', '.join(ACTIVATIONS)}")


ACTIVATIONS = ("tanh", "sin", "silu")


def activation(j: Jet, name: str, fused: bool = False) -> Jet:
    """Elementwise σ: g' = σ'(v) g and h' = σ'(v) h + σ''(v) g² (chain rule, diagonal terms).

    fused: tanh as one autograd node that keeps only its input jet for backward (the rule's intermediates
    take several times that): one Triton kernel each way on CUDA (`kinn.kernels.triton_activation`), a
    hand-written PyTorch backward elsewhere. Its backward is not differentiable again: only for networks
    whose jets are never nested (`jets_nest = False`). The kernel backend "reference"
    (`kinn.kernels.set_backend`) keeps the plain rule.
    """
    if fused and name == "tanh" and not _reference():
        if _triton_fits(j.J):
            from kinn.kernels.triton_activation import triton_tanh_jet

            return Jet(triton_tanh_jet(j.J))
        return Jet(_TanhJet.apply(j.J))
    P = j.P
    s0, s1, s2 = _derivatives(name, j.v)  # (N, W) each
    g, h = j.J[:, 1 : 1 + P], j.J[:, 1 + P :]  # (N, P, W)
    s1 = s1.unsqueeze(1)
    return Jet(torch.cat([s0.unsqueeze(1), s1 * g, s1 * h + s2.unsqueeze(1) * g * g], 1))


class _TanhJet(torch.autograd.Function):
    """tanh on a stacked jet (N, 1 + 2P, W), keeping only the input for backward (see `activation`)."""

    @staticmethod
    def forward(ctx, J):
        ctx.save_for_backward(J)
        P = (J.shape[1] - 1) // 2
        t, d1, d2 = _derivatives("tanh", J[:, 0])
        g, h = J[:, 1 : 1 + P], J[:, 1 + P :]
        d1, d2 = d1.unsqueeze(1), d2.unsqueeze(1)
        return torch.cat([t.unsqueeze(1), d1 * g, d1 * h + d2 * g * g], 1)

    @staticmethod
    def backward(ctx, grad):
        (J,) = ctx.saved_tensors
        P = (J.shape[1] - 1) // 2
        t, d1, d2 = _derivatives("tanh", J[:, 0])
        d3 = -2 * d1 * d1 - 2 * t * d2  # the third derivative of tanh
        g, h = J[:, 1 : 1 + P], J[:, 1 + P :]
        gg, gh = grad[:, 1 : 1 + P], grad[:, 1 + P :]
        d1, d2, d3 = d1.unsqueeze(1), d2.unsqueeze(1), d3.unsqueeze(1)
        dv = grad[:, :1] * d1 + (gg * g * d2 + gh * (h * d2 + g * g * d3)).sum(1, keepdim=True)
        return torch.cat([dv, gg * d1 + 2 * gh * d2 * g, gh * d1], 1)


def _reference() -> bool:
    from kinn.kernels import get_backend, reference_enabled

    return reference_enabled() or get_backend() == "reference"


def _triton_fits(J: torch.Tensor) -> bool:
    from kinn.kernels import get_backend

    if get_backend() == "fast" or not (J.is_cuda or get_backend() == "triton"):
        return False
    try:
        from kinn.kernels import triton_activation  # noqa: F401
    except ImportError:
        return False
    return True
