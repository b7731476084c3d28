"""The analyses from the command line on tiny runs: `kinn show --edges`, `kinn symbolic`, `kinn ntk`,
`kinn sweep`."""
import json
from math import pi
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kinn
from kinn.cli import main
from kinn.run import rundir


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def tiny_kan_run(tmp_path, **model) -> Path:
    r = kinn.solve("multiscale_fit", "kan", model=model, steps=3, dtype="float64", n_eval=500, out=str(tmp_path),
                   name="kan", progress=False)
    return r.run_dir


def test_show_edges_draws_the_figure_and_prints_the_scores(tmp_path, capsys):
    run_dir = tiny_kan_run(tmp_path, hidden=[3], grid=5)
    report = json.loads(run(capsys, "show", run_dir, "--edges", "--json"))
    scores = report["importance"]["net"]
    assert [len(layer) for layer in scores["edges"]] == [1, 3] and len(scores["edges"][1][0]) == 1
    assert (run_dir / "figures" / "edges.png").stat().st_size > 1000
    assert json.loads((run_dir / "edges.json").read_text())["importance"] == report["importance"]
    assert "layer 1: 3 -> 1" in run(capsys, "show", run_dir, "--edges")


def test_symbolic_reads_back_a_formula_planted_in_the_edge_and_scores_it(tmp_path, capsys):
    """A one-edge KAN whose edge is planted as sin(2πx) on the scaled input h = 2x − 1: the formula is
    sin(2πx), and it scores as the network does against sin 2πx + 0.1 sin 50πx (relative L2 about 0.0995)."""
    run_dir = tiny_kan_run(tmp_path, hidden=[], grid=40)
    state = rundir.load_checkpoint(run_dir / "model.pt")
    model = kinn.load(run_dir).model.double()
    layer = model.net.layers[0]
    h = torch.linspace(-1, 1, 2000, dtype=torch.float64)[:, None]
    with torch.no_grad():
        target = torch.sin(pi * (h[:, 0] + 1)) - layer.base_weight[0, 0] * F.silu(h[:, 0])
        coef = torch.linalg.lstsq(layer.bases(h)[:, 0, :], target[:, None]).solution[:, 0]
        layer.spline_weight[0, 0] = coef / layer.spline_scaler[0, 0]
    rundir.save_checkpoint(run_dir / "model.pt", {**state, "model": model.float().state_dict()})
    report = json.loads(run(capsys, "symbolic", run_dir, "--json"))
    assert report["pieces"]["net"]["edges"][0][0][0][0] == "sin"
    text = report["pieces"]["net"]["outputs"]["u"]["text"]
    import sympy

    expr = sympy.sympify(text)
    xs = np.linspace(0, 1, 50)
    np.testing.assert_allclose(sympy.lambdify(sympy.Symbol("x"), expr)(xs), np.sin(2 * pi * xs), atol=1e-4)
    formula, network = report["errors"]["formula"]["rel_l2/u"], report["errors"]["network"]["rel_l2/u"]
    # about 0.1 / sqrt(1.01) on random held-out points; the formula loses nothing against the network
    assert formula == pytest.approx(0.1 / np.sqrt(1.01), rel=1e-2) and formula == pytest.approx(network, rel=1e-3)
    assert json.loads((run_dir / "symbolic.json").read_text()) == report
    out = run(capsys, "symbolic", run_dir)
    assert "LaTeX: " in out and "relative L2 of the formula" in out


def test_edges_and_symbolic_refuse_a_run_of_another_family(tmp_path, capsys):
    r = kinn.solve("multiscale_fit", "mlp", steps=1, n_eval=50, out=str(tmp_path), name="mlp", progress=False)
    for argv in (["show", r.run_dir, "--edges"], ["symbolic", r.run_dir]):
        assert main([str(a) for a in argv]) == 2
        assert "is a run of family 'mlp'" in capsys.readouterr().err


def test_ntk_writes_spectra_of_each_family_at_each_step(tmp_path, capsys):
    out = tmp_path / "ntk"
    report = json.loads(run(capsys, "ntk", "multiscale_fit", "--families", "mlp,kan", "--steps", "0,3",
                            "--points", 16, "--out", out, "--json"))
    assert [(r["family"], r["step"]) for r in report["runs"]] == [("mlp", 0), ("mlp", 3), ("kan", 0), ("kan", 3)]
    for r in report["runs"]:
        eig = np.array(r["eigenvalues"]["solution"])
        assert len(eig) == 16 and np.all(np.diff(eig) <= 1e-9 * eig[0]) and eig[-1] > -1e-9 * eig[0]
        assert len(r["error_spectrum"][0]) == 9  # rfft of 16 samples
    assert (out / "ntk.png").stat().st_size > 1000 and (out / "ntk.json").exists()


def test_ntk_of_a_strong_form_records_the_residual_and_the_solution_kernels(tmp_path, capsys):
    report = json.loads(run(capsys, "ntk", "poisson1d_multiscale", "--families", "kan", "--steps", "0",
                            "--points", 8, "--out", tmp_path, "--json"))
    assert report["runs"][0]["kernel"] == "residual" and set(report["runs"][0]["eigenvalues"]) == {"solution", "residual"}
    assert (tmp_path / "ntk-solution.png").exists()


def test_sweep_trains_every_value_at_equal_budgets_and_plots_error_against_parameters(tmp_path, capsys):
    report = json.loads(run(capsys, "sweep", "multiscale_fit", "--sweep", "kan.grid=3,6", "--sweep",
                            "mlp.widths=[8],[16]", "--steps", 4, "--out", tmp_path, "--json"))
    rows = report["rows"]
    assert [(r["family"], r["value"]) for r in rows] == [("kan", 3), ("kan", 6), ("mlp", [8]), ("mlp", [16])]
    assert rows[0]["params"] < rows[1]["params"] and rows[2]["params"] < rows[3]["params"]
    for r in rows:
        saved = json.loads((Path(r["run_dir"]) / "result.json").read_text())
        assert saved["adam_steps"] == 4 and saved["errors"]["u"]["rel_l2"] == r["errors"]["rel_l2/u"]
    assert (tmp_path / "sweep.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["sweep", "multiscale_fit", "--sweep", "kan.grid"], "--sweep takes FAMILY.OPTION=V1,V2,..."),
    (["sweep", "multiscale_fit", "--sweep", "kan.grid=3", "--sweep", "kan.order=2"], "swept twice"),
    (["ntk", "multiscale_fit", "--steps", "0,x"], "must be comma-separated step counts"),
])
def test_bad_analysis_input_gives_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kinn: error: ") and err.count("\n") == 1 and message in err
