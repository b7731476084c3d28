"""Forward-mode derivative jets: value, gradient and second derivatives carried through a network at once.

A `Jet` holds, for N points and W units, one tensor J of shape (N, S, W): row 0 the values, rows 1 .. P
the derivatives with respect to the P input coordinates, then M rows of second derivatives
∂²/∂x_a∂x_b, one for each pair (a, b) of its kind (`pairs`):

    "first"  no second derivatives (M = 0): what energy densities and tractions need;
    "diag"   the Hessian's diagonal, (p, p) for p = 0 .. P - 1 (M = P): Laplacians, ∂²/∂x²;
    "full"   the whole Hessian, (a, b) for a <= b in row-major order (M = P(P + 1)/2): mixed second
             derivatives, and the divergence of a flux computed from the gradient (elasticity's ∇·σ).

Every rule below is the chain rule on those rows: through an elementwise σ, the second row (a, b) becomes
σ'(v) h_ab + σ''(v) g_a g_b. A residual then needs only a first-order backward to the parameters instead
of nested autograd.

Networks that support jets implement `net.jet(j: Jet) -> Jet` with the helpers below; KAN layers
implement `layer.stacked_jet(J, squash, kind)` in their kernels. A seed (`Jet.seed`) without a kind
leaves the choice to the network: a KAN carries what its residuals asked for before (`Demand`), others
the diagonal.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Callable

import torch
import torch.nn.functional as F

from kinn.kernels.backend import get_backend, use_reference_rules

KINDS = ("first", "diag", "full")  # in increasing order of what they carry


@functools.lru_cache(maxsize=None)
def pairs(P: int, kind: str) -> tuple[tuple[int, int], ...]:
    """The (a, b) of the second-derivative rows of a jet of this kind over P coordinates, in row order."""
    if kind == "first":
        return ()
    if kind == "diag":
        return tuple((p, p) for p in range(P))
    if kind == "full":
        return tuple((a, b) for a in range(P) for b in range(a, P))
    raise ValueError(f"unknown jet kind {kind!r}; valid: {', '.join(KINDS)}")


def sets(P: int, kind: str) -> int:
    """Rows S = 1 + P + M of a stacked jet."""
    return 1 + P + len(pairs(P, kind))


def coordinates(S: int, kind: str) -> int:
    """P from the rows S of a stacked jet of this kind (ValueError where S fits no P)."""
    for P in range(S):
        if sets(P, kind) == S:
            return P
    raise ValueError(f"a '{kind}' jet has no layout with {S} rows")


@functools.lru_cache(maxsize=None)
def pair_index(P: int, kind: str, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of g_a and g_b (1 + a, 1 + b) for each second row: two (M,) long tensors."""
    a = torch.tensor([1 + p for p, _ in pairs(P, kind)], dtype=torch.long, device=device)
    b = torch.tensor([1 + q for _, q in pairs(P, kind)], dtype=torch.long, device=device)
    return a, b


def richer(kind: str, other: str | None) -> str:
    """The kind that carries both."""
    return kind if other is None or KINDS.index(kind) >= KINDS.index(other) else other


class Demand:
    """What the residuals evaluated from a network's jets have asked for so far: the kind its next jets carry.

    `kinn.pde.fields.JetBackend` notes each request ("first" for gradients, "diag" for ∂²/∂x², "full" for mixed
    derivatives and flux divergences); a network that keeps one (KAN) seeds its jets with `kind`, the
    richest request seen, or "diag" before any (the layout `Jet(J)` assumes, so that a jet rebuilt from
    its tensor alone, as `kinn.piecewise` does, stays what it was). A request beyond the jet at hand is answered by a second,
    richer jet of the same points (`Jet.rerun`), once: from then on the jets carry it from the start.
    """

    def __init__(self):
        self.kind: str | None = None

    def note(self, kind: str) -> None:
        self.kind = richer(kind, self.kind)


class Jet:
    """J (N, S, W) of the given kind (see the module docstring); P is worked out from S where not given.

    affine: the jet of an affine map of the coordinates (a seed), whose second derivatives are zero, so
    that it converts to any kind (`as_kind`). open: a seed whose kind the network chooses (`Demand`).
    demand, rerun: set by networks that choose: the record the field backend notes requests in, and
    rerun(kind), the jet of the same points and kind computed again.
    """

    def __init__(self, J: torch.Tensor, kind: str = "diag", P: int | None = None, affine: bool = False,
                 open: bool = False):
        self.J, self.kind = J, kind
        self.P = coordinates(J.shape[1], kind) if P is None else P
        assert J.shape[1] == sets(self.P, kind), f"{J.shape[1]} rows for a '{kind}' jet over {self.P} coordinates"
        self.affine, self.open = affine, open
        self.demand: Demand | None = None
        self.rerun = None

    @classmethod
    def from_parts(cls, v, g, h) -> "Jet":
        """A "diag" jet from v (N, W), g (N, W, P), h (N, W, P)."""
        return cls(torch.cat([v.unsqueeze(1), g.transpose(1, 2), h.transpose(1, 2)], 1), "diag", g.shape[-1])

    @classmethod
    def seed(cls, z: torch.Tensor, dz: torch.Tensor, kind: str | None = None) -> "Jet":
        """The jet of inputs z = a·x + b (an affine map of the coordinates): dz (D,) = a, no curvature.

        kind None: the network chooses (a KAN what its residuals asked for, others "diag")."""
        n, d = z.shape
        g = torch.diag_embed(dz.to(z.dtype)).expand(n, d, d)  # (N, P=D, D): row p, unit i
        zero = z.new_zeros(n, len(pairs(d, kind or "diag")), d)
        return cls(torch.cat([z.unsqueeze(1), g, zero], 1), kind or "diag", d, affine=True, open=kind is None)

    def as_kind(self, kind: str) -> "Jet":
        """This jet as another kind: any kind for an affine jet, fewer rows for others (ValueError else)."""
        if kind == self.kind:
            return self
        P, first = self.P, self.J[:, : 1 + self.P]
        if self.affine:
            zero = self.J.new_zeros(len(self.J), len(pairs(P, kind)), self.J.shape[2])
            return Jet(torch.cat([first, zero], 1), kind, P, affine=True)
        mine = pairs(P, self.kind)
        if not set(pairs(P, kind)) <= set(mine):
            raise ValueError(f"a '{self.kind}' jet does not carry what a '{kind}' jet does")
        rows = [1 + P + mine.index(ab) for ab in pairs(P, kind)]
        return Jet(torch.cat([first, self.J[:, rows]], 1), kind, P)

    def detached(self) -> "Jet":
        return Jet(self.J.detach(), self.kind, self.P, self.affine, self.open)

    @property
    def v(self) -> torch.Tensor:  # (N, W)
        return self.J[:, 0]

    @property
    def g(self) -> torch.Tensor:  # (N, W, P)
        return self.J[:, 1 : 1 + self.P].transpose(1, 2)

    @property
    def second(self) -> torch.Tensor:  # (N, M, W): the second-derivative rows, in `pairs` order
        return self.J[:, 1 + self.P :]

    def row(self, a: int, b: int) -> int | None:
        """The row of ∂²/∂x_a∂x_b in J, or None where this kind does not carry it."""
        ab = (min(a, b), max(a, b))
        mine = pairs(self.P, self.kind)
        return 1 + self.P + mine.index(ab) if ab in mine else None

    def carries(self, kind: str) -> bool:
        return KINDS.index(self.kind) >= KINDS.index(kind)

    @property
    def h(self) -> torch.Tensor:  # (N, W, P): the Hessian's diagonal
        if not self.carries("diag"):
            raise ValueError("a 'first' jet carries no second derivatives")
        if self.kind == "diag":
            return self.J[:, 1 + self.P :].transpose(1, 2)
        return self.J[:, [self.row(p, p) for p in range(self.P)]].transpose(1, 2)

    @property
    def H(self) -> torch.Tensor:  # (N, W, P, P): the whole Hessian (a "full" jet)
        if self.kind != "full":
            raise ValueError(f"a '{self.kind}' jet does not carry the whole Hessian")
        rows = [self.row(a, b) for a in range(self.P) for b in range(self.P)]
        return self.J[:, rows].unflatten(1, (self.P, self.P)).permute(0, 3, 1, 2)

    def __add__(self, other: "Jet") -> "Jet":
        assert (self.kind, self.P) == (other.kind, other.P), "jets of different kinds"
        return Jet(self.J + other.J, self.kind, self.P)


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


def transformed(fn: Callable, x: torch.Tensor, j: Jet) -> Jet:
    """The jet of y = fn(x, u) at the points x (N, D), where u has the jet j over the same D coordinates:
    an output transform (a hard condition, `kinn.pde.conditions`) applied to a network's jet.

    fn is any pointwise torch function (row n of y depends on row n of x and u). Each row of the result
    is a directional derivative of fn along the jets' tangents z_a = (e_a, g_a), by forward-mode AD
    (`torch.func.jvp`): g'_a = fn'[z_a] = ∂fn/∂x_a + ∂fn/∂u g_a (the product rule of u = g + d N, say)
    and second row (a, b): fn''[z_a, z_b] + ∂fn/∂u h_ab. Differentiable (first order) in j and x, like
    any torch expression. The result keeps j's `demand` and computes itself again through fn where j can
    (`rerun`).
    """
    from torch.func import jvp

    P, u = j.P, j.v
    assert x.shape[1] == P, f"points with {x.shape[1]} coordinates for a jet over {P}"
    unit = torch.eye(P, dtype=x.dtype, device=x.device)
    tangents = [(unit[a].expand_as(x), j.J[:, 1 + a]) for a in range(P)]  # z_a, (N, D) and (N, C)
    firsts = [jvp(fn, (x, u), z) for z in tangents]
    rows = [firsts[0][0] if firsts else fn(x, u)] + [d for _, d in firsts]
    zero = torch.zeros_like(x)
    for m, (a, b) in enumerate(pairs(P, j.kind)):
        def along_a(x, u, z=tangents[a]):  # fn'[z_a] as a function of (x, u), z_a held
            return jvp(fn, (x, u), z)[1]

        curvature = jvp(fn, (x, u), (zero, j.second[:, m]))[1]  # ∂fn/∂u h_ab
        rows.append(jvp(along_a, (x, u), tangents[b])[1] + curvature)
    out = Jet(torch.stack(rows, 1), j.kind, P)
    out.demand = j.demand
    if j.rerun is not None:
        out.rerun = lambda kind: transformed(fn, x, j.rerun(kind))
    return out


def linear(j: Jet, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Jet:
    """y = W x + b: every row of the jet goes through the same matmul; only values get the bias."""
    J = F.linear(j.J, weight)  # (N, S, out)
    if bias is not None:
        J = torch.cat([J[:, :1] + bias, J[:, 1:]], 1)
    return Jet(J, j.kind, j.P)


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


def _products(J: torch.Tensor, P: int, kind: str) -> torch.Tensor:
    """g_a g_b (N, M, W) for each second row (a, b)."""
    a, b = pair_index(P, kind, J.device)
    return J.index_select(1, a) * J.index_select(1, b)


def activation(j: Jet, name: str, fused: bool = False) -> Jet:
    """Elementwise σ: g' = σ'(v) g and h'_ab = σ'(v) h_ab + σ''(v) g_a g_b (the chain rule).

    fused: tanh as one autograd node that keeps only its input jet for backward (the rule's intermediates
    take several times that): one Triton kernel each way on CUDA (`kinn.kernels.triton_activation`), a
    hand-written PyTorch backward elsewhere. Its backward is not differentiable again: only for networks
    whose jets are never nested (`jets_nest = False`). The kernel backend "reference"
    (`kinn.kernels.set_backend`) keeps the plain rule.
    """
    if fused and name == "tanh" and not _reference():
        if _triton_fits(j.J):
            from kinn.kernels.triton_activation import triton_tanh_jet

            return Jet(triton_tanh_jet(j.J, j.kind), j.kind, j.P)
        return Jet(_TanhJet.apply(j.J, j.P, j.kind), j.kind, j.P)
    P = j.P
    s0, s1, s2 = _derivatives(name, j.v)  # (N, W) each
    s1 = s1.unsqueeze(1)
    rows = [s0.unsqueeze(1), s1 * j.J[:, 1 : 1 + P]]
    if j.kind != "first":
        rows.append(s1 * j.second + s2.unsqueeze(1) * _products(j.J, P, j.kind))
    return Jet(torch.cat(rows, 1), j.kind, P)


class _TanhJet(torch.autograd.Function):
    """tanh on a stacked jet (N, S, W), keeping only the input for backward (see `activation`)."""

    @staticmethod
    def forward(ctx, J, P, kind):
        ctx.save_for_backward(J)
        ctx.P, ctx.kind = P, kind
        t, d1, d2 = _derivatives("tanh", J[:, 0])
        d1, d2 = d1.unsqueeze(1), d2.unsqueeze(1)
        rows = [t.unsqueeze(1), d1 * J[:, 1 : 1 + P]]
        if kind != "first":
            rows.append(d1 * J[:, 1 + P :] + d2 * _products(J, P, kind))
        return torch.cat(rows, 1)

    @staticmethod
    def backward(ctx, grad):
        (J,) = ctx.saved_tensors
        P, kind = ctx.P, ctx.kind
        t, d1, d2 = _derivatives("tanh", J[:, 0])
        d3 = -2 * d1 * d1 - 2 * t * d2  # the third derivative of tanh
        d1, d2, d3 = d1.unsqueeze(1), d2.unsqueeze(1), d3.unsqueeze(1)
        g, gg = J[:, 1 : 1 + P], grad[:, 1 : 1 + P]
        dv = grad[:, :1] * d1 + (gg * g * d2).sum(1, keepdim=True)
        dg = gg * d1
        if kind == "first":
            return torch.cat([dv, dg], 1), None, None
        a, b = pair_index(P, kind, J.device)
        h, gh = J[:, 1 + P :], grad[:, 1 + P :]
        ga, gb = J.index_select(1, a), J.index_select(1, b)
        dv = dv + (gh * (h * d2 + ga * gb * d3)).sum(1, keepdim=True)
        dg = dg.index_add(1, a - 1, gh * d2 * gb).index_add(1, b - 1, gh * d2 * ga)
        return torch.cat([dv, dg, gh * d1], 1), None, None


def _reference() -> bool:
    return use_reference_rules()


def _triton_fits(J: torch.Tensor) -> bool:
    if get_backend() == "fast" or not (J.is_cuda or get_backend() == "triton"):
        return False
    try:
        import kinn.kernels.triton_activation  # noqa: F401
    except ImportError:
        return False
    return True
