"""End-to-end: training lowers the error, runs are repeatable, the run directory round-trips."""
import json
from math import pi

import h5py
import meshio
import numpy as np
import pytest
import torch

import kinn
from kinn.pde import ops
from kinn import Dirichlet, Problem, Rectangle, StrongForm
from kinn.forms.points import eval_set
from kinn.pde.geometry import seed_stream
from kinn.run.pipeline import resolve_config
from kinn.errors import KinnError

FAST = dict(steps=150, lbfgs=0, n_interior=200, n_boundary=80, n_eval=500, eval_every=50, progress=False, schedule="none",
            weights={"bc": 100})


def test_short_run_lowers_the_error(tmp_path):
    r = kinn.solve("poisson2d", "mlp", out=str(tmp_path), model={"widths": [20, 20]}, **FAST)
    errs = [row["rel_l2/u"] for row in r.history.rows if "rel_l2/u" in row]
    assert errs[-1] < 0.5 * errs[0]
    assert r.errors["rel_l2/u"] == pytest.approx(errs[-1])
    assert r.history.adam_steps == 150


def test_same_seed_same_history_other_seed_differs(tmp_path):
    kw = dict(FAST, steps=30, write=False, model={"widths": [8]})
    a, b = kinn.solve("poisson2d", seed=3, **kw), kinn.solve("poisson2d", seed=3, **kw)
    c = kinn.solve("poisson2d", seed=4, **kw)
    assert [r["loss"] for r in a.history.rows] == [r["loss"] for r in b.history.rows]
    assert a.history.rows[-1]["loss"] != c.history.rows[-1]["loss"]


def test_run_directory_round_trips(tmp_path):
    r = kinn.solve("poisson2d", "mlp", out=str(tmp_path), name="run", model={"widths": [8, 8]},
                   **dict(FAST, steps=20, lbfgs=5))
    d = tmp_path / "run"
    for f in ("config.toml", "result.json", "history.json", "fields.h5", "fields.vtu", "model.pt",
              "figures/fields.png", "figures/history.png"):
        assert (d / f).is_file(), f
    assert not list(d.glob(".*tmp")), "no temporary files left behind"
    with h5py.File(d / "fields.h5") as f:
        x, u, ref = f["points"][:], f["fields/u"][:], f["reference/u"][:]
    assert x.shape == (500, 2)
    np.testing.assert_allclose(ref, torch.sin(pi * torch.tensor(x[:, 0])) * torch.sin(pi * torch.tensor(x[:, 1])))
    np.testing.assert_allclose(u, r.predict(x)["u"], rtol=1e-6)
    mesh = meshio.read(d / "fields.vtu")
    np.testing.assert_allclose(mesh.point_data["u"], u)
    summary = json.loads((d / "result.json").read_text())
    assert summary == json.loads(json.dumps(r.summary()))
    assert summary["errors"]["u"]["rel_l2"] == pytest.approx(np.linalg.norm(u - ref) / np.linalg.norm(ref))

    again = kinn.load(d)
    pts = np.random.rand(7, 2)
    np.testing.assert_allclose(again.predict(pts)["u"], r.predict(pts)["u"], rtol=1e-6)
    assert again.errors == r.errors and again.config == r.config
    # the stored config re-runs the same run
    rerun = kinn.solve("poisson2d", config=d / "config.toml", write=False)
    assert [row["loss"] for row in rerun.history.rows] == [row["loss"] for row in r.history.rows]


def test_evaluation_points_are_never_training_points():
    p = kinn.registry.get_problem("poisson2d")
    cfg = resolve_config(p, "mlp", None, n_interior=500, n_eval=500)
    x_eval, _ = eval_set(p, p.form(cfg.form), cfg)
    with kinn.pde.geometry.numpy_seed(seed_stream(0, "train", 0)):
        train = p.form("strong").sample(p, cfg.points)
    seen = {tuple(row) for pts in train.values() for row in pts}
    assert not any(tuple(row) in seen for row in x_eval)


def test_a_users_own_problem_with_a_hard_condition(tmp_path):
    """A problem defined in a script, never registered; hard Dirichlet makes the boundary exact."""

    def exact(x):
        return x[:, :1] * (1 - x[:, :1]) * x[:, 1:]

    prob = Problem(
        name="mine", domain=Rectangle([0, 0], [1, 1]),
        strong=StrongForm(lambda u, x: ops.laplacian(u) + 2 * x[:, 1:],
                          bcs=[Dirichlet(exact, hard=True,
                                         distance=lambda x: x[:, 0] * (1 - x[:, 0]) * x[:, 1] * (1 - x[:, 1]))]),
        exact=exact,
    )
    r = kinn.solve(prob, dtype="float64", out=str(tmp_path), name="mine", model={"widths": [8]},
                   **dict(FAST, steps=50, weights={}))  # a hard condition has no "bc" term to weigh
    edge = np.array([[0.0, 0.3], [1.0, 0.7], [0.4, 0.0], [0.2, 1.0]])
    np.testing.assert_allclose(r.predict(edge)["u"], exact(torch.tensor(edge))[:, 0].numpy(), atol=1e-14)
    assert kinn.load(tmp_path / "mine", problem=prob).errors == r.errors
    with pytest.raises(KinnError, match="problem 'mine', which is not registered: pass your Problem as kinn.load"):
        kinn.load(tmp_path / "mine")


def test_target_error_stops_early():
    r = kinn.solve("poisson2d", write=False, target_error=0.9, **dict(FAST, steps=400, eval_every=10))
    assert r.history.adam_steps < 400 and "target error" in r.history.stop_reason


def test_bad_settings_are_named():
    with pytest.raises(KinnError, match="unknown setting 'stepz'"):
        kinn.solve("poisson2d", stepz=3)
    with pytest.raises(KinnError, match="unknown option.*widht.*allowed"):
        kinn.solve("poisson2d", model={"widht": [3]}, write=False)
    with pytest.raises(KinnError, match="positive integers"):
        kinn.solve("poisson2d", model={"widths": [0]}, write=False)
    with pytest.raises(KinnError, match="float32, float64"):
        kinn.solve("poisson2d", dtype="float16", write=False)


def test_non_finite_loss_stops_with_a_clear_message():
    def exact(x):
        return x[:, :1]

    prob = Problem(name="nan", domain=Rectangle([0, 0], [1, 1]),
                   strong=StrongForm(lambda u, x: u * float("nan"), bcs=[]), exact=exact)
    with pytest.raises(KinnError, match=r"the loss is non-finite before training \(pde=nan"):
        kinn.solve(prob, write=False, **dict(FAST, steps=5, weights={}))


@pytest.mark.parametrize("form", ["strong", "energy"])  # energy: jittered quadrature, a fresh draw every step
def test_resume_continues_exactly_where_the_run_stopped(tmp_path, monkeypatch, form):
    from kinn.forms import EnergyForm, StrongForm

    kw = dict(FAST, steps=40, eval_every=10, log_every=5, resample_every=7, schedule="cosine",
              model={"widths": [8, 8]}, out=str(tmp_path), form=form)
    if form == "energy":
        kw["points"] = {"quadrature": "gauss", "jitter": True}
    full = kinn.solve("poisson2d", name="full", **kw)

    Form = StrongForm if form == "strong" else EnergyForm
    real, calls = Form.loss, [0]

    def stopped_at_step_23(self, *args):  # Ctrl-C during step 23
        calls[0] += 1
        if calls[0] == 25:  # the first call is the set-up's check of the loss, then one a step
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Form, "loss", stopped_at_step_23)
    part = kinn.solve("poisson2d", name="part", **kw)
    assert part.history.adam_steps == 23 and part.history.stop_reason.startswith("interrupted")
    monkeypatch.undo()

    resumed = kinn.solve(resume=tmp_path / "part", progress=False)
    def trace(rows):
        return [(r["step"], r["loss"], r.get("rel_l2/u")) for r in rows]

    assert trace(resumed.history.rows) == trace(full.history.rows)
    assert resumed.errors == full.errors and resumed.history.adam_steps == 40
    assert kinn.load(tmp_path / "part").errors == full.errors
    with pytest.raises(KinnError, match="only steps, lbfgs, lr, .* may change \\(got seed\\)"):
        kinn.solve(resume=tmp_path / "part", seed=5)
    with pytest.raises(KinnError, match="a cosine schedule is fixed by its steps"):
        kinn.solve(resume=tmp_path / "part", steps=50)
    with pytest.raises(KinnError, match="not a kinn run directory"):
        kinn.solve(resume=tmp_path / "nothing")


def test_a_corrupted_checkpoint_is_named(tmp_path):
    kinn.solve("poisson2d", out=str(tmp_path), name="run", model={"widths": [4]}, **dict(FAST, steps=3))
    ckpt = tmp_path / "run" / "model.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.raises(KinnError, match=r"checkpoint .*model.pt is unreadable"):
        kinn.load(tmp_path / "run")
    with pytest.raises(KinnError, match=r"checkpoint .*model.pt is unreadable"):
        kinn.solve(resume=tmp_path / "run")


def test_a_forms_own_defaults_win_over_the_problems_and_flags_over_both():
    p = kinn.registry.get_problem("crack_mode3")  # energy: triangle rule, and a smaller KAN step
    assert resolve_config(p, "kan", "energy").train.lr == 3e-4
    assert resolve_config(p, "kan", "energy").points.quadrature == "triangle1"
    assert resolve_config(p, "mlp", "energy").train.lr == 1e-3  # the KAN's step only
    assert resolve_config(p, "kan", "strong").train.lr == 1e-3  # that form only
    assert resolve_config(p, "kan", "strong").points.quadrature != "triangle1"
    assert resolve_config(p, "kan", "energy", lr=1e-2).train.lr == 1e-2
    assert resolve_config(p, "kan", "energy").model["hidden"] == [5, 5]  # the problem's model options stay
