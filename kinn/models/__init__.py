"""The model wrappers: a family's network made into the model a form trains (`kinn.models.base.Model`).

    FieldModel      one network of the points, with input scaling, hard conditions and an inverse
                    problem's unknowns (`field`)
    PiecewiseModel  one FieldModel per subdomain (`piecewise`)
    LatticeModel    a lattice family's network (FNO) read at the nodes of a regular lattice (`lattice`)
    OperatorModel   a lattice network mapping input functions to fields (`operator`)
"""
from __future__ import annotations

from kinn.errors import KinnError
from kinn.models.base import Model, n_params
from kinn.models.family import Family
from kinn.models.field import FieldModel
from kinn.models.lattice import LatticeModel
from kinn.pde.lattice import shape_for
from kinn.models.piecewise import PiecewiseModel
from kinn.pde import geometry

__all__ = ["Family", "FieldModel", "LatticeModel", "Model", "PiecewiseModel", "n_params", "wrap"]


def wrap(problem, form, family: Family, cfg) -> Model:
    """The family's network wrapped for a pointwise form of the problem (float64 buffers, on the CPU):
    a `LatticeModel` for a lattice family, a `PiecewiseModel` of one network per subdomain, else a
    `FieldModel`, carrying the form's unknowns where it has any."""
    options = family.config(cfg.model)
    family.check(problem, cfg.form, options)
    net = family.build(problem.dim, len(problem.fields), options)
    lo, hi = geometry.bbox(problem.domain)
    transform = form.transform(problem)
    if family.lattice:  # trained on the nodes of a regular lattice
        if problem.subdomains:
            raise KinnError(f"family '{family.name}' trains on one regular lattice; problem '{problem.name}' has "
                            f"subdomains ({', '.join(problem.subdomains)}), which need a network each")
        if cfg.points.sampler != "lattice":
            raise KinnError(f"family '{family.name}' trains on a regular lattice: points.sampler must be "
                            f"'lattice', not '{cfg.points.sampler}'")
        return LatticeModel(net, lo, hi, shape_for(cfg.points.n_interior, problem.dim), transform)
    if problem.subdomains:  # one network per subdomain, each initialised from its own draw
        if form.unknowns:
            raise KinnError(f"problem '{problem.name}': an inverse problem on subdomains is not supported")
        nets = [net] + [family.build(problem.dim, len(problem.fields), options) for _ in problem.subdomains][1:]
        parts = {name: FieldModel(n, lo, hi, transform, cfg.derivatives) for name, n in zip(problem.subdomains, nets)}
        return PiecewiseModel(parts, problem.subdomains)
    model = FieldModel(net, lo, hi, transform, cfg.derivatives)
    if form.unknowns:  # an inverse problem's scalars and fields train with the network
        fields = [u for u in form.unknowns if u.is_field]
        nets = {u.name: family.build(problem.dim, 1, options) for u in fields}  # same family and options
        with geometry.numpy_seed(0):  # where an unknown field is scored: the same points in every run
            points = geometry.interior(problem.domain, 4096) if fields else None
        model.add_unknowns(form.unknowns, form.observations.columns(problem), nets, points)
    return model
