"""The inverse (boundary-integral, BINN) form: the catalogue's boundary data satisfy its BIE, the direct
boundary element solution reproduces the reference inside, bad input gets one line, and a short run
trains, scores by the representation formula and writes its run directory."""
import numpy as np
import pytest
import torch

import kinn
from kinn import registry
from kinn.cli import main
from kinn.boundary import Laplace, box, representation
from kinn.errors import KinnError
from kinn.forms.base import Env
from kinn.forms.boundary_integral import BoundaryIntegralForm, BoundaryNodes, Flux, Value
from kinn.models.field import FunctionModel
from kinn.pde import ops
from kinn.run.distributed import Group

ENV = Env(torch.device("cpu"), torch.float64, Group(), 0)
WITH_INVERSE = [n for n in registry.problem_names() if "inverse" in registry.get_problem(n).forms]
# the exact data's BIE residual, relative to the data's own terms. The crack's exact flux is 1/√r at the
# tip, which no polynomial on the tip's panels interpolates (BINN.md §4): its residual is the quadrature's
# there, not rounding (6.9e-3 on KINN's uniform panels; graded ones lower it, see below).
RESIDUAL = {"crack_mode3": 2e-2}
# the direct BEM solution against the reference inside: rounding for exact harmonic data, the tip's
# quadrature for the crack (9.5e-6), the P3 finite elements' own error for the plate
INTERIOR = {"crack_mode3": 3e-4, "plate_hole": 2e-4}


def test_every_inverse_form_is_in_the_catalogue():
    assert {"crack_mode3", "plate_hole", "koch_snowflake", "flower"} <= set(WITH_INVERSE)
    assert not registry.get_problem("plate_hole_inverse").forms.get("inverse")  # an inverse problem, strong form


@pytest.mark.parametrize("name", WITH_INVERSE)
def test_exact_boundary_data_satisfy_the_bie(name):
    p = registry.get_problem(name)
    if p.exact is None:
        pytest.skip("reference data only: see test_direct_solution_reproduces_the_reference_inside")
    f = p.form("inverse")
    batch = BoundaryNodes(f, ENV).batch
    model = FunctionModel(p.exact, 2)
    s = f.system
    # the size of the terms that cancel: the data's, and a source's domain term
    scale = np.abs(s.A).sum(1).max() * np.abs(s.u0).max() + np.abs(s.source).max()
    for free_only in (False, True):  # the model's own values and fluxes; the data substituted
        r = f.residual(model, p, batch, free_only).detach().numpy()
        assert np.abs(r).max() / scale < RESIDUAL.get(name, 1e-12)


@pytest.mark.parametrize("name", WITH_INVERSE)
def test_direct_solution_reproduces_the_reference_inside(name):
    p = registry.get_problem(name)
    f = p.form("inverse")
    x = f.eval_points(60, 0)
    assert (f.boundary.distance(x) < 0.011 * f.boundary.size).sum() >= 6  # points near Γ are scored too
    field = f.interior(representation(f.boundary, f.kernel, x, n=f.n), *f.direct(), f.offset(x))
    y = p.reference_values(x)
    assert np.linalg.norm(field.value - y) / np.linalg.norm(y) < INTERIOR.get(name, 1e-12)
    for key, fn in f.derived.items():
        ref = p.derived_reference(key, x)
        assert np.linalg.norm(fn(field.value, field.derived) - ref) / np.linalg.norm(ref) < 1e-3


def test_panels_graded_toward_the_crack_tip_resolve_its_square_root():
    from kinn.problems.crack import exact, upper_half

    p, errors = registry.get_problem("crack_mode3"), []
    for grading in (1.0, 0.5):
        b = upper_half(grading)
        f = BoundaryIntegralForm(b, Laplace(), flux=lambda u, n: ops.normal(u, n), given={t: Value(exact) for t in b.tags})
        x = f.eval_points(60, 0)
        field = f.interior(representation(f.boundary, f.kernel, x, n=f.n), *f.direct(), f.offset(x))
        y = p.reference_values(x)
        r = f.residual(FunctionModel(exact, 2), p, BoundaryNodes(f, ENV).batch).detach().numpy()
        errors.append((np.linalg.norm(field.value - y) / np.linalg.norm(y),
                       np.abs(r).max() / (np.abs(f.system.A).sum(1).max() * np.abs(f.system.u0).max())))
    (floor_u, res_u), (floor_g, res_g) = errors
    assert floor_g < 1e-7 < 1e-6 < floor_u and res_g < 2e-3 < 5e-3 < res_u  # measured 8.9e-9, 9.5e-6; 9.8e-4, 6.9e-3


def test_by_length_weighs_each_residual_by_its_panel_length():
    f = registry.get_problem("crack_mode3").form("inverse")
    lengths = np.array([p.length for p in f.boundary.panels])
    w = f.row_weights.reshape(len(lengths), -1)  # rows panel by panel
    assert f.by_length and w.mean() == pytest.approx(1, rel=1e-14)
    np.testing.assert_allclose(w, (lengths / lengths.mean())[:, None] * np.ones_like(w), rtol=1e-13)
    assert np.array_equal(laplace_form().row_weights, np.ones(len(laplace_form().system.r0)))  # default: equal


def laplace_form(**kw):
    args = dict(boundary=box((0, 0), (2, 1), per_edge=2), kernel=Laplace(), flux=lambda u, n: ops.normal(u, n),
                given={t: Value(1.0) for t in ("bottom", "right", "top", "left")})
    return BoundaryIntegralForm(**{**args, **kw})


@pytest.mark.parametrize("kw, message", [
    (dict(given={"bottom": Value(), "right": Value(), "top": Flux()}),
     "the inverse form has no boundary condition on panel tag\\(s\\) 'left'; give one in given= for every tag"),
    (dict(given={t: Value() for t in ("bottom", "right", "top", "left", "hole")}),
     "the inverse form's given= names tag\\(s\\) 'hole' that no panel has"),
    (dict(given={t: (Value(), Flux()) for t in ("bottom", "right", "top", "left")}),
     "boundary tag 'bottom': give 1 data \\(Value or Flux\\), one per component"),
    (dict(kernel="helmholtz"), "only operators with one have a boundary integral form"),
    (dict(boundary=[(0, 0), (1, 0)]), "the inverse form needs a kinn.boundary.Boundary, got list"),
])
def test_bad_forms_get_one_line(kw, message):
    with pytest.raises(KinnError, match=message):
        laplace_form(**kw)


def test_fno_is_refused_with_a_reason(capsys, tmp_path):
    """Through the CLI: exit 2, one line saying why (the form reads the network at boundary points; a lattice
    family has no such reading), nothing written."""
    code = main(["solve", "flower", "--family", "fno", "--form", "inverse", "--steps", "1", "--out", str(tmp_path / "runs")])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("kinn: error: family 'fno' cannot train the inverse form: it reads the network (and its "
                          "flux) at boundary points"), err
    assert "a lattice family has values at its own lattice's nodes only; use a pointwise family (mlp, kan)" in err
    assert not (tmp_path / "runs").exists()


def test_a_short_run_trains_scores_inside_and_writes(tmp_path):
    r = kinn.solve("flower", "kan", "inverse", steps=60, lbfgs=0, eval_every=30, n_eval=300, dtype="float64", seed=0,
                   out=str(tmp_path), name="run", progress=False)
    rows = [h for h in r.history.rows if "rel_l2/u" in h]
    assert rows[-1]["rel_l2/u"] < rows[0]["rel_l2/u"]
    assert r.errors["rel_l2/u"] < 0.5 and r.residual_rms is not None
    assert r.n_params == 975  # KINN's [2, 5, 5, 5, 1], G = 10
    # prediction is the representation formula, not the network
    x = np.array([[0.1, 0.2], [0.0, 2.0]])
    form = r.form
    u, q = form.boundary_data(r.model, r.problem, ENV)
    expected = representation(form.boundary, form.kernel, x)(u, q).value[:, 0]
    assert np.allclose(r.predict(x)["u"], expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(KinnError, match="1 of 1 evaluation points lie outside the domain"):
        r.predict([[5.0, 5.0]])
    for f in ("fields.h5", "fields.vtu", "figures/fields.png", "figures/boundary.png", "result.json"):
        assert (tmp_path / "run" / f).exists()
    again = kinn.load(tmp_path / "run")
    assert np.allclose(again.predict(x)["u"], expected, rtol=1e-10)
