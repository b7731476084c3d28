"""`PiecewiseModel`: one network per subdomain (`Problem.subdomains`), seen by forms as one field.

A point takes the output of the first subdomain that contains it, so inside each subdomain the field and
all its derivatives are that subdomain's network's: residuals, energies, errors and derived quantities
are written once and never see the split. What joins the parts is the form's business: `Interface`
conditions (value, flux) across the segments between them, which evaluate `model.part(a)` and
`model.part(b)` on the same points.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kinn.errors import KinnError
from kinn.kernels.jets import Jet
from kinn.models.field import FieldModel, PointModel
from kinn.pde import geometry


class PiecewiseModel(PointModel):
    """parts: {subdomain name: FieldModel}; subdomains: {name: deepxde geometry}, in the same order.

    Derivatives as the parts take them (they share the `derivatives` setting): jets are each part's own,
    row by row.
    """

    def __init__(self, parts: dict[str, FieldModel], subdomains: dict):
        first = next(iter(parts.values()))
        super().__init__(first.lo.clone(), first.hi.clone())
        self.parts = nn.ModuleDict(parts)
        self.subdomains = dict(subdomains)

    def owner(self, x: torch.Tensor) -> np.ndarray:
        """The index of the subdomain each point (N, D) belongs to: the first that contains it."""
        pts = x.detach().cpu().double().numpy()
        owner = np.full(len(pts), -1)
        for k, geom in enumerate(self.subdomains.values()):
            owner[(owner < 0) & geometry.inside(geom, pts)] = k
        if (owner < 0).any():
            raise KinnError(f"{int((owner < 0).sum())} point(s) lie in no subdomain "
                            f"({', '.join(self.subdomains)}), e.g. {pts[owner < 0][0].tolist()}: the subdomains "
                            "must cover the domain")
        return owner

    def part(self, name: str) -> FieldModel:
        return self.parts[name]

    def pieces(self) -> list[FieldModel]:
        return list(self.parts.values())

    @property
    def derivatives(self) -> str:
        return next(iter(self.parts.values())).derivatives

    @property
    def jets_possible(self) -> bool:
        return all(p.jets_possible for p in self.parts.values())

    @jets_possible.setter
    def jets_possible(self, value: bool) -> None:  # `kinn.forms.points.at_points` switches every part to autograd
        for p in self.parts.values():
            p.jets_possible = value

    @property
    def use_jets(self) -> bool:
        return all(p.use_jets for p in self.parts.values())

    @property
    def jets_nest(self) -> bool:
        return all(p.jets_nest for p in self.parts.values())

    def _rows(self, x: torch.Tensor, fn) -> torch.Tensor:
        """fn(part, x_k) (N_k, ...) of each part on its own points, put back in the points' order."""
        owner = torch.as_tensor(self.owner(x), device=x.device)
        out = None
        for k, part in enumerate(self.parts.values()):
            index = (owner == k).nonzero().squeeze(1)
            if len(index):
                rows = fn(part, x.index_select(0, index))
                out = (rows.new_zeros(len(x), *rows.shape[1:]) if out is None else out).index_copy(0, index, rows)
        return out if out is not None else fn(next(iter(self.parts.values())), x)  # no points at all

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, C)
        return self._rows(x, lambda part, xk: part(xk))

    def jet(self, x: torch.Tensor, kind: str | None = None) -> Jet:
        """The fields' jet at physical points x (N, D), each point's from its own part (`FieldModel.jet`), all
        of one kind (default "diag": the parts' networks may each have chosen another)."""
        kind = kind or "diag"
        return Jet(self._rows(x, lambda part, xk: part.jet(xk, kind).J), kind)

    def hooks(self, family, options) -> dict:
        """The family's hooks (a KAN grid update, say) for every part, each on its own share of the points."""
        out = {}
        for k, (name, part) in enumerate(self.parts.items()):
            for key, hook in family.hooks(part.net, options).items():
                def on_part(step, x, hook=hook, k=k, part=part):
                    mine = x[torch.as_tensor(self.owner(x) == k, device=x.device)]
                    return hook(step, part.scale(mine)) if len(mine) else False

                out[f"{key}/{name}"] = on_part
        return out
