"""The spectral-bias study of KINN's section on NTKs (`kinn ntk`): empirical neural tangent kernels of
several families on one problem, at initialisation and after chosen numbers of training steps, their
eigenvalue spectra, and the frequency content of the error.

The kernel is that of what the form's loss squares: the fields for the fit form, the PDE residual for
the strong form (whose solution kernel is recorded too). Each Jacobian row is the gradient of one point's
value alone (`kinn.analysis.ntk.jacobian`): KINN's research code accumulated parameter gradients from one
sample to the next without zeroing them, so its rows were running sums, not per-sample gradients.

The model at step s is trained by `kinn.solve` from the same seed for s steps: a run is deterministic for
its seed, so it is the model a longer run passes through at step s (without a schedule that depends on
the total, such as cosine).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from kinn import registry
from kinn.errors import KinnError
from kinn.pde import geometry
from kinn.run import rundir

from . import ntk as kernels


def study_points(problem, n: int, seed: int) -> np.ndarray:
    """The points the kernels are taken at: for a 1-D problem a uniform periodic grid (the endpoint left
    out, so the error's FFT is that of `kernels.error_spectrum`); otherwise n points of the domain."""
    if problem.dim == 1:
        lo, hi = (float(v[0]) for v in geometry.bbox(problem.domain))
        return (lo + (hi - lo) * np.arange(n) / n)[:, None]
    with geometry.numpy_seed(geometry.seed_stream(seed, "ntk")):
        return geometry.interior(problem.domain, n)


def _kernel_fns(problem, form) -> dict:
    """{kernel name: fn(model, x) -> (N,)}: the solution's first field, and the first residual column where
    the form has a residual."""
    fns = {"solution": kernels.solution}
    if form.kind != "fit":
        fns["residual"] = lambda model, x: form.residuals(model, problem, x)[:, 0]
    return fns


def study(problem, families: Sequence[str] = ("mlp", "kan"), steps: Sequence[int] = (0, 1000), form=None,
          points: int = 100, seed: int = 0, out=None, config: dict | None = None) -> dict:
    """NTK spectra of each family at each step count on `problem`; figures and ntk.json in `out`.

    Returns {"runs": [{"family", "step", "params", "rel_l2", "kernel", "eigenvalues": {kernel: [...]},
    "error_spectrum": [freq, amplitude] (1-D only)}], "figures": [...], "points": n}. The figure ntk.png
    shows the spectra of the kernel the loss trains (residual for a strong form, solution for a fit) and
    the error's spectrum; ntk-solution.png the solution kernels of a strong form.
    """
    from kinn.run.pipeline import solve

    problem = registry.get_problem(problem) if isinstance(problem, str) else problem
    form = problem.form(form)
    if any(s < 0 for s in steps) or not steps:
        raise KinnError(f"steps must be non-negative step counts, got {list(steps)}")
    x = study_points(problem, points, seed)
    xt = torch.as_tensor(x, dtype=torch.float64)
    reference = problem.reference_values(x)
    trains = "solution" if form.kind == "fit" else "residual"
    runs, spectra, errors = [], {"solution": {}, "residual": {}}, {}
    for family in families:
        for step in sorted(set(steps)):
            result = solve(problem, family, form.kind, config=config, steps=step, lbfgs=0, seed=seed,
                           dtype="float64", write=False, progress=False)
            model = result.model.cpu()
            label = f"{family} step {step}"
            entry = {"family": family, "step": step, "params": result.n_params, "kernel": trains,
                     "rel_l2": {k: v for k, v in result.errors.items() if k.startswith("rel_l2/")},
                     "eigenvalues": {}}
            for name, fn in _kernel_fns(problem, form).items():
                values = kernels.spectrum(kernels.ntk(model, fn, xt))
                spectra[name][label] = values
                entry["eigenvalues"][name] = values.tolist()
            if problem.dim == 1:
                with torch.no_grad():
                    err = model(xt)[:, 0].numpy() - reference[:, 0]
                errors[label] = kernels.error_spectrum(err, float(x[1, 0] - x[0, 0]) * points)  # the grid's period
                entry["error_spectrum"] = [a.tolist() for a in errors[label]]
            runs.append(entry)
    report = {"problem": problem.name, "form": form.kind, "points": points, "seed": seed, "runs": runs,
              "figures": []}
    if out is not None:
        out = Path(out)
        kernels.plot_spectra(spectra[trains], out / "ntk.png", errors or None)
        report["figures"].append(str(out / "ntk.png"))
        if trains == "residual":
            kernels.plot_spectra(spectra["solution"], out / "ntk-solution.png")
            report["figures"].append(str(out / "ntk-solution.png"))
        rundir.write_json(out / "ntk.json", report)
    return report
