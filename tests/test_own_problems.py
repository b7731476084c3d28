"""Bring your own PDE: a problem from the user's own file, solved without any reference and scored
afterwards (`kinn score`); the messages on that path; the `kinn new` template; a package that registers
a problem and a family through entry points."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kinn
from kinn.cli import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
_spec = importlib.util.spec_from_file_location("allen_cahn_spectral", HERE / "allen_cahn_spectral.py")
allen_cahn_spectral = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(allen_cahn_spectral)

TINY = ["--steps", "30", "--lbfgs", "5", "--set", "points.n_interior=200", "--set", "points.n_eval=500"]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The Allen-Cahn solution by Chebyshev collocation (n = 256: within 1e-4 of the converged one),
    saved the way a user would: x, t axes and u (nx, nt) in an .npz."""
    x, t, u = allen_cahn_spectral.solve_allen_cahn(256, 201, 21)
    path = tmp_path_factory.mktemp("ref") / "allen_cahn.npz"
    np.savez(path, x=x, t=t, u=u)
    return path


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_pde.py"
    shutil.copy(HERE / "allen_cahn_user.py", path)
    return path


@pytest.mark.parametrize("family", ["mlp", "kan"])
def test_allen_cahn_from_a_file_without_reference_then_scored(capsys, tmp_path, user_file, reference, family):
    code, out, err = cli(capsys, "solve", f"{user_file}:allen_cahn", "--family", family, "--out", tmp_path / "runs",
                         *TINY, "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["reference"] is None and s["errors"]["u"]["rel_l2"] is None
    assert s["residual_rms"] > 0 and s["checks"] == {}  # exact conditions: no misfit to report
    run = Path(s["run_dir"])
    code, out, err = cli(capsys, "show", run)
    assert code == 0 and "no reference given" in out
    code, out, err = cli(capsys, "score", run, "--reference", reference, "--json")
    assert code == 0, err
    scored = json.loads(out)
    assert scored["reference"] == str(reference) and 0 < scored["errors"]["u"]["rel_l2"] < 10
    assert json.loads((run / "result.json").read_text()) == scored
    again = kinn.load(run)  # the run records the file's absolute path: it loads from anywhere
    assert again.errors["rel_l2/u"] == scored["errors"]["u"]["rel_l2"]
    assert again.problem.name == "allen_cahn"


def test_api_score_matches_a_reference_made_of_the_exact_solution(tmp_path):
    """kinn.score against the exact solution written as a scattered-point .npz gives the run's own error."""
    r = kinn.solve("poisson2d", "mlp", steps=20, lbfgs=0, n_eval=400, out=str(tmp_path), name="run", progress=False)
    x = np.random.default_rng(0).uniform(0, 1, (3000, 2))
    x = np.vstack([x, [[0, 0], [0, 1], [1, 0], [1, 1]]])
    np.savez(tmp_path / "ref.npz", points=x, u=np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]))
    s = kinn.score(r.run_dir, tmp_path / "ref.npz")
    assert s["errors"]["u"]["rel_l2"] == pytest.approx(r.errors["rel_l2/u"], rel=0.05)


def test_no_reference_reports_condition_misfits_and_problem_checks(tmp_path):
    from kinn import Dirichlet, Interval, Problem, StrongForm, ops

    p = Problem(name="noref", domain=Interval(0.0, 1.0),
                strong=StrongForm(lambda u, x: -ops.laplacian(u) - 1.0, bcs=[Dirichlet(0.0)]),
                checks={"mean": lambda predict: float(predict(np.linspace(0, 1, 101)[:, None]).mean())})
    r = kinn.solve(p, steps=20, lbfgs=0, n_eval=200, write=False, progress=False)
    assert r.errors == {} and r.reference is None
    assert set(r.checks) == {"bc:dirichlet0", "mean"} and r.checks["bc:dirichlet0"] > 0
    with pytest.raises(kinn.KinnError, match="target_error needs a reference"):
        kinn.solve(p, steps=1, target_error=0.1, write=False, progress=False)


@pytest.mark.parametrize("spec, message", [
    ("missing.py:p", "problem file not found: missing.py"),
    ("{f}:nope", "defines no 'nope'; problems it defines: allen_cahn"),
    ("{f}:residual", "'residual' in {f} is a function that takes arguments, not a kinn.Problem"),
    ("{f}:pi", "'pi' in {f} is a float, not a kinn.Problem"),
    ("no_such_module_xyz:p", "cannot import module 'no_such_module_xyz'"),
])
def test_bad_problem_specs_name_what_is_wrong(capsys, user_file, spec, message):
    code, out, err = cli(capsys, "solve", spec.format(f=user_file))
    assert code == 2 and err.count("\n") == 1, err
    assert message.format(f=user_file) in err


def test_score_refuses_mismatched_references(capsys, tmp_path, user_file, reference):
    code, out, err = cli(capsys, "solve", f"{user_file}:allen_cahn", "--out", tmp_path, "--steps", "1", "--lbfgs", "0",
                         "--set", "points.n_interior=50", "--set", "points.n_eval=100", "--json")
    run = json.loads(out)["run_dir"]
    data = dict(np.load(reference))
    np.savez(tmp_path / "shifted.npz", x=data["x"] + 1.0, t=data["t"], u=data["u"])
    np.savez(tmp_path / "other.npz", x=data["x"], t=data["t"], v=data["u"])
    for path, message in [(tmp_path / "shifted.npz", "reference points lie outside the domain of problem 'allen_cahn'"),
                          (tmp_path / "other.npz", "'u'"), (tmp_path / "none.npz", "reference file not found"),
                          (tmp_path / "ref.txt", "unsupported reference file type")]:
        code, out, err = cli(capsys, "score", run, "--reference", path)
        assert code == 2 and err.count("\n") == 1 and message in err, err


def test_new_writes_a_template_that_solves_and_never_overwrites(capsys, tmp_path):
    path = tmp_path / "mine.py"
    code, out, err = cli(capsys, "new", "mine", "--out", path)
    assert code == 0 and path.exists()
    code, out, err = cli(capsys, "new", "mine", "--out", path)
    assert code == 2 and "never overwrites" in err
    code, out, err = cli(capsys, "new", "2bad")
    assert code == 2 and "must be a Python identifier" in err
    code, out, err = cli(capsys, "solve", f"{path}:mine", "--out", tmp_path, "--steps", "2", "--lbfgs", "0",
                         "--set", "points.n_eval=100", "--json")
    assert code == 0, err
    assert json.loads(out)["checks"]["bc:dirichlet0"] >= 0


def test_a_package_registers_a_problem_and_a_family_through_entry_points(tmp_path):
    """pip installs tests/plugin_pkg (offline, into a temp folder); the CLI then lists both entries with
    their origin and solves the package's problem with the package's family."""
    src = tmp_path / "src"
    shutil.copytree(HERE / "plugin_pkg", src)
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                          "--quiet", "--target", str(target), str(src)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}

    def kinn_cli(*argv):
        return subprocess.run([sys.executable, "-m", "kinn", *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path)

    listing = kinn_cli("list")
    assert listing.returncode == 0, listing.stderr
    assert "demo_poisson1d" in listing.stdout and "demo_sine" in listing.stdout
    assert "[from package kinn-plugin-demo" in listing.stdout
    run = kinn_cli("solve", "demo_poisson1d", "--family", "demo_sine", "--steps", "20", "--lbfgs", "0",
                   "--set", "points.n_eval=100", "--out", str(tmp_path / "runs"), "--json")
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)
    assert s["family"] == "demo_sine" and s["problem"] == "demo_poisson1d" and s["errors"]["u"]["rel_l2"] > 0
