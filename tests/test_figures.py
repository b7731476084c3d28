"""The figures a run and a comparison write, rendered on tiny runs and checked for their structure: the
prediction and the reference share one colour scale and one bar, the error has its own, axes carry the
problem's coordinate names (and units), the history separates the weighted total from the unweighted terms
and marks where L-BFGS starts, compare's curves have more than two points, and one seed prints no '± 0'."""
import matplotlib.pyplot as plt
import pytest

import kinn
from kinn.comparison import compare as compare_module
from kinn.run import figures

TINY = dict(n_interior=64, n_boundary=16, n_eval=200, progress=False, steps=6, lbfgs=3, log_every=1,
            eval_every=2, model={"widths": [8]})


@pytest.fixture
def drawn(monkeypatch):
    """Every figure saved, by file name, still open (closed after the test)."""
    kept = {}

    def keep(fig, path):
        kept[path.name] = fig

    monkeypatch.setattr(figures, "save", keep)
    monkeypatch.setattr(compare_module, "save", keep)
    yield kept
    for fig in kept.values():
        plt.close(fig)


def by_label(fig, label):
    return [ax for ax in fig.axes if ax.get_label() == label]


def colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_fields_2d_share_one_scale_and_the_error_has_its_own(drawn, tmp_path):
    kinn.solve("poisson2d", "mlp", out=str(tmp_path), **TINY)
    fig = drawn["fields.png"]
    (pred,), (ref,), (err,) = by_label(fig, "prediction"), by_label(fig, "reference"), by_label(fig, "error")
    norm = lambda ax: (ax.collections[0].norm.vmin, ax.collections[0].norm.vmax)
    assert norm(pred) == norm(ref) and norm(err) != norm(pred)
    assert len(colorbars(fig)) == 2  # one for prediction and reference, one for the error
    assert (pred.get_xlabel(), pred.get_ylabel()) == ("x", "y")


def test_history_separates_weighted_total_from_unweighted_terms_and_marks_lbfgs(drawn, tmp_path):
    kinn.solve("poisson2d", "mlp", out=str(tmp_path), **TINY)
    loss, errors = drawn["history.png"].axes
    assert loss.get_yscale() == "log"
    labels = [t.get_text() for t in loss.get_legend().get_texts()]
    assert labels[0] == "total, weighted (minimised)"
    assert "bc:dirichlet0, unweighted (weight 100)" in labels and "pde, unweighted (weight 1)" in labels
    for ax in (loss, errors):  # the switch after the 6th Adam step (steps 0..5)
        assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [6]
        assert any(t.get_text().strip() == "L-BFGS" for t in ax.texts)
    assert [t.get_text() for t in errors.get_legend().get_texts()] == ["rel_l2/u"]


def test_fields_1d_and_space_time_are_named_by_the_coordinates(drawn, tmp_path):
    kinn.solve("poisson1d_multiscale", "mlp", out=str(tmp_path), **TINY)
    fig = drawn["fields.png"]
    (pred,) = by_label(fig, "prediction")
    assert [t.get_text() for t in pred.get_legend().get_texts()] == ["reference", "prediction"]
    assert pred.get_xlabel() == "x" and by_label(fig, "error")[0].get_yscale() == "log"
    kinn.solve("burgers1d", "mlp", out=str(tmp_path), **TINY)
    pred = by_label(drawn["fields.png"], "prediction")[0]
    assert (pred.get_xlabel(), pred.get_ylabel()) == ("x", "t")


def test_energy_form_fields_carry_the_problems_units(drawn, tmp_path):
    kinn.solve("plate_hole", "mlp", "energy", out=str(tmp_path), **{**TINY, "lbfgs": 0})
    fig = drawn["fields.png"]
    assert len(by_label(fig, "prediction")) == 2 and len(colorbars(fig)) == 4  # ux and uy, two bars each
    assert by_label(fig, "reference")[0].get_xlabel() == "x [mm]"
    assert {cb.get_ylabel() for cb in colorbars(fig)} >= {"ux [mm]", "uy [mm]"}


def test_a_negative_potential_is_drawn_signed_on_a_linear_axis(drawn, tmp_path):
    rows = [{"step": s, "phase": "adam", "time": 0.1 * s, "loss": 400.0 - 30 * s, "lr": 1e-3, "energy": 200.0 + s,
             "work:load": 200.0 - 31 * s} for s in range(20)]
    figures.history(tmp_path / "history.png", rows, {"energy": 1.0, "work:load": 1.0})
    loss = drawn["history.png"].axes[0]  # |Π| would rise as Π falls: signed values instead
    assert loss.get_yscale() == "linear" and min(loss.lines[0].get_ydata()) < 0 < max(loss.lines[0].get_ydata())


def test_compare_draws_curves_and_one_seed_prints_no_spread(drawn, tmp_path):
    c = kinn.compare("poisson2d", ("mlp", "kan"), seeds=1, budget_steps=50, out=tmp_path, progress=False,
                     n_interior=64, n_boundary=16, n_eval=200, models={"mlp": {"widths": [8]}, "kan": {"hidden": [3]}})
    (ax,) = drawn["error_vs_time.png"].axes
    bold = [line for line in ax.lines if line.get_linewidth() == 2]
    assert [line.get_label() for line in bold] == ["mlp", "kan"]
    assert all(len(line.get_xdata()) >= 10 for line in bold)  # an evaluation every 2 of the 50 steps
    fig = drawn["fields.png"]
    assert fig.get_layout_engine() is not None  # constrained: titles, labels and bars do not overlap
    assert "±" not in c.table() and "±" not in (tmp_path / "table.md").read_text()
