"""Looking inside a finished KAN run directory: its edge functions and their importance (`edges_of_run`,
`kinn show RUN --edges`) and its closed-form formula scored on held-out points (`formula_of_run`,
`kinn symbolic RUN`). Both write what they find into the run directory, atomically.

A run of a problem with subdomains holds one KAN per part (`Model.pieces`): each is read on points of its
own part, and its formula stands for the fields there.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from kinn.errors import KinnError
from kinn.models.field import FieldModel
from kinn.pde import geometry
from kinn.run import evaluate, rundir

from . import edges, symbolic

N_POINTS = 2000  # points of the domain where the edges are read: the range the data visits


@dataclasses.dataclass
class Piece:
    """One KAN of a run: its part's name ("" for a run of one network), the model and points x (N, D) of
    the part, float64."""

    name: str
    model: FieldModel
    x: torch.Tensor


def load_kan_run(run_dir) -> tuple:
    """The run's `Result` in float64 and its KAN pieces; a clear error for a run of another family."""
    from kinn.run.pipeline import load

    result = load(run_dir)
    if result.family.name != "kan":
        raise KinnError(f"{run_dir} is a run of family '{result.family.name}'; edges and formulas are read "
                        "off a KAN's edges (family kan)")
    result.model.double()
    problem = result.problem
    names = list(problem.subdomains) or [""]
    out = []
    for k, (name, model) in enumerate(zip(names, result.model.pieces())):
        domain = problem.subdomains[name] if name else problem.domain
        with geometry.numpy_seed(geometry.seed_stream(result.config.train.seed, "analysis", k)):
            x = geometry.interior(domain, N_POINTS)
        out.append(Piece(name, model, torch.as_tensor(x, dtype=torch.float64)))
    return result, out


def _suffix(name: str) -> str:
    return f"-{name}" if name else ""


def edges_of_run(run_dir) -> dict:
    """Every KAN's edge figure (figures/edges[-part].png, pykan's plot: line strength by importance) and
    the importance scores (`kinn.analysis.edges.importance`), also written to edges.json:
    {"figures": [paths], "importance": {part or "net": scores}}."""
    run_dir = Path(run_dir)
    _, pieces = load_kan_run(run_dir)
    report = {"figures": [], "importance": {}}
    for p in pieces:
        path = run_dir / "figures" / f"edges{_suffix(p.name)}.png"
        edges.plot_edges(p.model, p.x, path)
        report["figures"].append(str(path))
        report["importance"][p.name or "net"] = edges.importance(p.model, p.x)
    rundir.write_json(run_dir / "edges.json", report)
    return report


def _formula_prediction(piece: Piece, formula: symbolic.Formula, x: np.ndarray) -> np.ndarray:
    """The fields the formula gives at x (N, D): the network's formula, through the model's output
    transform (hard conditions) where it has one, evaluated numerically."""
    raw = formula(x)  # (N, C)
    if piece.model.transform is None:
        return raw
    xt = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        return piece.model.transform(xt, torch.as_tensor(raw, dtype=torch.float64)).numpy()


def formula_of_run(run_dir, library: Sequence[str] = symbolic.DEFAULT_LIBRARY, tol: float = 1e-6) -> dict:
    """The KAN's closed form (`kinn.analysis.symbolic.symbolic_formula`), scored on the run's own held-out
    points against the reference, beside the network's error there; written to symbolic.json.

    Returns {"pieces": {part or "net": {"outputs": {field: {"text", "latex"}}, "transform": bool,
    "edges": [[[name, r2], ...]]}}, "errors": {"formula": {...}, "network": {...}}, "nonfinite": n}: the
    formula's errors are over the points where it is finite, and n counts the others (a fitted sqrt or
    log whose argument leaves its domain there). Where the model applies
    an output transform (hard conditions), the formula is the network's, N(x), and the fields are
    transform(x, N(x)), which is how they are scored.
    """
    from kinn.forms.points import eval_set

    run_dir = Path(run_dir)
    result, pieces = load_kan_run(run_dir)
    problem = result.problem
    x, y = eval_set(problem, result.form, result.config)
    owner = result.model.owner(torch.as_tensor(x)) if len(pieces) > 1 else np.zeros(len(x), int)
    pred = np.zeros_like(y)
    report = {"pieces": {}, "errors": {}}
    for k, p in enumerate(pieces):
        bare = FieldModel(p.model.net, p.model.lo.numpy(), p.model.hi.numpy())  # the network, no transform
        formula = symbolic.symbolic_formula(bare, p.x, coords=problem.coords, library=library, tol=tol)
        mine = owner == k
        pred[mine] = _formula_prediction(p, formula, x[mine])
        report["pieces"][p.name or "net"] = {
            "outputs": {f: {"text": o.text, "latex": o.latex} for f, o in zip(problem.fields, formula.outputs)},
            "transform": p.model.transform is not None,
            "edges": [[[[fit.name, fit.r2] for fit in row] for row in layer] for layer in formula.fits]}
    finite = np.isfinite(pred).all(1)  # a fitted sqrt or log can leave its domain where the network does not
    report["nonfinite"] = int((~finite).sum())
    report["errors"]["formula"] = evaluate.errors(pred[finite], y[finite], problem.fields)
    network = evaluate.predict(result.model, x, torch.float64, "cpu")
    report["errors"]["network"] = evaluate.errors(network, y, problem.fields)
    report["eval_points"] = len(x)
    rundir.write_json(run_dir / "symbolic.json", report)
    return report
