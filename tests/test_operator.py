"""Operator learning (kinn.models.operator): FNO on a small Darcy dataset made by the project's own generator."""
import json

import numpy as np
import pytest
import torch

import kinn
from kinn import KinnError, registry
from kinn.cli import main
from kinn.data.datasets import read_dataset, write_dataset
from kinn.data.generators import make_darcy_dataset

SMALL = dict(progress=False, lr=3e-3, batch_size=10, eval_every=20, log_every=5,
             model={"modes": 4, "width": 8, "depth": 2, "projection": 16, "padding": 0.125})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """darcy.h5 with 60 + 12 samples on 17 x 17 nodes (training on 9 x 9), used through KINN_DATA."""
    folder = tmp_path_factory.mktemp("data")
    make_darcy_dataset(folder / "darcy.h5", n=17, n_train=60, n_test=12, progress=False)
    return folder


@pytest.fixture
def darcy_data(data_dir, monkeypatch):
    monkeypatch.setenv("KINN_DATA", str(data_dir))
    return data_dir


def test_short_training_lowers_the_test_error_at_both_resolutions(darcy_data):
    before = kinn.solve("darcy", "fno", steps=1, write=False, **SMALL)
    after = kinn.solve("darcy", "fno", steps=80, write=False, **SMALL)
    for key in ("rel_l2/u", "rel_l2@17x17/u"):
        assert after.errors[key] < 0.6 * before.errors[key], (key, before.errors, after.errors)
    assert after.history.adam_steps == 80 and "data" in after.history.rows[-1]
    assert after.summary()["errors"]["u"]["rel_l2@17x17"] == after.errors["rel_l2@17x17/u"]


def test_physics_term_is_the_darcy_residual_on_the_grid(darcy_data):
    """The form's residual −∇·(a∇u) − 1 (grid backend) of finite-volume solutions for a smooth a is
    small and shrinks with the grid spacing; 1.3 u misses the source by 0.3. (For the dataset's 12 | 3 jumps
    the central-difference flux is O(1) wrong on the nodes next to a jump, as in PINO.)"""
    from kinn.pde.lattice import nodes
    from kinn.data.generators import darcy_fd

    p = registry.get_problem("darcy")
    form = p.form("operator")
    model = kinn.solve("darcy", "fno", steps=1, write=False, **SMALL).model.double()
    rms = []
    for n in (33, 65):
        x = nodes([0, 0], [1, 1], (n, n)).reshape(n, n, 2)
        a = 1 + 0.5 * np.sin(2 * np.pi * x[..., 0]) * np.cos(np.pi * x[..., 1])
        u = darcy_fd(a)
        a_t, u_t = (torch.as_tensor(v).reshape(1, 1, n, n) for v in (a, u))
        rms.append(float(form.residuals(model, p, a_t, u_t).square().mean().sqrt()))
        wrong = float(form.residuals(model, p, a_t, 1.3 * u_t).square().mean().sqrt())
        assert wrong > 0.25
    # between first and second order: first order on the nodes next to the ends (kinn.models.lattice), second inside
    assert rms[1] < 0.02 and rms[1] < rms[0] / 2, rms
    r = kinn.solve("darcy", "fno", steps=5, write=False, weights={"pde": 1e-3}, **SMALL)
    assert all("pde" in row for row in r.history.rows)


def test_run_directory_load_and_exact_resume(darcy_data, tmp_path, monkeypatch):
    from kinn.forms import OperatorForm

    kw = dict(SMALL, steps=30, out=str(tmp_path))
    full = kinn.solve("darcy", "fno", name="full", **kw)
    for f in ("config.toml", "result.json", "history.json", "model.pt", "predictions.h5", "figures/samples.png"):
        assert (tmp_path / "full" / f).exists(), f
    loaded = kinn.load(tmp_path / "full")
    assert loaded.errors == full.errors
    a = torch.as_tensor(read_dataset(darcy_data / "darcy.h5").split("test")[0][:2])
    torch.testing.assert_close(loaded.model(a), full.model(a))
    with pytest.raises(KinnError, match="maps input functions"):
        loaded.predict([[0.5, 0.5]])

    real, calls = OperatorForm.loss, [0]

    def stopped_at_step_17(self, *args):
        calls[0] += 1
        if calls[0] == 19:  # the first call is the set-up's check of the loss, then one a step
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(OperatorForm, "loss", stopped_at_step_17)
    part = kinn.solve("darcy", "fno", name="part", **kw)
    assert part.history.adam_steps == 17
    monkeypatch.undo()
    monkeypatch.setenv("KINN_DATA", str(darcy_data))
    resumed = kinn.solve(resume=tmp_path / "part", progress=False)
    trace = lambda rows: [(r["step"], r["loss"], r.get("rel_l2/u")) for r in rows]  # noqa: E731
    assert trace(resumed.history.rows) == trace(full.history.rows)
    assert resumed.errors == full.errors


def test_bad_runs_get_clear_errors(darcy_data, tmp_path, monkeypatch):
    with pytest.raises(KinnError, match="family 'mlp' does not support the operator form: it maps points"):
        kinn.solve("darcy", "mlp", steps=1, write=False)
    with pytest.raises(KinnError, match="lbfgs needs full batches"):
        kinn.solve("darcy", "fno", steps=1, lbfgs=5, write=False, **{k: v for k, v in SMALL.items()})
    with pytest.raises(KinnError, match="points.stride = 3 does not fit.*axis 'x' has 17 nodes"):
        kinn.solve("darcy", "fno", steps=1, write=False, points={"stride": 3}, **SMALL)
    ds = read_dataset(darcy_data / "darcy.h5")
    write_dataset(tmp_path / "darcy.h5", ds.inputs, ds.outputs, ds.axes, ds.train, ds.test, ("k",), ("u",),
                  description="d", equation="e", method="m", created_by="test")
    monkeypatch.setenv("KINN_DATA", str(tmp_path))
    with pytest.raises(KinnError, match="has inputs k; problem 'darcy' expects a"):
        kinn.solve("darcy", "fno", steps=1, write=False, **SMALL)


def test_a_missing_dataset_is_generated_by_the_problem(tmp_path, monkeypatch):
    from kinn.forms import OperatorForm

    made = []
    tiny = kinn.Problem(name="tiny_darcy", domain=kinn.Rectangle([0, 0], [1, 1]),
                        operator=OperatorForm(data=str(tmp_path / "tiny.h5"), inputs=("a",),
                                              make=lambda path: made.append(make_darcy_dataset(
                                                  path, n=9, n_train=8, n_test=2, progress=False))))
    r = kinn.solve(tiny, "fno", steps=2, write=False, **SMALL)
    assert made and np.isfinite(r.errors["rel_l2/u"])


def test_cli_solves_darcy_and_reports_both_resolutions(darcy_data, tmp_path, capsys):
    code = main(["solve", "darcy", "--solver", "fno", "--steps", "3", "--out", str(tmp_path), "--json",
                 "--set", "model.width=8", "--set", "model.modes=4"])
    assert code == 0
    s = json.loads(capsys.readouterr().out)
    assert s["form"] == "operator" and set(s["errors"]["u"]) >= {"rel_l2", "max", "rel_l2@17x17"}


def test_compare_refuses_the_operator_form():
    with pytest.raises(KinnError, match="kinn compare does not cover the operator form"):
        kinn.compare("darcy", ("fno",), seeds=1, budget_steps=1, match=None)
