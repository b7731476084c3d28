"""Scoring a finished run against a reference attached afterwards: `kinn score RUN --reference FILE`.

A problem with no exact solution and no reference is trained and reported by residuals and checks alone;
once a reference exists (a spectral solve, an FEM export), `score` reads it (`kinn.data.readers`: kinn's
HDF5 layouts, .npz, MATLAB .mat, or any mesh file meshio reads with point data), interpolates it to the
run's held-out evaluation points and writes the errors into the run directory: result.json, fields.h5
and fields.vtu (with the reference and the error), figures/fields.png. Each file is replaced atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kinn import registry
from kinn.errors import KinnError
from kinn.pde import geometry
from kinn.run import evaluate, figures, rundir


def score(run_dir, reference, problem=None) -> dict:
    """Score the run in `run_dir` against the reference file `reference`; return the updated summary (the
    run's result.json). problem: the run's `Problem`, for one that cannot be found by the name it records."""
    from kinn.data.readers import interpolate, read_reference
    from kinn.run.pipeline import run_config

    run_dir, reference = Path(run_dir), Path(reference)
    cfg = run_config(run_dir)
    if not (run_dir / "result.json").exists():
        raise KinnError(f"{run_dir} holds no finished run (no result.json): finish or resume it first")
    problem = problem or registry.get_problem(cfg.problem)
    x, pred = _predictions(run_dir / "fields.h5", problem.fields)
    ref = read_reference(reference, problem.fields, problem.coords)
    _refuse_outside(ref.points, problem, reference)
    values = interpolate(ref, x)
    errors = evaluate.errors(pred, values, problem.fields)
    summary = rundir.read_json(run_dir / "result.json")
    for name in problem.fields:
        summary["errors"].setdefault(name, {}).update(rel_l2=errors[f"rel_l2/{name}"], max=errors[f"max/{name}"])
    summary["reference"] = str(reference.resolve())
    rundir.write_fields(run_dir, x, pred, values, problem.fields, problem.coords)
    inside = None if problem.time_dependent else (lambda c: geometry.inside(problem.domain, c))
    figures.fields(run_dir / "figures" / "fields.png", x, pred, values, problem.fields, problem.coords, inside,
                   problem.units)
    rundir.write_json(run_dir / "result.json", summary)  # last: the run's summary is complete again
    return summary


def _predictions(path: Path, fields) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation points (N, D) and predicted fields (N, C) a pointwise run wrote to fields.h5."""
    import h5py

    if not path.exists():
        raise KinnError(f"{path} not found: `kinn score` scores runs of the strong, energy and inverse forms, "
                        "which write their held-out predictions there")
    with h5py.File(path, "r") as f:
        if "points" not in f or "fields" not in f:
            raise KinnError(f"{path} holds no points and fields: `kinn score` scores pointwise runs only")
        missing = [n for n in fields if n not in f["fields"]]
        if missing:
            raise KinnError(f"{path} lacks the field(s) {', '.join(missing)}; it has {', '.join(f['fields'])}")
        return f["points"][()], np.stack([f["fields"][n][()] for n in fields], axis=1)


def _refuse_outside(points: np.ndarray, problem, source: Path) -> None:
    """A reference whose nodes fall outside the problem's domain (its bounding box) belongs to another one."""
    lo, hi = geometry.bbox(problem.domain)
    tol = 1e-6 * max(float(np.max(hi - lo)), 1.0)
    out = ((points < lo - tol) | (points > hi + tol)).any(axis=1)
    if out.any():
        k = int(np.argmax(out))
        box = ", ".join(f"{c} in [{a:g}, {b:g}]" for c, a, b in zip(problem.coords, lo, hi))
        raise KinnError(f"{source}: {int(out.sum())} of {len(points)} reference points lie outside the domain of "
                        f"problem '{problem.name}' ({box}), e.g. {tuple(float(v) for v in points[k])}")
