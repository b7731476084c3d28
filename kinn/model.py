"""`FieldModel`: a family's network wrapped with input scaling and hard-constraint transforms.

Every family's network sees inputs scaled from the domain's bounding box to [-1, 1]^D (where KAN grids
and tanh layers do their best work); the transform then imposes hard conditions in physical coordinates.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import KinnError


DERIVATIVES = ("auto", "jet", "autograd")


class FieldModel(nn.Module):
    """derivatives: "jet" carries derivatives forward (`kinn.jets`), "autograd" nests reverse mode,
    "auto" uses jets where the network has a `jet` method, prefers it (`net.prefers_jets`, default True)
    and no output transform is applied (transforms are arbitrary functions of x, which jets do not
    propagate)."""

    def __init__(self, net: nn.Module, lo: np.ndarray, hi: np.ndarray, transform: Callable | None = None,
                 derivatives: str = "auto"):
        super().__init__()
        self.net, self.transform = net, transform
        self.register_buffer("lo", torch.as_tensor(np.asarray(lo, float)))
        self.register_buffer("hi", torch.as_tensor(np.asarray(hi, float)))
        if derivatives not in DERIVATIVES:
            raise KinnError(f"unknown derivatives '{derivatives}'; valid: {', '.join(DERIVATIVES)}")
        why = ("an output transform (hard condition) is applied" if transform is not None
               else f"{type(net).__name__} has no jet forward" if not callable(getattr(net, "jet", None))
               else f"{type(net).__name__} has no jet rules for these options" if not getattr(net, "supports_jets", True)
               else "")
        if derivatives == "jet" and why:
            raise KinnError(f"derivatives = 'jet' is not available here: {why}; use 'auto' or 'autograd'")
        self.jets_possible, self.derivatives = not why, derivatives

    def add_unknowns(self, unknowns, observed: list[int], nets: dict | None = None, points=None) -> None:
        """The unknowns of an inverse form, trained with the network. Scalars (`kinn.forms.Unknown`) are
        stored as θ: the value is exp(θ) for a positive unknown, else θ. Fields (`UnknownField`) are the
        networks `nets` {name: module (N, D) -> (N, 1)}, fed the same scaled inputs as the solution's, and
        scored on `points` (M, D) where their true field is known. `observed` are the output columns the
        observations give."""
        nets = nets or {}
        self.unknown_specs = {u.name: u for u in unknowns}
        self.unknowns = nn.ParameterDict({
            u.name: nn.Parameter(torch.tensor(float(np.log(u.initial) if u.positive else u.initial)))
            for u in unknowns if u.name not in nets})
        self.unknown_fields = nn.ModuleDict(nets)
        if points is not None:
            self.register_buffer("unknown_points", torch.as_tensor(np.asarray(points, float)))
        self.observed = list(observed)

    def unknown_values(self) -> dict:
        """The unknowns' current values: {name: scalar tensor} and {name: function x (N, D) -> (N, 1)} for
        fields (differentiable)."""
        specs = getattr(self, "unknown_specs", {})
        out = {n: (t.exp() if specs[n].positive else t) for n, t in getattr(self, "unknowns", {}).items()}
        for name, net in getattr(self, "unknown_fields", {}).items():
            def field(x, net=net, spec=specs[name]):
                raw = net(self.scale(x))[:, :1]
                return spec.initial * raw.exp() if spec.positive else spec.initial + raw

            out[name] = field
        return out

    def unknown_report(self) -> dict[str, float]:
        """{"value/E": estimate, "rel_error/E": |estimate − true| / |true|} for scalars and
        {"rel_error/K": ‖K − K_true‖ / ‖K_true‖ on `unknown_points`} for fields, where the truth is known."""
        out = {}
        for name, v in self.unknown_values().items():
            true = self.unknown_specs[name].true
            if callable(v):
                if true is not None:
                    with torch.no_grad():
                        x = self.unknown_points
                        k, k_true = v(x).reshape(-1), true(x).reshape(-1).to(x.dtype)
                        out[f"rel_error/{name}"] = float((k - k_true).norm() / k_true.norm())
                continue
            out[f"value/{name}"] = float(v.detach())
            if true is not None:
                out[f"rel_error/{name}"] = abs(out[f"value/{name}"] - true) / abs(true)
        return out

    @property
    def use_jets(self) -> bool:
        """Whether residuals get jets; "auto" asks the network, on its current device (`net.prefers_jets`)."""
        if not self.jets_possible or self.derivatives == "autograd":
            return False
        return self.derivatives == "jet" or getattr(self.net, "prefers_jets", True)

    @property
    def jets_nest(self) -> bool:
        """Whether the network's jet can be differentiated again (the fused KAN kernels' cannot)."""
        return getattr(self.net, "jets_nest", True)

    def jet(self, x: torch.Tensor):
        """The fields' jet at physical points x (N, D): values, gradients, Hessian diagonals in x."""
        from .jets import Jet

        return self.net.jet(Jet.seed(self.scale(x), 2 / (self.hi - self.lo)))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Physical points (N, D) -> the network's inputs in [-1, 1]^D."""
        return 2 * (x - self.lo) / (self.hi - self.lo) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, C)
        out = self.net(self.scale(x))
        return out if self.transform is None else self.transform(x, out)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
