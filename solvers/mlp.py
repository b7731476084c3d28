"""The MLP family: fully connected tanh networks, plain or with KINN's skip connections."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from kinn.kernels import jets
from kinn.errors import KinnError
from kinn.models.family import Family

ACTIVATIONS = {"tanh": torch.tanh, "sin": torch.sin, "silu": nn.functional.silu, "gelu": nn.functional.gelu}


@dataclass
class MLPConfig:
    """widths: hidden layer widths. activation: tanh | sin | silu | gelu.
    skip: KINN's baseline skip connections, h_l = act(W_l h_(l-1)) + h_(l-2) from the third hidden layer
    on (needs equal widths). preset "kinn" is that baseline: 4 hidden tanh layers of width 30 with skips."""

    widths: list = field(default_factory=lambda: [64, 64, 64])
    activation: str = "tanh"
    skip: bool = False
    preset: str = ""

    def __post_init__(self):
        if self.preset == "kinn":
            self.widths, self.activation, self.skip = [30, 30, 30, 30], "tanh", True
        elif self.preset:
            raise KinnError(f"unknown MLP preset '{self.preset}'; valid: kinn")
        if not self.widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.widths):
            raise KinnError(f"model.widths must be a non-empty list of positive integers, got {self.widths!r}")
        if self.activation not in ACTIVATIONS:
            raise KinnError(f"unknown activation '{self.activation}'; valid: {', '.join(ACTIVATIONS)}")
        if self.skip and len(set(self.widths)) != 1:
            raise KinnError(f"skip connections need equal hidden widths, got {self.widths}")


class MLP(nn.Module, jets.JetNetwork):
    def __init__(self, in_dim: int, out_dim: int, cfg: MLPConfig):
        super().__init__()
        sizes = [in_dim, *cfg.widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], out_dim)
        self.act, self.skip, self.activation_name = ACTIVATIONS[cfg.activation], cfg.skip, cfg.activation
        for layer in [*self.hidden, self.out]:  # Xavier init, zero biases
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, in) -> (N, out)
        hs = []
        for i, layer in enumerate(self.hidden):
            h = self.act(layer(hs[-1] if hs else x))
            if self.skip and i >= 2:
                h = h + hs[i - 2]
            hs.append(h)
        return self.out(hs[-1])


    # Jets are exact for MLPs, but on CPU nested autograd was faster for them (poisson2d, [50, 50, 50],
    # 2,000 points: 13 ms against 19 ms a step), so "auto" keeps autograd; derivatives="jet" forces jets.
    prefers_jets = False

    @property
    def supports_jets(self) -> bool:
        return self.activation_name in jets.ACTIVATIONS

    def jet(self, j: jets.Jet) -> jets.Jet:
        """The forward pass on derivative jets (`kinn.kernels.jets`): the same layers, carried analytically."""
        hs = []
        for i, layer in enumerate(self.hidden):
            h = jets.activation(jets.linear(hs[-1] if hs else j, layer.weight, layer.bias), self.activation_name)
            if self.skip and i >= 2:
                h = h + hs[i - 2]
            hs.append(h)
        return jets.linear(hs[-1], self.out.weight, self.out.bias)


class MLPFamily(Family):
    name = "mlp"
    Config = MLPConfig

    def build(self, in_dim, out_dim, config):
        return MLP(in_dim, out_dim, config)
